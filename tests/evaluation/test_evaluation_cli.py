"""``uniroute eval`` end to end on tiny JSONL files (hashing embedder)."""

from __future__ import annotations

import json

import numpy as np

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


def test_eval_writes_results_plots_and_summary(tmp_path, make_data) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _write(data_dir / "train.jsonl", make_data(30, 0, 5))
    _write(data_dir / "test.jsonl", make_data(12, 1, 5))
    out = tmp_path / "out"
    code = main(
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
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["routers"]) == NAMES
    for row in results["routers"].values():
        for key in ("area", "area_50", "qnc", "quality_lambda0", "cost_lambda0", "v_b_lambda0"):
            assert key in row
    assert np.isfinite(results["routers"]["oracle"]["area"])
    assert (out / "deferral.png").stat().st_size > 0 and (out / "scaling.png").stat().st_size > 0
    assert "| uniroute-kmeans |" in (out / "summary.md").read_text()


def test_eval_unseen_and_bad_input(tmp_path, capsys, make_data) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _write(data_dir / "train.jsonl", make_data(30, 0, 5))
    _write(data_dir / "test.jsonl", make_data(12, 1, 5))
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
    single = tmp_path / "one"
    single.mkdir()
    one = make_data(10, 0, 5).select_models(["m0"])
    _write(single / "train.jsonl", one)
    _write(single / "test.jsonl", one)
    assert main(["eval", "--data", str(single), "--embedder", "hashing", "--out", str(out)]) == 2
    assert "only one model" in capsys.readouterr().err
