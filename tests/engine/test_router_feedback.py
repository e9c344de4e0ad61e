"""Router + feedback: record_feedback, routing on validation + feedback, exploration, save/load."""

from __future__ import annotations

import copy
import json
import pickle
import threading
import time
import warnings

import numpy as np
import pytest

from uniroute import HashingEmbedder, KMeansClusterMap, Router
from uniroute.engine.router import EXPLORED_NOTE
from uniroute.exceptions import (
    InputError,
    StateError,
    UnknownDecisionError,
    UnknownModelError,
    UnrankedAnswerError,
)

MATH = "Arithmetic question: compute 3 plus 4 and answer with the number only."
POEM = "Poetry request: write a short haiku about snow, with vivid imagery."
# a model joined with zero validation prompts; on the mean ~0.018 worse than 'big' on math, but uncertain
NEWBIE = {"accuracy": 0.99, "strength": 20.0}
SETTINGS = dict(  # every feedback parameter, none at its default
    feedback_weight=0.5,
    feedback_half_life=600.0,
    remember_decisions=True,
    explore_share=0.2,
    explore_margin=0.05,
    feedback_refresh=2.0,
)
N_FAILURES = 10  # failures of 'big' on math after which 'mathbot' is better on math (measured: 5 suffice)


def make_router(toy_data: dict, **params) -> Router:
    """The toy router (K=2: math, poetry) with feedback seen at once (no refresh throttle)."""
    params.setdefault("feedback_refresh", 0)
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0), **params)
    router.fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    return router


def math_prompts(toy_data: dict) -> list[str]:
    return [p for p, t in zip(toy_data["prompts"], toy_data["topics"]) if t == "math"]


def fail_big_on_math(router: Router, toy_data: dict, n: int = N_FAILURES) -> None:
    for prompt in math_prompts(toy_data)[:n]:
        router.record_feedback(prompt, 0.0, model="big")


@pytest.fixture()
def router(toy_data):
    return make_router(toy_data)


def test_parameters_are_stored_unchanged():
    r = Router(HashingEmbedder(), **SETTINGS)
    assert {k: getattr(r, k) for k in SETTINGS} == SETTINGS


def test_failures_on_math_move_math_and_not_poetry(router, toy_data):
    assert router.route(MATH).model == "big" and router.route(POEM).model == "big"
    validation = router.profile("big")
    fail_big_on_math(router, toy_data)
    assert router.route(MATH).model == "mathbot"
    assert router.route(POEM).model == "big"
    # the validation profile is untouched: feedback is kept apart
    assert router.profile("big") is validation
    assert router.feedback.stats()["events"] == N_FAILURES


def test_feedback_by_decision_credits_the_model_that_answered(toy_data):
    router = make_router(toy_data)
    decisions = router.route_batch(
        math_prompts(toy_data)[:N_FAILURES], candidates={"big-eu": "big", "mb": "mathbot"}
    )
    assert {d.model for d in decisions} == {"big-eu"}
    assert {router.record_feedback(d, False) for d in decisions} == {"big"}
    assert router.route(MATH).model == "mathbot"
    # a fallback answered: credit it, not the chosen one
    assert router.record_feedback(decisions[0], 1.0, model="mb") == "mathbot"
    with pytest.raises(InputError, match="not a candidate"):
        router.record_feedback(decisions[0], 1.0, model="poet")


def test_feedback_by_decision_id(toy_data):
    router = make_router(toy_data, remember_decisions=True)
    ids = [router.route(p).decision_id for p in math_prompts(toy_data)[:N_FAILURES]]
    assert {router.record_feedback(i, 0) for i in ids} == {"big"}
    assert router.route(MATH).model == "mathbot"
    # found by audit F: an unknown or expired id was a plain InputError, not the documented
    # UnknownDecisionError ("feedback for a decision id this process does not know")
    with pytest.raises(UnknownDecisionError, match="prompt with model="):
        router.record_feedback("0" * 32, 0)
    router.feedback.decisions.ttl = 0.0
    time.sleep(0.01)
    with pytest.raises(UnknownDecisionError, match="unknown or expired"):
        router.record_feedback(ids[0], 0)


