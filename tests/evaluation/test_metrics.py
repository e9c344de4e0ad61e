"""Every metric on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from uniroute.evaluation import metrics
from uniroute.exceptions import InputError

# Two prompts, two models: "big" (cost 1) right on both, "small" (cost 0.1) right on prompt 0 only.
QUALITY = np.array([[1.0, 1.0], [1.0, 0.0]])
COST = np.array([[1.0, 0.1], [1.0, 0.1]])


def test_oracle_curve_points() -> None:
    curve = metrics.oracle_curve(QUALITY, COST)
    # λ=0: prompt 0 -> small (tie, cheaper), prompt 1 -> big; λ>1/0.9: all small.
    np.testing.assert_allclose(curve.costs, [0.55, 0.1])
    np.testing.assert_allclose(curve.qualities, [1.0, 0.5])
    np.testing.assert_allclose(curve.lambdas, [0.0, 1 / 0.9])


def test_deferral_curve_uses_estimates_but_realised_outcomes() -> None:
    errors = np.array([[0.2, 0.5], [0.1, 0.3]])
    curve = metrics.deferral_curve(errors, np.array([1.0, 0.1]), QUALITY, COST)
    # breakpoints: prompt 0 at 0.3/0.9, prompt 1 at 0.2/0.9
    np.testing.assert_allclose(curve.lambdas, [0.0, 0.2 / 0.9, 0.3 / 0.9])
    np.testing.assert_allclose(curve.costs, [1.0, 0.55, 0.1])
    np.testing.assert_allclose(curve.qualities, [1.0, 0.5, 0.5])


def test_envelope_skips_dominated_middle_model() -> None:
    # one prompt, three models; the middle one is never optimal for any λ.
    errors = np.array([[0.0, 0.6, 0.7]])
    costs = np.array([1.0, 0.5, 0.0])
    quality = np.array([[1.0, 0.4, 0.3]])
    curve = metrics.deferral_curve(errors, costs, quality, np.tile(costs, (1, 1)))
    np.testing.assert_allclose(curve.lambdas, [0.0, 0.7])
    np.testing.assert_allclose(curve.qualities, [1.0, 0.3])


def test_area_exact() -> None:
    curve = metrics.DeferralCurve(np.array([1.0, 0.2]), np.array([0.9, 0.5]), np.array([0.0, 1.0]))
    # normalised by max cost 1: flat 0.5 on [0, .2], line to 0.9 on [.2, 1]
    assert curve.area(1.0) == pytest.approx(0.5 * 0.2 + 0.7 * 0.8)
    # up to 50%: flat 0.5 on [0, .2], line 0.5 -> 0.65 on [.2, .5]; divided by 0.5
    assert curve.area(1.0, 0.5) == pytest.approx((0.1 + 0.575 * 0.3) / 0.5)
    # normalising by cost 2 halves every x: flat beyond x = 0.5
    assert curve.area(2.0) == pytest.approx(0.5 * 0.1 + 0.7 * 0.4 + 0.9 * 0.5)


def test_qnc_interpolates_and_reports_unreached() -> None:
    curve = metrics.DeferralCurve(np.array([1.0, 0.2]), np.array([0.9, 0.5]), np.array([0.0, 1.0]))
    # quality 0.7 is reached halfway between 0.2 and 1.0
    assert curve.qnc(0.7, 0.8) == pytest.approx(0.6 / 0.8)
    assert curve.qnc(0.4, 1.0) == pytest.approx(0.2)
    assert math.isinf(curve.qnc(0.95, 1.0))


def test_entropy_and_routed_quality() -> None:
    assert metrics.share_entropy(np.array([0, 0, 1, 1]), 3) == pytest.approx(math.log(2))
    assert metrics.share_entropy(np.array([2, 2]), 3) == 0.0
    with pytest.warns(DeprecationWarning, match="share_entropy"):
        assert metrics.selection_entropy(np.array([0, 0, 1, 1]), 3) == pytest.approx(math.log(2))
    assert metrics.routed_quality(QUALITY, np.array([1, 1])) == 0.5
    assert metrics.routed_quality(QUALITY, np.full((2, 2), 0.5)) == 0.75


def test_output_entropy_is_routereval_e_p_in_bits() -> None:
    # prompt 0: a fair coin between two models (1 bit); prompt 1: one model (0 bits)
    assert metrics.output_entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx(0.5)
    # a router that names one model per prompt has E_p = 0 however it spreads prompts over models;
    # the spread is the share entropy
    one_hot = metrics.one_hot(np.array([0, 1]), 2)
    assert metrics.output_entropy(one_hot) == 0.0
    assert metrics.share_entropy(one_hot, 2) == pytest.approx(math.log(2))
    assert metrics.output_entropy(np.full((3, 5), 0.2)) == pytest.approx(math.log2(5))


def test_r_o_probabilities() -> None:
    probs = metrics.r_o_probabilities(QUALITY, 0.5)
    # prompt 0: both models correct, the oracle's half is split between them: 0.25 + 0.25 each;
    # prompt 1: only "big" is correct: 0.5 + 0.25 on it, 0.25 on "small"
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.75, 0.25]])
    assert metrics.routed_quality(QUALITY, probs) == pytest.approx(0.5 * 1.0 + 0.5 * 0.75)
    # E_p: (1 bit + H(0.75, 0.25)) / 2
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert metrics.output_entropy(probs) == pytest.approx((1.0 + h) / 2)
    # no model correct: the oracle's share is spread over all models
    np.testing.assert_allclose(metrics.r_o_probabilities(np.zeros((1, 4)), 1.0), [[0.25] * 4])
    with pytest.raises(InputError):
        metrics.r_o_probabilities(QUALITY, 1.5)


def test_summarize_exact() -> None:
    paths = metrics.prompt_paths(1.0 - QUALITY, COST, QUALITY, COST)
    out = metrics.summarize(paths, np.array([1, 0]), QUALITY, COST, reference=1)
    assert out["quality_lambda0"] == 1.0
    assert out["v_b_lambda0"] == 1.0
    assert out["v_r_lambda0"] == 2.0
    assert out["e_p_lambda0"] == 0.0
    assert out["share_entropy_lambda0"] == pytest.approx(math.log(2))
    assert out["cost_lambda0"] == pytest.approx(0.55)
    assert out["cost_lambda0_rel"] == pytest.approx(0.55)
    # anchored at the cheapest model (0.1, 0.5): flat 0.5 to 0.1, line to (0.55, 1), flat 1
    assert out["area"] == pytest.approx(0.05 + 0.75 * 0.45 + 0.45)
    assert out["qnc"] == pytest.approx(0.55)


def test_prompt_paths_rebuild_the_curve_under_any_weighting() -> None:
    paths = metrics.prompt_paths(1.0 - QUALITY, COST, QUALITY, COST)
    # prompt 0 starts on "small" and never moves; prompt 1 starts on "big", moves at λ = 1/0.9
    np.testing.assert_allclose(paths.start_quality, [1.0, 1.0])
    np.testing.assert_allclose(paths.start_cost, [0.1, 1.0])
    np.testing.assert_array_equal(paths.prompts, [1])
    np.testing.assert_allclose(paths.d_cost, [-0.9])
    costs, quals, lams = paths.points(np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(costs, [[0.55, 0.1], [0.1, 0.1], [1.0, 0.1]])
    np.testing.assert_allclose(quals, [[1.0, 0.5], [1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(lams, [0.0, 1 / 0.9])


def test_curve_summaries_recompute_the_pool_references_per_weighting() -> None:
    paths = metrics.prompt_paths(1.0 - QUALITY, COST, QUALITY, COST)
    out = metrics.curve_summaries(paths, QUALITY, COST, np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]]))
    # [1, 1]: the test set itself (test_summarize_exact); area_50: flat 0.5 on [0, 0.1], then the line
    #         from (0.1, 0.5) towards (0.55, 1), at x = 0.5 worth 0.5 + 0.5 * 0.4 / 0.45, divided by 0.5
    # [2, 0]: only prompt 0: both models right, everything on (0.1, 1): area 1; QNC 0.1 / 0.1
    # [0, 2]: only prompt 1: "small" is wrong, anchor (0.1, 0), curve up to (1, 1): area 0.9 * 0.5;
    #         area_50: line from (0.1, 0) to (0.5, 0.4/0.9), divided by 0.5; QNC 1 / 1
    np.testing.assert_allclose(out["area"], [0.8375, 1.0, 0.45])
    at_half = 0.5 + 0.5 * 0.4 / 0.45
    np.testing.assert_allclose(
        out["area_50"], [(0.05 + 0.4 * (0.5 + at_half) / 2) / 0.5, 1.0, 0.4 * (0.4 / 0.9) / 2 / 0.5]
    )
    np.testing.assert_allclose(out["qnc"], [0.55, 1.0, 1.0])


def test_equally_cheap_models_anchor_at_the_best_in_any_column_order() -> None:
    # "a" and "b" both cost 0.1 (a right on prompt 2 only, b on prompts 0-3), "big" costs 1, right on all.
    quality = np.array([[0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1], [0, 0, 1]], dtype=float)
    cost = np.tile([0.1, 0.1, 1.0], (5, 1))
    for order in ([0, 1, 2], [1, 0, 2]):
        q, c = quality[:, order], cost[:, order]
        oracle = metrics.curve_summaries(metrics.prompt_paths(1.0 - q, c, q, c), q, c)
        random = metrics.curve_summaries(metrics.paths_of_choices(np.full((5, 3), 1 / 3), q, c), q, c)
        # anchor (0.1, 0.8) = b. Oracle: (0.28, 1) -> (0.1, 0.8): 0.1*0.8 + 0.18*0.9 + 0.72*1
        assert oracle["area"][0] == pytest.approx(0.962)
        # random: (0.4, 2/3): 0.1*0.8 + 0.3*(0.8 + 2/3)/2 + 0.6*2/3
        assert random["area"][0] == pytest.approx(0.7)


def test_of_points_with_equal_cost_the_best_counts() -> None:
    # two equally cheap models, each right on one prompt: the oracle's only point (0.1, 1) beats the
    # anchor (0.1, 0.5) at the same cost, so q = 1 everywhere
    quality = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    cost = np.tile([0.1, 0.1, 1.0], (2, 1))
    out = metrics.curve_summaries(metrics.prompt_paths(1.0 - quality, cost, quality, cost), quality, cost)
    assert out["area"][0] == pytest.approx(1.0) and out["area_50"][0] == pytest.approx(1.0)
    assert out["qnc"][0] == pytest.approx(0.1)
    assert metrics.areas(np.array([[0.5, 0.5, 0.2]]), np.array([[0.9, 0.3, 0.4]]))[0] == pytest.approx(
        0.2 * 0.4 + 0.3 * (0.4 + 0.9) / 2 + 0.5 * 0.9
    )


def test_qnc_counts_the_anchor_when_the_cheapest_model_is_the_best() -> None:
    # m0 costs 0.1 at quality 0.75, m1 costs 1 at 0.5: sending everything to m0 (the anchor, open to
    # any router) reaches Q* at m0's own cost, so QNC = 1 for every router; before, random's was inf
    quality = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    cost = np.tile([0.1, 1.0], (4, 1))
    random = metrics.curve_summaries(
        metrics.paths_of_choices(np.full((4, 2), 0.5), quality, cost), quality, cost
    )
    oracle = metrics.curve_summaries(metrics.prompt_paths(1.0 - quality, cost, quality, cost), quality, cost)
    assert random["qnc"][0] == pytest.approx(1.0) and oracle["qnc"][0] == pytest.approx(1.0)
    assert random["area"][0] == pytest.approx(0.665625)


def test_areas_match_one_curve_at_a_time() -> None:
    rng = np.random.default_rng(0)
    xs, qs = rng.random((50, 6)), rng.random((50, 6))
    many = metrics.areas(xs, qs, 0.7)
    one = [metrics.DeferralCurve(x, q, np.zeros(6)).area(1.0, 0.7) for x, q in zip(xs, qs, strict=True)]
    np.testing.assert_allclose(many, one)
    # hand case: points (0.2, 0.5), (1, 0.9): flat 0.5 on [0, .2], then the line
    assert metrics.areas(np.array([[1.0, 0.2]]), np.array([[0.9, 0.5]]))[0] == pytest.approx(0.1 + 0.56)


def test_summarize_without_costs() -> None:
    out = metrics.summarize(None, np.array([0, 0]), QUALITY, None)
    assert out["area"] is None and out["qnc"] is None and out["v_r_lambda0"] is None
    assert out["mu_o"] == 1.0


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="NaN"):
        metrics.deferral_curve(np.array([[np.nan, 0.0]]), np.ones(2), QUALITY[:1], COST[:1])
    with pytest.raises(InputError, match="max_cost"):
        metrics.DeferralCurve.single_point(1.0, 1.0).area(0.0)
