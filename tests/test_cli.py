import argparse
import io
import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from uniroute import HashingEmbedder, Router
from uniroute.cli import _rewrite_router_option, build_parser, main


@pytest.fixture()
def records(tmp_path, toy_data):
    path = tmp_path / "results.jsonl"
    with path.open("w") as handle:
        for i, prompt in enumerate(toy_data["prompts"]):
            scores = {m: float(s[i]) for m, s in toy_data["scores"].items()}
            handle.write(json.dumps({"prompt": prompt, "scores": scores, "costs": toy_data["costs"]}) + "\n")
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_add_route_inspect_remove(tmp_path, records, capsys):
    state = tmp_path / "state"
    code, out, _ = run(capsys, "fit", records, "--out", state, "--embedder", "hashing", "--clusters", "2")
    assert code == 0 and "0 models" in out and f"K=2, {Router.load(state).cluster_map_.assignment_}," in out
    code, out, _ = run(capsys, "add-model", state, records)
    assert code == 0 and "added mathbot" in out
    code, out, _ = run(
        capsys, "route", state, "Arithmetic question: compute 3 plus 4.", "--lambda", "1000", "--json"
    )
    assert json.loads(out)["model"] == "mathbot"
    code, out, _ = run(
        capsys, "route", state, "Poetry request: a haiku about snow", "--lambda", "1000", "--top", "2"
    )
    assert "model: poet" in out
    code, out, _ = run(capsys, "inspect", state, "--json")
    shown = json.loads(out)
    assert set(shown["models"]) == {"mathbot", "poet", "big"}
    fitted = Router.load(state).cluster_map_
    assert (shown["n_clusters"], shown["assignment"]) == (2, fitted.assignment_)
    code, out, _ = run(capsys, "inspect", state)
    assert "mathbot" in out and "c1" in out and f"K=2, {fitted.assignment_}" in out
    code, out, _ = run(capsys, "remove-model", state, "big")
    assert code == 0 and "2 models left" in out


def test_errors_are_one_line_messages_not_tracebacks(tmp_path, records, capsys):
    state = tmp_path / "s.npz"
    run(capsys, "fit", records, "--out", state, "--embedder", "hashing", "--clusters", "2", "--profile")
    code, _, err = run(capsys, "add-model", state, records, "--model", "big")
    assert code == 2 and "--replace" in err
    code, _, err = run(capsys, "route", tmp_path / "nope", "hi")
    assert code == 2 and "no router state" in err
    code, _, err = run(capsys, "remove-model", state, "ghost")
    assert code == 2 and "ghost" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(records.read_text() + "{oops\n")
    code, _, err = run(capsys, "add-model", state, bad, "--replace")
    assert code == 2 and "line 61" in err
    code, out, _ = run(capsys, "add-model", state, bad, "--replace", "--skip-invalid")
    assert code == 0 and "added big" in out


@pytest.fixture()
def state(tmp_path, records, capsys):
    path = tmp_path / "state"
    code, _, err = run(
        capsys, "fit", records, "--out", path, "--embedder", "hashing", "--clusters", "2", "--profile"
    )
    assert code == 0, err
    return path


def _route_json(capsys, *argv):
    code, out, err = run(capsys, "route", *argv, "--json")
    assert code == 0, err
    decision = json.loads(out)
    decision.pop("decision_id", None)  # unique per decision
    return decision


@pytest.mark.parametrize(
    ("prompt", "model"),
    [("Arithmetic question: compute 3 plus 4.", "mathbot"), ("Poetry request: a haiku about snow", "poet")],
)
def test_route_reads_the_prompt_from_stdin_with_a_dash(state, capsys, monkeypatch, prompt, model):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(prompt.encode())))
    from_stdin = _route_json(capsys, state, "-", "--lambda", "1000")
    assert from_stdin == _route_json(capsys, state, prompt, "--lambda", "1000")
    assert from_stdin["model"] == model


