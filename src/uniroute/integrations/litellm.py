"""LiteLLM front door: uniroute picks the deployment for each request.

Two ways in, one code path (:class:`DeploymentRanker`):

* **SDK** - :func:`install` sets a :class:`UnirouteStrategy` on a ``litellm.Router``
  (``Router.set_custom_routing_strategy``). The strategy asks the router for its
  healthy deployments (cooldowns, blocked and team filters applied), ranks them and
  returns the best, so LiteLLM's retries land on the next-best healthy deployment.
* **Proxy** - ``litellm_settings.callbacks: ["uniroute.integrations.litellm.proxy_router"]``
  loads :class:`UnirouteProxyRouter`, a ``CustomLogger`` whose ``async_filter_deployments``
  narrows LiteLLM's healthy list to the best deployment. It runs after LiteLLM's
  health-check, cooldown, blocked and team filters on every attempt, which is why
  retries, cooldowns and fallbacks keep working (see docs/litellm.md).

Deployments map to router profiles by ``model_info.uniroute_profile``, else
``model_info.id``, else ``litellm_params.model``. The cost of a deployment is its
profile's $ per request, or its own prices (``input_cost_per_token`` /
``output_cost_per_token`` in ``model_info`` or ``litellm_params``, then LiteLLM's price
map) times the request's expected tokens; see :class:`DeploymentRanker`.

Per request, ``metadata={"uniroute": {"lambda": 0.2, "candidates": [...]}}`` (or
``"operating_point": name``) overrides the defaults. The decision is written to
the request's metadata under ``"uniroute_decision"``, to ``response._hidden_params
["uniroute"]`` for routers set up with :func:`install`, and to ``x-uniroute-*``
response headers on the proxy.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import litellm
from litellm.integrations.custom_logger import CustomLogger
from litellm.types.router import CustomRoutingStrategyBase

from ..engine.router import Router
from ..engine.text import Prompt
from ..exceptions import InputError, StateError, UniRouteError, UnknownModelError

__all__ = [
    "CONTROL_KEY",
    "DECISION_KEY",
    "DeploymentRanker",
    "UnirouteProxyRouter",
    "UnirouteStrategy",
    "cost_per_request",
    "find_decision",
    "install",
]

CONTROL_KEY = "uniroute"
DECISION_KEY = "uniroute_decision"
STATE_ENV = "UNIROUTE_STATE"
CONTROL_KEYS = frozenset({"lambda", "candidates", "operating_point"})
SETTINGS_KEYS = frozenset({"state", "lambda", "operating_points", "cost", "expected_output_tokens"})
COST_SOURCES = ("auto", "profile", "deployment")
CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 256
RANKING_TOP = 5
NO_PROFILE_NOTE = "no deployment of this group has a uniroute profile; LiteLLM chose"
FALLBACK_NOTE = "no profiled deployment is healthy; fell back to one without a profile"
HEADER_PROFILE = "x-uniroute-profile"
HEADER_RANK = "x-uniroute-rank"
HEADER_DECISION = "x-uniroute-decision"

CostSource = Literal["auto", "profile", "deployment"]
Prices = tuple[float, float]


def cost_per_request(model: str, input_tokens: float, output_tokens: float) -> float:
    """$ per request of ``model`` from LiteLLM's price map.

    ``input_cost_per_token * input_tokens + output_cost_per_token * output_tokens``,
    with the prices of ``litellm.get_model_info(model)`` (the map bundled with
    LiteLLM when ``LITELLM_LOCAL_MODEL_COST_MAP=True``). Use it to give
    :meth:`uniroute.Router.add_model` a cost: measure the mean input and output
    tokens of the model on the validation set, then price them.

    Examples
    --------
    >>> round(cost_per_request("gpt-4o-mini", 1000, 200), 6)
    0.00027
    """
    if not (input_tokens >= 0 and output_tokens >= 0):
        raise InputError(
            f"token counts must be >= 0, got input_tokens={input_tokens!r}, output_tokens={output_tokens!r}"
        )
    prices = _price_map_prices(model)
    if prices is None:
        raise InputError(
            f"LiteLLM's price map has no prices for {model!r}; give the cost yourself, or set "
            "input_cost_per_token/output_cost_per_token on the deployment"
        )
    return prices[0] * input_tokens + prices[1] * output_tokens


@functools.lru_cache(maxsize=1024)
def _price_map_prices(model: str) -> Prices | None:
    try:
        info = litellm.get_model_info(model=model)
    except Exception:  # litellm raises a bare Exception for models it does not map
        return None
    inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if inp is None and out is None:
        return None
    return float(inp or 0.0), float(out or 0.0)


def _declared_prices(deployment: Mapping[str, Any]) -> Prices | None:
    """The deployment's own prices: ``model_info`` first, then ``litellm_params``."""
    for section in ("model_info", "litellm_params"):
        source = deployment.get(section) or {}
        inp, out = source.get("input_cost_per_token"), source.get("output_cost_per_token")
        if inp is not None or out is not None:
            return float(inp or 0.0), float(out or 0.0)
    return None


