"""Validation files: format, malformed lines, and building a set from recorded answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from uniroute import HashingEmbedder, InputError, KMeansClusterMap, Router
from uniroute.datasets import RoutingDataset, unique_ids
from uniroute.onboarding import ValidationItem, build_validation, load_validation, save_validation


def test_round_trip(tmp_path: Path) -> None:
    items = [
        ValidationItem("What is 2+2?", "4", "numeric", {}, "math", "a"),
        ValidationItem(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"}],
            ["Paris", "paris"],
            "exact",
            {"contains": True},
            "geo",
            "b",
        ),
        ValidationItem("Write a function.", None, "regex", {"pattern": "def "}, "", "c"),
    ]
    path = save_validation(items, tmp_path / "val.jsonl")
    assert load_validation(path) == items
    assert items[0].messages() == [{"role": "user", "content": "What is 2+2?"}]
    turns = ValidationItem(
        ["Hi.", {"role": "assistant", "content": "Hello."}], None, "regex", {"pattern": "x"}
    )
    assert turns.messages() == [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
    ]


def test_malformed_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    good = {"prompt": "q", "reference": "A", "grader": "multiple_choice"}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"prompt": "q", "reference": "A"}),
        "",
        json.dumps({"prompt": "q", "messages": [], "reference": "A", "grader": "exact"}),
        json.dumps({"prompt": "q", "grader": "exact"}),
        json.dumps({"prompt": "q", "reference": "A", "grader": "fuzzy"}),
        json.dumps({"prompt": "q", "reference": "AB", "grader": "multiple_choice"}),
        json.dumps({"messages": "hi", "reference": "A", "grader": "exact"}),
        json.dumps([1, 2]),
        json.dumps(good | {"id": "x"}),
    ]
    path = tmp_path / "val.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        load_validation(path)
    message = str(info.value)
    assert "8 malformed line(s)" in message
    for number, why in [
        (2, "Expecting"),
        (3, "grader"),
        (5, "exactly one"),
        (6, "reference"),
        (7, "fuzzy"),
        (8, "one letter"),
    ]:
        assert re.search(f"line {number}: [^;]*{why}", message), number
    assert "--skip-invalid" in message
    with pytest.warns(UserWarning, match="line 9: 'messages'.*line 10: not a JSON object"):
        items = load_validation(path, skip_invalid=True)
    assert [i.id for i in items] == ["1", "x"]


def test_messages_that_would_make_a_url_be_fetched_are_refused(tmp_path: Path, toy_state: Path) -> None:
    from uniroute.onboarding import CallSettings, onboard

    text = {"type": "text", "text": "What is in the picture? A) a cat B) a dog"}
    inline = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/track.png"}}
    lines = [
        {
            "messages": [{"role": "user", "content": [text, inline]}],
            "reference": "A",
            "grader": "multiple_choice",
        },
        {
            "messages": [{"role": "user", "content": [text, remote]}],
            "reference": "A",
            "grader": "multiple_choice",
        },
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "gs://b/x.pdf"}}]}]}
        | {"reference": "A", "grader": "multiple_choice"},
    ]
    path = tmp_path / "val.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # before, they loaded, and LiteLLM fetched the image from the URL the file chose (anthropic/, gemini/,
    # bedrock/ download it) or sent the URL on to the provider
    with pytest.raises(
        InputError, match=r"line 2: 'messages' hold a 'image_url' part.*line 3: [^;]*'file' part"
    ):
        load_validation(path)
    with pytest.warns(UserWarning):
        (item,) = load_validation(path, skip_invalid=True)
    assert item.messages()[0]["content"] == [text, inline]
    given = ValidationItem([{"role": "user", "content": [text, remote]}], "A", "multiple_choice", id="mine")
    settings = CallSettings("openai/x", api_base="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(InputError, match="validation item 'mine': its messages hold a 'image_url' part"):
        onboard([given], toy_state, settings, name="new", cost=0.001, progress=False)


@pytest.mark.parametrize(
    "template",
    [
        "Q {prompt} A {response:>999999999}",
        "Q {prompt} A {response:{reference.__class__}}",
        "{prompt!r} {response}",
    ],
)
def test_a_judge_template_from_a_file_has_bare_placeholders_only(tmp_path: Path, template: str) -> None:
    # before, these loaded: the check read only the names, and rendering padded each judge prompt to a GB
    # (or looked up attributes of the fields the file chose)
    options = {"model": "openai/judge", "mode": "absolute", "prompt": template}
    line = {"prompt": "q", "reference": "yes", "grader": "llm_judge", "grader_options": options}
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(InputError, match=r"line 1: .*conversion or format spec; write each as a bare name"):
        load_validation(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="make-validation"):
        load_validation(tmp_path / "none.jsonl")


def test_a_directory_is_named_a_directory_not_a_missing_file(tmp_path: Path) -> None:
    """`uniroute onboard --validation BUILD_DIR` said 'no validation file at BUILD_DIR'."""
    directory = f"^{re.escape(str(tmp_path))} "
    with pytest.raises(InputError, match=directory + "is a directory; expected a validation set"):
        load_validation(tmp_path)


def test_duplicate_ids_are_made_unique_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    records = [
        {"id": id_, "prompt": f"q{i}", "reference": "x", "grader": "exact"}
        for i, id_ in enumerate(["same", "same", "same#2", "other", "same"])
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.warns(UserWarning, match="2 duplicate id"):
        items = load_validation(path)
    assert [i.id for i in items] == ["same", "same#3", "same#2", "other", "same#4"]
    assert [i.prompt for i in items] == ["q0", "q1", "q2", "q3", "q4"]
    assert unique_ids(["a", "b", "a"]) == ["a", "b", "a#2"]


def recorded_data() -> RoutingDataset:
    """Six MC prompts; 'new' is the model to onboard, its answers must not make references."""
    prompts = [
        f"Question {i} about {'stars' if i < 3 else 'cooking'}?\nA) x\nB) y\nAnswer:" for i in range(6)
    ]
    answers = {
        "m1": ["A", "B", "A", "B", "A", "A"],
        "m2": ["A", "A", "B)", "B", "A", "B"],
        "new": ["A", "B", "B", "A", "B", "B"],
    }
    scores = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=float)
    return RoutingDataset(
        models=("m1", "m2", "new"),
        scores=scores,
        costs=np.full((6, 3), 0.001),
        prompts=prompts,
        tasks=["astro"] * 3 + ["food"] * 3,
        ids=[f"p{i}" for i in range(6)],
        responses=answers,
    )


def test_references_come_from_other_models_labelled_correct() -> None:
    items, report = build_validation(recorded_data(), exclude_models=["new"])
    assert {i.id: i.reference for i in items} == {"p0": "A", "p1": "B", "p2": "B", "p3": "B"}
    assert report.n_candidates == 6 and report.n_without_reference == 2
    assert all(i.grader == "multiple_choice" for i in items)
    with_new, _ = build_validation(recorded_data())
    assert len(with_new) == 6
    only_food, _ = build_validation(recorded_data(), tasks=["food"], exclude_models=["new"])
    assert [i.id for i in only_food] == ["p3"]
    with pytest.raises(InputError, match="unknown task"):
        build_validation(recorded_data(), tasks=["sports"])
    with pytest.raises(InputError, match="cannot derive references"):
        build_validation(recorded_data(), "llm_judge", {"model": "m"})


def test_prompts_the_grader_cannot_read_are_not_gradable_not_unanswered() -> None:
    data = recorded_data()
    code = "Write a python function to reverse a string."
    data = RoutingDataset(
        models=data.models,
        scores=np.vstack([data.scores, [[1, 1, 0]]]),
        costs=np.full((7, 3), 0.001),
        prompts=[*data.prompts, code],
        tasks=[*data.tasks, "mbpp"],
        ids=[*data.ids[:-1], "p0", "p0"],
        responses={m: [*a, "def reverse(s):\n    return s[::-1]"] for m, a in data.responses.items()},
    )
    items, report = build_validation(data, exclude_models=["new"])
    assert [i.id for i in items] == ["p0", "p1", "p2", "p3"]
    assert report.n_not_gradable == 1 and report.not_gradable_tasks == {"mbpp": 1}
    assert report.n_without_reference == 2
    summary = report.summary()
    assert "1 not gradable by this grader (mbpp: 1)" in summary and "no lettered choices" in summary
    assert "2 left out because no model labelled correct" in summary
    unique, _ = build_validation(data)
    assert [i.id for i in unique] == ["p0", "p1", "p2", "p3", "p4", "p0#2"]


def _all_answered_a(prompts: list[str]) -> RoutingDataset:
    """One model that answered "A" (right) to every prompt."""
    n = len(prompts)
    return RoutingDataset(
        models=("m1",),
        scores=np.ones((n, 1)),
        costs=np.zeros((n, 1)),
        prompts=prompts,
        tasks=[""] * n,
        ids=[str(i) for i in range(n)],
        responses={"m1": ["A"] * n},
    )


def test_sampling_covers_every_cluster() -> None:
    prompts = [f"Arithmetic question number {i}: compute it.\nA) 1\nB) 2" for i in range(30)]
    prompts += [f"Poetry request number {i}: write a haiku.\nA) yes\nB) no" for i in range(10)]
    data = _all_answered_a(prompts)
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
    items, report = build_validation(data, router=router, per_cluster=5, random_state=1)
    assert len(items) == 10
    assert sorted(report.sampled_per_cluster.tolist()) == [5, 5]
    assert sorted(report.available_per_cluster.tolist()) == [10, 30]
    assert sum("Poetry" in i.prompt for i in items) == 5
    assert "cluster  available  sampled" in report.summary()
    again, _ = build_validation(data, router=router, per_cluster=5, random_state=1)
    assert again == items
    with pytest.raises(InputError, match="both a router and per_cluster"):
        build_validation(data, router=router)


def test_sampling_covers_every_cluster_of_every_averaged_map() -> None:
    """With a map that averages three, a prompt falls in one cluster of each map: every map's
    clusters get their prompts (argmax over all columns would only ever pick the hard map's)."""
    topics = ["Arithmetic: add {i} and {j}.", "Poetry: a haiku on {i} {j}.", "Cooking: bake {i} for {j} min."]
    prompts = [t.format(i=i, j=7 * i % 13) + "\nA) yes\nB) no" for i in range(100) for t in topics]
    data, n = _all_answered_a(prompts), len(prompts)
    topic = np.arange(n) % 3
    router = Router(HashingEmbedder()).fit(prompts, scores=np.column_stack([topic == 0, topic == 1]) * 1.0)
    blocks = router.cluster_map_.maps_
    assert len(blocks) == 3
    items, report = build_validation(data, router=router, per_cluster=4, random_state=0)
    available, sampled = report.available_per_cluster, report.sampled_per_cluster
    assert len(available) == len(sampled) == router.cluster_map_.n_clusters_
    assert available.sum() == 3 * n  # each prompt counted once in each map
    assert (sampled >= np.minimum(available, 4)).all()  # no cluster with prompts left short
    assert sampled.sum() == 3 * len(items)
