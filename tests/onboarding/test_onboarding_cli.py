"""Onboarding subcommands end to end: fit, remove a model, make-validation, onboard via the replay server."""

from __future__ import annotations

import gc
import json
import shlex
import warnings
from pathlib import Path
from typing import Any

import pytest
from onboarding_fakes import completion, settings_for, toy_answer, write_routerbench_csv

from uniroute import InputError, Router
from uniroute.cli import main
from uniroute.onboarding import ReplayData, ReplayServer, ValidationItem, load_validation, onboard


@pytest.fixture()
def prepared(tmp_path: Path) -> dict[str, Path]:
    """A router over the tiny RouterBench file with 'joker' removed, and a validation set without it."""
    data = write_routerbench_csv(tmp_path / "tiny_test.csv")
    state = tmp_path / "state"
    assert (
        main(["fit", str(data), "--out", str(state), "--embedder", "hashing", "--clusters", "2", "--profile"])
        == 0
    )
    assert main(["remove-model", str(state), "joker"]) == 0
    validation = tmp_path / "val.jsonl"
    code = main(
        [
            "make-validation",
            "--data",
            str(tmp_path),
            "--split",
            "test",
            "--state",
            str(state),
            "--per-cluster",
            "8",
            "--exclude-model",
            "joker",
            "--grader-option",
            "choices=AB",
            "--out",
            str(validation),
        ]
    )
    assert code == 0
    return {"data": data, "state": state, "validation": validation, "cache": tmp_path / "cache"}


def test_make_validation_samples_every_cluster(
    capsys: pytest.CaptureFixture, prepared: dict[str, Path]
) -> None:
    items = load_validation(prepared["validation"])
    assert len(items) == 16
    assert {i.task for i in items} == {"science", "riddle"}
    assert all(i.grader == "multiple_choice" and i.grader_options == {"choices": "AB"} for i in items)
    assert "cluster  available  sampled" in capsys.readouterr().out


