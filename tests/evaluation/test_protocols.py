"""Protocols and baselines on tiny synthetic data with the hashing embedder."""

from __future__ import annotations

import numpy as np
import pytest

from uniroute import HashingEmbedder
from uniroute.datasets import RoutingDataset
from uniroute.evaluation import protocols
from uniroute.exceptions import InputError

ROUTERS = ("uniroute-kmeans", "uniroute-learnedmap", "knn", "zerorouter", "random", "best-single", "oracle")
OPTIONS = {"uniroute-kmeans": {"n_clusters": 2}, "uniroute-learnedmap": {"n_clusters": 2, "max_iter": 30}}


def test_static_protocol(pair: tuple[RoutingDataset, RoutingDataset], tmp_path) -> None:
    train, test = pair
    result = protocols.run_static(
        train,
        test,
        HashingEmbedder(),
        (*ROUTERS, "litellm-adaptive"),
        OPTIONS,
        cache_dir=tmp_path,
        progress=False,
    )
    r = result["routers"]
    assert set(r) == set(ROUTERS) | {"litellm-adaptive"}
    assert r["oracle"]["area"] >= max(v["area"] for v in r.values()) - 1e-12
    # topics separate cleanly: uniroute finds the cheap specialist per topic and beats the fixed routers
    assert r["uniroute-kmeans"]["area"] > r["zerorouter"]["area"]
    assert r["uniroute-kmeans"]["area"] > r["random"]["area"]
    assert r["oracle"]["qnc"] < 1.0
    assert r["random"]["e_p_lambda0"] == pytest.approx(np.log2(5))
    assert r["random"]["share_entropy_lambda0"] == pytest.approx(np.log(5))
    assert list(tmp_path.rglob("*.npz")), "embeddings should be cached on disk"


def _chord_area(test: RoutingDataset, pool: list[str]) -> float:
    """Area of the random router by hand: the chord from the cheapest pool model to the pool's mean."""
    sub = test.select_models(pool)
    keep = ~np.isnan(sub.scores).any(axis=1)
    q, c = sub.scores[keep].mean(axis=0), sub.costs[keep].mean(axis=0)
    top = c.max()
    x0, q0 = c.min() / top, q[np.argmin(c)]
    x1, q1 = c.mean() / top, q.mean()
    return q0 * x0 + (x1 - x0) * (q0 + q1) / 2 + (1 - x1) * q1


def test_unseen_protocol(pair: tuple[RoutingDataset, RoutingDataset]) -> None:
    train, test = pair
    result = protocols.run_unseen(train, test, HashingEmbedder(), ROUTERS, OPTIONS, trials=3, progress=False)
    assert result["n_unseen_models"] == 2  # ⌈5 / 3⌉
    trials = result["per_trial"]
    assert len(trials) == 3 and all(len(t["pool"]) == 2 for t in trials)
    # 60 training prompts: validation 1/7 of them (9), the rest (51) fit Φ; the 24 test prompts are routed
    assert all(t["sizes"] == {"train": 51, "valid": 9, "test": 24} for t in trials)
    for t in trials:
        assert t["routers"]["random"]["area"] == pytest.approx(_chord_area(test, t["pool"]))
    areas = [t["routers"]["uniroute-kmeans"]["area"] for t in trials]
    row = result["routers"]["uniroute-kmeans"]
    assert row["area"] == pytest.approx(np.mean(areas)) and row["area_std"] == pytest.approx(np.std(areas))
    ahead = sum(t["routers"]["uniroute-kmeans"]["area"] > t["routers"]["knn"]["area"] for t in trials)
    assert result["paired_trials"]["knn"]["ahead"] == ahead and result["paired_trials"]["knn"]["trials"] == 3
    assert result["curves_shown"] == {"trial": 1, "pool": trials[0]["pool"]}


def test_unseen_protocol_on_one_file_matches_the_docs(make_data) -> None:
    # docs/evaluation.md: with one file, 30% of the prompts are held out per trial, and the rest is split
    # into train (6/7) and validation (1/7)
    data = make_data(35, 0, 5)  # 70 prompts: 21 test, 49 left: 7 validation, 42 train
    result = protocols.run_unseen(
        data, None, HashingEmbedder(), ("random", "oracle"), trials=2, progress=False
    )
    assert [t["sizes"] for t in result["per_trial"]] == [{"train": 42, "valid": 7, "test": 21}] * 2