def _deployment_id(deployment: Mapping[str, Any]) -> str:
    return str((deployment.get("model_info") or {}).get("id", ""))


# ---- request text ------------------------------------------------------------------

_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})


def _openai_message(item: Any) -> Any:
    """A chat message dict in OpenAI form (Responses API text parts become ``text``)."""
    if not isinstance(item, Mapping):
        return item
    content = item.get("content")
    if isinstance(content, list):
        parts = [
            {"type": "text", "text": part.get("text")}
            if isinstance(part, Mapping) and part.get("type") in _TEXT_PART_TYPES
            else part
            for part in content
        ]
        return {**item, "content": parts}
    return item


def request_prompt(messages: Sequence[Any] | None, input: Any) -> Prompt:
    """What the engine routes on: chat ``messages``, else the ``input`` of an
    embedding / Responses call (strings joined; token ids carry no text)."""
    if messages is not None:
        return [_openai_message(m) for m in messages]
    if input is None:
        return ""
    if isinstance(input, (str, bytes)):
        return input
    if isinstance(input, Sequence):
        if all(isinstance(x, str) for x in input):
            return "\n".join(input)
        if any(isinstance(x, Mapping) for x in input):
            return [_openai_message(m) for m in input if isinstance(m, Mapping)]
    return ""


def _request_chars(prompt: Prompt) -> int:
    if isinstance(prompt, (str, bytes)):
        return len(prompt)
    total = 0
    for message in prompt:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text") or "") for part in content if isinstance(part, Mapping))
    return total


# ---- request control and decision ---------------------------------------------------


