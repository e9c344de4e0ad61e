"""Feedback through the LiteLLM front door, in process and offline (issue 12)."""

from __future__ import annotations

import copy
import importlib.util
from contextlib import contextmanager

import litellm
import numpy as np
import pytest
from litellm_fakes import MATH_PROMPT, POETRY_PROMPT, demo_engine, deployment

from uniroute import InputError, Router
from uniroute.integrations import litellm as ul
from uniroute.integrations.litellm import _compat

LAM = 30.0
IDS = {"mathbot": "mathbot", "poet": "poet", "big": "big-eu"}  # profile -> deployment id


@pytest.fixture(scope="module")
def base_engine() -> Router:
    return demo_engine()


@pytest.fixture
def engine(base_engine: Router) -> Router:
    """A fresh copy per test (feedback changes it), rebuilding its routing profiles at once."""
    router = copy.deepcopy(base_engine)
    router.feedback_refresh = 0.0
    return router


def demo_deployments(fail: tuple[str, ...] = ()) -> list[dict]:
    return [deployment(dep, profile, fail=dep in fail) for profile, dep in IDS.items()]


def make_router(engine: Router, fail: tuple[str, ...] = (), **install_kwargs) -> litellm.Router:
    router = litellm.Router(model_list=demo_deployments(fail), num_retries=2, retry_after=0)
    ul.install(router, engine, lam=LAM, **install_kwargs)
    return router


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def counted(engine: Router, profile: str) -> float:
    """Feedback results counted for ``profile`` (Σ weight·Φ over clusters)."""
    return float(np.sum(engine.feedback.counts(profile)[1]))


def test_install_turns_on_remembered_decisions(engine: Router) -> None:
    engine.remember_decisions = False
    make_router(engine)
    assert engine.remember_decisions is True


async def test_every_response_carries_its_decision_id(engine: Router) -> None:
    router = make_router(engine)
    ids = set()
    for prompt in (MATH_PROMPT, POETRY_PROMPT, MATH_PROMPT):
        response = await router.acompletion(model="demo", messages=user(prompt))
        decision_id = response._hidden_params["uniroute"]["decision_id"]
        assert isinstance(decision_id, str) and len(decision_id) == 32
        ids.add(decision_id)
    assert len(ids) == 3


async def test_feedback_by_response_and_by_id_credits_the_answer(engine: Router) -> None:
    router = make_router(engine)
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    answered = response._hidden_params["uniroute"]["profile"]
    assert ul.record_feedback(router, response, False) == answered
    assert counted(engine, answered) == pytest.approx(1.0)
    decision_id = response._hidden_params["uniroute"]["decision_id"]
    assert ul.record_feedback(router, decision_id, 0.5, weight=2.0) == answered
    assert counted(engine, answered) == pytest.approx(3.0)
    errors, _ = engine.feedback.counts(answered)
    assert float(errors.sum()) == pytest.approx(1.0 + 2.0 * 0.5)  # thumbs-down: 1, score 0.5 at weight 2: 1


async def test_after_a_fallback_feedback_goes_to_who_answered(engine: Router) -> None:
    """The engine's pick (mathbot) fails; big answers: feedback by id must credit big, not mathbot."""
    router = make_router(engine, fail=("mathbot",))
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    decision = response._hidden_params["uniroute"]
    assert decision["chosen"] == "mathbot" and decision["answered"] != "mathbot"
    answered = decision["profile"]
    assert ul.record_feedback(router, decision["decision_id"], True) == answered
    assert ul.record_feedback(router, response, True) == answered
    assert counted(engine, answered) == pytest.approx(2.0)
    assert "mathbot" not in engine.feedback.models


@pytest.mark.parametrize("door", ["sdk", "proxy"])
async def test_a_fallback_to_another_ranked_group_credits_who_answered(
    engine: Router, monkeypatch, door
) -> None:
    """Every deployment of `demo` fails and LiteLLM falls back to `backup`, whose deployments uniroute
    also ranks. Before, the decision was `demo`'s with "answered by a deployment uniroute did not
    rank" and feedback raised UnrankedAnswerError: `backup`'s decision, made on LiteLLM's copy of
    the request metadata, was never seen."""
    model_list = [
        *demo_deployments(fail=tuple(IDS.values())),
        *(deployment(f"{d}-b", p, group="backup") for p, d in IDS.items()),
    ]
    router = litellm.Router(model_list=model_list, num_retries=0, fallbacks=[{"demo": ["backup"]}])
    if door == "sdk":
        ul.install(router, engine, lam=LAM)
    else:
        callback = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM), litellm_router=router)
        monkeypatch.setattr(litellm, "callbacks", [callback])
    data = {"model": "demo", "messages": user(MATH_PROMPT), "metadata": {}}
    response = await router.acompletion(**data)
    if door == "proxy":
        await callback.async_post_call_response_headers_hook(data, None, response)
    decision = response._hidden_params["uniroute"]
    answered = response._hidden_params["model_id"]
    assert answered.endswith("-b") and decision["answered"] == decision["deployment"] == answered
    assert decision["model_group"] == "backup" and decision["note"] is None
    assert decision["chosen"] in IDS.values() and decision["chosen"] in decision["failed"]
    profile = decision["profile"]
    assert profile == next(p for p, d in IDS.items() if f"{d}-b" == answered)
    assert ul.record_feedback(router if door == "sdk" else callback, response, True) == profile
    assert ul.record_feedback(router if door == "sdk" else callback, decision["decision_id"], True) == profile
    assert counted(engine, profile) == pytest.approx(2.0)