def test_feedback_by_id_credits_who_answered_after_a_fallback(toy_data):
    router = make_router(toy_data, remember_decisions=True)
    decision = router.route(MATH)
    other = next(c for c in decision.candidates if c != decision.model)
    router.remember_answer(decision, other)
    assert router.record_feedback(decision.decision_id, 1) == other
    router.remember_answer(decision, None)  # a model outside the candidates answered
    with pytest.raises(UnrankedAnswerError, match="no profile to credit"):
        router.record_feedback(decision.decision_id, 1)
    with pytest.raises(InputError, match="not a candidate"):
        router.remember_answer(decision, "gpt-nobody")
    assert router.feedback.counts(other)[1].sum() == pytest.approx(1.0)
    assert router.feedback.counts(decision.model)[1].sum() == 0


def test_decision_ids_are_not_remembered_by_default(router):
    decision = router.route(MATH)
    with pytest.raises(InputError, match="remember_decisions=True"):
        router.record_feedback(decision.decision_id, 0)


def test_feedback_is_validated(router):
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        router.record_feedback(MATH, 1.5, model="big")
    with pytest.raises(InputError, match="needs model="):
        router.record_feedback([{"role": "user", "content": MATH}], 0.0)
    with pytest.raises(InputError, match="prompt with model="):
        router.record_feedback(MATH, 0.0)  # a str without model= is a decision id
    with pytest.raises(UnknownModelError, match="nobody"):
        router.record_feedback(MATH, 0.0, model="nobody")
    with pytest.raises(InputError, match="weight"):
        router.record_feedback(MATH, 0.0, model="big", weight=-1)
    assert router.feedback.stats()["events"] == 0


def test_reset_gives_the_validation_decision_back(router, toy_data):
    fail_big_on_math(router, toy_data)
    assert router.route(MATH).model == "mathbot"
    router.reset_feedback("poet")  # another model's reset changes nothing
    assert router.route(MATH).model == "mathbot"
    router.reset_feedback("big")
    assert router.route(MATH).model == "big"
    fail_big_on_math(router, toy_data)
    router.reset_feedback()
    assert router.route(MATH).model == "big"


def test_feedback_weight_zero_routes_on_validation_only(toy_data):
    router = make_router(toy_data, feedback_weight=0)
    fail_big_on_math(router, toy_data)
    assert router.feedback.stats()["events"] == N_FAILURES  # still recorded
    assert router.route(MATH).model == "big"


def test_changed_weight_and_other_models_feedback_are_seen(router, toy_data):
    fail_big_on_math(router, toy_data)
    assert router.route(MATH).model == "mathbot"
    router.feedback_weight = 0.1  # 10 failures count as 1: not enough
    assert router.route(MATH).model == "big"
    router.feedback_weight = 1.0
    assert router.route(MATH).model == "mathbot"
    # feedback on another model: big's combined profile is reused, mathbot's is rebuilt
    for prompt in math_prompts(toy_data)[: 3 * N_FAILURES]:
        router.record_feedback(prompt, 0.0, model="mathbot")
    assert router.route(MATH).model == "big"


def test_half_life_decays_old_feedback(toy_data):
    router = make_router(toy_data, feedback_half_life=1.0)
    phi = router.route(MATH).cluster_probs
    long_ago = time.time() - 100.0  # 100 half-lives: ~nothing left
    for _ in range(N_FAILURES):
        router.feedback.record("big", phi, 0.0, now=long_ago)
    assert router.route(MATH).model == "big"
    for _ in range(N_FAILURES):
        router.feedback.record("big", phi, 0.0)
    assert router.route(MATH).model == "mathbot"


