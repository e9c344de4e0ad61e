import numpy as np
import pytest

from uniroute import ModelProfile
from uniroute.engine.profiles import fit_price, profile_from_scores
from uniroute.exceptions import InputError


def test_counts_and_errors_from_hard_assignments_with_missing_results():
    phi = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    profile = profile_from_scores("m", phi, [1.0, 0.0, np.nan, 0.5], cost=0.002, prior_strength=0.0)
    np.testing.assert_allclose(profile.counts, [2, 1])
    np.testing.assert_allclose(profile.error_sums, [1.0, 0.5])
    np.testing.assert_allclose(profile.errors, [0.5, 0.5])
    assert profile.cost == 0.002 and profile.n_results == 3


def test_smoothing_pulls_sparse_clusters_toward_the_global_error():
    profile = ModelProfile("m", error_sums=[9.0, 1.0], counts=[10.0, 2.0], cost=0.0, prior_strength=4.0)
    g = (10.0 + 0.5) / (12.0 + 1.0)
    assert profile.global_error == pytest.approx(g)
    centre = [(10 * g + 2) / 14, (2 * g + 2) / 6]
    np.testing.assert_allclose(profile.errors, [(9 + 4 * centre[0]) / 14, (1 + 4 * centre[1]) / 6])
    assert profile.errors[1] > 0.5


def test_a_cluster_without_results_is_unknown_not_the_global_error():
    # Before: Ψ of the empty cluster was the global error (0.0003 here), so a model that was only
    # ever right on quizzes looked perfect at code too.
    phi = np.array([[1.0, 0.0]] * 20)
    profile = profile_from_scores("quiz-only", phi, np.ones(20), cost=0.0, prior_strength=4.0)
    assert profile.errors[0] < 0.05
    assert profile.errors[1] == pytest.approx(0.5)
    assert profile.upper(0.9)[1] > 0.75


def test_soft_leakage_into_an_uncovered_cluster_is_not_evidence():
    # 100 quiz prompts, each with 1% of its soft weight in the code cluster: one "result" there.
    phi = np.array([[0.99, 0.01]] * 100)
    scores = np.ones(100)
    leaky = profile_from_scores("quiz-only", phi, scores, cost=0.0)
    covered = profile_from_scores("quiz-only", phi, scores, cost=0.0, reference=[0.5, 0.5])
    assert leaky.errors[1] < 0.35  # the leaked result, all correct, drags the code cluster down
    np.testing.assert_allclose(covered.counts, [99.0, 0.02])
    assert covered.errors[1] > 0.49 and covered.errors[0] < 0.05
    # a validation set spread like the training prompts keeps its full weight
    spread = np.array([[0.9, 0.1]] * 50 + [[0.1, 0.9]] * 50)
    assert profile_from_scores("m", spread, scores, 0.0, reference=[0.5, 0.5]).counts == pytest.approx(
        [50, 50]
    )
    with pytest.raises(InputError, match="one share per cluster"):
        profile_from_scores("m", phi, scores, 0.0, reference=[1.0])


def test_cluster_errors_matches_one_profile_at_a_time():
    from uniroute.engine.profiles import cluster_errors

    rng = np.random.default_rng(0)
    phi = rng.dirichlet(np.ones(3), size=40)
    scores = rng.integers(0, 2, size=(40, 2)).astype(float)
    scores[::7, 1] = np.nan
    ref = phi.mean(axis=0)
    many = cluster_errors(phi, scores, 4.0, ref)
    for j in range(2):
        one = profile_from_scores("m", phi, scores[:, j], 0.0, 4.0, reference=ref).errors
        np.testing.assert_allclose(many[:, j], one)


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
        # NaN or infinite counts made NaN errors that routing then carried into decisions
        ({"error_sums": [float("nan")], "counts": [1.0], "cost": 0.0}, "finite"),
        ({"error_sums": [0.0], "counts": [float("inf")], "cost": 0.0}, "finite"),
        # a str cost or prior_strength raised a bare TypeError from numpy
        ({"error_sums": [0.0], "counts": [1.0], "cost": "0.1"}, "cost must be a finite \\$ >= 0"),
        ({"error_sums": [0.0], "counts": [1.0], "cost": 0.0, "prior_strength": "4"}, "prior_strength"),
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