@pytest.mark.integration
async def test_another_replica_credits_who_answered_after_a_fallback(engine: Router, tmp_path) -> None:
    """Replica a's pick (mathbot) fails and another deployment answers; feedback by id at replica b
    (sharing a Redis store) credits who answered, not mathbot."""
    pytest.importorskip("redis", reason="the [redis] extra (redis-py) is not installed")
    from uniroute.stores.redis import RedisFeedbackStore
    from valkey_server import running_server

    engines = [engine, copy.deepcopy(engine)]
    with contextmanager(running_server)(tmp_path) as server:
        for replica in engines:
            replica.use_feedback_store(RedisFeedbackStore.for_router(server.url, replica))
        a, b = make_router(engines[0], fail=("mathbot",)), make_router(engines[1])
        try:
            response = await a.acompletion(model="demo", messages=user(MATH_PROMPT))
            decision = response._hidden_params["uniroute"]
            assert decision["chosen"] == "mathbot" and decision["answered"] != "mathbot"
            assert engines[0].feedback.flush(timeout=10)
            assert ul.record_feedback(b, decision["decision_id"], True) == decision["profile"] != "mathbot"
            assert engines[1].feedback.flush(timeout=10) and engines[0].feedback.refresh()
            assert counted(engines[0], decision["profile"]) == pytest.approx(1.0, abs=3e-3)  # float16 Φ
            assert counted(engines[0], "mathbot") == 0
        finally:
            for replica in engines:
                replica.feedback.close()
                replica.close()


async def test_feedback_changes_the_next_decision(engine: Router) -> None:
    router = make_router(engine)
    first = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    chosen = first._hidden_params["model_id"]
    for _ in range(5):
        ul.record_feedback(router, first, False, weight=20.0)
    second = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert second._hidden_params["model_id"] != chosen


@pytest.mark.parametrize(
    ("score", "weight", "message"),
    [
        (1.5, 1.0, r"score must be a number in \[0, 1\]"),
        ("good", 1.0, "score must be a number"),
        (1.0, -1.0, "weight must be a finite number >= 0"),
    ],
)
async def test_bad_scores_are_input_errors(engine: Router, score, weight, message: str) -> None:
    router = make_router(engine)
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    with pytest.raises(InputError, match=message):
        ul.record_feedback(router, response, score, weight=weight)
    assert engine.feedback.models == ()


def test_unknown_ids_and_unrouted_objects_are_errors(engine: Router) -> None:
    router = make_router(engine)
    with pytest.raises(ul.UnknownDecisionError, match="unknown or expired"):
        ul.record_feedback(router, "0" * 32, True)
    with pytest.raises(InputError, match="needs a decision id"):
        ul.record_feedback(router, {"note": "no id"}, True)
    with pytest.raises(InputError, match="needs what routed the request"):
        ul.record_feedback(litellm.Router(model_list=demo_deployments()), "0" * 32, True)
    with pytest.raises(InputError, match="carries no uniroute decision"):
        ul.record_feedback(router, litellm.ModelResponse(), True)


async def test_failures_are_kept_out_of_psi_by_default(engine: Router) -> None:
    router = make_router(engine, fail=("mathbot",))
    await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert "mathbot" not in engine.feedback.models


async def test_feedback_on_failure_records_a_weighted_zero(engine: Router) -> None:
    before = list(litellm.callbacks)
    try:
        router = make_router(engine, fail=("mathbot",), feedback_on_failure=True, failure_weight=0.5)
        logger = _compat.installed_strategy(router).failure_feedback
        await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        assert logger.recorded == 1
        errors, counts = engine.feedback.counts("mathbot")
        assert float(counts.sum()) == pytest.approx(0.5) and float(errors.sum()) == pytest.approx(0.5)
    finally:
        litellm.callbacks[:] = before