def test_profiles_are_rebuilt_at_most_once_per_refresh(toy_data):
    router = make_router(toy_data, feedback_refresh=3600)
    assert router.feedback.models == ()  # makes the ledger; the next route builds the routing pool
    assert router.route(MATH).model == "big"
    fail_big_on_math(router, toy_data)
    assert router.route(MATH).model == "big"  # within the refresh period: the last snapshot
    router.feedback_refresh = 0
    assert router.route(MATH).model == "mathbot"


def test_explore_none_is_deterministic(router):
    decisions = [router.route(MATH) for _ in range(20)]
    assert {d.model for d in decisions} == {"big"}
    assert all(d.note is None for d in decisions)
    assert all(np.array_equal(d.errors, decisions[0].errors) for d in decisions)
    with pytest.raises(InputError, match="thompson"):
        router.route(MATH, explore="epsilon")


def _explore_counts(router: Router, n: int = 400) -> tuple[int, int]:
    """(decisions that went to newbie, decisions that went to any model other than the mean best)."""
    mean = router.route(MATH)
    assert mean.model == "big"
    assert mean.scores[mean.candidates.index("newbie")] - mean.scores.min() > router.explore_margin or (
        router.explore_margin >= 1
    )
    decisions = [router.route(MATH, explore="thompson", rng=seed) for seed in range(n)]
    for d in decisions:
        assert d.model == d.ranking[0]
        assert (d.note == EXPLORED_NOTE) == (d.model != "big")
    return sum(d.model == "newbie" for d in decisions), sum(d.model != "big" for d in decisions)


def test_thompson_explores_a_new_model_within_the_cap(toy_data):
    router = make_router(toy_data, explore_share=0.1, explore_margin=0.01)
    router.add_model_prior("newbie", 0.001, **NEWBIE)
    assert router.route(MATH).model == "big"  # on the mean, the newcomer is worse by > margin
    picks, explored = _explore_counts(router)
    stats = router.exploration_cap.stats()
    assert picks > 0
    assert explored <= 0.1 * 400
    assert stats["capped"] > 0  # the cap was needed: the samples wanted more
    assert stats["share"] <= 0.1


def test_thompson_without_a_cap_explores_more(toy_data):
    router = make_router(toy_data, explore_margin=1.0)  # every model counts as good as the best
    router.add_model_prior("newbie", 0.001, **NEWBIE)
    picks, _ = _explore_counts(router)
    assert picks > 0.1 * 400


def test_thompson_never_explores_a_worse_model_at_share_zero(toy_data):
    router = make_router(toy_data, explore_share=0.0, explore_margin=0.01)
    router.add_model_prior("newbie", 0.001, **NEWBIE)
    _, explored = _explore_counts(router, 200)
    assert explored == 0 and router.exploration_cap.stats()["capped"] > 0


def test_save_load_keeps_the_feedback_counts(router, toy_data, tmp_path):
    validation = router.profile("big")
    fail_big_on_math(router, toy_data, 3)
    router.save(tmp_path / "state")
    loaded = Router.load(tmp_path / "state")
    assert loaded.feedback.models == ("big",)
    for a, b in zip(router.feedback.counts("big", now=0), loaded.feedback.counts("big", now=0)):
        np.testing.assert_allclose(a, b)
    assert loaded.feedback.stats()["events"] == 3
    # the saved profiles are the validation ones
    np.testing.assert_array_equal(loaded.profile("big").counts, validation.counts)


def test_loaded_feedback_routes(router, toy_data, tmp_path):
    fail_big_on_math(router, toy_data)
    router.save(tmp_path / "state")
    loaded = Router.load(tmp_path / "state")
    loaded.feedback_refresh = 0
    assert loaded.route(MATH).model == "mathbot"


def test_a_state_without_feedback_loads_with_an_empty_ledger(router, tmp_path):
    router.save(tmp_path / "state")
    assert "feedback" not in json.loads(next((tmp_path / "state").glob("*.json")).read_text())
    assert Router.load(tmp_path / "state").feedback.models == ()


