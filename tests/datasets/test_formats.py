"""Loaders of the published formats (npz, EmbedLLM, RouterEval), on tiny files written in tmp_path."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest

from uniroute.datasets import FORMATS, load_dataset, load_pair
from uniroute.exceptions import InputError


def test_npz(tmp_path) -> None:
    path = tmp_path / "correctness.npz"
    np.savez(
        path,
        scores=np.array([[1, np.nan], [0, 1], [1, 1]], dtype=np.float32),
        models=np.array(["org/a", "org/b"]),
        benchmark=np.array(["bbh_x", "bbh_x", "gpqa"]),
        item=np.array([0, 1, 0]),
    )
    data = load_dataset(path)
    assert data.models == ("org/a", "org/b")
    assert data.prompts is None
    assert data.tasks == ["bbh_x", "bbh_x", "gpqa"]
    assert data.ids == ["bbh_x/0", "bbh_x/1", "gpqa/0"]
    assert np.isnan(data.scores[0, 1]) and np.isnan(data.costs).all()


def test_npz_refuses_pickled_objects(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, scores=np.zeros((1, 1)), models=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickled"):
        load_dataset(path)


def test_embedllm_csv(tmp_path) -> None:
    path = tmp_path / "train.csv"
    rows = [
        (0, "m/a", 0, "What is 2+2?", 1, "math"),
        (1, "m/b", 0, "What is 2+2?", 0, "math"),
        (0, "m/a", 1, "Name a poet.", 0, "lit"),
        (0, "m/a", 1, "Name a poet.", 1, "lit"),  # duplicate: max label wins
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model_id", "model_name", "prompt_id", "prompt", "label", "category"])
        writer.writerows(rows)
    data = load_dataset(path)  # sniffed from the header, not the suffix
    assert data.models == ("m/a", "m/b")
    np.testing.assert_array_equal(data.scores, [[1.0, 0.0], [1.0, np.nan]])
    assert data.prompts == ["What is 2+2?", "Name a poet."]
    assert data.tasks == ["math", "lit"]


def _routereval(path) -> None:
    scores = {p: np.array([[1, 0, 1], [0, 1, 1]][: 2 if p != "val" else 1]) for p in ("train", "val", "test")}
    store = {
        "easy": {
            3: {
                "strong_to_weak": {
                    "data": {f"{p}_score": s for p, s in scores.items()},
                    "model": ["a", "b", "c"],
                }
            }
        },
        "hard": {},
        "prompt": {f"{p}_prompt": np.array([f"{p} q{i}" for i in range(len(s))]) for p, s in scores.items()},
    }
    with path.open("wb") as handle:
        pickle.dump(store, handle)


def test_routereval_needs_allow_pickle(tmp_path) -> None:
    path = tmp_path / "mmlu_router_dataset.pkl"
    _routereval(path)
    with pytest.raises(InputError, match="allow_pickle"):
        load_dataset(path)
    data = load_dataset(path, allow_pickle=True)
    assert data.models == ("a", "b", "c")
    assert data.ids == ["train/0", "train/1", "val/0", "test/0", "test/1"]
    train, test = load_pair(path, allow_pickle=True)
    assert len(train) == 3 and len(test) == 2
    assert test.prompts == ["test q0", "test q1"]


@pytest.mark.parametrize("content", [b'{"prompt": "hi"}\n', b""])
def test_routereval_on_a_file_that_is_not_a_pickle_is_an_input_error(tmp_path, content) -> None:
    """`uniroute fit x.jsonl --format routereval --allow-pickle` crashed with an UnpicklingError traceback."""
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a pickle"):
        load_dataset(path, "routereval", allow_pickle=True)


def test_registry_names() -> None:
    assert {"routerbench", "jsonl", "npz", "embedllm", "routereval"} <= set(FORMATS)


def test_single_file_is_split_by_task(tmp_path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, scores=np.ones((20, 2)), models=np.array(["a", "b"]), benchmark=np.array(["x", "y"] * 10))
    train, test = load_pair(path)
    assert len(train) == 16 and len(test) == 4
    assert sorted(test.tasks) == ["x", "x", "y", "y"]