def _metadata_buckets(request_kwargs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    buckets = []
    for key in ("metadata", "litellm_metadata"):
        bucket = request_kwargs.get(key)
        if isinstance(bucket, Mapping):
            buckets.append(bucket)
            requester = bucket.get("requester_metadata")
            if isinstance(requester, Mapping):
                buckets.append(requester)
    return buckets


def _writable_metadata(request_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The metadata dict LiteLLM carries through the call (same rule as the Router)."""
    key = "litellm_metadata" if "litellm_metadata" in request_kwargs else "metadata"
    bucket = request_kwargs.get(key)
    if not isinstance(bucket, dict):
        bucket = {}
        request_kwargs[key] = bucket
    return bucket


def find_decision(request_kwargs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The decision recorded on a request's metadata, if any."""
    for bucket in _metadata_buckets(request_kwargs or {}):
        decision = bucket.get(DECISION_KEY)
        if isinstance(decision, dict):
            return decision
    return None


def _bad_request(model: str, exc: UniRouteError) -> litellm.BadRequestError:
    return litellm.BadRequestError(message=f"uniroute: {exc}", model=model, llm_provider="uniroute")


@dataclass(frozen=True)
class _Target:
    """What uniroute knows about one deployment: its profile and its own prices."""

    profile: str | None
    prices: Prices | None


class _Row(NamedTuple):
    score: float
    error: float
    cost: float
    deployment: dict[str, Any]
    profile: str


@dataclass(frozen=True)
class _Control:
    lam: float
    candidates: frozenset[str] | None


def _check_lambda(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number >= 0, got {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise InputError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


class DeploymentRanker:
    """Ranks a LiteLLM model group's deployments for one request.

    Shared by :class:`UnirouteStrategy` (SDK) and :class:`UnirouteProxyRouter` (proxy).

    Parameters
    ----------
    engine : uniroute.Router
        A fitted router whose profiles are named after deployments (see module doc).
    lam : float or str, default=0.0
        Default λ (error points per $ per request), or the name of an operating point.
    operating_points : mapping of str to float, optional
        Named λ values a request can pick with ``{"operating_point": name}``.
    cost : {"auto", "profile", "deployment"}, default="auto"
        Where a deployment's $ per request comes from. ``"profile"``: the profile's
        cost. ``"auto"``: the deployment's own ``input_cost_per_token`` /
        ``output_cost_per_token`` (``model_info``, then ``litellm_params``) if it sets
        them, else the profile's cost. ``"deployment"``: like ``"auto"``, then
        LiteLLM's price map for ``model_info.base_model`` or ``litellm_params.model``,
        then the profile's cost.
        Prices are multiplied by the request's input tokens (characters / 4) and
        ``expected_output_tokens``.
    expected_output_tokens : int, default=256
        Output tokens assumed when pricing a request from per-token prices.

    Notes
    -----
    Deployments without a profile follow the engine's ``unknown_models`` policy:
    with ``"skip"`` they are ranked after every profiled deployment (used only when
    none of those is healthy) with a one-time warning; with ``"error"`` the request
    fails. A group with no profiled deployment at all is left to LiteLLM.
    """

    def __init__(
        self,
        engine: Router,
        lam: float | str = 0.0,
        operating_points: Mapping[str, float] | None = None,
        cost: CostSource = "auto",
        expected_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ):
        if not isinstance(engine, Router):
            raise InputError(f"engine must be a uniroute.Router, got {type(engine).__name__}")
        if not engine.is_fitted:
            raise InputError("the uniroute router is not fitted; fit it or load a saved state")
        if cost not in COST_SOURCES:
            raise InputError(f"cost must be one of {list(COST_SOURCES)}, got {cost!r}")
        if isinstance(expected_output_tokens, bool) or not (
            isinstance(expected_output_tokens, int) and expected_output_tokens >= 0
        ):
            raise InputError(f"expected_output_tokens must be an int >= 0, got {expected_output_tokens!r}")
        self.engine = engine
        self.operating_points = {
            str(name): _check_lambda(value, f"operating point {name!r}")
            for name, value in (operating_points or {}).items()
        }
        self.lam = self._named_lambda(lam) if isinstance(lam, str) else _check_lambda(lam, "lam")
        self.cost = cost
        self.expected_output_tokens = expected_output_tokens
        self._warned: set[str] = set()

    def _named_lambda(self, name: str) -> float:
        if name not in self.operating_points:
            raise InputError(f"unknown operating point {name!r}; defined: {sorted(self.operating_points)}")
        return self.operating_points[name]

    # ---- per-request control --------------------------------------------------------

    def control(self, request_kwargs: Mapping[str, Any]) -> _Control:
        """λ and candidate names for a request, from ``metadata["uniroute"]`` (validated)."""
        raw = None
        for bucket in _metadata_buckets(request_kwargs):
            if CONTROL_KEY in bucket:
                raw = bucket[CONTROL_KEY]
                break
        if raw is None:
            return _Control(self.lam, None)
        if not isinstance(raw, Mapping):
            raise InputError(
                f"metadata[{CONTROL_KEY!r}] must be an object like {{'lambda': 0.2}}, got {raw!r}"
            )
        unknown = sorted(set(raw) - CONTROL_KEYS)
        if unknown:
            raise InputError(
                f"unknown key(s) {unknown} in metadata[{CONTROL_KEY!r}]; allowed: {sorted(CONTROL_KEYS)}"
            )
        if "lambda" in raw and "operating_point" in raw:
            raise InputError(f"give 'lambda' or 'operating_point' in metadata[{CONTROL_KEY!r}], not both")
        lam = self.lam
        if "lambda" in raw:
            lam = _check_lambda(raw["lambda"], f"metadata[{CONTROL_KEY!r}]['lambda']")
        elif "operating_point" in raw:
            lam = self._named_lambda(str(raw["operating_point"]))
        candidates = raw.get("candidates")
        if candidates is not None:
            if (
                isinstance(candidates, str)
                or not isinstance(candidates, Sequence)
                or not candidates
                or not all(isinstance(c, str) for c in candidates)
            ):
                raise InputError(
                    f"metadata[{CONTROL_KEY!r}]['candidates'] must be a non-empty list of deployment "
                    f"ids or profile names, got {candidates!r}"
                )
            candidates = frozenset(candidates)
        return _Control(lam, candidates)

    # ---- deployments ----------------------------------------------------------------

    def target(self, deployment: Mapping[str, Any]) -> _Target:
        """The profile and prices of a deployment (read afresh: the proxy can edit deployments)."""
        model_info = deployment.get("model_info") or {}
        params = deployment.get("litellm_params") or {}
        profile = model_info.get("uniroute_profile")
        if profile is None:
            known = self.engine.models
            for name in (model_info.get("id"), params.get("model")):
                if name in known:
                    profile = name
                    break
        prices = None
        if self.cost != "profile":
            prices = _declared_prices(deployment)
        if prices is None and self.cost == "deployment":
            base = model_info.get("base_model") or params.get("model")
            prices = _price_map_prices(str(base)) if base else None
        return _Target(None if profile is None else str(profile), prices)

    def _unprofiled(self, model: str, deployment: Mapping[str, Any]) -> None:
        dep_id = _deployment_id(deployment)
        what = f"deployment {dep_id!r} ({(deployment.get('litellm_params') or {}).get('model')}) of {model!r}"
        if self.engine.unknown_models == "error":
            raise UnknownModelError(
                f"{what} has no uniroute profile; set model_info.uniroute_profile, add a profile "
                f"named after its id or model, or load the state with unknown_models='skip'"
            )
        if dep_id not in self._warned:
            self._warned.add(dep_id)
            warnings.warn(
                f"uniroute: {what} has no profile; it is used only when no profiled deployment is healthy",
                stacklevel=3,
            )

    # ---- ranking --------------------------------------------------------------------

    def rank(
        self,
        model: str,
        healthy: Sequence[dict[str, Any]],
        messages: Sequence[Any] | None,
        input: Any,
        request_kwargs: dict[str, Any],
        group: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Healthy deployments best first, or ``None`` if the group has no profile.

        ``group`` (all deployments of the model group, healthy or not) only sets the
        recorded rank: 1 means the engine's first choice was healthy and chosen.
        Writes the decision to the request's metadata. Raises ``litellm.BadRequestError``
        for bad per-request control or an unprofiled deployment under the ``"error"`` policy.
        """
        try:
            return self._rank(model, healthy, messages, input, request_kwargs, group)
        except (InputError, UnknownModelError) as exc:
            raise _bad_request(model, exc) from exc

    def _rank(
        self,
        model: str,
        healthy: Sequence[dict[str, Any]],
        messages: Sequence[Any] | None,
        input: Any,
        request_kwargs: dict[str, Any],
        group: Sequence[Mapping[str, Any]] | None,
    ) -> list[dict[str, Any]] | None:
        control = self.control(request_kwargs)
        targets: dict[str, _Target] = {}
        for d in [*healthy, *(group or ())]:
            targets.setdefault(_deployment_id(d), self.target(d))
        wanted = control.candidates

        def eligible(d: Mapping[str, Any]) -> bool:
            dep_id = _deployment_id(d)
            return wanted is None or dep_id in wanted or targets[dep_id].profile in wanted

        pool = [d for d in healthy if eligible(d)]
        if not pool:
            raise InputError(
                f"none of the candidates {sorted(wanted or ())} is a healthy deployment of {model!r}; "
                f"healthy: {[_deployment_id(d) for d in healthy]} "
                f"(profiles {sorted({str(targets[_deployment_id(d)].profile) for d in healthy})})"
            )
        healthy_ids = {_deployment_id(d) for d in pool}
        cooling = [d for d in (group or ()) if eligible(d) and _deployment_id(d) not in healthy_ids]
        profiled = [d for d in [*pool, *cooling] if targets[_deployment_id(d)].profile is not None]
        metadata = _writable_metadata(request_kwargs)
        if not profiled:
            if self.engine.unknown_models == "error":
                self._unprofiled(model, pool[0])
            metadata[DECISION_KEY] = {"model_group": model, "note": NO_PROFILE_NOTE}
            return None
        for d in pool:
            if targets[_deployment_id(d)].profile is None:
                self._unprofiled(model, d)
        prompt = request_prompt(messages, input)
        names = list(dict.fromkeys(str(targets[_deployment_id(d)].profile) for d in profiled))
        decision = self.engine.route(prompt, lam=0.0, candidates=names)
        errors = decision.expected_error
        n_in = _request_chars(prompt) / CHARS_PER_TOKEN
        rows = []
        for d in profiled:
            target = targets[_deployment_id(d)]
            if target.profile in errors:  # else: a named profile the engine skipped
                cost = self._cost(target, n_in)
                error = errors[target.profile]
                rows.append(_Row(error + control.lam * cost, error, cost, d, target.profile))
        rows.sort(key=lambda row: row.score)
        rank, chosen = next(
            ((i + 1, row) for i, row in enumerate(rows) if _deployment_id(row.deployment) in healthy_ids),
            (None, None),
        )
        metadata[DECISION_KEY] = {
            "model_group": model,
            "deployment": _deployment_id(chosen.deployment if chosen else pool[0]),
            "profile": chosen.profile if chosen else None,
            "rank": rank,
            "expected_error": chosen.error if chosen else None,
            "cost": chosen.cost if chosen else None,
            "score": chosen.score if chosen else None,
            "lambda": control.lam,
            "cluster": decision.cluster,
            "note": decision.note if chosen else FALLBACK_NOTE,
            "ranking": [
                {
                    "deployment": _deployment_id(row.deployment),
                    "profile": row.profile,
                    "expected_error": row.error,
                    "cost": row.cost,
                    "score": row.score,
                    "healthy": _deployment_id(row.deployment) in healthy_ids,
                }
                for row in rows[:RANKING_TOP]
            ],
        }
        ordered = [row.deployment for row in rows if _deployment_id(row.deployment) in healthy_ids]
        ranked_ids = {_deployment_id(d) for d in ordered}
        return ordered + [d for d in pool if _deployment_id(d) not in ranked_ids]

    def _cost(self, target: _Target, input_tokens: float) -> float:
        if target.prices is not None:
            return target.prices[0] * input_tokens + target.prices[1] * self.expected_output_tokens
        return self.engine.profile(str(target.profile)).cost


def _load_engine(state: Router | str | Path, embedder: Any = None) -> Router:
    if isinstance(state, Router):
        return state
    return Router.load(state, embedder=embedder)


# ---- SDK ---------------------------------------------------------------------------


class UnirouteStrategy(CustomRoutingStrategyBase):
    """A ``litellm.Router`` routing strategy backed by a :class:`DeploymentRanker`.

    Set it with :func:`install` (or ``router.set_custom_routing_strategy``). Each
    call asks the router for its healthy deployments, so a deployment in cooldown
    is never chosen and LiteLLM's retry lands on the next-best one. A request for a
    specific deployment id (``model=<id>``) gets that deployment.

    Parameters
    ----------
    router : litellm.Router
    ranker : DeploymentRanker
    """

    def __init__(self, router: litellm.Router, ranker: DeploymentRanker):
        self.router = router
        self.ranker = ranker

    def _choose(
        self,
        model: str,
        healthy: list[dict[str, Any]],
        messages: Any,
        input: Any,
        request_kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        group = self.router.get_all_deployments(model_name=model)
        ordered = self.ranker.rank(model, healthy, messages, input, request_kwargs, group)
        return ordered[0] if ordered else random.choice(healthy)

    async def async_get_available_deployment(
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict | None = None,
    ) -> dict[str, Any]:
        request_kwargs = {} if request_kwargs is None else request_kwargs
        healthy = await self.router.async_get_healthy_deployments(
            model=model,
            request_kwargs=request_kwargs,
            messages=messages,
            input=input,
            specific_deployment=specific_deployment,
        )
        if isinstance(healthy, dict):
            return _named(model, healthy, request_kwargs)
        return self._choose(model, healthy, messages, input, request_kwargs)

    def get_available_deployment(
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict | None = None,
    ) -> dict[str, Any]:
        """Sync path: LiteLLM's own sync filters (cooldowns, blocked), then the ranking."""
        from litellm.router_utils.cooldown_handlers import get_cooldown_deployments
        from litellm.types.router import RouterRateLimitError

        router = self.router
        request_kwargs = {} if request_kwargs is None else request_kwargs
        model, found = router._common_checks_available_deployment(
            model=model,
            messages=messages,
            input=input,
            specific_deployment=specific_deployment,
            request_kwargs=request_kwargs,
        )
        if isinstance(found, dict):
            return _named(model, found, request_kwargs)
        cooling = get_cooldown_deployments(litellm_router_instance=router, parent_otel_span=None)
        healthy = router._filter_blocked_deployments(
            router._filter_cooldown_deployments(healthy_deployments=found, cooldown_deployments=cooling)
        )
        if not healthy:
            model_ids = router.get_model_ids(model_name=model)
            raise RouterRateLimitError(
                model=model,
                cooldown_time=router.cooldown_cache.get_min_cooldown(
                    model_ids=model_ids, parent_otel_span=None
                ),
                enable_pre_call_checks=router.enable_pre_call_checks,
                cooldown_list=cooling,
                model_ids=model_ids,
            )
        return self._choose(model, list(healthy), messages, input, request_kwargs)


def _named(model: str, deployment: dict[str, Any], request_kwargs: dict[str, Any]) -> dict[str, Any]:
    _writable_metadata(request_kwargs)[DECISION_KEY] = {
        "model_group": model,
        "deployment": _deployment_id(deployment),
        "note": "the request named this deployment; uniroute did not rank",
    }
    return deployment


def _attach_decision(response: Any, metadata: Mapping[str, Any]) -> Any:
    decision = metadata.get(DECISION_KEY)
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(decision, dict) and isinstance(hidden, dict):
        hidden["uniroute"] = decision
    return response


def _recording_sync(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        metadata = _writable_metadata(kwargs)
        return _attach_decision(method(*args, **kwargs), metadata)

    return call


def _recording_async(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        metadata = _writable_metadata(kwargs)
        return _attach_decision(await method(*args, **kwargs), metadata)

    return call


def install(
    router: litellm.Router,
    state: Router | str | Path,
    *,
    lam: float | str = 0.0,
    operating_points: Mapping[str, float] | None = None,
    cost: CostSource = "auto",
    expected_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    embedder: Any = None,
) -> UnirouteStrategy:
    """Route ``router``'s requests with uniroute; returns the strategy it set.

    ``state`` is a fitted :class:`uniroute.Router` or the path of a saved one
    (``embedder`` as in :meth:`uniroute.Router.load`). The other arguments are
    those of :class:`DeploymentRanker`. The router's ``completion``, ``acompletion``,
    ``embedding`` and ``aembedding`` also copy each decision into the response's
    ``_hidden_params["uniroute"]``.

    Examples
    --------
    >>> import litellm, uniroute.integrations.litellm as ul  # doctest: +SKIP
    >>> router = litellm.Router(model_list=[...])  # doctest: +SKIP
    >>> ul.install(router, "router-state/", lam=20.0)  # doctest: +SKIP
    """
    ranker = DeploymentRanker(
        _load_engine(state, embedder), lam, operating_points, cost, expected_output_tokens
    )
    strategy = UnirouteStrategy(router, ranker)
    router.set_custom_routing_strategy(strategy)
    if not getattr(router, "_uniroute_records_decisions", False):
        for name in ("completion", "embedding"):
            setattr(router, name, _recording_sync(getattr(router, name)))
        for name in ("acompletion", "aembedding"):
            setattr(router, name, _recording_async(getattr(router, name)))
        router._uniroute_records_decisions = True
    return strategy


# ---- proxy -------------------------------------------------------------------------


class UnirouteProxyRouter(CustomLogger):
    """LiteLLM proxy callback: narrows each request's healthy deployments to uniroute's pick.

    Configure it in the proxy's ``config.yaml``::

        litellm_settings:
          callbacks: ["uniroute.integrations.litellm.proxy_router"]
        callback_settings:
          uniroute:
            state: /path/to/router-state      # or the env var UNIROUTE_STATE
            lambda: 0.0                       # or an operating point's name
            operating_points: {balanced: 20.0}
            cost: auto                        # auto | profile | deployment
            expected_output_tokens: 256

    Responses carry ``x-uniroute-profile``, ``x-uniroute-rank`` and
    ``x-uniroute-decision`` (JSON) headers.
    """

    def __init__(self, ranker: DeploymentRanker):
        super().__init__()
        self.ranker = ranker

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> UnirouteProxyRouter:
        """Build from ``callback_settings.uniroute`` (default: LiteLLM's loaded settings).

        The state path is ``settings["state"]``, else ``$UNIROUTE_STATE``; a missing or
        unreadable state raises :class:`~uniroute.StateError` naming the path.
        """
        if settings is None:
            settings = (getattr(litellm, "callback_settings", None) or {}).get(CONTROL_KEY) or {}
        if not isinstance(settings, Mapping):
            raise InputError(f"callback_settings.{CONTROL_KEY} must be a mapping, got {settings!r}")
        unknown = sorted(set(settings) - SETTINGS_KEYS)
        if unknown:
            raise InputError(
                f"unknown key(s) {unknown} in callback_settings.{CONTROL_KEY}; "
                f"allowed: {sorted(SETTINGS_KEYS)}"
            )
        path = settings.get("state") or os.environ.get(STATE_ENV)
        if not path:
            raise StateError(
                f"no uniroute router state configured: set callback_settings.{CONTROL_KEY}.state "
                f"in the proxy config or the environment variable {STATE_ENV}"
            )
        try:
            engine = Router.load(Path(str(path)).expanduser())
        except StateError as exc:
            raise StateError(f"uniroute proxy router: cannot load router state {path}: {exc}") from exc
        ranker = DeploymentRanker(
            engine,
            lam=settings.get("lambda", 0.0),
            operating_points=settings.get("operating_points"),
            cost=settings.get("cost", "auto"),
            expected_output_tokens=settings.get("expected_output_tokens", DEFAULT_OUTPUT_TOKENS),
        )
        return cls(ranker)

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list,
        messages: list | None,
        request_kwargs: dict | None = None,
        parent_otel_span: Any = None,
    ) -> list[dict]:
        if not healthy_deployments:
            return healthy_deployments
        request_kwargs = {} if request_kwargs is None else request_kwargs
        input_ = None
        if messages is None:
            body = (request_kwargs.get("proxy_server_request") or {}).get("body") or {}
            input_ = body.get("input", request_kwargs.get("input"))
        ordered = self.ranker.rank(
            model, healthy_deployments, messages, input_, request_kwargs, _proxy_group(model)
        )
        return healthy_deployments if ordered is None else ordered[:1]

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, object] | None = None,
    ) -> dict[str, str] | None:
        decision = find_decision(data)
        if decision is None:
            return None
        return decision_headers(decision)


def decision_headers(decision: Mapping[str, Any]) -> dict[str, str]:
    """Response headers describing a decision (``ranking`` left out to keep them small)."""
    summary = {k: v for k, v in decision.items() if k != "ranking"}
    headers = {HEADER_DECISION: json.dumps(summary, separators=(",", ":"), ensure_ascii=True)}
    if decision.get("profile") is not None:
        headers[HEADER_PROFILE] = str(decision["profile"])
    if decision.get("rank") is not None:
        headers[HEADER_RANK] = str(decision["rank"])
    return headers


def _proxy_group(model: str) -> list[Mapping[str, Any]] | None:
    """All deployments of ``model`` on the running proxy (``None`` outside a proxy)."""
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    llm_router = getattr(proxy_server, "llm_router", None)
    return None if llm_router is None else llm_router.get_all_deployments(model_name=model)


_proxy_router: UnirouteProxyRouter | None = None
_proxy_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``proxy_router`` is built on first access, when the proxy loads its callbacks."""
    global _proxy_router
    if name == "proxy_router":
        with _proxy_lock:
            if _proxy_router is None:
                _proxy_router = UnirouteProxyRouter.from_settings()
        return _proxy_router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
