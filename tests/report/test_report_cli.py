"""``uniroute report STATE``, end to end through ``uniroute.cli.main``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from uniroute import cli
from uniroute.report.cli import _budget


@pytest.fixture()
def main(monkeypatch):
    """``uniroute.cli.main`` with the report subcommand registered (until cli.py lists it)."""
    if "uniroute.report.cli" not in cli.SUBCOMMAND_MODULES:
        monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", [*cli.SUBCOMMAND_MODULES, "uniroute.report.cli"])
    return cli.main


def test_report_end_to_end(main, report_router, topics_data, tmp_path, capsys):
    state = report_router.save(tmp_path / "state")
    log = tmp_path / "traffic.jsonl"
    log.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in topics_data["prompts"]))
    out = tmp_path / "report"
    code = main(["report", str(state), "--prompts", str(log), "--budget", "$0.003", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    for name in ("best", "balanced", "cheapest", "budget $0.003"):
        assert name in printed
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "36 given prompts" in page and "mathbot" in page
    assert (out / "summary.md").read_text(encoding="utf-8").startswith("# uniroute report")


def test_report_with_a_validation_file_of_scores(main, report_router, report_dataset, tmp_path):
    state = report_router.save(tmp_path / "state")
    path = tmp_path / "results.jsonl"
    rows = [
        {
            "id": report_dataset.ids[i],
            "prompt": report_dataset.prompts[i],
            "scores": dict(zip(report_dataset.models, report_dataset.scores[i].tolist(), strict=True)),
            "costs": dict(zip(report_dataset.models, report_dataset.costs[i].tolist(), strict=True)),
        }
        for i in range(len(report_dataset))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps(r) + "\n" for r in rows[20:]))
    out = tmp_path / "r"
    assert main(["report", str(state), "--validation", str(path), str(more), "--out", str(out)]) == 0
    assert "| measured quality |" in (out / "summary.md").read_text(encoding="utf-8")
    assert "traffic sample: 36 validation prompts" in (out / "summary.md").read_text(encoding="utf-8")


def test_a_missing_state_is_an_error_not_a_traceback(main, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 2
    assert "uniroute: error:" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "value"), [("0.002", 0.002), ("$0.5", 0.5), ("0", 0.0)])
def test_budget_parses_dollars(text, value):
    assert _budget(text) == value


@pytest.mark.parametrize("text", ["abc", "-1", "nan", "inf"])
def test_budget_refuses_other_text(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        _budget(text)


def test_the_cli_module_imports_nothing_heavy():
    code = (
        "import sys, uniroute.report.cli; "
        "print([m for m in ('numpy', 'sklearn', 'matplotlib', 'uniroute.engine') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
