import csv
import json
from pathlib import Path

import numpy as np
import pytest

from uniroute.datasets import concat, load_dataset, load_jsonl, load_routerbench, load_split
from uniroute.datasets._registry import data_format
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


def test_a_jsonl_line_nested_too_deeply_is_a_malformed_line(tmp_path):
    # before: a RecursionError out of the loader (a traceback), even with skip_invalid=True
    path = tmp_path / "deep.jsonl"
    good = json.dumps({"prompt": "ok", "scores": {"a": 1}, "costs": {"a": 0.1}})
    path.write_text(good + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError, match=r"1 malformed line\(s\): line 2: JSON nested too deeply"):
        load_jsonl(path)
    with pytest.warns(UserWarning, match="skipped"):
        assert len(load_jsonl(path, skip_invalid=True)) == 1


def test_jsonl_negative_costs_are_refused(tmp_path):
    """Found comparing loaders with odd files: a JSONL cost of -1 was read as a result, while the
    .npz and RouterBench loaders refuse negative costs."""
    path = tmp_path / "neg.jsonl"
    path.write_text(_record("ok") + "\n" + _record("neg", costs={"a": -1}) + "\n")
    with pytest.raises(InputError, match=r"line 2: cost of 'a' is -1.0, negative"):
        load_jsonl(path)
    with pytest.warns(UserWarning, match="skipped"):
        assert load_jsonl(path, skip_invalid=True).prompts == ["ok"]