def test_a_model_validated_only_on_quizzes_is_not_sent_code():
    """Issue 10 target 4 in miniature: before, every code prompt went to the quiz-only model."""
    from uniroute import KMeansClusterMap, PrecomputedEmbedder, Router

    rng = np.random.default_rng(0)
    quiz = [f"quiz {i}" for i in range(60)]
    code = [f"code {i}" for i in range(60)]
    vectors = {p: [1.0, 0.0] + 0.3 * rng.standard_normal(2) for p in quiz}
    vectors |= {p: [0.0, 1.0] + 0.3 * rng.standard_normal(2) for p in code}
    router = Router(PrecomputedEmbedder(vectors), KMeansClusterMap(n_clusters=2, assignment="soft"))
    router.fit(quiz + code)
    generalist = np.r_[np.ones(60), np.tile([1.0, 1.0, 0.0], 20)]  # right on 2/3 of the code prompts
    router.add_model("generalist", quiz + code, generalist, cost=0.01)
    router.add_model("quiz-only", quiz, np.ones(60), cost=0.0001)
    assert router.profile("quiz-only").errors.max() > 0.45  # its code cluster is unknown, not 0
    chosen = [d.model for d in router.route_batch(code, lam=10.0)]
    assert chosen.count("quiz-only") == 0
    assert {d.model for d in router.route_batch(quiz, lam=10.0)} == {"quiz-only"}


def test_fit_price_follows_the_prompt_length():
    chars = np.array([100.0, 200.0, 300.0, 400.0])
    costs = np.array([2e-4, 3e-4, np.nan, 5e-4])  # $ = 1e-4 + 1e-6 · chars; NaN = no result, skipped
    price = fit_price(chars, costs)
    assert price.per_char == pytest.approx(1e-6) and price.max_chars == 400.0
    np.testing.assert_allclose(price([100.0, 1000.0]), [2e-4, 1.1e-3])


def test_a_price_falling_with_length_is_not_extrapolated_to_zero():
    # Long prompts with short answers cost less; past the longest validation prompt the
    # price stays there, so a 100,000-character request never looks free.
    price = fit_price([100.0, 300.0, 500.0], [9e-4, 7e-4, 5e-4])
    assert price.per_char == pytest.approx(-1e-6)
    assert price(100_000.0) == pytest.approx(5e-4)
    assert price(0.0) == pytest.approx(1e-3)


def test_fit_price_refuses_what_it_cannot_fit():
    with pytest.raises(InputError, match="one length per cost"):
        fit_price([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="no finite cost"):
        fit_price([1.0, 2.0], [np.nan, np.nan])
    assert fit_price([7.0, 7.0], [1.0, 3.0]) == (2.0, 0.0, 7.0, 7.0)  # one length: a flat price


def test_a_profile_prices_requests_and_checks_its_price():
    profile = ModelProfile("m", [0.0], [1.0], 1e-3, cost_per_char=1e-6, mean_chars=100.0, max_chars=200.0)
    np.testing.assert_allclose(profile.price([100.0, 600.0]), [1e-3, 1.5e-3])
    assert profile.to_dict()["cost_per_char"] == 1e-6
    with pytest.raises(InputError, match="mean_chars must be a finite number >= 0"):
        ModelProfile("m", [0.0], [1.0], cost=1e-3, mean_chars=-1.0)
    with pytest.raises(InputError, match="cost_per_char must be a number"):
        ModelProfile("m", [0.0], [1.0], cost=1e-3, cost_per_char=np.array([1e-6, 2e-6]))
