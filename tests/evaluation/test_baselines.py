"""K-NN's k by train-only cross-validation, on data where the right k is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from uniroute.datasets import RoutingDataset
from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.evaluation.baselines import KNNRouter, Split, UniRouteRouter, choose_k


def _clusters(n_per: int, n_clusters: int, seed: int = 0) -> tuple[np.ndarray, RoutingDataset]:
    """Tight clusters of prompts; in even clusters model "a" is right and "b" wrong, odd ones the reverse.

    A prompt's k nearest neighbours are its own cluster as long as k <= n_per, so K-NN is perfect for
    small k and blind (every model right half the time) once k spans every cluster.
    """
    rng = np.random.default_rng(seed)
    centres = np.eye(n_clusters, 16)
    labels = np.repeat(np.arange(n_clusters), n_per)
    X = centres[labels] + 0.01 * rng.normal(size=(len(labels), 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    a_right = (labels % 2 == 0).astype(float)
    data = RoutingDataset(
        models=("a", "b"),
        scores=np.stack([a_right, 1.0 - a_right], axis=1),
        costs=np.tile([0.002, 0.001], (len(labels), 1)),
        prompts=[f"p{i}" for i in range(len(labels))],
        tasks=[""] * len(labels),
        ids=[str(i) for i in range(len(labels))],
    )
    return X, data


def test_cv_picks_the_k_that_stays_inside_a_cluster_and_logs_every_fold() -> None:
    X, data = _clusters(n_per=30, n_clusters=8)  # 240 prompts; 4 of 5 folds hold ~24 per cluster
    k, log = choose_k(X, data)
    # k = 10 (and 25): the majority of neighbours come from the prompt's own cluster, so every held-out
    # prompt goes to its right model (the oracle's choice); k = 200 mixes all clusters. Ties: smaller k.
    assert k == 10
    assert log["grid"] == [10, 25, 50, 100, 200] and log["chosen"] == 10 and log["folds"] == 5
    assert log["criterion"] == "area"
    assert all(len(v) == 5 for v in log["per_fold"].values())
    # perfect routing on a fold whose share of "a"-prompts is s: quality 1 at x = (0.002 s + 0.001 (1 - s))
    # / 0.002 = 0.5 + s/2; anchor: "b" alone, quality 1 - s at x = 0.5. Area: flat, line, flat.
    folds = np.array_split(np.random.default_rng(0).permutation(len(data)), 5)
    shares = [data.scores[f, 0].mean() for f in folds]
    hand = [(1 - s) * 0.5 + (s / 2) * ((1 - s) + 1) / 2 + (0.5 - s / 2) for s in shares]
    np.testing.assert_allclose(log["per_fold"]["10"], hand)
    assert log["mean"]["200"] < log["mean"]["10"]


def test_ties_go_to_the_smaller_k_and_without_costs_quality_decides() -> None:
    X, data = _clusters(n_per=30, n_clusters=8)
    flat = RoutingDataset(
        data.models, np.ones_like(data.scores), data.costs, data.prompts, data.tasks, data.ids
    )
    k, log = choose_k(X, flat)  # every model always right: every k scores the same
    assert k == 10 and len(set(log["mean"].values())) == 1
    no_costs = RoutingDataset(
        data.models, data.scores, np.full_like(data.costs, np.nan), data.prompts, data.tasks, data.ids
    )
    k, log = choose_k(X, no_costs)
    assert log["criterion"] == "quality_lambda0" and k == 10 and log["mean"]["10"] == 1.0


def test_knn_never_looks_at_the_test_results() -> None:
    X, data = _clusters(n_per=30, n_clusters=8)
    test = data.rows(range(0, 240, 7))
    flipped = RoutingDataset(test.models, 1.0 - test.scores, test.costs, test.prompts, test.tasks, test.ids)
    runs = [
        KNNRouter().route(Split(data, data, t, X, X, X[::7]))
        for t in (test, flipped)  # the same prompts with opposite results
    ]
    assert runs[0].info == runs[1].info and runs[0].info["k"] == 10
    np.testing.assert_array_equal(runs[0].errors, runs[1].errors)
    with pytest.raises(Exception, match="positive int or 'cv'"):
        KNNRouter(k=0).route(Split(data, data, test, X, X, X[::7]))


def test_every_learned_router_prices_test_prompts_by_length_as_the_engine_does() -> None:
    X, data = _clusters(n_per=20, n_clusters=4)
    prompts = ["x" * (10 + 7 * i) for i in range(len(data))]  # lengths 10 .. 563 characters
    chars = np.array([len(p) for p in prompts], dtype=float)
    costs = np.stack([1e-6 * chars, np.full(len(chars), 3e-4)], axis=1)  # "a" is billed by length
    priced = RoutingDataset(data.models, data.scores, costs, prompts, data.tasks, data.ids)
    valid, test = priced.rows(range(0, 80, 2)), priced.rows(range(1, 80, 2))
    split = Split(priced, valid, test, X, X[::2], X[1::2])
    expected = np.stack([1e-6 * chars[1::2], np.full(40, 3e-4)], axis=1)
    np.testing.assert_allclose(split.test_prices(), expected, rtol=1e-9, atol=1e-12)
    engine = UniRouteRouter(lambda: KMeansClusterMap(n_clusters=4)).route(split)
    np.testing.assert_allclose(engine.costs, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(KNNRouter(k=5).route(split).costs, expected, rtol=1e-9, atol=1e-12)
    without_text = RoutingDataset(test.models, test.scores, test.costs, None, test.tasks, test.ids)
    flat = Split(priced, valid, without_text, X, X[::2], X[1::2])
    assert not flat.priced_by_length() and flat.test_prices().shape == (2,)  # one mean $ per model


def test_knn_holds_a_bounded_block_of_similarities_however_many_references(monkeypatch) -> None:
    """K-NN compared 512 prompts at a time with every reference prompt: 1.3 GB at once against 160,000
    references. The block now shrinks with the references, and the errors do not change."""
    from uniroute.evaluation import baselines

    X, data = _clusters(n_per=30, n_clusters=8)
    errors = 1.0 - data.scores
    whole = baselines._knn_errors(X, errors, X[:100], (10, 25))
    blocks: list[int] = []
    real_argpartition = np.argpartition

    def counting_argpartition(a, *args, **kwargs):
        blocks.append(a.size)
        return real_argpartition(a, *args, **kwargs)

    monkeypatch.setattr(baselines, "_KNN_CELLS", 2_000, raising=False)
    monkeypatch.setattr(baselines.np, "argpartition", counting_argpartition)
    chunked = baselines._knn_errors(X, errors, X[:100], (10, 25))
    assert max(blocks) <= 2_000 and sum(blocks) == 100 * len(X)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
