"""``uniroute eval`` end to end on tiny JSONL files (hashing embedder)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from uniroute.cli import main

NAMES = {
    "uniroute-kmeans",
    "uniroute-learnedmap",
    "knn",
    "zerorouter",
    "random",
    "best-single",
    "oracle",
    "litellm-adaptive",
}


def _write(path, data) -> None:
    with path.open("w") as handle:
        for i, prompt in enumerate(data.prompts):
            record = {
                "prompt": prompt,
                "scores": dict(zip(data.models, data.scores[i].tolist(), strict=True)),
                "costs": dict(zip(data.models, data.costs[i].tolist(), strict=True)),
                "task": data.tasks[i],
            }
            handle.write(json.dumps(record) + "\n")


@pytest.fixture()
def data_dir(tmp_path, make_data):
    """A directory of train.jsonl (60 prompts) and test.jsonl (24), five models."""
    directory = tmp_path / "data"
    directory.mkdir()
    _write(directory / "train.jsonl", make_data(30, 0, 5))
    _write(directory / "test.jsonl", make_data(12, 1, 5))
    return directory


def _hand_test_set(path) -> None:
    """Four noiseless test prompts: m0/m2 right on math, m1/m3 on poetry, m4 on both (see the test)."""
    prompts = [
        ("Arithmetic question: compute 12 plus 30 and answer with the number only.", "math"),
        ("Arithmetic question: compute 7 plus 45 and answer with the number only.", "math"),
        ("Poetry request: write a short poem about rivers, with vivid imagery.", "poetry"),
        ("Poetry request: write a short poem about lanterns, with vivid imagery.", "poetry"),
    ]
    costs = {"m0": 0.001, "m1": 0.002, "m2": 0.003, "m3": 0.004, "m4": 0.01}
    with path.open("w") as handle:
        for prompt, task in prompts:
            right = {
                "m0": task == "math",
                "m1": task == "poetry",
                "m2": task == "math",
                "m3": task == "poetry",
            }
            scores = {m: float(right.get(m, True)) for m in costs}
            handle.write(
                json.dumps({"prompt": prompt, "task": task, "scores": scores, "costs": costs}) + "\n"
            )


def _eval(data_dir, out, tmp_path, *extra: str) -> int:
    return main(
        [
            "eval",
            "--data",
            str(data_dir),
            "--embedder",
            "hashing",
            "--out",
            str(out),
            "--pools",
            "3",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
            *extra,
        ]
    )


def test_eval_values_on_a_hand_computed_test_set(tmp_path, make_data, capsys) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _write(data_dir / "train.jsonl", make_data(30, 0, 5))
    _hand_test_set(data_dir / "test.jsonl")
    out = tmp_path / "out"
    assert _eval(data_dir, out, tmp_path, "--bootstrap", "1000") == 0
    results = json.loads((out / "results.json").read_text())
    r = results["routers"]
    assert set(r) == NAMES
    # pool: mean quality 0.5, 0.5, 0.5, 0.5, 1.0; mean $ .001 .002 .003 .004 .01 (x = $ / .01)
    assert results["models"]["m4"] == {"quality": 1.0, "cost": 0.01}
    # oracle: math -> m0, poetry -> m1 (cheapest right): quality 1 at x = 0.15; then poetry -> m0: (0.1, 0.5).
    # area: 0.5 * 0.1 + (0.5 + 1) / 2 * 0.05 + 1 * 0.85; QNC: 0.0015 / 0.01
    assert r["oracle"]["area"] == pytest.approx(0.05 + 0.0375 + 0.85)
    assert r["oracle"]["qnc"] == pytest.approx(0.15)
    assert r["oracle"]["quality_lambda0"] == 1.0 and r["oracle"]["cost_lambda0"] == pytest.approx(0.0015)
    # random: quality 0.6 at x = 0.4, chord from the cheapest model (0.1, 0.5); never reaches quality 1
    assert r["random"]["area"] == pytest.approx(0.05 + 0.3 * 0.55 + 0.6 * 0.6)
    assert r["random"]["qnc"] is None
    assert r["random"]["e_p_lambda0"] == pytest.approx(np.log2(5))
    assert r["random"]["share_entropy_lambda0"] == pytest.approx(np.log(5))
    # best-single: m4 (right on both topics in training): (1, 1); chord from (0.1, 0.5)
    assert r["best-single"]["area"] == pytest.approx(0.05 + 0.9 * 0.75)
    assert r["best-single"]["qnc"] == pytest.approx(1.0) and r["best-single"]["v_b_lambda0"] == 1.0
    for name in ("oracle", "knn", "uniroute-kmeans", "best-single"):
        assert r[name]["e_p_lambda0"] == 0.0  # one model per prompt
    # K-NN's k: chosen by CV on the 60 training prompts from the documented grid, log kept
    knn = results["router_info"]["knn"]
    assert knn["cv"]["grid"] == [10, 25, 50, 100, 200] and knn["k"] == knn["cv"]["chosen"]
    assert knn["cv"]["mean"][str(knn["k"])] == max(knn["cv"]["mean"].values())
    assert all(len(v) == 5 for v in knn["cv"]["per_fold"].values())
    # paired bootstrap: the primary router against every other one; differences match the point values
    boot = results["bootstrap"]
    assert boot["primary"] == "uniroute-kmeans" and boot["n_resamples"] == 1000 and boot["n_prompts"] == 4
    vs_oracle = boot["vs"]["oracle"]
    assert vs_oracle["area_diff"] == pytest.approx(r["uniroute-kmeans"]["area"] - r["oracle"]["area"])
    lo, hi = vs_oracle["area_diff_ci"]
    assert lo <= vs_oracle["area_diff"] <= hi <= 1e-12  # the oracle is never behind
    # four test prompts cannot pin QNC down: the run says so, in results and on stderr
    assert any("test split too small for QNC" in w for w in results["warnings"])
    assert "test split too small for QNC" in capsys.readouterr().err
    summary = (out / "summary.md").read_text()
    assert "| uniroute-kmeans |" in summary and "## Paired bootstrap" in summary
    assert f"`knn`: k = {knn['k']} by 5-fold CV" in summary
    assert (out / "deferral.png").stat().st_size > 0 and (out / "scaling.png").stat().st_size > 0


def test_eval_names_the_vectors_its_figures_come_from(tmp_path, data_dir) -> None:
    """Two machines' static embedders differ in their vectors; results.json says which one ran."""
    out = tmp_path / "out"
    assert _eval(data_dir, out, tmp_path, "--bootstrap", "0", "--map", "kmeans") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["embedder"] == "hashing" and results["embedder_id"] == "hashing:256:2-4"
    assert "embedder `hashing` (`hashing:256:2-4`)" in (out / "summary.md").read_text()