def test_the_state_digest_covers_the_feedback(router, toy_data, tmp_path):
    fail_big_on_math(router, toy_data, 3)
    router.save(tmp_path / "state")
    meta_file = next((tmp_path / "state").glob("*.json"))
    meta = json.loads(meta_file.read_text())
    meta["feedback"]["events"] = [300]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(StateError):
        Router.load(tmp_path / "state")


def test_copies_and_pickles_keep_the_feedback(router, toy_data):
    fail_big_on_math(router, toy_data)
    for clone in (copy.deepcopy(router), pickle.loads(pickle.dumps(router))):
        assert clone.route(MATH).model == "mathbot"
        assert clone.feedback is not router.feedback
        np.testing.assert_array_equal(
            clone.feedback.counts("big", now=0)[1], router.feedback.counts("big", now=0)[1]
        )


def test_routing_while_feedback_flows(router, toy_data):
    prompts = toy_data["prompts"]
    errors: list[BaseException] = []
    per_writer = 150

    def route() -> None:
        try:
            for i in range(100):
                decision = router.route(prompts[i % len(prompts)])
                assert decision.model == decision.ranking[0]
        except BaseException as exc:  # reported below
            errors.append(exc)

    def record(model: str) -> None:
        try:
            for i in range(per_writer):
                router.record_feedback(prompts[i % len(prompts)], i % 2, model=model)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=route) for _ in range(8)]
    threads += [threading.Thread(target=record, args=(m,)) for m in ("big", "poet")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert router.feedback.stats()["events"] == 2 * per_writer
    total = sum(router.feedback.counts(m, now=0)[1].sum() for m in ("big", "poet"))
    assert total == pytest.approx(2 * per_writer)


# ---- the routing profiles are rebuilt in the background ------------------------------------------


def _spy_rebuilds(router: Router) -> list[str]:
    """The names of the threads that rebuild ``router``'s routing profiles, in order."""
    threads: list[str] = []
    rebuild = router._rebuild

    def spy(*args):
        threads.append(threading.current_thread().name)
        return rebuild(*args)

    router._rebuild = spy
    return threads


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_feedback_is_seen_within_the_refresh_and_the_route_path_never_rebuilds(toy_data):
    refresh = 0.05
    router = make_router(toy_data, feedback_refresh=refresh)
    router.feedback  # noqa: B018 (makes the ledger)
    assert router.route(MATH).model == "big"  # the first route builds the pool and starts the thread
    threads = _spy_rebuilds(router)
    fail_big_on_math(router, toy_data)
    assert _wait_for(lambda: router.route(MATH).model == "mathbot", refresh + 5.0)
    assert threads and set(threads) == {"uniroute-feedback-refresh"}
    # a changed weight is a configuration change: seen at the next route, built on the route path
    router.feedback_weight = 0.1
    assert router.route(MATH).model == "big"
    assert threads[-1] == threading.current_thread().name
    router.close()


def test_close_stops_the_thread_and_routing_goes_on(toy_data):
    with make_router(toy_data, feedback_refresh=0.01) as router:
        fail_big_on_math(router, toy_data, 1)
        router.route(MATH)
        thread = router._refresher
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive() and router._refresher is None
    fail_big_on_math(router, toy_data)  # a closed router rebuilds on the route path
    assert _wait_for(lambda: router.route(MATH).model == "mathbot", 5.0)
    assert router._refresher is None
    router.close()  # idempotent


def test_a_collected_router_ends_its_thread(toy_data):
    import gc

    router = make_router(toy_data, feedback_refresh=3600)
    fail_big_on_math(router, toy_data, 1)
    router.route(MATH)
    thread = router._refresher
    assert thread is not None and thread.is_alive()
    del router
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_copies_and_pickles_start_their_own_thread(toy_data):
    router = make_router(toy_data, feedback_refresh=0.05)
    fail_big_on_math(router, toy_data, 1)
    router.route(MATH)
    for clone in (copy.deepcopy(router), pickle.loads(pickle.dumps(router))):
        assert clone._refresher is None
        fail_big_on_math(clone, toy_data)
        assert _wait_for(lambda c=clone: c.route(MATH).model == "mathbot", 5.0)
        assert clone._refresher is not None and clone._refresher is not router._refresher
        clone.close()
    assert router.route(MATH).model == "big" and router._refresher.is_alive()
    router.close()


def test_without_feedback_no_thread_starts(router):
    router.feedback_refresh = 1.0
    router.route(MATH)
    assert router._refresher is None


# ---- feedback settings saved with the state; the feedback namespace ---------------------------------


def test_feedback_settings_are_saved_with_the_state(toy_data, tmp_path):
    make_router(toy_data, **SETTINGS).save(tmp_path / "state")
    loaded = Router.load(tmp_path / "state")
    assert {k: getattr(loaded, k) for k in SETTINGS} == SETTINGS
    # the digest covers them
    meta_file = tmp_path / "state" / "state.json"
    meta = json.loads(meta_file.read_text())
    meta["router"]["feedback_weight"] = 5.0
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(StateError, match="state_sha256"):
        Router.load(tmp_path / "state")


def test_a_state_saved_without_feedback_settings_loads_with_the_defaults(toy_data, tmp_path):
    from uniroute.engine.state import _sealed

    make_router(toy_data, **SETTINGS).save(tmp_path / "state")
    meta_file = tmp_path / "state" / "state.json"
    meta = json.loads(meta_file.read_text())
    meta.pop("state_sha256")
    for name in SETTINGS:
        del meta["router"][name]
    meta["schema_version"] = 2  # as uniroute 0.2.0 wrote it
    meta_file.write_text(json.dumps(_sealed(meta)))
    loaded = Router.load(tmp_path / "state")
    defaults = Router(HashingEmbedder())
    assert {k: getattr(loaded, k) for k in SETTINGS} == {k: getattr(defaults, k) for k in SETTINGS}


def test_the_feedback_namespace_follows_the_clusters(router, toy_data, tmp_path):
    namespace = router.feedback_namespace
    assert len(namespace) == 16 and namespace == router.feedback_namespace
    fail_big_on_math(router, toy_data, 2)
    router.add_model_prior("newbie", 0.001, accuracy=0.5)
    router.save(tmp_path / "state")
    assert Router.load(tmp_path / "state").feedback_namespace == namespace
    other = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=3, random_state=0)).fit(toy_data["prompts"])
    assert other.feedback_namespace != namespace