def test_jsonl_lines_are_not_kept_as_parsed_while_the_file_is_read(tmp_path, monkeypatch):
    """Every parsed line (a dict per line and model) was held until the end: 3 GB for a 200,000-line
    file of 50 models, whose arrays take 160 MB. Each line's record is now freed once it is read."""
    import weakref

    from uniroute.datasets import _lines

    class Record(dict):
        """A parsed line that a weak reference can follow."""

    parsed: list[weakref.ref] = []
    most_alive = 0

    class TrackingJson:
        def __getattr__(self, name):
            return getattr(json, name)

        def loads(self, text):
            nonlocal most_alive
            record = json.loads(text)
            if isinstance(record, dict):
                record = Record(record)
                parsed.append(weakref.ref(record))
            most_alive = max(most_alive, sum(ref() is not None for ref in parsed))
            return record

    lines = [
        {"prompt": "p1", "scores": {"b": 1}, "costs": {"a": 0.1, "b": 0.2}, "task": "t", "id": 7},
        {"messages": [{"role": "user", "content": "p2"}], "scores": {"a": 0, "c": None}, "costs": {"c": 0.3}},
        {"prompt": "p3", "scores": {}, "costs": {"d": 1}},  # d: a cost but no score, so not a model
        *({"prompt": f"q{i}", "scores": {"c": 0.25, "b": 0.5}, "costs": {}} for i in range(20)),
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.setattr(_lines, "json", TrackingJson())
    data = load_jsonl(path)
    assert most_alive <= 2
    assert data.models == ("b", "a", "c") and data.ids[:4] == ["7", "2", "3", "4"]
    np.testing.assert_array_equal(
        data.scores[:4], [[1, np.nan, np.nan], [np.nan, 0, np.nan], [np.nan] * 3, [0.5, np.nan, 0.25]]
    )
    np.testing.assert_array_equal(data.costs[:3], [[0.2, 0.1, np.nan], [np.nan, np.nan, 0.3], [np.nan] * 3])


def test_jsonl_null_task_and_id_are_absent_not_the_text_none(tmp_path):
    # before: "task": null became the task tag "None" and "id": null the id "None"
    path = tmp_path / "nulls.jsonl"
    record = {"prompt": "p", "scores": {"a": 1}, "costs": {"a": 0.1}, "task": None, "id": None}
    path.write_text(json.dumps(record) + "\n" + json.dumps(record | {"task": "t", "id": "x"}) + "\n")
    data = load_jsonl(path)
    assert data.tasks == ["", "t"] and data.ids == ["1", "x"]


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


def test_data_format_is_the_given_or_the_guessed_one(tmp_path):
    """What `uniroute eval` records as results.json's `format` (it recorded null when guessed)."""
    (tmp_path / "a_train.jsonl").write_text("")
    (tmp_path / "a_test.jsonl").write_text("")
    assert data_format(tmp_path) == "jsonl" and data_format(tmp_path / "a_test.jsonl") == "jsonl"
    assert data_format(tmp_path, "routerbench") == "routerbench"
    (tmp_path / "b_test.csv").write_text("prompt,m\n")
    assert data_format(tmp_path) == "jsonl+routerbench"  # each file read as its own format


@pytest.mark.parametrize("format", [None, "routerbench", "jsonl"])
def test_a_directory_is_refused_with_the_loader_that_reads_one(tmp_path, format):
    """`uniroute fit DIR` said "cannot tell the format", and with --format it crashed (IsADirectoryError)."""
    with pytest.raises(InputError, match=r"is a directory.*load_split"):
        load_dataset(tmp_path, format)


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


def test_concat_keeps_responses_of_files_that_record_them_for_other_models(tmp_path):
    """Found comparing loaders with the files: concat raised KeyError: 'm2' when the first file
    had an 'm2|model_response' column and the second did not (both valid RouterBench CSVs)."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(
        "sample_id,prompt,m1,m1|total_cost,m1|model_response,m2,m2|total_cost,m2|model_response\n"
        "a.1,p1,1,0.1,r1,0,0.2,s1\n"
    )
    write_routerbench(second, [["b.1", "['p2']", "e", "0", "0.1", "['r2']", "1", "0.2"]])
    data = concat([load_routerbench(first), load_routerbench(second)])
    assert data.responses == {"m1": ["r1", "r2"], "m2": ["s1", None]}
    data = concat([load_routerbench(second), load_routerbench(first)])
    assert data.responses == {"m1": ["r2", "r1"], "m2": [None, "s1"]}


def _record(prompt, **extra):
    return json.dumps({"prompt": prompt, "scores": {"a": 1}, "costs": {"a": 0.1}, **extra})


def test_jsonl_bad_bytes_and_lone_surrogates_name_the_line_and_the_fix(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(
        _record("fine").encode()
        + b"\n"
        + _record("cafX").encode().replace(b"cafX", b"caf\xe9")  # Latin-1, not UTF-8
        + b"\n"
        + _record("x").replace('"x"', '"half \\ud800 pair"').encode()  # a lone surrogate escape
        + b"\n"
        + _record("emoji \U0001f600").encode()  # a proper surrogate pair is fine
        + b"\n"
    )
    with pytest.raises(InputError) as info:
        load_jsonl(path)
    message = str(info.value)
    assert "2 malformed line(s)" in message
    assert (
        "line 2: not valid UTF-8 (byte 0xe9 at column" in message and "re-save the file as UTF-8" in message
    )
    assert "line 3: holds a lone surrogate" in message
    assert "--skip-invalid" in message
    with pytest.warns(UserWarning, match="skipped"):
        data = load_jsonl(path, skip_invalid=True)
    assert data.prompts == ["fine", "emoji \U0001f600"]


@pytest.mark.parametrize("cell", ["[{{}}]", "[" + "-" * 100_000 + "1]", "[1" + "+1" * 100_000 + "]"])
def test_a_routerbench_cell_that_is_no_literal_is_its_text(tmp_path, cell):
    # before: TypeError, MemoryError or RecursionError out of the loader (a traceback)
    path = tmp_path / "x_train.csv"
    write_routerbench(path, [["a.1", cell, "arc", "1.0", "0.001", cell, "0.0", "0.0002"]])
    data = load_routerbench(path)
    assert data.prompts == [cell] and data.responses == {"m1": [cell]}


def test_routerbench_bad_bytes_are_an_input_error_or_skipped(tmp_path):
    path = tmp_path / "x_test.csv"
    write_routerbench(
        path,
        [
            ["a.1", "['ok']", "arc", "1.0", "0.001", "['4']", "0.0", "0.0002"],
            ["a.2", "['BAD']", "arc", "1.0", "0.001", "['4']", "0.0", "0.0002"],
            ["a.3", "['ok too']", "arc", "oops", "0.001", "['4']", "0.0", "0.0002"],
        ],
    )
    path.write_bytes(path.read_bytes().replace(b"BAD", b"B\xffD"))
    with pytest.raises(
        InputError,
        match=r"2 malformed row\(s\): line 3: column 'prompt' is not valid UTF-8 "
        r"\(byte 0xff.*line 4: bad score or cost.*--skip-invalid",
    ):
        load_routerbench(path)
    with pytest.warns(UserWarning, match="skipped"):
        data = load_dataset(path, skip_invalid=True)
    assert data.ids == ["a.1"] and data.prompts == ["ok"]


def test_routerbench_scores_outside_0_1_and_negative_costs_are_refused(tmp_path):
    """Found comparing loaders with the files: a RouterBench CSV loaded scores 2.0 and inf and a
    cost of -0.5 as results, while the JSONL and .npz loaders refuse them (module doc)."""
    path = tmp_path / "r.csv"
    write_routerbench(
        path,
        [
            ["a.1", "['ok']", "e", "1.0", "0.1", "", "0.0", "0"],
            ["a.2", "['high']", "e", "2.0", "0.1", "", "0.0", "0"],
            ["a.3", "['inf']", "e", "1.0", "0.1", "", "inf", "0"],
            ["a.4", "['neg']", "e", "1.0", "-0.5", "", "", ""],
        ],
    )
    with pytest.raises(
        InputError,
        match=r"3 malformed row\(s\): line 3: score of 'm1' is 2.0, outside \[0, 1\]; "
        r"line 4: score of 'm2' is inf.*line 5: cost of 'm1' is -0.5, negative",
    ):
        load_routerbench(path)
    with pytest.warns(UserWarning, match="skipped"):
        assert load_routerbench(path, skip_invalid=True).ids == ["a.1"]


def test_routerbench_true_false_scores_are_1_and_0(tmp_path):
    """pandas writes a boolean score column as True/False; those were refused as 'not a number'."""
    path = tmp_path / "b.csv"
    write_routerbench(
        path,
        [
            ["a.1", "['p1']", "e", "True", "0.1", "", "false", "0.2"],
            ["a.2", "['p2']", "e", " FALSE ", "0.1", "", "", "0.2"],
        ],
    )
    np.testing.assert_array_equal(load_routerbench(path).scores, [[1.0, 0.0], [0.0, np.nan]])
    write_routerbench(path, [["a.1", "['p1']", "e", "yes", "0.1", "", "1", "0.2"]])
    with pytest.raises(
        InputError, match="line 2: bad score or cost: could not convert string to float: 'yes'"
    ):
        load_routerbench(path)


def _write_csv(path, header, row):
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, row])


def test_routerbench_a_model_without_its_cost_or_score_column_is_named_not_dropped(tmp_path):
    path = tmp_path / "h.csv"
    _write_csv(
        path, ["prompt", "m1", "m1|total_cost", "m2", "m2|model_response"], ["p", "1", "0.1", "0", "r"]
    )
    with pytest.raises(
        InputError, match=r"\['m2'\] have a '\|model_response' column but no cost; add \['m2\|total_cost'\]"
    ):
        load_routerbench(path)
    _write_csv(path, ["prompt", "m1", "m1|total_cost", "m2|total_cost"], ["p", "1", "0.1", "0.2"])
    with pytest.raises(InputError, match=r"\['m2\|total_cost'\] have no score column; add \['m2'\]"):
        load_routerbench(path)
    # Columns that are not the format's (an oracle, a pandas index) are no model and stay ignored.
    _write_csv(
        path, ["", "prompt", "oracle_model_to_route_to", "m1", "m1|total_cost"], ["0", "p", "m1", "1", "0.1"]
    )
    assert load_routerbench(path).models == ("m1",)


def test_duplicate_ids_and_prompts_are_reported_not_fatal(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        "\n".join([_record("p", id="q1"), _record("p", id="q1"), _record("other", id="q2")]) + "\n"
    )
    with pytest.warns(UserWarning) as caught:
        data = load_dataset(path)
    messages = [str(w.message) for w in caught]
    assert any("1 id(s) occur more than once" in m and "'q1'" in m for m in messages)
    assert any("1 prompt(s) occur more than once (2 rows" in m for m in messages)
    assert data.ids == ["q1", "q1#2", "q2"] and len(data) == 3


def test_unique_ids_never_collide_with_existing_ids():
    from uniroute.datasets import unique_ids

    assert unique_ids(["x", "x", "x#2"]) == ["x", "x#3", "x#2"]
    assert unique_ids(["a", "a", "a", "b"]) == ["a", "a#2", "a#3", "b"]


def test_formats_registry_is_the_loader_and_imports_no_numpy():
    import subprocess
    import sys

    code = (
        "import sys; from uniroute.datasets import FORMATS; "
        "print(sorted(FORMATS), 'numpy' in sys.modules, 'pandas' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split("] ")[1].strip() == "False False False"
    assert out.stdout.startswith("['embedllm', 'jsonl', 'npz', 'routerbench', 'routereval']")
    from uniroute.datasets import FORMATS, load_routerbench

    assert FORMATS["routerbench"].loader is load_routerbench


def test_old_names_still_work_with_a_warning():
    import uniroute.datasets as datasets

    with pytest.warns(DeprecationWarning, match="FORMATS"):
        assert datasets.LOADERS is datasets.FORMATS
    from uniroute.evaluation import loaders

    with pytest.warns(DeprecationWarning, match="load_pair"):
        assert loaders.load_eval_data is datasets.load_pair


ROUTELLM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "routellm"


@pytest.mark.skipif(not ROUTELLM.is_dir(), reason=f"RouteLLM data not found at {ROUTELLM}")
def test_routellm_jsonl_loads_as_a_train_test_pair():
    train, test = load_split(ROUTELLM)
    # ../shared/data/README.md: 10,696 train / 4,648 test prompts, GPT-4-1106 and Mixtral on MMLU + GSM8K
    assert (len(train), len(test)) == (10_696, 4_648)
    assert set(train.models) == {"gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"}
    assert train.models == test.models
    assert sum(t == "gsm8k" for t in train.tasks) == 905 and sum(t == "gsm8k" for t in test.tasks) == 402
    assert not np.isnan(train.scores).any() and set(np.unique(train.scores)) <= {0.0, 1.0}
    gpt4 = train.models.index("gpt-4-1106-preview")
    assert (train.costs[:, gpt4] > train.costs[:, 1 - gpt4]).all()  # $10/$30 vs $0.6/$0.6 per M tokens
