"""One test per LiteLLM private touch point in uniroute.integrations.litellm._compat.

``make test-compat`` runs this file (and the other LiteLLM front-door tests) against the
oldest supported LiteLLM, so a LiteLLM release that moves one of these breaks here first.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import logging
import random
import re
import typing
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from litellm.types.litellm_params import RoutingStrategyName
from litellm.types.router import RouterRateLimitError
from litellm_fakes import MATH_PROMPT, deployment, tiny_engine

import uniroute
import uniroute.integrations.litellm as ul
from uniroute.integrations.litellm import _compat

MESSAGES = [{"role": "user", "content": MATH_PROMPT}]


def group(*deployments: dict, **router_kwargs) -> litellm.Router:
    return litellm.Router(model_list=list(deployments), **router_kwargs)


@pytest.mark.parametrize("version", ["1.104.0", "1.108.7", "1.109.3.post1", "1.110.0", "1.110.2"])
def test_supported_versions_pass(version: str) -> None:
    _compat.check_version(version)


@pytest.mark.parametrize("version", ["1.103.11", "1.111.0", "2.0.0"])
def test_unsupported_versions_name_the_supported_ones(version: str) -> None:
    wanted = rf"support litellm>=1\.104,<1\.111; LiteLLM {re.escape(version)} is installed"
    with pytest.raises(ImportError, match=wanted):
        _compat.check_version(version)


def test_supported_range_is_pyprojects_and_holds_the_installed_litellm() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    (first, end) = _compat.SUPPORTED
    assert f'\nlitellm = ["litellm>={first[0]}.{first[1]},<{end[0]}.{end[1]}"' in pyproject
    _compat.check_version()


def test_both_doors_refuse_an_unsupported_litellm(monkeypatch) -> None:
    """A LiteLLM whose router internals _compat was not ported to is refused at setup (on
    1.110, before the port, every routed request failed: AttributeError, RecursionError)."""
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.111.0")
    with pytest.raises(ImportError, match=r"LiteLLM 1\.111\.0 is installed"):
        ul.install(group(deployment("a")), tiny_engine(("a",)))
    with pytest.raises(ImportError, match=r"LiteLLM 1\.111\.0 is installed"):
        ul.UniRouteProxyRouter.from_settings({"state": "unused"})


def test_logger_is_litellms_router_logger() -> None:
    assert _compat.logger is logging.getLogger("LiteLLM Router")


class _Seen(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def async_filter_deployments(self, model, healthy_deployments, messages, request_kwargs=None, **kw):
        self.calls += 1
        return healthy_deployments


@pytest.mark.parametrize("strategy", typing.get_args(RoutingStrategyName))
async def test_which_strategies_call_the_proxy_callback(strategy: str, monkeypatch) -> None:
    """Every routing strategy LiteLLM names: the proxy door accepts exactly those that call it."""
    seen = _Seen()
    monkeypatch.setattr(litellm, "callbacks", [seen])
    router = group(
        deployment("a", rpm=1000, tpm=10**6), deployment("b", rpm=1000, tpm=10**6), routing_strategy=strategy
    )
    await router.acompletion(model="demo", messages=MESSAGES)
    assert (seen.calls > 0) == (strategy in _compat.ASYNC_FILTER_STRATEGIES)


async def test_routing_uses_no_member_litellm_deprecated() -> None:
    """LiteLLM 1.109 deprecated the Router members uniroute read (``get_model_list``,
    ``async_get_healthy_deployments``, ``set_custom_routing_strategy``...); each use warned."""
    router = group(
        deployment("a", tags=["eu"]),
        deployment("b", tags=["eu"]),
        deployment("c", group="other"),
        deployment("d", "a", fail=True, group="down"),
        num_retries=0,
    )
    package = str(Path(uniroute.__file__).parent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ul.install(router, tiny_engine(("a", "b")))
        router.completion(model="demo", messages=MESSAGES)
        await router.acompletion(model="demo", messages=MESSAGES, metadata={"tags": ["eu"]})
        await router.acompletion(model="other", messages=MESSAGES)
        router.completion(model="other", messages=MESSAGES)
        for _ in range(2):  # the mock 429 cools "d" down; then LiteLLM's cooldown error
            with pytest.raises((litellm.RateLimitError, RouterRateLimitError)):
                router.completion(model="down", messages=MESSAGES)
        with pytest.raises((litellm.RateLimitError, RouterRateLimitError)):
            await router.acompletion(model="down", messages=MESSAGES)
    ours = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning) and w.filename.startswith(package)
    ]
    assert ours == []


def test_shuffle_follows_litellm_weights() -> None:
    random.seed(0)
    router = group(deployment("a", weight=3), deployment("b", weight=1), deployment("c", weight=0))
    healthy = _compat.group_deployments(router, "demo")
    hits = Counter(_compat.shuffle(router, healthy, "demo", {})["model_info"]["id"] for _ in range(400))
    assert hits["c"] == 0 and 2.0 < hits["a"] / hits["b"] < 4.5, hits


async def test_an_alias_names_its_group() -> None:
    router = group(
        deployment("a"), deployment("b"), deployment("c", group="other"), model_group_alias={"smart": "demo"}
    )
    assert [d["model_info"]["id"] for d in _compat.group_deployments(router, "smart")] == ["a", "b"]
    assert {d["model_info"]["id"] for d in _compat.group_deployments(router)} == {"a", "b", "c"}
    healthy = _compat.group_deployments(router, "smart")
    picks = {_compat.shuffle(router, healthy, "smart", {})["model_info"]["id"] for _ in range(20)}
    assert picks <= {"a", "b"}
    ul.install(router, tiny_engine(("a", "b")))
    response = await router.acompletion(model="smart", messages=MESSAGES)
    decision = response._hidden_params["uniroute"]
    assert decision["tied"] == ["a", "b"] and decision["chosen"] in {"a", "b"} and decision["note"] is None


async def test_failed_deployment_ids_from_a_real_retry() -> None:
    seen: list[list[str]] = []
    router = group(deployment("bad", fail="litellm.InternalServerError"), deployment("good"), num_retries=1)

    class Spy:  # a strategy sees the retry (patching Router.async_get_available_deployment warns on 1.110)
        def get_available_deployment(self, model, request_kwargs=None, **kwargs):
            seen.append(_compat.failed_deployment_ids(request_kwargs or {}))
            wanted = "good" if seen[-1] else "bad"
            return next(
                d for d in _compat.group_deployments(router, model) if d["model_info"]["id"] == wanted
            )

        async def async_get_available_deployment(self, model, request_kwargs=None, **kwargs):
            return self.get_available_deployment(model, request_kwargs)

    _compat.set_strategy(router, Spy())
    response = await router.acompletion(model="demo", messages=MESSAGES)
    assert seen == [[], ["bad"]] and response._hidden_params["model_id"] == "good"


async def test_async_healthy_deployments_filters_cooldowns_and_names() -> None:
    router = group(deployment("a", fail=True), deployment("b"), num_retries=0)
    assert _compat.cooling_down(router) == []
    with pytest.raises(litellm.RateLimitError):  # a mock 429 cools "a" down at once
        await router.acompletion(model="a", messages=MESSAGES)
    assert _compat.cooling_down(router) == ["a"]
    healthy = await _compat.async_healthy_deployments(router, "demo", MESSAGES, None, False, {})
    assert [d["model_info"]["id"] for d in healthy] == ["b"]
    named = await _compat.async_healthy_deployments(router, "b", MESSAGES, None, False, {})
    assert isinstance(named, dict) and named["model_info"]["id"] == "b"


def test_sync_healthy_deployments_filters_cooldowns_and_raises_litellms_error() -> None:
    router = group(deployment("a", fail=True), deployment("b", fail=True), num_retries=0)
    model, healthy = _compat.healthy_deployments(router, "demo", MESSAGES, None, False, {})
    assert model == "demo" and {d["model_info"]["id"] for d in healthy} == {"a", "b"}
    for dep in ("a", "b"):
        with pytest.raises(litellm.RateLimitError):
            router.completion(model=dep, messages=MESSAGES)
    with pytest.raises(RouterRateLimitError):
        _compat.healthy_deployments(router, "demo", MESSAGES, None, False, {})
    assert _compat.healthy_deployments(router, "b", MESSAGES, None, False, {})[1]["model_info"]["id"] == "b"
    # `order` and, with enable_pre_call_checks, the context window (before, neither was applied)
    ordered = group(deployment("a", order=2), deployment("b", order=1))
    small = group(
        deployment("a"), deployment("b", model_info={"max_input_tokens": 5}), enable_pre_call_checks=True
    )
    for router, kept in ((ordered, ["b"]), (small, ["a"])):
        healthy = _compat.healthy_deployments(router, "demo", MESSAGES, None, False, {})[1]
        assert [d["model_info"]["id"] for d in healthy] == kept


async def test_set_strategy_and_own_selectors() -> None:
    router = group(deployment("a", weight=1), deployment("b", weight=0))

    class Fixed:
        async def async_get_available_deployment(self, model, **kwargs):
            return _compat.group_deployments(router, model)[1]

        def get_available_deployment(self, model, **kwargs):
            return _compat.group_deployments(router, model)[1]

    _compat.set_strategy(router, Fixed())
    assert (await router.acompletion(model="demo", messages=MESSAGES))._hidden_params["model_id"] == "b"
    own_sync, own_async = _compat.own_selectors(router)
    assert (await own_async(model="demo", messages=MESSAGES, request_kwargs={}))["model_info"]["id"] == "a"
    assert own_sync(model="demo", messages=MESSAGES, request_kwargs={})["model_info"]["id"] == "a"


async def test_wrap_methods_once_on_the_instance() -> None:
    router = group(deployment("a"))
    calls = Counter()

    def sync_wrapper(method, metadata_key):
        def call(*args, **kwargs):
            calls[method.__name__, metadata_key] += 1
            return method(*args, **kwargs)

        return call

    def async_wrapper(method, metadata_key):
        async def call(*args, **kwargs):
            calls[method.__name__, metadata_key] += 1
            return await method(*args, **kwargs)

        return call

    _compat.wrap_methods(router, sync_wrapper, async_wrapper)
    _compat.wrap_methods(router, sync_wrapper, async_wrapper)
    await router.acompletion(model="demo", messages=MESSAGES)
    await router.atext_completion(model="demo", prompt=MATH_PROMPT)
    router.completion(model="demo", messages=MESSAGES)
    assert calls == {
        ("acompletion", "metadata"): 1,
        ("atext_completion", "metadata"): 1,
        ("completion", "metadata"): 1,
    }
    assert "acompletion" in vars(router) and "acompletion" not in vars(group(deployment("b")))


async def test_hidden_params_carry_the_model_id() -> None:
    response = await group(deployment("a")).acompletion(model="demo", messages=MESSAGES)
    assert _compat.hidden_params(response)["model_id"] == "a"
    assert _compat.hidden_params(object()) is None


async def test_tag_and_order_filtered_is_litellms_filter_and_leaves_the_request() -> None:
    router = group(
        deployment("us", tags=["us"], order=1),
        deployment("eu-1", tags=["eu"], order=2),
        deployment("eu-2", tags=["eu"], order=1),
        enable_tag_filtering=True,
    )
    healthy = _compat.group_deployments(router, "demo")
    request = {"metadata": {"tags": ["eu"]}, "_target_order": None}
    kept = await _compat.tag_and_order_filtered(router, "demo", healthy, request)
    assert [d["model_info"]["id"] for d in kept] == ["eu-2"]
    assert "_target_order" in request and request["metadata"]["tags"] == ["eu"]
    request = {"metadata": {}, "_target_order": 2}
    assert [
        d["model_info"]["id"] for d in await _compat.tag_and_order_filtered(router, "demo", healthy, request)
    ] == ["eu-1"]


def test_proxy_globals(monkeypatch) -> None:
    import litellm.proxy.proxy_server as proxy_server

    assert hasattr(proxy_server, "llm_router")
    router = group(deployment("a"))
    monkeypatch.setattr(proxy_server, "llm_router", router)
    assert _compat.proxy_llm_router() is router
    before = proxy_server.proxy_config.get_config_state()
    config = {"model_list": [deployment("a")], "router_settings": {"routing_strategy": "simple-shuffle"}}
    proxy_server.proxy_config.update_config_state(config)
    try:
        assert _compat.proxy_config()["router_settings"] == config["router_settings"]
    finally:
        proxy_server.proxy_config.update_config_state(dict(before))


def test_registered_strategy_is_what_litellm_routes_with() -> None:
    router = group(deployment("a"))
    assert _compat.registered_strategy(router) is None
    mine = _AlwaysDear()
    _compat.set_strategy(router, mine)
    assert _compat.registered_strategy(router) is mine
    assert _compat.registered_strategy(group(deployment("a"), routing_strategy="lar1")) is not None


def test_set_strategy_is_remembered_on_the_router() -> None:
    router = group(deployment("a"))
    assert _compat.installed_strategy(router) is None

    class Fixed:
        async def async_get_available_deployment(self, model, **kwargs):
            return _compat.group_deployments(router, model)[0]

        def get_available_deployment(self, model, **kwargs):
            return _compat.group_deployments(router, model)[0]

    strategy = Fixed()
    _compat.set_strategy(router, strategy)
    assert _compat.installed_strategy(router) is strategy


def test_resolve_secret_reads_os_environ_like_litellm(monkeypatch) -> None:
    monkeypatch.setenv("UNIROUTE_TEST_URL", "redis://127.0.0.1:1/0")
    assert _compat.resolve_secret("os.environ/UNIROUTE_TEST_URL") == "redis://127.0.0.1:1/0"
    assert _compat.resolve_secret("redis://x") == "redis://x" and _compat.resolve_secret(None) is None


class _Failures(CustomLogger):
    """Keeps LiteLLM's failure log events and, per failed attempt, its deployment hook's kwargs."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []
        self.attempts: list[Mapping] = []

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.events.append(kwargs)

    async def async_post_call_failure_deployment_hook(
        self, request_data, exception, call_type, fallback_depth=None
    ) -> None:
        self.attempts.append(request_data)