def test_a_store_with_another_half_life_is_warned_about(router):
    from uniroute.engine.feedback import FeedbackLedger

    with pytest.warns(UserWarning, match="half_life=60.0"):
        router.use_feedback_store(FeedbackLedger(2, half_life=60.0))
    router.feedback_half_life = 60.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        router.use_feedback_store(FeedbackLedger(2, half_life=60.0))


class _Store:
    """A feedback store that is not a FeedbackLedger (as a shared store is not): the router keeps
    the decisions it remembers itself."""

    def __init__(self, n_clusters: int):
        from uniroute.engine.feedback import FeedbackLedger

        self.ledger = FeedbackLedger(n_clusters)

    def record(self, *args, **kwargs):
        self.ledger.record(*args, **kwargs)

    def counts(self, model, now=None):
        return self.ledger.counts(model, now)

    def profile(self, validation, feedback_weight=1.0, now=None):
        return self.ledger.profile(validation, feedback_weight, now)

    @property
    def version(self):
        return self.ledger.version


def test_decisions_remembered_before_a_store_switch_stay_known_by_id(toy_data):
    # before: use_feedback_store(new) lost the decisions remembered in the old ledger, so feedback
    # on a decision made just before the switch raised UnknownDecisionError
    from uniroute.engine.feedback import FeedbackLedger

    router = make_router(toy_data, remember_decisions=True)
    first = router.route(MATH)
    old = router.feedback
    shared = _Store(2)
    router.use_feedback_store(shared)  # ledger -> another kind of store
    second = router.route(POEM)
    ledger = FeedbackLedger(2)
    router.use_feedback_store(ledger)  # that store -> a ledger
    third = router.route(MATH)
    last = _Store(2)
    router.use_feedback_store(last)  # and back: every decision made so far is still known
    for decision in (first, second, third):
        assert router.record_feedback(decision.decision_id, 1.0) == decision.model
    assert last.ledger.events == 3 and shared.version == ledger.events == old.events == 0
    assert len(old.decisions) == 1 and len(ledger.decisions) == 3  # an old ledger keeps what it held


