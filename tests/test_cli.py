import json

import pytest

from uniroute.cli import main


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
    assert code == 0 and "0 models" in out
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
    assert set(json.loads(out)["models"]) == {"mathbot", "poet", "big"}
    code, out, _ = run(capsys, "inspect", state)
    assert "mathbot" in out and "c1" in out
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
