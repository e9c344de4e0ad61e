"""Every place uniroute touches LiteLLM beyond its documented API, in one module.

The front door otherwise uses LiteLLM's public surface only (``CustomLogger``,
``CustomRoutingStrategyBase``, ``get_model_info``, the exception classes). What is here
reaches into underscore methods, internal modules (``litellm.router_utils.*``,
``litellm.router_strategy.*``, the proxy server's globals), patches the user's router, or
reads the router through whichever API the installed LiteLLM has: its entry points
(``registry()``, ``select()``, ``health()``, ``settings()``, ``register_plugin()``) since
1.109, which deprecated the members used before, and since 1.110 the Rust-backed core
behind them (``litellm.router_rust``) where no entry point serves: the sync healthy
deployments, and LiteLLM's own pick while a strategy is registered. Each function has its own test in
tests/integrations/test_litellm_compat.py, which ``make test-compat`` runs against the
oldest supported LiteLLM and ``make test-newest`` against the newest. When a
LiteLLM upgrade breaks the front door, the break is here.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, cast

import litellm

#: LiteLLM's router logger: what uniroute logs here shows in the proxy's log.
logger: logging.Logger = litellm._logging.verbose_router_logger

#: Strategies whose async path runs ``CustomLogger.async_filter_deployments``; any other
#: ``routing_strategy`` takes LiteLLM's sync path, which never calls the proxy callback.
#: Since 1.110 (its Rust-backed core) the legacy ``usage-based-routing`` calls it too.
ASYNC_FILTER_STRATEGIES = frozenset(
    {
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "cost-based-routing",
        "usage-based-routing-v2",
        "lar1",
    }
) | (frozenset({"usage-based-routing"}) if importlib.util.find_spec("litellm.router_rust") else frozenset())

#: The LiteLLM releases the router front doors support, as [first, end) (major, minor); kept
#: equal to the ``litellm`` extra's bounds in pyproject.toml (a test checks).
SUPPORTED: tuple[tuple[int, int], tuple[int, int]] = ((1, 104), (1, 111))

_PATCHED_FLAG = "_uniroute_recorded_methods"
_STRATEGY_ATTR = "_uniroute_strategy"


def check_version(version: str | None = None) -> None:
    """Raise ImportError, saying what to install, when LiteLLM is outside :data:`SUPPORTED`.

    ``version`` defaults to the installed distribution's (not known: no check). Both doors
    refuse at setup rather than fail request by request on a LiteLLM whose router
    internals this module has not been ported to.
    """
    if version is None:
        try:
            version = importlib.metadata.version("litellm")
        except importlib.metadata.PackageNotFoundError:
            return
    release = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    (first, end) = SUPPORTED
    if first <= release < end:
        return
    wanted = f"litellm>={first[0]}.{first[1]},<{end[0]}.{end[1]}"
    raise ImportError(
        f"uniroute's LiteLLM front doors support {wanted}; LiteLLM {version} is installed. "
        f"Install a supported release: pip install '{wanted}'"
    )


def _entry_points(litellm_router: Any) -> bool:
    """Whether the router reads through LiteLLM's entry points (``registry()``, ``select()``...,
    since 1.109; the members used before warn that they are deprecated there)."""
    return callable(getattr(litellm_router, "register_plugin", None))


def _rust_core(litellm_router: Any) -> Any:
    """The Rust-backed core a LiteLLM >= 1.110 Router delegates to, or ``None`` before 1.110.

    That core hands every pick of every group to a registered strategy and takes no
    ``None`` back, and its sync selection has no entry point.
    """
    core = vars(litellm_router).get("_core")
    return core if type(core).__module__.startswith("litellm.router_rust") else None


def _context(litellm_router: Any) -> Any:
    """What LiteLLM's router functions take first: the router, or since 1.109 its ``RoutingContext``."""
    if not _entry_points(litellm_router):
        return litellm_router
    from litellm.router_api import RoutingContext  # type: ignore[import-not-found,unused-ignore]  # since 1.109

    return RoutingContext(litellm_router)


def group_deployments(litellm_router: Any, model: str | None = None) -> list[dict[str, Any]]:
    """The deployments of group ``model`` (its aliases and wildcards resolved), or every one."""
    if _entry_points(litellm_router):
        found = litellm_router.registry().deployments(model)
    else:
        found = litellm_router.get_model_list(model_name=model)
    return list(found or [])


