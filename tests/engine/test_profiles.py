import numpy as np
import pytest

from uniroute import ModelProfile
from uniroute.engine.profiles import profile_from_scores
from uniroute.exceptions import InputError


def test_counts_and_errors_from_hard_assignments_with_missing_results():
    phi = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    profile = profile_from_scores("m", phi, [1.0, 0.0, np.nan, 0.5], cost=0.002, prior_strength=0.0)
    np.testing.assert_allclose(profile.counts, [2, 1])
    np.testing.assert_allclose(profile.error_sums, [1.0, 0.5])
    np.testing.assert_allclose(profile.errors, [0.5, 0.5])
    assert profile.cost == 0.002 and profile.n_results == 3


def test_smoothing_pulls_sparse_clusters_toward_the_global_error():
    profile = ModelProfile("m", error_sums=[9.0, 0.0], counts=[10.0, 1.0], cost=0.0, prior_strength=4.0)
    g = (9.0 + 0.5) / (11.0 + 1.0)
    assert profile.global_error == pytest.approx(g)
    np.testing.assert_allclose(profile.errors, [(9 + 4 * g) / 14, (0 + 4 * g) / 5])
    assert profile.errors[1] > 0.5


def test_upper_quantile_exceeds_the_mean_and_narrows_with_data():
    few = ModelProfile("a", error_sums=[1.0], counts=[4.0], cost=0.0)
    many = ModelProfile("b", error_sums=[100.0], counts=[400.0], cost=0.0)
    assert few.upper(0.9)[0] > few.errors[0]
    assert few.upper(0.9)[0] - few.errors[0] > many.upper(0.9)[0] - many.errors[0]
    with pytest.raises(InputError):
        few.upper(1.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"error_sums": [2.0], "counts": [1.0], "cost": 0.0}, "error_sums <= counts"),
        ({"error_sums": [0.0], "counts": [1.0], "cost": float("nan")}, "cost"),
        ({"error_sums": [0.0], "counts": [1.0], "cost": -1.0}, "cost"),
        ({"error_sums": [0.0, 1.0], "counts": [1.0], "cost": 0.0}, "equal length"),
    ],
)
def test_invalid_profiles_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        ModelProfile("m", **kwargs)


def test_scores_must_be_in_unit_interval_and_one_per_prompt():
    phi = np.ones((2, 1))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        profile_from_scores("m", phi, [0.5, 1.5], cost=0.0)
    with pytest.raises(InputError, match="one per prompt"):
        profile_from_scores("m", phi, [0.5], cost=0.0)
    with pytest.raises(InputError, match="no observed result"):
        profile_from_scores("m", phi, [np.nan, np.nan], cost=0.0)
