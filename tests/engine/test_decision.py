import uuid

import numpy as np
import pytest

from uniroute.engine.decision import Decision, best_index, lambda_bound, lambda_sweep, route_scores
from uniroute.exceptions import InputError


def decision(errors, costs, lam=0.0, names=None, **kwargs):
    names = tuple(names or (f"m{i}" for i in range(len(errors))))
    return Decision(names, np.asarray(errors, float), np.asarray(costs, float), lam, np.ones(1), **kwargs)


def test_scores_are_the_routing_rule():
    d = decision([0.3, 0.1, 0.2], [0.0, 0.02, 0.001], lam=10.0)
    np.testing.assert_allclose(d.scores, [0.3, 0.3, 0.21])
    np.testing.assert_allclose(route_scores(d.errors, d.costs, 10.0), d.scores)
    assert d.model == "m2" and d.ranking == ("m2", "m0", "m1")


def test_model_is_the_first_of_tied_candidates_like_the_ranking():
    d = decision([0.2, 0.1, 0.1, 0.1], [0.0] * 4)
    assert d.ranking == ("m1", "m2", "m3", "m0")
    assert d.model == d.ranking[0] == "m1"


def test_model_is_ranking_0_even_with_nan_scores():
    d = decision([np.nan, 0.4, 0.2], [0.0, 0.0, 0.0])
    assert d.ranking == ("m2", "m1", "m0")
    assert d.model == d.ranking[0]
    rows = np.array([[np.nan, 0.4, 0.2], [0.1, 0.1, 0.0]])
    np.testing.assert_array_equal(best_index(rows), [2, 2])


def test_near_best_returns_ties_in_ranking_order():
    d = decision([0.2, 0.1, 0.1, 0.15], [0.0] * 4, names=["a", "us", "eu", "b"])
    assert d.near_best(0.0) == ("us", "eu")
    assert d.near_best(0.06) == ("us", "eu", "b")
    assert d.near_best(1.0) == d.ranking
    for bad in (-0.1, float("nan"), "0.1", None, True):
        with pytest.raises(InputError, match="tolerance"):
            d.near_best(bad)


def test_decision_ids_are_unique_uuid4_hex():
    ids = {decision([0.1], [0.0]).decision_id for _ in range(2000)}
    assert len(ids) == 2000
    for value in list(ids)[:50]:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == value


def test_profiles_default_to_the_candidates_and_show_in_to_dict():
    d = decision([0.1, 0.2], [0.0, 0.0], names=["a", "b"])
    assert d.profiles == ("a", "b")
    shared = decision([0.1, 0.1], [0.0, 0.0], names=["us", "eu"], profiles=("gpt", "gpt"))
    payload = shared.to_dict()
    assert payload["decision_id"] == shared.decision_id
    assert [(r["model"], r["profile"]) for r in payload["ranking"]] == [("us", "gpt"), ("eu", "gpt")]


def _routings(errors: np.ndarray, costs: np.ndarray, lams: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(best_index(route_scores(errors, costs, float(lam))).tolist()) for lam in lams}


def test_lambda_sweep_sweeps_every_routing_even_when_prices_differ_by_a_hair() -> None:
    # Before (report): the sweep was spaced down from lambda_bound, 6 decades at most. One price gap of
    # 1e-9 $ made the bound ~2e9, and every routing between λ = 0 and ~2e3 was missing.
    errors = np.array([[0.10, 0.30, 0.50], [0.20, 0.25, 0.60], [0.05, 0.40, 0.41], [0.30, 0.31, 0.90]])
    costs = np.array([[3e-3, 1e-3, 1e-4], [3e-3, 1e-3, 1e-4], [3e-3, 1e-3, 1e-3 - 1e-9], [5e-3, 2e-4, 1e-5]])
    grid = lambda_sweep(errors, costs)
    assert grid[0] == 0.0 and grid[-1] == lambda_bound(errors, costs) > 1e9
    assert np.all(np.diff(grid) > 0)
    dense = np.concatenate([[0.0], np.geomspace(1e-3, 1e12, 20_000)])
    assert _routings(errors, costs, grid) == _routings(errors, costs, dense)
    assert len(_routings(errors, costs, grid)) > 5


def test_lambda_sweep_keeps_its_size_on_many_prompts() -> None:
    rng = np.random.default_rng(0)
    errors, costs = rng.uniform(size=(3_000, 12)), rng.uniform(1e-4, 1e-2, size=12)
    grid = lambda_sweep(errors, costs, size=50)
    assert 40 <= len(grid) <= 52 and grid[0] == 0.0 and grid[-1] == lambda_bound(errors, costs)
    assert lambda_sweep(np.zeros((2, 2)), np.array([1.0, 2.0])).tolist() == [
        0.0,
        lambda_bound(np.zeros((2, 2)), np.array([1.0, 2.0])),
    ]