def test_eval_records_the_format_it_read_the_data_as(tmp_path, data_dir, make_data) -> None:
    """results.json's `format` was null whenever --format was not given; now it is the guessed format."""
    one_file = tmp_path / "all.jsonl"
    _write(one_file, make_data(30, 0, 5))
    out = tmp_path / "out"
    for data in (data_dir, one_file):
        assert _eval(data, out, tmp_path, "--bootstrap", "0", "--map", "kmeans") == 0
        assert json.loads((out / "results.json").read_text())["format"] == "jsonl"


def test_eval_unseen_and_bad_input(tmp_path, capsys, data_dir, make_data) -> None:
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "--data",
                str(data_dir),
                "--protocol",
                "unseen",
                "--trials",
                "2",
                "--embedder",
                "hashing",
                "--out",
                str(out),
                "--pools",
                "2",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--no-progress",
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"] == "unseen" and len(results["per_trial"]) == 2
    # 60 training prompts: 9 validation (1/7), 51 fit Φ; ⌈5/3⌉ = 2 unseen models; all 24 test prompts routed
    assert [t["sizes"] for t in results["per_trial"]] == [{"train": 51, "valid": 9, "test": 24}] * 2
    assert all(len(t["pool"]) == 2 for t in results["per_trial"])
    assert results["paired_trials"]["knn"]["trials"] == 2
    # one file: every trial holds out 30% of its prompts (docs/evaluation.md): 84 -> 25 test, 59 -> 8 + 51
    one_file = tmp_path / "all.jsonl"
    _write(one_file, make_data(42, 0, 5))
    args = ["--protocol", "unseen", "--trials", "2", "--bootstrap", "0", "--pools", "2"]
    assert _eval(one_file, out, tmp_path, *args) == 0
    results = json.loads((out / "results.json").read_text())
    assert [t["sizes"] for t in results["per_trial"]] == [{"train": 51, "valid": 8, "test": 25}] * 2
    assert results["n_prompts"] == 84
    single = tmp_path / "one"
    single.mkdir()
    one = make_data(10, 0, 5).select_models(["m0"])
    _write(single / "train.jsonl", one)
    _write(single / "test.jsonl", one)
    assert main(["eval", "--data", str(single), "--embedder", "hashing", "--out", str(out)]) == 2
    assert "only one model" in capsys.readouterr().err


