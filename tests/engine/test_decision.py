import uuid

import numpy as np
import pytest

from uniroute.engine.decision import Decision, best_index, route_scores
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
