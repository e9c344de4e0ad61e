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
    assert metrics.selection_entropy(np.array([0, 0, 1, 1]), 3) == pytest.approx(math.log(2))
    assert metrics.selection_entropy(np.array([2, 2]), 3) == 0.0
    assert metrics.routed_quality(QUALITY, np.array([1, 1])) == 0.5
    assert metrics.routed_quality(QUALITY, np.full((2, 2), 0.5)) == 0.75


def test_r_o_probabilities() -> None:
    probs = metrics.r_o_probabilities(QUALITY, 0.5, COST)
    # oracle picks small on prompt 0 (tie, cheaper), big on prompt 1
    np.testing.assert_allclose(probs, [[0.25, 0.75], [0.75, 0.25]])
    assert metrics.routed_quality(QUALITY, probs) == pytest.approx(0.5 * 1.0 + 0.5 * 0.75)
    with pytest.raises(InputError):
        metrics.r_o_probabilities(QUALITY, 1.5)


def test_summarize_exact() -> None:
    curve = metrics.oracle_curve(QUALITY, COST)
    out = metrics.summarize(curve, np.array([1, 0]), QUALITY, COST, reference=1)
    assert out["quality_lambda0"] == 1.0
    assert out["v_b_lambda0"] == 1.0
    assert out["v_r_lambda0"] == 2.0
    assert out["e_p_lambda0"] == pytest.approx(math.log(2))
    assert out["cost_lambda0"] == pytest.approx(0.55)
    assert out["cost_lambda0_rel"] == pytest.approx(0.55)
    # anchored at the cheapest model (0.1, 0.5): flat 0.5 to 0.1, line to (0.55, 1), flat 1
    assert out["area"] == pytest.approx(0.05 + 0.75 * 0.45 + 0.45)
    assert out["qnc"] == pytest.approx(0.55)


def test_summarize_without_costs() -> None:
    out = metrics.summarize(None, np.array([0, 0]), QUALITY, None)
    assert out["area"] is None and out["qnc"] is None and out["v_r_lambda0"] is None
    assert out["mu_o"] == 1.0


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="NaN"):
        metrics.deferral_curve(np.array([[np.nan, 0.0]]), np.ones(2), QUALITY[:1], COST[:1])
    with pytest.raises(InputError, match="max_cost"):
        metrics.DeferralCurve.single_point(1.0, 1.0).area(0.0)
