"""FeedbackLedger: Φ-weighted counts apart from validation, decay, bounds, cold start, Thompson cap."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from uniroute.engine.decision import Decision
from uniroute.engine.feedback import (
    DecisionCache,
    ExplorationCap,
    FeedbackLedger,
    combine,
    prior_profile,
    thompson_errors,
)
from uniroute.engine.profiles import ModelProfile
from uniroute.exceptions import InputError, UnknownDecisionError

PHI = np.array([0.75, 0.25, 0.0])


def validation_profile(name="m"):
    return ModelProfile(
        name, error_sums=np.array([1.0, 2.0, 0.0]), counts=np.array([4.0, 4.0, 0.0]), cost=0.5
    )


def test_record_is_phi_weighted_and_scores_count_as_errors():
    ledger = FeedbackLedger(3)
    ledger.record("m", PHI, score=1.0, now=0.0)
    ledger.record("m", PHI, score=0.0, weight=2.0, now=0.0)
    ledger.record("m", [0.0, 0.0, 1.0], score=0.25, now=0.0)
    error_sums, counts = ledger.counts("m", now=0.0)
    np.testing.assert_allclose(counts, [0.75 * 3, 0.25 * 3, 1.0])
    np.testing.assert_allclose(error_sums, [0.75 * 2, 0.25 * 2, 0.75])
    assert ledger.stats()["events"] == 3 and ledger.version == 3


def test_bools_are_thumbs_up_and_down():
    ledger = FeedbackLedger(3)
    ledger.record("m", PHI, True, now=0.0)
    ledger.record("m", PHI, np.bool_(False), now=0.0)
    np.testing.assert_allclose(ledger.counts("m", now=0.0)[0], PHI)


@pytest.mark.parametrize(
    ("phi", "score", "weight", "match"),
    [
        (PHI, 1.5, 1.0, "rescale"),
        (PHI, -0.1, 1.0, r"\[0, 1\]"),
        (PHI, float("nan"), 1.0, r"\[0, 1\]"),
        (PHI, "good", 1.0, r"\[0, 1\]"),
        (PHI, None, 1.0, r"\[0, 1\]"),
        (PHI, 1.0, -1.0, "weight"),
        (PHI, 1.0, float("inf"), "weight"),
        (PHI, 1.0, 1.7e308, "weight must be at most 1e[+]06"),
        ([0.5, 0.5], 1.0, 1.0, r"expected \(3,\)"),
        ([0.5, -0.5, 1.0], 1.0, 1.0, ">= 0"),
        ([0.5, np.nan, 0.5], 1.0, 1.0, ">= 0"),
        ([0.5, np.inf, 0.5], 1.0, 1.0, ">= 0"),
        (["a", "b", "c"], 1.0, 1.0, "cluster_probs"),
    ],
)
def test_bad_feedback_is_an_input_error_that_says_what_to_do(phi, score, weight, match):
    ledger = FeedbackLedger(3)
    with pytest.raises(InputError, match=match):
        ledger.record("m", phi, score, weight=weight, now=0.0)
    assert ledger.stats()["events"] == 0 and ledger.models == ()


def test_the_largest_weight_keeps_counts_finite_and_routing_rebuilt():
    # Found through the proxy: three POST /uniroute/feedback with weight 1.7e308 (finite, so accepted)
    # made the counts infinite, and every later rebuild of the routing profiles failed.
    ledger = FeedbackLedger(3)
    for _ in range(3):
        ledger.record("m", PHI, 1.0, weight=1e6, now=0.0)
    profile = ledger.profile(validation_profile(), now=0.0)
    assert np.isfinite(profile.counts).all() and profile.counts[0] == pytest.approx(4.0 + 3 * 0.75e6)


def test_half_life_decays_counts_lazily():
    ledger = FeedbackLedger(3, half_life=10.0)
    ledger.record("m", PHI, 0.0, now=100.0)
    np.testing.assert_allclose(ledger.counts("m", now=110.0)[1], PHI / 2)
    np.testing.assert_allclose(ledger.counts("m", now=120.0)[0], PHI / 4)
    ledger.record("m", PHI, 1.0, now=120.0)  # old counts decayed to 1/4, new at full weight
    error_sums, counts = ledger.counts("m", now=120.0)
    np.testing.assert_allclose(counts, PHI * 1.25)
    np.testing.assert_allclose(error_sums, PHI * 0.25)
    no_decay = FeedbackLedger(3)
    no_decay.record("m", PHI, 0.0, now=0.0)
    np.testing.assert_allclose(no_decay.counts("m", now=1e9)[1], PHI)


def test_an_event_older_than_the_counts_is_decayed_to_them():
    # found by audit F: an event recorded after a newer one (threads, or a timestamped event arriving
    # late) was added at full weight, so the counts depended on arrival order, unlike Redis's
    in_order, late = FeedbackLedger(3, half_life=10.0), FeedbackLedger(3, half_life=10.0)
    for ledger, times in ((in_order, (100.0, 120.0)), (late, (120.0, 100.0))):
        for at in times:
            ledger.record("m", PHI, 0.0, now=at)
    for ledger in (in_order, late):
        np.testing.assert_allclose(ledger.counts("m", now=120.0)[1], PHI * 1.25)
        np.testing.assert_allclose(ledger.counts("m", now=120.0)[0], PHI * 1.25)


def test_models_beyond_the_cap_drop_the_least_recently_updated_and_count_it(caplog):
    ledger = FeedbackLedger(3, max_models=2)
    ledger.record("a", PHI, 1.0, now=0.0)
    ledger.record("b", PHI, 1.0, now=0.0)
    ledger.record("a", PHI, 1.0, now=1.0)  # a is now the most recent
    with caplog.at_level(logging.WARNING, logger="uniroute.engine.feedback"):
        ledger.record("c", PHI, 1.0, now=2.0)
    assert ledger.models == ("a", "c")
    assert ledger.stats()["evicted_models"] == 1
    assert "'b'" in caplog.text and "max_models" in caplog.text
    assert ledger.counts("b", now=2.0)[1].sum() == 0


def test_profile_adds_weighted_feedback_to_validation_and_weight_zero_resets():
    validation = validation_profile()
    ledger = FeedbackLedger(3)
    for _ in range(4):
        ledger.record("m", [0.0, 0.0, 1.0], 0.0, now=0.0)  # cluster 2 had no validation result
    learned = ledger.profile(validation, now=0.0)
    np.testing.assert_allclose(learned.counts, [4.0, 4.0, 4.0])
    np.testing.assert_allclose(learned.error_sums, [1.0, 2.0, 4.0])
    assert learned.errors[2] > validation.errors[2] + 0.2  # feedback says cluster 2 fails
    np.testing.assert_allclose(learned.errors[:2], validation.errors[:2], atol=0.05)
    half = ledger.profile(validation, feedback_weight=0.5, now=0.0)
    np.testing.assert_allclose(half.counts, [4.0, 4.0, 2.0])
    reset = ledger.profile(validation, feedback_weight=0.0, now=0.0)
    np.testing.assert_array_equal(reset.errors, validation.errors)
    assert (learned.name, learned.cost, learned.prior_strength) == ("m", 0.5, validation.prior_strength)
    version = ledger.version
    ledger.reset("m")
    assert ledger.version > version  # a router watching the version rebuilds its profiles
    np.testing.assert_array_equal(ledger.profile(validation).errors, validation.errors)


def test_combine_refuses_feedback_from_another_state():
    with pytest.raises(InputError, match="same router state"):
        combine(validation_profile(), np.zeros(2), np.zeros(2))


def test_cold_start_from_a_stated_accuracy_learns_from_feedback():
    cold = prior_profile("new", 3, cost=0.1, accuracy=0.8, strength=4.0)
    np.testing.assert_allclose(cold.counts, 4.0)
    np.testing.assert_allclose(cold.error_sums, 0.8)
    assert np.all((cold.errors > 0.2) & (cold.errors < 0.5))  # the stated 0.2, pulled toward ½ by the prior
    ledger = FeedbackLedger(3)
    for _ in range(200):
        ledger.record("new", [1.0, 0.0, 0.0], 0.0, now=0.0)
    learned = ledger.profile(cold, now=0.0)
    assert learned.errors[0] > 0.9  # cluster 0's own evidence; the others move only through the global error
    assert cold.errors[1] < learned.errors[1] < learned.errors[0] - 0.3


def test_cold_start_from_a_similar_model_borrows_its_rates_with_little_weight():
    like = ModelProfile("old", np.array([10.0, 90.0, 0.0]), np.array([100.0, 100.0, 0.0]), cost=1.0)
    cold = prior_profile("new", 3, cost=0.2, like=like, strength=5.0)
    np.testing.assert_allclose(cold.counts, [5.0, 5.0, 0.0])
    np.testing.assert_allclose(cold.error_sums, [0.5, 4.5, 0.0])
    assert cold.errors[0] < 0.3 < 0.7 < cold.errors[1]
    assert cold.errors[2] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({}, "exactly one"), ({"accuracy": 0.5, "like": validation_profile()}, "exactly one"),
     ({"accuracy": 1.5}, r"\[0, 1\]"), ({"like": ModelProfile("x", [0.0], [1.0], 0.0)}, "clusters")],
)  # fmt: skip
def test_cold_start_needs_one_clear_prior(kwargs, match):
    with pytest.raises(InputError, match=match):
        prior_profile("new", 3, cost=0.1, **kwargs)


def test_decision_ids_route_feedback_to_the_chosen_profile():
    ledger = FeedbackLedger(3, decisions=DecisionCache(max_size=2, ttl=60.0))
    decision = Decision(
        ("eu", "us"), np.array([0.2, 0.3]), np.array([0.0, 0.0]), 0.0, PHI, profiles=("gpt", "gpt-us")
    )
    assert decision.model == "eu"
    ledger.remember(decision, now=0.0)
    assert ledger.record_decision(decision.decision_id, 0.0, now=30.0) == "gpt"
    np.testing.assert_allclose(ledger.counts("gpt", now=30.0)[0], PHI)
    with pytest.raises(UnknownDecisionError, match="unknown or expired"):
        ledger.record_decision(decision.decision_id, 1.0, now=61.0)  # past the ttl
    assert ledger.stats()["decisions_expired"] == 1
    others = [Decision(("a",), np.array([0.1]), np.array([0.0]), 0.0, PHI) for _ in range(3)]
    for d in others:
        ledger.remember(d, now=100.0)
    assert len(ledger.decisions) == 2 and ledger.stats()["decisions_evicted"] == 1
    with pytest.raises(UnknownDecisionError, match="unknown or expired"):
        ledger.record_decision(others[0].decision_id, 1.0, now=100.0)
    with pytest.raises(UnknownDecisionError) as unknown:  # an id from a request is not echoed whole
        ledger.record_decision("x" * 1_000_000, 1.0, now=100.0)
    assert len(str(unknown.value)) < 300


def test_recent_items_merge_oldest_first_and_keep_their_times():
    mine, theirs = DecisionCache(max_size=3, ttl=60.0), DecisionCache()
    for key, at in (("a", 1.0), ("c", 5.0)):
        mine.put(key, key, at)
    for key, at in (("b", 2.0), ("c", 3.0), ("d", 4.0)):
        theirs.put(key, key + "'", at)
    mine.update(theirs)
    assert mine.evicted == 1 and mine.get("a", now=5.0) is None  # the oldest of either went
    assert [mine.get(k, now=5.0) for k in "bcd"] == ["b'", "c", "d'"]  # 'c': the newer item
    assert mine.get("b", now=62.5) is None  # its own time, 2.0, and this map's ttl


def test_thompson_samples_the_posterior():
    profiles = [validation_profile("a"), ModelProfile("b", np.array([0.0] * 3), np.array([400.0] * 3), 0.0)]
    draws = np.stack([thompson_errors(profiles, rng) for rng in np.random.default_rng(0).spawn(2000)])
    assert draws.shape == (2000, 2, 3)
    np.testing.assert_allclose(draws.mean(axis=0), np.stack([p.errors for p in profiles]), atol=0.02)
    assert draws[:, 0].std(axis=0).min() > 5 * draws[:, 1].std(axis=0).max()  # less evidence, wider
    np.testing.assert_array_equal(thompson_errors(profiles, 7), thompson_errors(profiles, 7))


def test_the_cap_bounds_traffic_to_a_clearly_worse_model():
    cap = ExplorationCap(max_share=0.1, margin=0.02)
    rng = np.random.default_rng(1)
    mean = np.array([0.20, 0.30])  # model 1 is worse by 0.10 > margin
    picks = [cap.choose(mean, mean + rng.normal(0, 0.2, 2)) for _ in range(1000)]
    shares = np.cumsum(np.array(picks) == 1) / np.arange(1, 1001)
    assert shares.max() <= 0.1 and shares[-1] > 0.08  # capped, yet the cap is used
    stats = cap.stats()
    assert stats["explored"] == sum(picks) and stats["capped"] > 0 and stats["decisions"] == 1000


def test_the_cap_leaves_near_models_alone():
    cap = ExplorationCap(max_share=0.0, margin=0.05)
    assert cap.choose([0.20, 0.24], [0.3, 0.1]) == 1  # within the margin: the sample decides
    assert cap.choose([0.20, 0.30], [0.3, 0.1]) == 0  # worse by more: refused at share 0
    with pytest.raises(InputError, match="max_share"):
        ExplorationCap(max_share=1.5)


def test_state_round_trip_keeps_counts_times_and_events():
    ledger = FeedbackLedger(3, half_life=50.0, max_models=7)
    ledger.record("a", PHI, 0.5, now=10.0)
    ledger.record("b", [0.0, 1.0, 0.0], 0.0, now=20.0)
    meta, arrays = ledger.to_state()
    back = FeedbackLedger.from_state(meta, arrays)
    assert back.models == ("a", "b") and back.half_life == 50.0 and back.max_models == 7
    for model in ("a", "b"):
        for got, want in zip(back.counts(model, now=99.0), ledger.counts(model, now=99.0)):
            np.testing.assert_allclose(got, want)
    assert back.stats()["events"] == 2
    arrays["feedback_at"] = arrays["feedback_at"][:1]
    with pytest.raises(InputError, match="corrupt"):
        FeedbackLedger.from_state(meta, arrays)