async def test_failure_events_name_the_deployment_and_carry_the_metadata() -> None:
    seen = _Failures()
    before = list(litellm.callbacks)
    litellm.callbacks.append(seen)
    try:
        metadata = {"marker": object()}
        with pytest.raises(litellm.RateLimitError):
            await group(deployment("bad", fail=True)).acompletion(
                model="demo", messages=MESSAGES, metadata=metadata
            )
        for _ in range(250):  # LiteLLM may log the failure on a task of its own
            if seen.events:
                break
            await asyncio.sleep(0.02)
        assert any(_compat.failed_deployment(kw) == "bad" for kw in seen.events)
        assert any(_compat.failure_metadata(kw).get("marker") is metadata["marker"] for kw in seen.events)
        assert _compat.failed_deployment({}) is None and _compat.failure_metadata({}) == {}
    finally:
        litellm.callbacks[:] = before


async def test_the_deployment_hook_names_each_failed_attempt_and_carries_the_metadata() -> None:
    """Called once per failed attempt, inline (the proxy's failure log comes once per request)."""
    seen = _Failures()
    before = list(litellm.callbacks)
    litellm.callbacks.append(seen)
    try:
        metadata = {"marker": object()}
        router = group(deployment("bad-1", fail=True), deployment("bad-2", fail=True), num_retries=1)
        with pytest.raises(litellm.RateLimitError):
            await router.acompletion(model="demo", messages=MESSAGES, metadata=metadata)
        failed = [_compat.attempt_deployment(kw) for kw in seen.attempts]
        assert len(failed) == 2 and set(failed) <= {"bad-1", "bad-2"}
        assert all(_compat.attempt_metadata(kw).get("marker") is metadata["marker"] for kw in seen.attempts)
        assert _compat.attempt_deployment({}) is None and _compat.attempt_metadata({}) == {}
    finally:
        litellm.callbacks[:] = before