def test_eval_skip_invalid_drops_bad_lines_and_says_so(tmp_path, data_dir, capsys) -> None:
    with (data_dir / "train.jsonl").open("ab") as handle:
        handle.write(b'{"prompt": "caf\xe9", "scores": {"m0": 1}, "costs": {"m0": 0.001}}\n')  # Latin-1 byte
    out = tmp_path / "out"
    assert _eval(data_dir, out, tmp_path, "--bootstrap", "0") == 2
    err = capsys.readouterr().err
    assert "train.jsonl: 1 malformed line(s): line 61: not valid UTF-8 (byte 0xe9" in err
    assert "--skip-invalid" in err and "Traceback" not in err
    assert _eval(data_dir, out, tmp_path, "--bootstrap", "0", "--skip-invalid") == 0
    assert json.loads((out / "results.json").read_text())["n_train"] == 60


@pytest.mark.parametrize("protocol", ["static", "unseen"])
def test_eval_without_prompt_text_compares_against_the_task_router(tmp_path, protocol: str) -> None:
    rng = np.random.default_rng(0)
    scores = (rng.random((60, 5)) < np.linspace(0.3, 0.8, 5)).astype(np.float32)
    data = tmp_path / "costs.npz"
    np.savez(
        data,
        scores=scores,
        models=np.array([f"m{j}" for j in range(5)]),
        benchmark=np.array(["a", "b"] * 30),
        item=np.arange(60),
        costs=np.tile(np.linspace(0.1, 1.0, 5), (60, 1)),
    )
    args = ["--protocol", protocol, "--trials", "2", "--bootstrap", "50", "--pools", "2"]
    assert _eval(data, tmp_path / "out", tmp_path, *args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["primary"] == "uniroute-tasks" and results["embedder_id"] is None  # nothing embedded
    compared = results["bootstrap"]["vs"] if protocol == "static" else results["paired_trials"]
    assert "uniroute-tasks" not in compared and "oracle" in compared


def test_eval_without_matplotlib_names_the_extra_before_evaluating(
    tmp_path, data_dir, monkeypatch, capsys
) -> None:
    from uniroute.evaluation import cli as eval_cli

    def evaluated(args):
        raise AssertionError("the evaluation ran; its plots then fail and nothing is written")

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an install without the [eval] extra
    monkeypatch.setattr(eval_cli, "evaluate", evaluated)
    assert _eval(data_dir, tmp_path / "out", tmp_path) == 2
    assert "pip install 'uniroute[eval]'" in capsys.readouterr().err