def test_route_from_stdin_takes_long_prompts_and_bad_bytes(state, capsys, monkeypatch):
    long = ("Poetry request: a haiku about snow. " * 20_000).encode() + b"\xff\xfe\xed"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(long)))
    assert _route_json(capsys, state, "-", "--lambda", "1000")["model"] == "poet"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"  \n")))
    code, _, err = run(capsys, "route", state, "-")
    assert code == 2 and "standard input is empty" in err


def test_old_router_option_still_names_the_state(state, capsys):
    prompt = "Arithmetic question: compute 3 plus 4."
    with pytest.warns(DeprecationWarning, match="--router is deprecated"):
        old = _route_json(capsys, "--router", state, prompt, "--lambda", "1000")
    assert old == _route_json(capsys, state, prompt, "--lambda", "1000")


def test_router_option_becomes_state_option_where_the_state_is_optional():
    parser = argparse.ArgumentParser(prog="uniroute")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("cmd").add_argument("--state")
    sub.add_parser("stateless").add_argument("--x")
    own = sub.add_parser("own")
    own.add_argument("--state")
    own.add_argument("--router", help="this command's own option, e.g. a router under test")
    with pytest.warns(DeprecationWarning):
        assert _rewrite_router_option(parser, ["cmd", "--router=s", "--state", "t"]) == [
            "cmd", "--state", "t", "--state", "s"
        ]  # fmt: skip
    assert _rewrite_router_option(parser, ["stateless", "--router", "s"]) == ["stateless", "--router", "s"]
    assert _rewrite_router_option(parser, ["own", "--router", "m:f"]) == ["own", "--router", "m:f"]
    assert _rewrite_router_option(parser, ["cmd", "--router"]) == ["cmd", "--router"]


def test_choices_come_from_the_registries(capsys):
    from uniroute.datasets import FORMATS
    from uniroute.engine.cluster_maps import CLUSTER_MAPS
    from uniroute.engine.embedders import EMBEDDERS

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    choices = {a.dest: list(a.choices) for a in commands["fit"]._actions if a.choices is not None}
    assert choices == {"format": sorted(FORMATS), "embedder": sorted(EMBEDDERS), "map": sorted(CLUSTER_MAPS)}
    add = {a.dest: list(a.choices) for a in commands["add-model"]._actions if a.choices is not None}
    assert add == {"format": sorted(FORMATS)}
    with pytest.raises(SystemExit):
        main(["fit", "x.jsonl", "--out", "s", "--map", "no-such-map"])
    assert "invalid choice: 'no-such-map'" in capsys.readouterr().err


def test_a_registered_third_party_map_is_a_fit_choice_and_round_trips(tmp_path, records, capsys, monkeypatch):
    from uniroute.engine.cluster_maps import CLUSTER_MAPS, KMeansClusterMap

    class FourClusters(KMeansClusterMap):
        """A third-party map: fixed K, its own registry name, no n_clusters argument."""

        name = "four-clusters"

        def __init__(self, random_state: int = 0):
            super().__init__(n_clusters=4, random_state=random_state)

    monkeypatch.setitem(CLUSTER_MAPS, FourClusters.name, FourClusters)
    path = tmp_path / "state"
    code, out, err = run(
        capsys, "fit", records, "--out", path, "--embedder", "hashing", "--map", "four-clusters"
    )
    assert code == 0, err
    code, out, _ = run(capsys, "inspect", path, "--json")
    assert len(json.loads(out)["cluster_weights"]) == 4