def test_pool_sizes_and_r_o(pair: tuple[RoutingDataset, RoutingDataset]) -> None:
    train, test = pair
    result = protocols.run_pool_sizes(
        train,
        test,
        HashingEmbedder(),
        ("zerorouter", "oracle", "random"),
        sizes=(3, "all"),
        n_pools=5,
        progress=False,
    )
    assert set(result["pool_sizes"]) == {"3", "all"}
    assert set(result["scaling"]) == {"1", "2", "3", "4", "5"}
    full = result["pool_sizes"]["all"]
    assert full["r_o(1)"]["mu_o"] == pytest.approx(full["oracle"]["mu_o"])
    assert full["r_o(0)"]["mu_o"] == pytest.approx(full["random"]["mu_o"])
    one = result["scaling"]["1"]
    assert one["oracle"]["mu_o"] == pytest.approx(one["random"]["mu_o"])


def test_pool_sizes_leave_out_pools_where_no_model_is_right() -> None:
    # m0..m2 wrong on every test prompt, m3 right: of the four 3-model pools, {m0, m1, m2} has no V_B
    def data(scores: list[list[float]]) -> RoutingDataset:
        n = len(scores)
        costs = np.tile([0.1, 0.2, 0.3, 1.0], (n, 1))
        models = ("m0", "m1", "m2", "m3")
        return RoutingDataset(models, np.array(scores), costs, None, [""] * n, list("abc")[:n])

    train, test = data([[1, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0]]), data([[0, 0, 0, 1], [0, 0, 0, 1]])
    result = protocols.run_pool_sizes(train, test, routers=("oracle", "random"), sizes=(3,), progress=False)
    three = result["pool_sizes"]["3"]
    assert three["oracle"]["mu_o"] == pytest.approx(0.75) and three["oracle"]["v_b"] == pytest.approx(1.0)
    assert three["random"]["mu_o"] == pytest.approx(0.25) and three["random"]["v_b"] == pytest.approx(1 / 3)
    # r_o(0.5) on a pool with m3: m3 gets 1/2 + 1/6, the others 1/6 each
    assert three["r_o(0.5)"]["v_b"] == pytest.approx(2 / 3)
    assert result["scaling"]["1"]["oracle"]["v_b"] == pytest.approx(1.0)


def test_text_routers_skipped_without_prompts(pair: tuple[RoutingDataset, RoutingDataset]) -> None:
    train, test = (RoutingDataset(d.models, d.scores, d.costs, None, d.tasks, d.ids) for d in pair)
    result = protocols.run_static(train, test, "hashing", (*ROUTERS, "uniroute-tasks"), progress=False)
    assert "knn" in result["skipped_routers"] and "uniroute-kmeans" in result["skipped_routers"]
    assert result["routers"]["uniroute-tasks"]["area"] > result["routers"]["zerorouter"]["area"]


def _with(data: RoutingDataset, **changes) -> RoutingDataset:
    fields = dict(
        models=data.models,
        scores=data.scores.copy(),
        costs=data.costs.copy(),
        prompts=data.prompts,
        tasks=data.tasks,
        ids=data.ids,
    )
    fields.update(changes)
    return RoutingDataset(**fields)


def test_bad_input_messages(pair: tuple[RoutingDataset, RoutingDataset]) -> None:
    train, test = pair
    renamed = _with(test, models=tuple(f"x{m}" for m in test.models))
    with pytest.raises(InputError, match="share no model"):
        protocols.check_pair(train, renamed)
    with pytest.raises(InputError, match="only one model"):
        protocols.check_pair(train, test.select_models(["m0"]))
    scores = train.scores.copy()
    scores[:, 2] = np.nan
    with pytest.raises(InputError, match=r"\['m2'\] have no result"):
        protocols.check_pair(_with(train, scores=scores), test)
    costs = train.costs.copy()
    costs[3, 1] = np.inf
    with pytest.raises(InputError, match="infinite"):
        protocols.check_pair(_with(train, costs=costs), test)
    costs = train.costs.copy()
    costs[:, 1] = np.nan
    with pytest.raises(InputError, match="no cost"):
        protocols.check_pair(_with(train, costs=costs), test)
    scores = train.scores.copy()
    scores[0, 0] = 1.5
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        protocols.check_pair(_with(train, scores=scores), test)
