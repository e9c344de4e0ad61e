import csv
import json

import numpy as np
import pytest

from uniroute.datasets import load_dataset, load_jsonl, load_routerbench, load_split
from uniroute.exceptions import InputError


def write_routerbench(path, rows):
    header = [
        "sample_id",
        "prompt",
        "eval_name",
        "m1",
        "m1|total_cost",
        "m1|model_response",
        "m2",
        "m2|total_cost",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def test_routerbench_csv_parses_list_literals_and_missing_cells(tmp_path):
    path = tmp_path / "x_train.csv"
    write_routerbench(
        path,
        [
            ["a.1", "['What is 2+2?\\nAnswer:']", "arc", "1.0", "0.001", "['4']", "0.0", "0.0002"],
            ["a.2", "['Pick A or B']", "arc", "", "", "", "1.0", "0.0003"],
        ],
    )
    data = load_routerbench(path)
    assert data.models == ("m1", "m2")
    assert data.prompts == ["What is 2+2?\nAnswer:", "Pick A or B"]
    assert np.isnan(data.scores[1, 0]) and data.scores[1, 1] == 1.0
    assert data.responses == {"m1": ["4", None]}
    np.testing.assert_allclose(data.mean_costs(), [0.001, 0.00025])


def test_jsonl_records_with_fractional_scores_and_messages(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps({"prompt": "hi", "scores": {"a": 0.5, "b": 1}, "costs": {"a": 0.1, "b": 0.2}, "task": "t"})
        + "\n\n"
        + json.dumps(
            {"messages": [{"role": "user", "content": "yo"}], "scores": {"b": 0}, "costs": {"b": 0.2}}
        )
        + "\n"
    )
    data = load_dataset(path)
    assert data.models == ("a", "b") and data.tasks == ["t", ""]
    assert np.isnan(data.scores[1, 0]) and data.scores[0, 0] == 0.5
    assert data.prompts[1] == [{"role": "user", "content": "yo"}]


def test_malformed_jsonl_lines_are_reported_by_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"prompt": "ok", "scores": {"a": 1}, "costs": {"a": 0.1}})
    path.write_text(
        "\n".join([good, "{broken", json.dumps({"prompt": "x", "scores": {"a": 3}}), good]) + "\n"
    )
    with pytest.raises(InputError, match=r"2 malformed line\(s\): line 2: .*line 3: .*outside \[0, 1\]"):
        load_jsonl(path)
    with pytest.warns(UserWarning, match="skipped"):
        assert len(load_jsonl(path, skip_invalid=True)) == 2


def test_split_directory_and_unknown_formats(tmp_path):
    for name in ("a_train.jsonl", "a_test.jsonl"):
        (tmp_path / name).write_text(
            json.dumps({"prompt": name, "scores": {"m": 1}, "costs": {"m": 0.0}}) + "\n"
        )
    train, test = load_split(tmp_path)
    assert train.prompts == ["a_train.jsonl"] and test.prompts == ["a_test.jsonl"]
    with pytest.raises(InputError, match="cannot tell the format"):
        load_dataset(_touch(tmp_path / "f.txt"))
    with pytest.raises(InputError, match="no such file"):
        load_dataset(tmp_path / "missing.csv")


def _touch(path):
    path.write_text("x")
    return path


def test_rows_and_select_models_keep_everything_aligned(tmp_path):
    path = tmp_path / "x.csv"
    write_routerbench(
        path,
        [
            ["1", "['p1']", "e", "1", "0.1", "['r1']", "0", "0.2"],
            ["2", "['p2']", "e", "0", "0.1", "['r2']", "1", "0.2"],
        ],
    )
    data = load_routerbench(path)
    sub = data.rows([1]).select_models(["m2", "m1"])
    assert sub.prompts == ["p2"] and sub.models == ("m2", "m1")
    np.testing.assert_array_equal(sub.scores, [[1.0, 0.0]])
    with pytest.raises(InputError, match="unknown model"):
        data.select_models(["zz"])