async def test_failure_feedback_of_many_installs_is_one_logger_and_reaches_each_engine() -> None:
    """Before, each install(feedback_on_failure=True) added its own logger to litellm.callbacks,
    which LiteLLM never drops: a server re-installing a state kept every old engine alive, and
    LiteLLM kept only the first such logger in its failure lists, so later installs recorded nothing."""
    before = list(litellm.callbacks)
    try:
        old, new, other = demo_engine(), demo_engine(), demo_engine()
        router = make_router(old, fail=("mathbot",), feedback_on_failure=True)
        make_router(new, fail=("mathbot",), feedback_on_failure=True)  # another router, same process
        second = litellm.Router(  # its own deployment ids: LiteLLM's cooldowns go by id
            model_list=[deployment(f"{p}-2", p, fail=p == "mathbot") for p in ("mathbot", "poet", "big")],
            num_retries=2,
            retry_after=0,
        )
        ul.install(second, other, lam=LAM, feedback_on_failure=True)
        ul.install(router, new, lam=LAM, feedback_on_failure=True)  # a new state on the same router
        assert len([c for c in litellm.callbacks if c not in before]) == 1
        await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        await second.acompletion(model="demo", messages=user(MATH_PROMPT))
        assert counted(new, "mathbot") == pytest.approx(ul.FAILURE_WEIGHT)
        assert counted(other, "mathbot") == pytest.approx(ul.FAILURE_WEIGHT)
        assert old._feedback is None  # the replaced engine heard nothing
    finally:
        litellm.callbacks[:] = before


@pytest.mark.parametrize("door", ["sdk", "proxy"])
async def test_each_failed_attempt_records_one_zero(engine: Router, door: str) -> None:
    """Two deployments fail in turn: one 0 each. The proxy callback hears an attempt from LiteLLM's
    deployment hook and from its failure log (in process, once per attempt): it counts once."""
    before = list(litellm.callbacks)
    try:
        if door == "sdk":
            router = make_router(engine, fail=("mathbot", "big-eu"), feedback_on_failure=True)
        else:
            router = litellm.Router(
                model_list=demo_deployments(("mathbot", "big-eu")), num_retries=2, retry_after=0
            )
            ranker = ul.DeploymentRanker(engine, lam=LAM)
            litellm.callbacks.append(ul.UniRouteProxyRouter(ranker, router, feedback_on_failure=True))
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        assert response._hidden_params["model_id"] == "poet"
        assert counted(engine, "mathbot") == pytest.approx(ul.FAILURE_WEIGHT)
        assert counted(engine, "big") == pytest.approx(ul.FAILURE_WEIGHT)
        assert "poet" not in engine.feedback.models
    finally:
        litellm.callbacks[:] = before


def closed_store(engine: Router) -> None:
    """Give the engine a Redis store, closed (as the proxy closes its store at exit)."""
    redis = pytest.importorskip("redis", reason="the [redis] extra (redis-py) is not installed")
    from uniroute.stores.redis import RedisFeedbackStore

    store = RedisFeedbackStore(
        redis.Redis(port=1), "d", len(engine.cluster_map_.cluster_weights_), start=False
    )
    engine.use_feedback_store(store)
    store.close(timeout=0.1)


async def test_a_closed_feedback_store_fails_no_request(engine: Router) -> None:
    # a closed store refuses feedback: a failure callback's error stays in LiteLLM's callback
    # logging and the request is answered by another deployment
    closed_store(engine)
    before = list(litellm.callbacks)
    try:
        router = make_router(engine, fail=("mathbot",), feedback_on_failure=True)
        logger = _compat.installed_strategy(router).failure_feedback
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        assert response._hidden_params["uniroute"]["profile"] != "mathbot" and logger.recorded == 0
    finally:
        litellm.callbacks[:] = before


def test_feedback_to_a_closed_store_answers_503(engine: Router) -> None:
    # /feedback on a replica whose store is closed: 503, send it again to a running replica
    pytest.importorskip("fastapi", reason="the proxy's /feedback endpoint needs the [proxy] extra")
    from uniroute.integrations.litellm._endpoints import _record

    closed_store(engine)
    callback = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM))
    decision = engine.route(MATH_PROMPT)
    status, body = _record(callback, {"decision_id": decision.decision_id, "score": 1})
    assert status == 503 and "is closed" in body["error"]["message"]