@pytest.mark.integration
def test_onboard_dry_run_then_run_then_refuse(
    prepared: dict[str, Path], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLAY_KEY", "none")
    with ReplayServer(ReplayData.from_paths([prepared["data"]])) as server:
        args = [
            "onboard",
            str(prepared["state"]),
            "openai/joker",
            "--name",
            "joker",
            "--validation",
            str(prepared["validation"]),
            "--api-base",
            server.url,
            "--api-key-env",
            "REPLAY_KEY",
            "--cost",
            "0.001",
            "--cache",
            str(prepared["cache"]),
            "--concurrency",
            "2",
            "--no-progress",
        ]
        before = (prepared["state"] / "state.json").read_text()
        assert main([*args, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "16 prompts, 0 already cached, 16 to call" in out and "≈ $0.0160" in out
        assert (prepared["state"] / "state.json").read_text() == before
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "joker: 16 of 16 prompts graded, accuracy 0.500" in out
        assert "* joker" in out
        assert main(args) == 2
        assert "already in" in capsys.readouterr().err
        assert main([*args, "--replace", "--dry-run"]) == 0
        assert "16 already cached, 0 to call" in capsys.readouterr().out
    router = Router.load(prepared["state"])
    assert "joker" in router.models and router.profile("joker").n_results == pytest.approx(16)
    summary = json.loads((prepared["state"] / "state.json").read_text())
    assert [m["name"] for m in summary["models"]][-1] == "joker"


def test_onboard_reports_bad_input(prepared: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    bad = prepared["validation"].with_name("bad.jsonl")
    bad.write_text(prepared["validation"].read_text().splitlines()[0] + "\n{broken\n")
    args = ["onboard", str(prepared["state"]), "openai/joker", "--validation", str(bad), "--dry-run"]
    assert main(args) == 2
    assert "line 2" in capsys.readouterr().err
    assert main([*args, "--skip-invalid", "--api-key-env", "UNIROUTE_SURELY_UNSET"]) == 2
    assert "UNIROUTE_SURELY_UNSET" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--cost": "-1"}, "cost must be a finite $ per request >= 0"),
        ({"state": "missing"}, "no router state at"),
        ({"--name": "in the state"}, "is already in"),
    ],
)
def test_a_dry_run_refuses_what_the_run_would_refuse(
    prepared: dict[str, Path], capsys: pytest.CaptureFixture, change: dict[str, str], message: str
) -> None:
    """A dry run printed an estimate (``≈ $-16.0000`` for ``--cost -1``) and "nothing called" where
    the same command without ``--dry-run`` stops at once: a missing state, a model already in it."""
    state = prepared["state"].with_name("missing") if change.get("state") else prepared["state"]
    name = Router.load(prepared["state"]).models[0] if change.get("--name") else "joker"
    cost = change.get("--cost", "0.001")
    args = ["onboard", str(state), "openai/joker", "--validation", str(prepared["validation"])]
    assert main([*args, "--name", name, "--cost", cost, "--cache", str(prepared["cache"]), "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_the_old_spelling_with_router_still_works(
    prepared: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    old = ["onboard", "openai/joker", "--validation", str(prepared["validation"]), "--cost", "0.001"]
    with pytest.warns(DeprecationWarning, match="--router"):
        assert main([*old, "--router", str(prepared["state"]), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "16 prompts, 0 already cached" in captured.out and "--router is deprecated" in captured.err
    with pytest.raises(SystemExit):
        main(["onboard", str(prepared["state"]), "--validation", str(prepared["validation"])])
    assert "MODEL" in capsys.readouterr().err


@pytest.mark.integration
def test_the_printed_retry_command_works_as_printed(
    prepared: dict[str, Path],
    capsys: pytest.CaptureFixture,
    fake_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    outage = {"on": True}
    broken = set(sorted({i.prompt for i in load_validation(prepared["validation"])})[:3])

    def script(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        if outage["on"] and prompt in broken:
            return 503, None, 0.0
        return 200, completion("A"), 0.0

    server = fake_server(script)
    args = [
        "onboard",
        str(prepared["state"]),
        "openai/joker",
        "--name",
        "joker",
        "--validation",
        str(prepared["validation"]),
        "--api-base",
        server.url,
        "--api-key-env",
        "FAKE_KEY",
        "--cost",
        "0.001",
        "--temperature",
        "0",
        "--max-retries",
        "0",
        "--cache",
        str(prepared["cache"]),
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "joker: 13 of 16 prompts graded" in out
    advice = next(line for line in out.splitlines() if "To retry them" in line)
    command = shlex.split(advice.split("nothing is paid twice): ", 1)[1])
    assert command[:2] == ["uniroute", "onboard"] and "--replace" in command
    outage["on"] = False
    calls = server.total_calls
    assert main(command[1:]) == 0
    assert "joker: 16 of 16 prompts graded" in capsys.readouterr().out
    assert server.total_calls == calls + 3  # only the failed prompts are called again
    assert Router.load(prepared["state"]).profile("joker").n_results == pytest.approx(16)


def test_the_retry_command_parses_back_to_the_same_arguments() -> None:
    from uniroute.cli import build_parser
    from uniroute.onboarding.cli import _command_line

    argv = [
        "onboard",
        "my state",
        "openai/x",
        "--validation",
        "v.jsonl",
        "--param",
        "seed=1",
        "--param",
        'stop=["\\n"]',
        "--param",
        "user=bob smith",
        "--temperature",
        "0",
        "--max-retries",
        "0",
        "--concurrency",
        "2",
        "--no-progress",
    ]
    parser = build_parser()
    args = parser.parse_args(argv)
    command = shlex.split(_command_line(args, replace=True))
    assert command[:4] == ["uniroute", "onboard", "my state", "openai/x"]
    again = parser.parse_args(command[1:])
    assert again.replace is True
    assert {k: v for k, v in vars(again).items() if k != "replace"} == {
        k: v for k, v in vars(args).items() if k != "replace"
    }


def write_judged_validation(path: Path, prompts: list[str], options: list[dict[str, Any]]) -> Path:
    """A validation file of ``llm_judge`` items, one per prompt, with the given grader options."""
    lines = [
        json.dumps({"prompt": p, "reference": "yes", "grader": "llm_judge", "grader_options": o})
        for p, o in zip(prompts, options, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_judge_config(path: Path, url: str, extra: str = "") -> Path:
    """A LiteLLM config: deployment "judge" is the fake judge at ``url``; ``extra``: more litellm_params."""
    path.write_text(
        "model_list:\n  - model_name: judge\n    litellm_params:\n      model: openai/judge\n"
        f"      api_base: {url}\n      api_key: os.environ/FAKE_KEY\n" + extra,
        encoding="utf-8",
    )
    return path


def correctness_judge(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    """A fake judge: CORRECT for the answer "yes", else INCORRECT."""
    return 200, completion("CORRECT" if "Model's answer:\nyes" in prompt else "INCORRECT"), 0.0


def model_answers(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    return 200, completion(toy_answer(prompt)), 0.0


@pytest.fixture()
def servers(fake_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, Any]:
    """A fake judge (CORRECT for "yes") and a fake model (the toy answers); caches under tmp_path."""
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    monkeypatch.setenv("UNIROUTE_CACHE_DIR", str(tmp_path / "cache"))
    return fake_server(correctness_judge), fake_server(model_answers)


def onboard_newbie(state: Path, validation: Path, model: Any) -> list[str]:
    """``uniroute onboard`` arguments: 'openai/newbie' on the fake model server."""
    return ["onboard", str(state), "openai/newbie", "--validation", str(validation), "--api-base", model.url]


@pytest.mark.integration
@pytest.mark.parametrize("key", ["api_base", "base_url", "api_key", "extra_headers", "aws_region_name"])
def test_onboard_refuses_a_validation_file_that_chooses_the_judges_endpoint(
    key: str,
    toy_state: Path,
    toy_data: dict,
    servers: tuple[Any, Any],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-users-own")  # what a planted endpoint would receive
    judge, model = servers
    prompts = toy_data["prompts"][:2]
    planted = {"model": "openai/judge", key: judge.url}
    validation = write_judged_validation(tmp_path / "planted.jsonl", prompts, [planted, planted])
    args = onboard_newbie(toy_state, validation, model)
    assert main([*args, "--api-key-env", "FAKE_KEY", "--cost", "0.001", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "planted.jsonl" in err and "line 2" in err and f"{key!r}" in err and "--judge-config" in err
    items = [ValidationItem(p, "yes", "llm_judge", planted) for p in prompts]
    with pytest.raises(InputError, match=f"{key!r} may not come from a validation file"):
        onboard(items, toy_state, settings_for(model), cost=0.001, progress=False)  # items made in code
    assert judge.total_calls == 0 and model.total_calls == 0


def test_a_judge_model_string_that_holds_a_url_is_refused(tmp_path: Path) -> None:
    validation = write_judged_validation(
        tmp_path / "planted.jsonl", ["q"], [{"model": "huggingface/https://judge.example"}]
    )
    with pytest.raises(InputError, match=r"planted.jsonl.*line 1.*holds a URL"):
        load_validation(validation)


@pytest.mark.integration
def test_a_dry_run_counts_the_judge_calls_too(
    toy_state: Path, toy_data: dict, servers: tuple[Any, Any], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    judge, model = servers
    config = write_judge_config(
        tmp_path / "config.yaml",
        judge.url,
        "      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n",
    )
    options = [{"model": "judge"}] * 4 + [{"model": "judge", "mode": "pairwise", "anchor": "42"}] * 3
    validation = write_judged_validation(tmp_path / "judged.jsonl", toy_data["prompts"][:7], options)
    args = onboard_newbie(toy_state, validation, model)
    args += ["--api-key-env", "FAKE_KEY", "--cost", "0.001", "--judge-config", str(config), "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "estimate: judge openai/judge (correct): ≤ 4 call(s)" in out
    assert "estimate: judge openai/judge (pairwise): ≤ 6 call(s)" in out  # both orders
    assert "$ unknown" not in out  # priced from the config's deployment
    assert judge.total_calls == 0 and model.total_calls == 0


@pytest.mark.integration
def test_onboard_calls_the_judge_that_judge_config_names(
    toy_state: Path, toy_data: dict, servers: tuple[Any, Any], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    judge, model = servers
    config = write_judge_config(tmp_path / "config.yaml", judge.url)
    prompts = toy_data["prompts"][:5] + toy_data["prompts"][-5:]  # arithmetic ("yes"), poetry ("no")
    validation = write_judged_validation(tmp_path / "judged.jsonl", prompts, [{"model": "judge"}] * 10)
    args = onboard_newbie(toy_state, validation, model)
    args += ["--api-key-env", "FAKE_KEY", "--cost", "0.001", "--no-progress", "--judge-config", str(config)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert main(args) == 0
        gc.collect()
    assert not [w for w in caught if "judges" in str(w.message)]  # the verdict cache was closed
    assert "newbie: 10 of 10 prompts graded, accuracy 0.500" in capsys.readouterr().out
    assert judge.total_calls == 10 and model.total_calls == 10


@pytest.mark.integration
@pytest.mark.parametrize("section", ["model_info", "litellm_params"])
def test_onboard_prices_a_config_deployment_as_a_build_does(
    section: str, servers: tuple[Any, Any], toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    """`uniroute onboard --config` ignored the deployment's per-token prices, which `uniroute build`
    uses: a model LiteLLM does not price was refused ('pass --cost'), another got LiteLLM's price."""
    from uniroute.onboarding import save_validation

    _, model = servers
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n  - model_name: newbie\n    litellm_params:\n      model: openai/newbie\n"
        f"      api_base: {model.url}\n      api_key: os.environ/FAKE_KEY\n"
        + ("    model_info:\n" if section == "model_info" else "")
        + "      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n",
        encoding="utf-8",
    )
    validation = save_validation(toy_items[:6], tmp_path / "validation.jsonl")
    args = ["onboard", str(toy_state), "newbie", "--config", str(config), "--validation", str(validation)]
    assert main([*args, "--name", "newbie", "--no-progress"]) == 0
    per_call = 10 * 0.001 + 1 * 0.002  # the fake's usage: 10 prompt and 1 completion tokens
    assert Router.load(toy_state).profile("newbie").cost == pytest.approx(per_call)


@pytest.mark.integration  # it binds a socket on 127.0.0.1
def test_replay_server_on_a_port_it_cannot_have_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    """A port in use (a second CI job) or out of range was an OSError or OverflowError traceback, status 1."""
    import socket

    data = write_routerbench_csv(tmp_path / "tiny_test.csv")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["replay-server", "--data", str(data), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err and "another --port" in err
    with pytest.raises(SystemExit) as usage:
        main(["replay-server", "--data", str(data), "--port", "65536"])
    assert usage.value.code == 2 and "--port: expected a port number 0-65535" in capsys.readouterr().err


@pytest.mark.parametrize("tokens", ["-5", "0"])
def test_output_tokens_below_one_are_refused(prepared: dict[str, Path], capsys: Any, tokens: str) -> None:
    """`onboard --dry-run --output-tokens -5` printed "≤ -490 completion tokens" and a $ from them."""
    argv = ["onboard", str(prepared["state"]), "openai/joker", "--validation", str(prepared["validation"])]
    with pytest.raises(SystemExit) as usage:
        main([*argv, "--cost", "0.1", "--dry-run", "--output-tokens", tokens])
    assert (
        usage.value.code == 2 and "--output-tokens: expected a whole number >= 1" in capsys.readouterr().err
    )