def test_proxy_app_and_key_check() -> None:
    import litellm.proxy.proxy_server as proxy_server
    from litellm.proxy.auth.user_api_key_auth import user_api_key_auth

    assert _compat.proxy_app() is proxy_server.app
    assert inspect.signature(_compat.proxy_key_check()) == inspect.signature(user_api_key_auth)


CHEAP = deployment("cheap", input_cost_per_token=1e-9, output_cost_per_token=1e-9)
DEAR = deployment("dear", input_cost_per_token=1e-3, output_cost_per_token=1e-3)


class _AlwaysDear(litellm.router.CustomRoutingStrategyBase):
    async def async_get_available_deployment(self, model, **kwargs):
        return DEAR

    def get_available_deployment(self, model, **kwargs):
        return DEAR


def _own_picks(router: litellm.Router) -> tuple:
    """The router's own picks, after a strategy that always picks "dear" was set on it."""
    _compat.set_strategy(router, _AlwaysDear())
    return _compat.own_selectors(router)


@pytest.mark.parametrize("where", ["router", "routing group", "request"])
async def test_own_async_pick_is_by_litellms_strategy(where: str) -> None:
    """The groups uniroute leaves to LiteLLM get the pick of the strategy LiteLLM would use:
    the router's, the model's routing group's, or the one the request names."""
    settings: dict = {
        "router": {"routing_strategy": "cost-based-routing"},
        "routing group": {
            "routing_groups": [
                {"group_name": "by-cost", "models": ["demo"], "routing_strategy": "cost-based-routing"}
            ]
        },
        "request": {},
    }[where]
    _, own_async = _own_picks(group(CHEAP, DEAR, **settings))
    request = {"routing_strategy": "cost-based-routing"} if where == "request" else {}
    picks: Counter = Counter()
    for _ in range(20):
        picks[
            (await own_async(model="demo", messages=MESSAGES, request_kwargs=dict(request)))["model_info"][
                "id"
            ]
        ] += 1
    assert picks == {"cheap": 20}


@pytest.mark.parametrize("strategy", ["least-busy", "usage-based-routing", "cost-based-routing"])
def test_own_sync_pick_is_litellms(strategy: str) -> None:
    """Least-busy and usage-based pick the first of equals; cost-based has no sync pick, so
    LiteLLM answers that no deployment is available."""

    def picks(pick) -> Counter | str:
        try:
            return Counter(
                pick(model="demo", messages=MESSAGES, request_kwargs={})["model_info"]["id"]
                for _ in range(20)
            )
        except RouterRateLimitError:
            return "no deployment"

    own_sync, _ = _own_picks(group(CHEAP, DEAR, routing_strategy=strategy))
    plain = group(CHEAP, DEAR, routing_strategy=strategy)
    assert picks(own_sync) == picks(plain.get_available_deployment)