def test_help_imports_nothing_heavy():
    """`uniroute --help` must answer at once: every subcommand's parser is built, no registry is read."""
    code = (
        "import sys; import uniroute.cli as cli\n"
        "try: cli.main(['--help'])\n"
        "except SystemExit: pass\n"
        "heavy = {'numpy', 'scipy', 'sklearn', 'litellm', 'langchain_core', 'torch', 'tqdm', 'matplotlib',"
        " 'yaml', 'pydantic', 'uniroute.engine'}\n"
        "loaded = {'.'.join(m.split('.')[:depth]) for m in sys.modules for depth in (1, 2)}\n"
        "print(sorted(heavy & loaded), file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "usage: uniroute" in out.stdout
    assert out.stderr.strip() == "[]"


def test_python_dash_m_uniroute_is_the_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "uniroute", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage: uniroute" in out.stdout and "route one prompt" in out.stdout


def test_a_state_whose_embedder_calls_the_network_loads_only_with_allow_network(
    tmp_path, records, capsys, monkeypatch
):
    from uniroute.engine import embedders

    class ApiEmbedder(embedders.HashingEmbedder):
        """Stands for an embedding API (it hashes locally, but says it calls the network)."""

        kind = "test-cli-api"

        @classmethod
        def uses_network(cls, config):
            return True

    monkeypatch.setattr(embedders, "EMBEDDERS", embedders._Registry(dict(embedders.EMBEDDERS._classes)))
    embedders.register_embedder(ApiEmbedder)
    path = tmp_path / "state"
    code, _, err = run(capsys, "fit", records, "--out", path, "--embedder", "test-cli-api", "--profile")
    assert code == 0, err
    code, _, err = run(capsys, "route", path, "Poetry request: a haiku about snow")
    assert code == 2 and "--allow-network" in err
    code, out, err = run(capsys, "route", path, "Poetry request: a haiku about snow", "--allow-network")
    assert code == 0 and "model:" in out, err


def test_fit_keeps_the_maps_own_k_unless_clusters_is_given(tmp_path, records, capsys, monkeypatch):
    from uniroute.engine.cluster_maps import CLUSTER_MAPS, KMeansClusterMap

    class ThreeByDefault(KMeansClusterMap):
        name = "three-by-default"

        def __init__(self, n_clusters: int = 3, random_state: int = 0):
            super().__init__(n_clusters=n_clusters, random_state=random_state)

    monkeypatch.setitem(CLUSTER_MAPS, ThreeByDefault.name, ThreeByDefault)
    for extra, k in [((), 3), (("--clusters", "2"), 2)]:
        path = tmp_path / f"state{k}"
        argv = ["fit", records, "--out", path, "--embedder", "hashing", "--map", "three-by-default", *extra]
        code, out, err = run(capsys, *argv)
        assert code == 0 and f"K={k}," in out, err
        code, out, _ = run(capsys, "inspect", path, "--json")
        assert len(json.loads(out)["cluster_weights"]) == k


def _four_corners() -> tuple[np.ndarray, np.ndarray]:
    """240 prompts around four corners and two LLMs' scores, enough for an averaged map."""
    rng = np.random.default_rng(0)
    corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    X = np.concatenate([c + 0.3 * rng.standard_normal((60, 2)) for c in corners]).astype(np.float32)
    Y = (rng.random((240, 2)) < np.repeat([[0.9, 0.2], [0.3, 0.9]] * 2, 60, axis=0)).astype(float)
    return X, Y


def test_inspect_names_the_maps_an_averaged_map_is_made_of(tmp_path, capsys):
    X, Y = _four_corners()
    router = Router(HashingEmbedder(dim=2)).fit_embeddings(X, Y)  # the width of X
    router.save(tmp_path / "state")
    maps = router.cluster_map_.maps_
    assert len(maps) == 3
    code, out, _ = run(capsys, "inspect", tmp_path / "state", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["maps"] == [{"n_clusters": k, "assignment": a} for k, a, _ in maps]
    assert shown["n_clusters"] == sum(k for k, _, _ in maps)
    code, out, _ = run(capsys, "inspect", tmp_path / "state")
    assert code == 0
    assert f"K={shown['n_clusters']}: the mean of " + ", ".join(f"{k} {a}" for k, a, _ in maps) in out


def test_inspect_counts_share_and_results_within_each_averaged_map(tmp_path, capsys):
    X, Y = _four_corners()
    router = Router(HashingEmbedder(dim=2)).fit_embeddings(X, Y)  # the width of X
    router.add_models(
        [f"p{i}" for i in range(240)], {"a": Y[:, 0], "b": Y[:, 1]}, {"a": 1.0, "b": 2.0}, embeddings=X
    )
    router.save(tmp_path / "state")
    maps = router.cluster_map_.maps_
    code, out, _ = run(capsys, "inspect", tmp_path / "state")
    assert code == 0
    lines = out.splitlines()
    shares = np.array(next(line for line in lines if line.startswith("(share")).split()[4:], dtype=float)
    fewest = np.array(next(line for line in lines if line.startswith("(results")).split()[4:], dtype=float)
    start = 0
    for k, _, _ in maps:  # within each map: shares sum to 1, every prompt is counted once
        assert shares[start : start + k].sum() == pytest.approx(1.0, abs=0.01 * k)
        assert fewest[start : start + k].sum() == pytest.approx(240, abs=k)
        start += k
    assert "Φ averages 3 maps (map 1, " in out


def test_inspect_runs_many_clusters_down_the_page(tmp_path, records, capsys):
    state = tmp_path / "state"
    run(capsys, "fit", records, "--out", state, "--embedder", "hashing", "--clusters", "20", "--profile")
    code, out, _ = run(capsys, "inspect", state)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("c") and line.split()[0][1:].isdigit()]
    assert [row.split()[0] for row in rows] == [f"c{k}" for k in range(20)]
    assert max(len(line) for line in out.splitlines()[1:]) < 100
    assert "m0" in out and "mathbot" in out


def test_inspect_and_the_onboarding_table_turn_at_the_same_number_of_clusters(state, capsys, monkeypatch):
    # one threshold for both models × clusters tables (it was defined twice, as _WIDE)
    from uniroute.onboarding import report

    router = Router.load(state)

    def head() -> list[str]:
        return report.psi_table(router, router.models[0]).splitlines()[0].split()[:3]

    assert head() == ["cluster", "0", "1"]  # a row per model, a column per cluster
    monkeypatch.setattr(report, "MAX_CLUSTER_COLUMNS", 1)  # the toy state has 2: down the page
    assert head() == ["cluster", "n", "m0"]
    code, out, _ = run(capsys, "inspect", state)
    assert code == 0 and any(line.split()[:2] == ["cluster", "map"] for line in out.splitlines())


def test_a_closed_pipe_ends_the_command_quietly(state):
    """`uniroute inspect STATE | head -1`: the reader leaves early; no traceback, exit status 1."""
    child = subprocess.Popen(
        [sys.executable, "-m", "uniroute.cli", "inspect", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 1
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_output_in_an_encoding_without_lambda_shows_it_escaped(state, monkeypatch, encoding):
    """`uniroute route` printed λ into a latin-1 or ASCII stdout (a latin-1 locale, a Windows console
    redirected to a file): a UnicodeEncodeError traceback once the routing was done."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["route", str(state), "Poetry request: a haiku about snow"]) == 0
    with pytest.raises(SystemExit) as help_exit:  # the help of inspect has "models × clusters"
        main(["--help"])
    assert help_exit.value.code == 0
    stdout.flush()
    printed = stdout.buffer.getvalue().decode(encoding)
    times = "×" if encoding == "latin-1" else "\\xd7"
    assert "(\\u03bb=0, cluster" in printed and f"models {times} clusters" in printed


CTRL_C_DURING_FIT = """
import sys, time
from uniroute.cli import main
from uniroute.engine.router import Router

def slow_fit(self, *args, **kwargs):
    print("fitting", flush=True)
    time.sleep(60)

Router.fit = slow_fit
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_exits_130_with_one_line_not_a_traceback(tmp_path, records, sigint_raises):
    """SIGINT during a command with no interrupt handler of its own (`fit`, `eval`, ...): status 130, as
    shells report Ctrl-C, and one line on stderr; it was a traceback of wherever the work stood."""
    argv = ["fit", str(records), "--out", str(tmp_path / "s"), "--embedder", "hashing"]
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_DURING_FIT, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "fitting\n"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130 and err.splitlines()[-1] == "uniroute: interrupted"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--data", "{records}", "--out", "{file}"],
        ["report", "{state}", "--out", "{file}"],
        [
            "build",
            "--prompts",
            "{log}",
            "--model",
            "openai/gpt-4o-mini",
            "--api-base",
            "http://127.0.0.1:9/v1",
            "--out",
            "{file}",
        ],
    ],
)
def test_an_out_directory_that_is_a_file_is_refused_before_any_work(tmp_path, records, state, capsys, argv):
    """`--out` naming an existing file was a FileExistsError traceback (`eval`: after its whole run)."""
    file = tmp_path / "taken.txt"
    file.write_text("x")
    log = tmp_path / "log.jsonl"
    log.write_text(
        "".join(json.dumps({"prompt": f"{i} + 1?", "reference": str(i + 1)}) + "\n" for i in range(40))
    )
    with pytest.raises(SystemExit) as exit_:
        main([a.format(records=records, state=state, file=file, log=log) for a in argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{file} is a file" in err and "Traceback" not in err


def test_fit_out_that_is_a_file_but_not_npz_is_a_clear_error(tmp_path, records, capsys):
    """`uniroute fit ... --out STATE/state.json` crashed with a FileExistsError traceback."""
    file = tmp_path / "state.json"
    file.write_text("{}")
    code, _, err = run(capsys, "fit", records, "--out", file, "--embedder", "hashing", "--clusters", "2")
    assert code == 2 and f"{file} is a file" in err and ".npz" in err


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["fit", "{records}", "--out", "{tmp}/s", "--clusters", "0"], "--clusters"),
        (["route", "{state}", "hi", "--top", "-2"], "--top"),
        (
            ["eval", "--data", "{records}", "--out", "{tmp}/e", "--protocol", "unseen", "--trials", "0"],
            "--trials",
        ),
        (["eval", "--data", "{records}", "--out", "{tmp}/e", "--pools", "0"], "--pools"),
        (["eval", "--data", "{records}", "--out", "{tmp}/e", "--bootstrap", "-1"], "--bootstrap"),
    ],
)
def test_counts_below_one_are_refused(tmp_path, records, state, capsys, argv, option):
    """`fit --clusters 0` silently fitted the map's own K, `route --top -2` hid the last two models,
    and `eval --trials 0` / `--pools 0` crashed with a traceback after the run."""
    with pytest.raises(SystemExit) as exit_:
        main([a.format(records=records, state=state, tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    least = 0 if option == "--bootstrap" else 1  # --bootstrap 0: no intervals; -1 was taken as 0
    assert exit_.value.code == 2 and f"argument {option}: expected a whole number >= {least}" in err


def test_a_missing_extra_is_one_line_naming_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "redis", None)  # an install without the [redis] extra
    code, _, err = run(capsys, "state", "sync", tmp_path / "state", "--redis", "redis://localhost:6379/0")
    assert code == 2
    assert err.strip() == (
        "uniroute: error: redis is not installed; this part of uniroute needs it: "
        "pip install 'uniroute[redis]'"
    )


def test_an_import_error_that_is_not_a_missing_extra_keeps_its_traceback(tmp_path, monkeypatch):
    from uniroute.stores import cli as stores_cli

    def broken(args):
        raise ImportError("cannot import name 'helper' from 'uniroute.engine'")  # a bug, not an extra

    monkeypatch.setattr(stores_cli, "_cmd_namespace", broken)
    with pytest.raises(ImportError, match="cannot import name 'helper'"):
        main(["state", "namespace", str(tmp_path / "state")])


def test_a_path_the_system_refuses_is_one_line_naming_it(tmp_path, records, capsys):
    """`fit --out FILE/sub` ended, after the whole fit, in a NotADirectoryError traceback."""
    file = tmp_path / "a-file"
    file.write_text("x")
    code, _, err = run(
        capsys, "fit", records, "--out", file / "sub", "--embedder", "hashing", "--clusters", "2"
    )
    assert code == 1
    assert err.strip() == f"uniroute: error: Not a directory: {file / 'sub'}"


def test_an_os_error_without_a_path_keeps_its_traceback(tmp_path, monkeypatch):
    from uniroute.stores import cli as stores_cli

    def broken(args):
        raise OSError("a socket failed")  # no path to blame: may be a bug, so not hidden

    monkeypatch.setattr(stores_cli, "_cmd_namespace", broken)
    with pytest.raises(OSError, match="a socket failed"):
        main(["state", "namespace", str(tmp_path / "state")])
