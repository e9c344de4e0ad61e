"""build_report: cluster shares, examples and terms; Ψ and missing data; operating points."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from report_toys import COSTS

from uniroute import HashingEmbedder, InputError, KMeansClusterMap, Router
from uniroute.onboarding.validation import ValidationItem, save_validation
from uniroute.report import build_report, read_prompts, read_validation, render_html, render_markdown


def _cluster_of(router: Router, prompts: list[str]) -> np.ndarray:
    return router.cluster_probs(router.embed(prompts)).argmax(axis=1)


def test_every_model_and_cluster_with_shares_from_the_prompts(report_router, topics_data):
    data = build_report(report_router, prompts=topics_data["prompts"])
    assert sorted(data.models) == sorted(COSTS)
    assert [c.index for c in data.clusters] == [0, 1, 2]
    assert data.share_source == "prompts" and data.n_traffic == 36
    assert sum(c.share for c in data.clusters) == pytest.approx(1.0)
    assert [c.n_prompts for c in data.clusters] == [12, 12, 12]
    assert data.psi.shape == data.counts.shape == (4, 3)


def test_shares_follow_the_traffic_sample(report_router, topics_data):
    """Only math prompts in the sample: the math cluster gets the whole share."""
    math = [p for p, t in zip(topics_data["prompts"], topics_data["topics"], strict=True) if t == "math"]
    data = build_report(report_router, prompts=math)
    k = int(_cluster_of(report_router, math[:1])[0])
    assert data.clusters[k].share == pytest.approx(1.0, abs=1e-6)
    assert data.clusters[k].n_prompts == len(math)


def test_without_prompts_shares_are_the_map_weights_and_no_budget_point(report_router):
    data = build_report(report_router, budget=0.003)
    weights = report_router.cluster_map_.cluster_weights_
    assert [c.share for c in data.clusters] == pytest.approx(list(weights))
    assert data.share_source == "map" and all(not c.examples for c in data.clusters)
    assert [p.name for p in data.points] == ["best", "balanced", "cheapest"]
    assert any("--budget needs prompts" in n for n in data.notes)


def test_validation_prompts_are_the_sample_when_no_prompts(report_router, report_dataset):
    data = build_report(report_router, validation=report_dataset)
    assert data.share_source == "validation" and data.n_traffic == len(report_dataset)
    assert data.n_validation == len(report_dataset)


def test_examples_are_the_prompts_nearest_the_centre(report_router, topics_data):
    prompts = topics_data["prompts"]
    data = build_report(report_router, prompts=prompts)
    X = report_router.embed(prompts)
    hard = _cluster_of(report_router, prompts)
    centres = report_router.cluster_map_.cluster_centers_
    for c in data.clusters:
        members = np.flatnonzero(hard == c.index)
        distance = ((X[members] - centres[c.index]) ** 2).sum(axis=1)
        expected = [prompts[members[i]] for i in np.argsort(distance, kind="stable")[:3]]
        assert c.examples == expected


class _NoCentres:
    """A fitted cluster map without centres: Φ is a fixed function of the first two coordinates."""

    name = "no-centres"

    def __init__(self) -> None:
        self.cluster_weights_ = np.array([0.5, 0.5])

    def fit(self, X: Any, y: Any = None) -> _NoCentres:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        z = np.asarray(X)[:, :2] * 50.0
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def to_state(self) -> tuple[dict, dict]:
        return {}, {}

    @classmethod
    def from_state(cls, params: dict, arrays: dict) -> _NoCentres:
        return cls()


def test_examples_by_highest_phi_when_the_map_has_no_centres(topics_data):
    prompts = topics_data["prompts"]
    router = Router(HashingEmbedder(), _NoCentres())
    router.add_models(prompts, topics_data["scores"], COSTS)
    data = build_report(router, prompts=prompts, n_examples=2)
    phi = router.cluster_probs(router.embed(prompts))
    for c in data.clusters:
        members = np.flatnonzero(phi.argmax(axis=1) == c.index)
        best = members[np.argsort(-phi[members, c.index], kind="stable")[:2]]
        assert c.examples == [prompts[i] for i in best]


def test_terms_name_each_topic(report_router, topics_data):
    prompts = topics_data["prompts"]
    data = build_report(report_router, prompts=prompts)
    topic_of = {int(k): t for k, t in zip(_cluster_of(report_router, prompts), topics_data["topics"])}
    expected = {"math": "arithmetic", "poetry": "poem", "cooking": "oven"}
    for c in data.clusters:
        assert expected[topic_of[c.index]] in c.terms
        assert len(c.terms) <= 8
        # terms shared by every topic's template ("short" is only poetry, "question" only math) never
        # appear in two clusters' lists
    all_terms = [t for c in data.clusters for t in c.terms]
    assert len(all_terms) == len(set(all_terms))


def test_text_two_clusters_share_is_distinctive_of_neither_or_one(report_router, topics_data):
    """Boilerplate in two of the three topics (as few-shot examples repeat in a benchmark)."""
    tail = " Reply in lowercase letters, politely and briefly."
    prompts = [
        p + tail if t != "cooking" else p for p, t in zip(topics_data["prompts"], topics_data["topics"])
    ]
    data = build_report(report_router, prompts=prompts, n_terms=40)
    terms = [t for c in data.clusters for t in c.terms]
    assert len(terms) == len(set(terms))
    assert sum("lowercase" in c.terms for c in data.clusters) <= 1


def test_terms_take_work_linear_in_clusters_times_vocabulary(monkeypatch):
    """Each cluster's nearest other cluster per term, from every term's two largest cluster means: taking
    the max over the other clusters for each cluster in turn is K² x vocabulary (30 s at K = 256)."""
    from uniroute.report import _content

    class CountingNumpy:
        """numpy, counting the cells handed to its ``max`` and ``stack`` as lists of rows or arrays."""

        cells = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(np, name)

        def max(self, a: Any, *args: Any, **kwargs: Any) -> Any:
            CountingNumpy.cells += sum(np.size(row) for row in a)
            return np.max(a, *args, **kwargs)

        def stack(self, arrays: Any, *args: Any, **kwargs: Any) -> Any:
            CountingNumpy.cells += sum(np.size(row) for row in arrays)
            return np.stack(arrays, *args, **kwargs)

    n_clusters = 30
    texts = [f"please answer topic{k}word about subject{k}name" for k in range(n_clusters) for _ in range(3)]
    texts.append("please answer about topic0word and topic1word")  # in cluster 2: lifts them less
    hard = np.array([k for k in range(n_clusters) for _ in range(3)] + [2])
    monkeypatch.setattr(_content, "np", CountingNumpy())
    terms = _content._terms(texts, hard, n_clusters, 8)
    assert terms == [[f"subject{k}name", f"topic{k}word"] for k in range(n_clusters)]
    vocabulary = 2 * n_clusters + 1  # subjectKname, topicKword and "answer" (the rest are stop words)
    assert CountingNumpy.cells <= 2 * n_clusters * vocabulary


def test_one_cluster_shows_its_top_terms(topics_data):
    prompts = topics_data["prompts"]
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=1, random_state=0)).fit(prompts)
    router.add_model("only", prompts, topics_data["scores"]["big"], cost=0.001)
    (cluster,) = build_report(router, prompts=prompts).clusters
    assert len(cluster.terms) == 8


def test_a_model_profiled_on_one_topic_lacks_data_in_the_others(report_router, topics_data):
    prompts = topics_data["prompts"]
    data = build_report(report_router, prompts=prompts)
    i = data.models.index("mathbot")
    math_cluster = int(_cluster_of(report_router, prompts[:1])[0])  # the first prompts are math
    assert not data.lacking[i, math_cluster]
    assert data.lacking[i].sum() == 2
    others = [j for j, m in enumerate(data.models) if m != "mathbot"]
    assert not data.lacking[others].any()
    assert data.counts[i, math_cluster] == pytest.approx(12)


def test_operating_points(report_router, topics_data):
    data = build_report(report_router, prompts=topics_data["prompts"])
    best, balanced, cheapest = data.points
    assert (best.lam, best.saved) == (0.0, 0.0)
    assert best.shares["big"] == pytest.approx(1.0)
    assert data.strongest == "big" and data.strongest_cost == COSTS["big"]
    assert cheapest.shares["cheap"] == pytest.approx(1.0)
    assert cheapest.cost == pytest.approx(COSTS["cheap"])
    assert cheapest.saved == pytest.approx(COSTS["big"] - COSTS["cheap"])
    assert cheapest.saved_fraction == pytest.approx(1 - COSTS["cheap"] / COSTS["big"])
    assert best.cost > balanced.cost > cheapest.cost
    assert best.expected_quality > balanced.expected_quality > cheapest.expected_quality
    for p in data.points:
        assert sum(p.shares.values()) == pytest.approx(1.0)
    # the knee lies on or above the straight line from cheapest to best
    t = (balanced.cost - cheapest.cost) / (best.cost - cheapest.cost)
    line = cheapest.expected_quality + t * (best.expected_quality - cheapest.expected_quality)
    assert balanced.expected_quality >= line


def test_expected_quality_is_the_routers_own_estimate(report_router, topics_data):
    prompts = topics_data["prompts"]
    data = build_report(report_router, prompts=prompts)
    for p in data.points:
        decisions = report_router.route_batch(prompts, lam=p.lam)
        quality = np.mean([1 - d.errors[d.candidates.index(d.model)] for d in decisions])
        assert p.expected_quality == pytest.approx(quality)
        assert p.cost == pytest.approx(np.mean([COSTS[d.model] for d in decisions]))


def test_budget_point_is_what_calibrate_finds(report_router, topics_data):
    prompts = topics_data["prompts"]
    data = build_report(report_router, prompts=prompts, budget=0.003)
    point = data.points[-1]
    assert point.name == "budget $0.003"
    assert point.lam == report_router.calibrate(prompts, max_cost=0.003)
    assert point.cost <= 0.003


def test_a_budget_below_the_cheapest_model_is_a_note(report_router, topics_data):
    data = build_report(report_router, prompts=topics_data["prompts"], budget=0.00001)
    assert len(data.points) == 3
    assert any(n.startswith("budget $1e-05: no λ meets") for n in data.notes)


def test_measured_quality_from_the_validation_scores(report_router, report_dataset):
    data = build_report(report_router, validation=report_dataset)
    assert data.has_scores
    column = {m: j for j, m in enumerate(report_dataset.models)}
    for p in data.points:
        decisions = report_router.route_batch(report_dataset.prompts, lam=p.lam)
        measured = np.mean([report_dataset.scores[i, column[d.model]] for i, d in enumerate(decisions)])
        assert p.measured_quality == pytest.approx(measured)
    assert data.strongest_measured == 1.0  # big is right everywhere


def test_no_measured_quality_without_scores(report_router, topics_data, tmp_path):
    items = [ValidationItem(p, "1", "exact", id=str(i)) for i, p in enumerate(topics_data["prompts"])]
    path = save_validation(items, tmp_path / "val.jsonl")
    data = build_report(report_router, validation=path)
    assert not data.has_scores and data.points[0].measured_quality is None
    assert data.validation == str(path) and data.n_validation == len(items)


def test_a_saved_state_is_loaded(report_router, topics_data, tmp_path):
    path = report_router.save(tmp_path / "state")
    assert build_report(path, prompts=topics_data["prompts"]).models == list(report_router.models)


def test_a_router_without_models_is_refused(topics_data):
    router = Router(HashingEmbedder()).fit(topics_data["prompts"])
    with pytest.raises(InputError, match="no profiled model"):
        build_report(router)


def test_read_prompts_formats(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = [
        json.dumps({"prompt": "one"}),
        json.dumps({"messages": [{"role": "user", "content": "two"}]}),
        json.dumps("three"),
        "",
        "four, as plain text",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    assert read_prompts(path) == ["one", "two", "three", "four, as plain text"]
    with pytest.raises(InputError, match="no prompts file"):
        read_prompts(tmp_path / "missing.jsonl")


def test_a_directory_as_prompts_or_validation_is_named_a_directory(tmp_path):
    """`uniroute report --prompts DIR` / `--validation DIR` said there was no such file."""
    directory = f"^{re.escape(str(tmp_path))} "
    with pytest.raises(InputError, match=directory + "is a directory; expected prompts"):
        read_prompts(tmp_path)
    with pytest.raises(InputError, match=directory + "is a directory; expected a validation set"):
        read_validation(tmp_path)


def test_read_prompts_reads_a_log_as_uniroute_build_does(tmp_path):
    from uniroute.build import read_prompt_log

    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    lines = [
        {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is 2+2?"}]}},
        {
            "proxy_server_request": json.dumps({"messages": chat}),
            "call_type": "acompletion",
            "request_id": "r1",
        },
        {"request_id": "r2", "call_type": "aembedding", "prompt": None},
        {"prompt": "What is 2+2?"},
        {"prompt": ""},
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    # before, a request-log or spend-log row was embedded as its raw JSON text, and the embedding row as None
    assert read_prompts(path) == ["What is 2+2?", "What is 2+2?", chat]
    assert read_prompts(path) == read_prompt_log(path).traffic()


def test_read_validation_tells_a_validation_set_from_results(tmp_path, topics_data):
    items = [ValidationItem("q?", "A", "exact")]
    assert isinstance(read_validation(save_validation(items, tmp_path / "v.jsonl")), list)
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps({"prompt": "q?", "scores": {"a": 1.0}, "costs": {"a": 0.1}}) + "\n")
    assert read_validation(results).models == ("a",)


def test_read_validation_names_a_first_line_nested_too_deeply(tmp_path):
    # before: a RecursionError while telling a validation set from results (a traceback)
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError, match="line 1: JSON nested too deeply"):
        read_validation(path)


def _results_jsonl(path, dataset, rows):
    records = [
        {
            "id": dataset.ids[i],
            "prompt": dataset.prompts[i],
            "scores": dict(zip(dataset.models, dataset.scores[i].tolist(), strict=True)),
            "costs": dict(zip(dataset.models, dataset.costs[i].tolist(), strict=True)),
        }
        for i in rows
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_several_validation_files_are_joined(report_router, report_dataset, tmp_path):
    first = _results_jsonl(tmp_path / "a_test.jsonl", report_dataset, range(0, 20))
    second = _results_jsonl(tmp_path / "b_test.jsonl", report_dataset, range(20, 36))
    data = build_report(report_router, validation=[first, second])
    assert data.n_validation == data.n_traffic == 36 and data.has_scores
    assert data.validation == f"{first}, {second}"
    whole = build_report(report_router, validation=report_dataset)
    assert [p.measured_quality for p in data.points] == pytest.approx(
        [p.measured_quality for p in whole.points]
    )


def test_validation_sets_are_joined_and_kinds_not_mixed(report_dataset, tmp_path):
    one = save_validation([ValidationItem("q1?", "A", "exact", id="1")], tmp_path / "one.jsonl")
    two = save_validation([ValidationItem("q2?", "B", "exact", id="2")], tmp_path / "two.jsonl")
    assert [item.id for item in read_validation(one, two)] == ["1", "2"]
    results = _results_jsonl(tmp_path / "r.jsonl", report_dataset, range(3))
    with pytest.raises(InputError, match="mix"):
        read_validation(one, results)


def test_the_frontier_prices_each_prompt_by_its_length_as_routing_does(report_router, topics_data):
    # Before: the frontier priced every prompt at the mean $, so an operating point's $ was not
    # what routing the same prompts at its λ spends once a model's $ depends on the prompt's length.
    prompts = topics_data["prompts"]
    report_router.add_model("billed", prompts, np.ones(len(prompts)), [4e-5 * len(p) for p in prompts])
    data = build_report(report_router, prompts=prompts, budget=0.003)
    assert [p.name for p in data.points][-1] == "budget $0.003" and data.points[-1].cost <= 0.003
    for point in data.points:
        decisions = report_router.route_batch(prompts, lam=point.lam)
        assert point.cost == pytest.approx(np.mean([d.cost[d.model] for d in decisions]))


def test_the_sweep_follows_the_frontier_when_two_prices_differ_by_a_hair(report_router, topics_data):
    # Before: the sweep was spaced down from the λ at which the cheapest model takes everything. A price
    # gap of 1e-9 $ on one prompt put that λ near 1e10 and the sweep skipped every routing below ~1e4, so
    # "balanced" was wherever the grid happened to start.
    prompts = topics_data["prompts"]
    billed = report_router.add_model(
        "billed", prompts, np.ones(len(prompts)), [4e-5 * len(p) for p in prompts]
    )
    twin = float(billed.price(len(prompts[0]))) + 1e-9
    report_router.add_model("twin", prompts, np.full(len(prompts), 0.5), twin)
    data = build_report(report_router, prompts=prompts)
    errors, costs, _ = report_router.expected_errors(
        report_router.embed(prompts), data.models, chars=[len(p) for p in prompts]
    )
    rows = np.arange(len(prompts))
    reachable = []
    for lam in np.concatenate([[0.0], np.geomspace(1e-2, 1e12, 5_000)]):
        choice = np.argmin(errors + lam * costs, axis=1)
        reachable.append((costs[rows, choice].mean(), 1 - errors[rows, choice].mean()))
    dense = np.unique(np.array(reachable), axis=0)
    swept = np.array([(cost, quality) for _, cost, quality in data.frontier])
    assert len(dense) > 10
    scale = np.ptp(dense, axis=0)
    gaps = np.abs(dense[:, None, :] - swept[None, :, :]) / scale  # every routing vs every swept point
    assert gaps.max(axis=2).min(axis=1).max() <= 0.02  # each routing has a swept point within 2% of range


def test_an_averaged_map_is_described_map_by_map():
    from report_toys import make_topic_prompts, topic_scores

    prompts, topics = make_topic_prompts(80)  # 240: enough for K = 4 and 8 in the CV
    scores = topic_scores(topics)
    router = Router(HashingEmbedder(), KMeansClusterMap()).fit(
        prompts, scores=np.column_stack(list(scores.values()))
    )
    maps = router.cluster_map_.maps_
    assert len(maps) == 3  # the default averages the CV's three best maps
    router.add_models(prompts, scores, COSTS)
    data = build_report(router, prompts=prompts)
    assert data.cluster_map == "KMeansClusterMap, the mean of " + ", ".join(f"{k} {a}" for k, a, _ in maps)
    start = 0
    for k, _, _ in maps:  # each prompt sits in one cluster of every map; shares are within the map
        block = data.clusters[start : start + k]
        assert sum(c.n_prompts for c in block) == len(prompts)
        assert sum(c.share for c in block) == pytest.approx(1.0, abs=1e-5)
        assert all(c.examples for c in block if c.n_prompts) and any(c.terms for c in block)
        start += k
    assert start == data.n_clusters
    ranges = data.map_blocks().split(", ")
    assert [r.split(" (")[1] for r in ranges] == [f"{k} {a})" for k, a, _ in maps]
    assert ranges[0].startswith("c0–") and ranges[-1].split(" ")[0].endswith(f"c{data.n_clusters - 1}")
    assert f"averages 3 maps: {data.map_blocks()}" in render_markdown(data)
    assert "averages 3 maps: " in render_html(data)
    # n counts results: each cluster of an averaged map holds a third of each of its prompts
    np.testing.assert_allclose(data.counts, 3 * np.stack([router.profile(m).counts for m in data.models]))