async def test_proxy_failure_callback_only_when_asked(engine: Router) -> None:
    ranker = ul.DeploymentRanker(engine, lam=LAM)
    request: dict = {"metadata": {}}
    await ul.UniRouteProxyRouter(ranker).async_filter_deployments(
        "demo", demo_deployments(), user(MATH_PROMPT), request
    )
    event = {"litellm_params": {"metadata": request["metadata"], "model_info": {"id": "mathbot"}}}
    await ul.UniRouteProxyRouter(ranker).async_log_failure_event(event, None, None, None)
    assert "mathbot" not in engine.feedback.models
    attempt = {"metadata": request["metadata"], "model_info": {"id": "mathbot"}}
    await ul.UniRouteProxyRouter(ranker).async_post_call_failure_deployment_hook(attempt, Exception(), None)
    assert "mathbot" not in engine.feedback.models
    on = ul.UniRouteProxyRouter(ranker, feedback_on_failure=True)
    await on.async_post_call_failure_deployment_hook(attempt, Exception(), None)
    await on.async_log_failure_event(event, None, None, None)  # the same attempt, logged: not again
    assert counted(engine, "mathbot") == pytest.approx(ul.FAILURE_WEIGHT)
    other = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM), feedback_on_failure=True)
    await other.async_log_failure_event(event, None, None, None)  # another ranker's request: ignored
    assert counted(engine, "mathbot") == pytest.approx(ul.FAILURE_WEIGHT)


def test_proxy_feedback_settings_are_checked(engine: Router, tmp_path) -> None:
    state = str(engine.save(tmp_path / "state"))
    with pytest.raises(InputError, match="feedback_on_failure must be true or false"):
        ul.UniRouteProxyRouter.from_settings({"state": state, "feedback_on_failure": "yes"})
    with pytest.raises(InputError, match="failure_weight must be a number"):
        ul.UniRouteProxyRouter.from_settings({"state": state, "failure_weight": "high"})
    callback = ul.UniRouteProxyRouter.from_settings({"state": state, "feedback_on_failure": True})
    assert callback.feedback_on_failure and callback.store is None
    assert callback.feedback_stats()["store"] == "memory"


SECRET_URL = "redis://:hunter2@127.0.0.1:6379/0"


NEEDS_REDIS = pytest.mark.skipif(
    importlib.util.find_spec("redis") is None, reason="the [redis] extra (redis-py) is not installed"
)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"feedback_store": "os.environ/UNSET_URL"},
            "feedback_store names the environment variable UNSET_URL",
        ),
        (
            {"feedback_store": SECRET_URL, "feedback_namespace": "os.environ/UNSET_NS"},
            "feedback_namespace names",
        ),
        pytest.param(  # redis-py parses the URL
            {"feedback_store": "localhost:6379"},
            "feedback_store localhost:6379: Redis URL must specify",
            marks=NEEDS_REDIS,
        ),
        pytest.param(
            {"feedback_store": SECRET_URL.replace("6379", "port")},
            r"feedback_store redis://:\*\*\*@127.0.0.1:port/0",
            marks=NEEDS_REDIS,
        ),
        ({"feedback_store": 6379}, "feedback_store must be a URL like redis://host:port/db, got 6379"),
    ],
)
def test_a_feedback_store_that_cannot_be_used_stops_the_proxy(
    engine, tmp_path, monkeypatch, settings, message
):
    """Before, an unset os.environ/ variable silently kept feedback in this replica's memory (no
    sharing, feedback by id failing at the other replicas), and a malformed URL was a bare ValueError."""
    monkeypatch.delenv("UNSET_URL", raising=False)
    monkeypatch.delenv("UNSET_NS", raising=False)
    state = str(engine.save(tmp_path / "state"))
    with pytest.raises(InputError, match=rf"callback_settings\.uniroute\.{message}") as caught:
        ul.UniRouteProxyRouter.from_settings({"state": state, **settings})
    assert "hunter2" not in str(caught.value)


@pytest.mark.integration
def test_proxy_feedback_store_settings(engine: Router, tmp_path, monkeypatch) -> None:
    """feedback_store through os.environ/, the default namespace is the state's, a set one is kept."""
    from valkey_server import running_server

    state = str(engine.save(tmp_path / "state"))
    with contextmanager(running_server)(tmp_path) as server:
        monkeypatch.setenv("UNIROUTE_TEST_REDIS", server.url)
        shared = ul.UniRouteProxyRouter.from_settings(
            {"state": state, "feedback_store": "os.environ/UNIROUTE_TEST_REDIS"}
        )
        named = ul.UniRouteProxyRouter.from_settings(
            {"state": state, "feedback_store": server.url, "feedback_namespace": "custom"}
        )
        try:
            assert shared.store.namespace == Router.load(state).feedback_namespace
            assert named.store.namespace == "custom"
            assert shared.ranker.router.feedback is shared.store
            assert shared.feedback_stats()["store"] == "redis"
        finally:
            shared.store.close()
            named.store.close()