def test_a_refit_forgets_the_remembered_decisions(toy_data):
    router = make_router(toy_data, remember_decisions=True)
    router.use_feedback_store(_Store(2))
    decision = router.route(MATH)
    router.fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    router.use_feedback_store(_Store(2))
    with pytest.raises(UnknownDecisionError):  # its Φ is over the old clusters
        router.record_feedback(decision.decision_id, 1.0)


def test_a_pool_built_from_a_replaced_store_is_never_used(router, toy_data):
    from uniroute.engine.feedback import FeedbackLedger

    fail_big_on_math(router, toy_data)  # 10 events: math goes to mathbot
    assert router.route(MATH).model == "mathbot"
    stale = router._routing
    other = FeedbackLedger(2)
    for phi in [router.route(POEM).cluster_probs] * N_FAILURES:  # the same version (10), other counts
        other.record("poet", phi, 1.0)
    router.use_feedback_store(other)
    router._routing = stale  # as if a background build from the old source ended after the swap
    assert other.version == stale.version
    assert router.route(MATH).model == "big"


@pytest.mark.parametrize("refresh", [0, 0.05])
def test_routing_forgets_decayed_feedback_without_new_feedback(toy_data, refresh):
    # found by audit F: the routing pool was rebuilt only when new feedback arrived, so feedback
    # 10 half-lives old still routed math away from 'big' while the ledger said it weighed ~0
    router = make_router(toy_data, feedback_half_life=0.5, feedback_refresh=refresh)
    fail_big_on_math(router, toy_data)
    assert router.route(MATH).model == "mathbot"
    assert _wait_for(lambda: router.route(MATH).model == "big", 10.0)  # ~3 half-lives suffice
    assert router.feedback.counts("big")[1].sum() < N_FAILURES / 4  # it was the decay, no new feedback
    router.close()


def test_a_rebuild_that_read_the_counts_before_a_reset_is_never_used(toy_data):
    # found by audit K: a background rebuild that read 'big''s counts before reset_feedback('big')
    # swapped its pool in after the reset, so routes went on using the forgotten feedback until the
    # next refresh (docs/feedback.md: a reset is rebuilt on the route path, at once)
    from uniroute.engine.feedback import FeedbackLedger

    class ResetDuringRebuild(FeedbackLedger):
        """Resets 'big' (as another thread would) once a rebuild has read its counts."""

        armed = False

        def counts(self, model, now=None):
            out = super().counts(model, now)
            if self.armed and model == "big":
                self.armed = False
                router.reset_feedback("big")
            return out

    router = make_router(toy_data, feedback_refresh=3600)
    router.use_feedback_store(ResetDuringRebuild(2))
    fail_big_on_math(router, toy_data)
    assert router.route(MATH).model == "mathbot"
    router.record_feedback(POEM, 1.0, model="poet")  # the counts moved: the refresher's next step rebuilds
    router.feedback.armed = True
    router._refresh_routing()  # that step, with the reset arriving while it runs
    assert router.route(MATH).model == "big"
    router.close()
