"""`uniroute build` from the command line: errors, the budget, an interrupted run, the example end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_fakes import FakePool, make_log_rows, write_config, write_log

from uniroute import Router, cli
from uniroute.onboarding.cache import ResponseCache, cache_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "own_workload"


@pytest.fixture()
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePool]:
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    with FakePool() as server:
        yield server


def test_the_cli_module_imports_nothing_heavy() -> None:
    code = "import sys, uniroute.build.cli; print(sorted({'numpy', 'litellm', 'sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_bad_log_lines_fail_with_the_line_named_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"prompt": "fine", "reference": "1"}\n{"prompt": "cut\n', encoding="utf-8")
    args = ["build", "--prompts", str(log), "--model", "gpt-4o-mini", "--out", str(tmp_path / "out")]
    assert cli.main([*args, "--embedder", "hashing"]) == 2
    err = capsys.readouterr().err
    assert "line 2: not valid JSON" in err and "--skip-invalid" in err
    assert not (tmp_path / "out").exists()


def test_models_come_from_a_config_group_or_model_flags_not_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows(4, 4))
    base = ["build", "--prompts", str(log), "--out", str(tmp_path / "out")]
    assert cli.main(base) == 2
    assert "--config FILE --group GROUP, or as --model" in capsys.readouterr().err
    config = write_config(tmp_path / "config.yaml", "http://127.0.0.1:9/v1")
    assert cli.main([*base, "--config", str(config), "--group", "team", "--api-base", "http://x"]) == 2
    assert "set them in each deployment's litellm_params" in capsys.readouterr().err


@pytest.mark.integration
def test_an_exhausted_budget_exits_3_and_says_how_to_resume(
    pool: FakePool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    args = [
        "build",
        "--prompts",
        str(log),
        "--config",
        str(config),
        "--group",
        "team",
        "--out",
        str(tmp_path / "o"),
    ]
    args += ["--embedder", "hashing", "--clusters", "2", "--per-cluster", "8", "--no-progress"]
    assert cli.main([*args, "--budget", "$0.0001"]) == 3
    out = capsys.readouterr().out
    assert "not made (budget)" in out and "run the same command again with a larger --budget" in out
    assert pool.total > 0 and not (tmp_path / "o" / "state").exists()
    assert cli.main([*args, "--budget", "1"]) == 0
    assert max(pool.calls.values()) == 1 and pool.total == 48


@pytest.mark.integration
@pytest.mark.usefixtures("sigint_raises")
def test_an_interrupted_run_resumes_without_paying_any_answer_twice(pool: FakePool, tmp_path: Path) -> None:
    """Ctrl-C with calls in flight: the answers received are cached, and only the others are asked again."""
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    out = tmp_path / "out"
    args = ["build", "--prompts", str(log), "--config", str(config), "--group", "team", "--out", str(out)]
    args += ["--embedder", "hashing", "--clusters", "2", "--per-cluster", "8", "--no-progress"]
    args += ["--concurrency", "1"]
    pool.hold_after = 10  # 10 answers, then every model's next call hangs until the gate opens
    env = os.environ | {"FAKE_KEY": "sk-fake", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uniroute.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cached = 0
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (pool.total == 13 and cached == 10):
            time.sleep(0.2)
            files = list((out / "cache").glob("*.jsonl")) if (out / "cache").is_dir() else []
            cached = sum(len(ResponseCache.read(f)[0]) for f in files)
        assert pool.total == 13 and cached == 10, (pool.total, cached)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        pool.gate.set()
    assert process.returncode == 130 and "interrupted" in err and "no answer is paid twice" in err
    assert not (out / "state").exists()
    answered = {
        (record["model"].removeprefix("openai/"), record["id"])
        for model in ("mathy", "geo", "big")
        for record in ResponseCache.read(cache_file(f"openai/{model}", out / "cache"))[0].values()
    }
    assert len(answered) == 10
    before = dict(pool.calls)
    pool.hold_after = None
    assert cli.main(args) == 0
    again = {pair: n - before.get(pair, 0) for pair, n in pool.calls.items() if n > before.get(pair, 0)}
    assert sum(again.values()) == 48 - 10  # the 3 calls cut off in flight and the 35 never started
    assert all(before.get(pair, 0) <= 1 for pair in again)  # nothing that was answered is asked again
    assert len(Router.load(out / "state").models) == 3


@pytest.mark.integration
def test_the_example_builds_with_the_default_embedder_and_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/own_workload end to end: the real static embedder, the replay server, as in its README."""
    from uniroute.onboarding import ReplayData, ReplayServer

    monkeypatch.setenv("REPLAY_KEY", "none")
    with ReplayServer(ReplayData.from_paths([EXAMPLE / "answers.csv"])) as server:
        config = tmp_path / "config.yaml"
        text = (EXAMPLE / "config.yaml").read_text(encoding="utf-8")
        config.write_text(text.replace("http://127.0.0.1:8765/v1", server.url), encoding="utf-8")
        args = ["build", "--prompts", str(EXAMPLE / "traffic.jsonl"), "--config", str(config)]
        args += [
            "--group",
            "assistant",
            "--per-cluster",
            "12",
            "--budget",
            "0.05",
            "--out",
            str(tmp_path / "b"),
        ]
        assert cli.main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "150 distinct prompt(s) kept" in out and "duplicate: 8" in out and "0 failed" in out
    assert (
        "98 validation prompt(s)" in out
        and "balanced   λ=6447" in out
        and (tmp_path / "b" / "report" / "report.html").is_file()
    )
    router = Router.load(tmp_path / "b" / "state")
    assert router.encoder.id.startswith("model2vec") and set(router.models) == {"small", "medium", "large"}
    sums = "What is 874 + 404? Reply with the number only."
    capital = "What is the capital of Bhutan? Answer with the city name. (question 21)"
    recipe = "A recipe needs 2.5 cups of rice. With 1 cup = 240 ml, how many ml is that? Number only."
    product = "Compute 16 times 22. Give just the result."
    # at the balanced λ the build printed: each kind of request goes to the cheapest model that gets it right
    assert router.route(sums, lam=6447.0).model == "small"  # every model is right on sums
    assert router.route(product, lam=6447.0).model == "medium"
    assert router.route(recipe, lam=6447.0).model == "large"  # small is always wrong on conversions
    assert router.route(capital, lam=0.0).model == "large"
    assert cli.main(["route", str(tmp_path / "b" / "state"), sums, "--lambda", "6447"]) == 0
    assert "small" in capsys.readouterr().out