def _alias_resolver(litellm_router: Any) -> Callable[[str], str | None]:
    if _entry_points(litellm_router):
        registry = litellm_router.registry()
        return lambda name: registry.resolve(name, kind="alias")
    resolve = getattr(litellm_router, "get_model_from_alias", None)  # _get_model_from_alias before 1.106
    return cast(Callable[[str], "str | None"], resolve or litellm_router._get_model_from_alias)


def shuffle(
    litellm_router: Any, deployments: Sequence[dict[str, Any]], model: str, request_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """LiteLLM's ``simple-shuffle`` pick: request weights, ``weight``, ``rpm``, ``tpm``, else uniform."""
    from litellm.router_strategy.simple_shuffle import simple_shuffle

    return simple_shuffle(
        resolve_model_alias=_alias_resolver(litellm_router),
        healthy_deployments=deployments,
        model=model,
        request_kwargs=request_kwargs,
    )


def failed_deployment_ids(request_kwargs: Mapping[str, Any]) -> list[str]:
    """Ids of the deployments that already failed this request, oldest first.

    LiteLLM's retry and fallback loop appends one record per failed attempt to the
    request metadata's ``previous_models``.
    """
    failed: list[str] = []
    for key in ("metadata", "litellm_metadata"):
        bucket = request_kwargs.get(key)
        records = bucket.get("previous_models") if isinstance(bucket, Mapping) else None
        for record in records if isinstance(records, (list, tuple)) else ():
            dep_id = record.get("deployment_id") if isinstance(record, Mapping) else None
            if isinstance(dep_id, str) and dep_id not in failed:
                failed.append(dep_id)
    return failed


async def async_healthy_deployments(
    litellm_router: Any,
    model: str,
    messages: Any,
    input: Any,
    specific_deployment: bool | None,
    request_kwargs: dict[str, Any],
) -> list[dict[str, Any]] | dict[str, Any]:
    """The deployments LiteLLM would choose among (every filter it applies), or the one named."""
    if _entry_points(litellm_router):
        return await litellm_router.select(
            model,
            request_kwargs,
            kind="healthy",
            messages=messages,
            input=input,
            specific_deployment=specific_deployment,
        )
    return await litellm_router.async_get_healthy_deployments(
        model=model,
        request_kwargs=request_kwargs,
        messages=messages,
        input=input,
        specific_deployment=specific_deployment,
    )


def healthy_deployments(
    litellm_router: Any,
    model: str,
    messages: Any,
    input: Any,
    specific_deployment: bool | None,
    request_kwargs: dict[str, Any],
) -> tuple[str, list[dict[str, Any]] | dict[str, Any]]:
    """Sync counterpart of :func:`async_healthy_deployments`: LiteLLM's sync filters
    (cooldowns, blocked, pre-call checks, ``order``); raises LiteLLM's own error when
    none is left."""
    from litellm.types.router import RouterRateLimitError
    from litellm.utils import get_order_filtered_deployments

    core = _rust_core(litellm_router)
    if core is not None:
        from litellm.router_rust.core import _Selection  # type: ignore[import-not-found,unused-ignore]  # since 1.110

        selection = _Selection(core, model, request_kwargs, "healthy", specific_deployment, messages, input)
        return model, cast("list[dict[str, Any]] | dict[str, Any]", selection.run_sync())
    model, found = litellm_router._common_checks_available_deployment(
        model=model,
        messages=messages,
        input=input,
        specific_deployment=specific_deployment,
        request_kwargs=request_kwargs,
    )
    if isinstance(found, dict):
        return model, found
    if _entry_points(litellm_router):
        pre_call_checks = litellm_router.settings().enable_pre_call_checks
    else:
        pre_call_checks = litellm_router.enable_pre_call_checks
    cooling = cooling_down(litellm_router)
    healthy = litellm_router._filter_blocked_deployments(
        litellm_router._filter_cooldown_deployments(healthy_deployments=found, cooldown_deployments=cooling)
    )
    if pre_call_checks and (messages is not None or input is not None):
        healthy = _pre_call_checked(litellm_router, model, healthy, found, messages, input, request_kwargs)
    healthy = get_order_filtered_deployments(
        list(healthy), target_order=request_kwargs.pop("_target_order", None)
    )
    if not healthy:
        if _entry_points(litellm_router):
            model_ids = litellm_router.registry().names(model, kind="ids")
            cooldowns = litellm_router.health().cooldowns
        else:
            model_ids = litellm_router.get_model_ids(model_name=model)
            cooldowns = litellm_router.cooldown_cache
        raise RouterRateLimitError(
            model=model,
            cooldown_time=cooldowns.get_min_cooldown(model_ids=model_ids, parent_otel_span=None),
            enable_pre_call_checks=pre_call_checks,
            cooldown_list=cooling,
            model_ids=model_ids,
        )
    return model, list(healthy)


def _pre_call_checked(
    litellm_router: Any,
    model: str,
    healthy: list[dict[str, Any]],
    group: list[dict[str, Any]],
    messages: Any,
    input: Any,
    request_kwargs: dict[str, Any],
) -> list[dict[str, Any]]:
    """What LiteLLM's pre-call checks (context window, rpm, region) keep of ``healthy``."""
    since_1_108: dict[str, Any] = {}
    if "request_deployments" in inspect.signature(litellm_router._pre_call_checks).parameters:
        since_1_108["request_deployments"] = group  # the group's deployments, as LiteLLM passes them
    return list(
        litellm_router._pre_call_checks(
            model=model,
            healthy_deployments=healthy,
            messages=messages,
            input=input,
            request_kwargs=request_kwargs,
            **since_1_108,
        )
    )


def cooling_down(litellm_router: Any) -> list[str]:
    """Ids of the router's deployments in cooldown (named ``_get_cooldown_deployments`` before 1.106)."""
    from litellm.router_utils import cooldown_handlers

    get = getattr(cooldown_handlers, "get_cooldown_deployments", None)
    if get is None:
        get = cooldown_handlers._get_cooldown_deployments
    return list(get(_context(litellm_router), None))


def own_selectors(litellm_router: Any) -> tuple[Callable[..., Any], Callable[..., Awaitable[Any]]]:
    """The router's own picks, sync and async, for the groups uniroute does not route.

    They take ``get_available_deployment``'s keywords and keep everything LiteLLM's pick
    does (pre-routing, filters, strategy, weights, routing groups). Before 1.110 they are
    the router's class methods, which ``Router.set_custom_routing_strategy`` shadows with
    instance attributes. Since 1.110 every pick goes to the registered strategy, so they
    run LiteLLM's selection on a view of its core that has none (:class:`_WithoutStrategy`).
    """
    core = _rust_core(litellm_router)
    if core is None:
        cls = type(litellm_router)
        return (
            cls.get_available_deployment.__get__(litellm_router, cls),
            cls.async_get_available_deployment.__get__(litellm_router, cls),
        )
    view = _WithoutStrategy(core)

    def own_sync(**pick: Any) -> Any:
        return view.selection("sync_pick", pick).run_sync()

    async def own_async(**pick: Any) -> Any:
        return await view.selection("pick", pick).run()

    return own_sync, own_async


class _WithoutStrategy:
    """LiteLLM >= 1.110's router core as it is with no custom strategy registered.

    A selection (``litellm.router_rust.core._Selection``) run on it is LiteLLM's own pick:
    its pre-routing step (``RustCore._pre_route``) runs here with this view as the core,
    which has no strategy to hand the pick to; everything else is the core's.
    """

    _custom_strategy = None

    def __init__(self, core: Any) -> None:
        self.__dict__.update(_core=core, _core_owner=vars(core).get("_core_owner"))
        self.__dict__["_pre_route"] = functools.partial(type(core)._pre_route, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_core"], name)

    def selection(self, kind: str, pick: Mapping[str, Any]) -> Any:
        """LiteLLM's selection of ``kind`` for ``get_available_deployment``'s keywords ``pick``."""
        from litellm.router_rust.core import _Selection  # type: ignore[import-not-found,unused-ignore]  # since 1.110

        request = pick.get("request_kwargs")
        return _Selection(
            cast(Any, self),  # stands in for the RustCore a selection takes
            pick["model"],
            {} if request is None else request,
            kind,
            pick.get("specific_deployment", False),
            pick.get("messages"),
            pick.get("input"),
        )


def set_strategy(litellm_router: Any, strategy: Any) -> None:
    """Make ``strategy`` choose the router's deployments (LiteLLM's documented hook), and
    remember it on the router (feedback finds it there)."""
    if _entry_points(litellm_router):
        litellm_router.register_plugin(strategy)
    else:
        litellm_router.set_custom_routing_strategy(strategy)
    setattr(litellm_router, _STRATEGY_ATTR, strategy)


def registered_strategy(litellm_router: Any) -> Any:
    """The custom routing strategy registered on the router (uniroute's or another), or ``None``.

    Where LiteLLM keeps it differs by release: on the Rust core (1.110), or as the bound
    ``get_available_deployment`` set on the router (before 1.109) or on its Python core
    (1.109, wrapped for pod discovery).
    """
    core = _rust_core(litellm_router)
    if core is not None:
        return core._custom_strategy
    holder = vars(litellm_router).get("_core", litellm_router)
    pick = vars(holder).get("get_available_deployment")
    return None if pick is None else getattr(inspect.unwrap(pick), "__self__", None)


def installed_strategy(litellm_router: Any) -> Any:
    """The strategy :func:`set_strategy` set on ``litellm_router``, or ``None``."""
    return getattr(litellm_router, _STRATEGY_ATTR, None)


#: The router's sync request methods uniroute wraps (each also in its ``a``-prefixed async
#: form), with the key LiteLLM carries the request's metadata under: the Responses API goes
#: through the router's generic API path, which keeps it in ``litellm_metadata``.
REQUEST_METHODS: Mapping[str, Literal["metadata", "litellm_metadata"]] = {
    "completion": "metadata",
    "text_completion": "metadata",
    "embedding": "metadata",
    "responses": "litellm_metadata",
}


def wrap_methods(
    litellm_router: Any,
    sync_wrapper: Callable[[Callable[..., Any], str], Callable[..., Any]],
    async_wrapper: Callable[[Callable[..., Awaitable[Any]], str], Callable[..., Awaitable[Any]]],
) -> None:
    """Wrap the router's request methods once (instance attributes; the class is untouched).

    Each wrapper gets the method and its metadata key (:data:`REQUEST_METHODS`).
    """
    if getattr(litellm_router, _PATCHED_FLAG, False):
        return
    for name, key in REQUEST_METHODS.items():
        if callable(getattr(litellm_router, name, None)):
            setattr(litellm_router, name, sync_wrapper(getattr(litellm_router, name), key))
        if callable(getattr(litellm_router, "a" + name, None)):
            setattr(litellm_router, "a" + name, async_wrapper(getattr(litellm_router, "a" + name), key))
    setattr(litellm_router, _PATCHED_FLAG, True)


def hidden_params(response: Any) -> dict[str, Any] | None:
    """``response._hidden_params`` (where LiteLLM puts ``model_id`` and call details)."""
    hidden = getattr(response, "_hidden_params", None)
    return hidden if isinstance(hidden, dict) else None


@functools.cache
def _takes_request_deployments(tag_filter: Callable[..., Any]) -> bool:
    """Whether LiteLLM's tag filter needs ``request_deployments`` (a required keyword since 1.108)."""
    return "request_deployments" in inspect.signature(tag_filter).parameters


async def tag_and_order_filtered(
    litellm_router: Any, model: str, deployments: list[Any], request_kwargs: dict[str, Any]
) -> list[Any]:
    """What LiteLLM's tag and ``order`` filters will keep of ``deployments``.

    ``_target_order`` stays on the request for LiteLLM's own filter (which pops it); the
    tag filter notes its match in the metadata, as it does again when LiteLLM runs it.

    The proxy callback runs before these filters; ranking only what they keep means
    uniroute never hands LiteLLM a choice its tags or ``order`` then remove.
    """
    from litellm.router_strategy import tag_based_routing
    from litellm.utils import get_order_filtered_deployments

    # typed loosely: since 1.109 a decorator keeps the old keyword working and hides the signature
    tag_filter = cast(Callable[..., Awaitable[Any]], tag_based_routing.get_deployments_for_tag)
    metadata_key: Literal["metadata", "litellm_metadata"] = (
        "litellm_metadata" if "litellm_metadata" in request_kwargs else "metadata"
    )
    since_1_108: dict[str, Any] = {}
    if _takes_request_deployments(tag_filter):
        # LiteLLM >= 1.108 also reads the group's deployments (their `allow_fail_open`)
        since_1_108["request_deployments"] = list(deployments)
    tagged = await tag_filter(
        _context(litellm_router),
        model=model,
        healthy_deployments=list(deployments),
        request_kwargs=request_kwargs,
        metadata_variable_name=metadata_key,
        **since_1_108,
    )
    return get_order_filtered_deployments(
        list(cast(list, tagged)), target_order=request_kwargs.get("_target_order")
    )


def proxy_llm_router() -> Any:
    """The running proxy's ``litellm.Router`` (``None`` outside a proxy or before it is built)."""
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    return getattr(proxy_server, "llm_router", None)


def proxy_config() -> Mapping[str, Any] | None:
    """The config the proxy is loading (``model_list``, ``router_settings``...), if any.

    The callback is built while the proxy reads ``litellm_settings``, before its router
    exists; the parsed config is already stored on ``proxy_server.proxy_config``.
    """
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    holder = getattr(proxy_server, "proxy_config", None)
    get_state = getattr(holder, "get_config_state", None)
    if get_state is None:
        return None
    state = get_state()
    return state if isinstance(state, Mapping) and state else None


def proxy_app() -> Any:
    """The running proxy's FastAPI ``app`` (``None`` outside a proxy)."""
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    return getattr(proxy_server, "app", None)


def proxy_key_check() -> Callable[..., Awaitable[Any]]:
    """LiteLLM's ``user_api_key_auth`` dependency, with every refusal answered 401 (403 kept).

    It takes the same parameters (the key headers LiteLLM reads), so FastAPI injects them
    as for LiteLLM's own routes. LiteLLM itself answers a missing key with a 500 when
    ``prisma`` is not installed and an unknown key with a 400 when no database is
    connected; here anything but a successful key check is a 401. ``Authorization:
    Bearer <master key>`` is accepted at once (compared in constant time, as LiteLLM
    does): the full check costs about as much as the rest of a feedback request.
    """
    import inspect
    import secrets

    from fastapi import HTTPException
    from litellm.proxy.auth.user_api_key_auth import user_api_key_auth

    async def key_check(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request")
        given = request.headers.get("authorization", "") if request is not None else ""
        master = getattr(sys.modules.get("litellm.proxy.proxy_server"), "master_key", None)
        if isinstance(master, str) and master and given.startswith("Bearer "):
            if secrets.compare_digest(given[len("Bearer ") :].strip().encode(), master.encode()):
                return None
        try:
            return await user_api_key_auth(*args, **kwargs)
        except Exception as exc:
            code = getattr(exc, "status_code", None) or getattr(exc, "code", None)
            status = 403 if str(code) == "403" else 401
            raise HTTPException(
                status_code=status,
                detail="uniroute: a valid proxy key is required (Authorization: Bearer <key>)",
            ) from exc

    key_check.__signature__ = inspect.signature(user_api_key_auth)  # type: ignore[attr-defined]  # FastAPI reads __signature__
    return key_check


def resolve_secret(value: Any) -> Any:
    """A config value with LiteLLM's ``os.environ/NAME`` indirection resolved (other values unchanged)."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return litellm.get_secret(value)
    return value


def failed_deployment(kwargs: Mapping[str, Any]) -> str | None:
    """The id of the deployment a failure event is about (``litellm_params.model_info.id``)."""
    params = kwargs.get("litellm_params")
    return _model_info_id(params) if isinstance(params, Mapping) else None


def attempt_deployment(request_data: Mapping[str, Any]) -> str | None:
    """The id of the deployment a failed attempt went to (``model_info.id`` of the attempt's kwargs).

    ``request_data`` is what ``CustomLogger.async_post_call_failure_deployment_hook`` gets:
    LiteLLM calls it once per failed deployment attempt (first try, each retry, each
    fallback), with the kwargs the Router gave that attempt, metadata included.
    """
    return _model_info_id(request_data)


def attempt_metadata(request_data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The metadata of a failed attempt's kwargs: ``litellm_metadata`` when the call has it, else
    ``metadata`` (the Router's own rule for where it writes)."""
    bucket = request_data.get("litellm_metadata" if "litellm_metadata" in request_data else "metadata")
    return bucket if isinstance(bucket, Mapping) else {}


def _model_info_id(section: Mapping[str, Any]) -> str | None:
    info = section.get("model_info")
    dep_id = info.get("id") if isinstance(info, Mapping) else None
    return dep_id if isinstance(dep_id, str) else None


def failure_metadata(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The request metadata a failure event carries (``litellm_params.metadata``)."""
    params = kwargs.get("litellm_params")
    metadata = params.get("metadata") if isinstance(params, Mapping) else None
    return metadata if isinstance(metadata, Mapping) else {}
