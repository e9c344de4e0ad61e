"""The SDK door: a ``litellm.Router`` routing strategy backed by a :class:`DeploymentRanker`."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger
from litellm.types.router import CustomRoutingStrategyBase

from ...engine.decision import check_number
from ...engine.router import Router
from ...exceptions import InputError
from . import _compat
from ._feedback import FAILURE_WEIGHT
from ._ranker import (
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_TOLERANCE,
    NO_PROFILE_NOTE,
    DeploymentRanker,
    PriceSource,
    answered,
    find_decision,
    pick,
    record_note,
    writable_metadata,
)

NAMED_NOTE = "the request named this deployment; uniroute did not rank"


class UniRouteStrategy(CustomRoutingStrategyBase):
    """A ``litellm.Router`` routing strategy backed by a :class:`DeploymentRanker`.

    Set it with :func:`install`. For a group with a profiled deployment, each call asks
    the router for the deployments LiteLLM would choose among (cooldowns, tags,
    ``order``, team and pre-call filters applied), ranks them with one engine call,
    puts those that already failed in this request last, and lets LiteLLM's
    ``simple-shuffle`` rules (weights, rpm, tpm) choose among the ties for first place.
    Groups without profiles, and requests naming a deployment, go to the router's own
    strategy unchanged.

    Parameters
    ----------
    litellm_router : litellm.Router
    ranker : DeploymentRanker

    Attributes
    ----------
    router : uniroute.Router
        The engine (``ranker.router``).
    failure_feedback : FailureFeedback or None
        What records failures when installed with ``feedback_on_failure=True``.
    """

    def __init__(self, litellm_router: litellm.Router, ranker: DeploymentRanker):
        self.litellm_router = litellm_router
        self.ranker = ranker
        self.failure_feedback: FailureFeedback | None = None
        self._own_sync, self._own_async = _compat.own_selectors(litellm_router)

    @property
    def router(self) -> Router:
        """The uniroute router that ranks the deployments (the ranker's)."""
        return self.ranker.router

    def _group(self, model: str) -> list[dict[str, Any]]:
        return _compat.group_deployments(self.litellm_router, model)

    def _unranked(self, model: str, group: list[dict[str, Any]], request_kwargs: dict[str, Any]) -> bool:
        """Record why uniroute leaves this request to LiteLLM; ``False`` if it ranks it."""
        if group and self.ranker.routes(group):
            return False
        record_note(request_kwargs, model, NO_PROFILE_NOTE if group else NAMED_NOTE)
        return True

    def _choose(
        self,
        model: str,
        healthy: list[dict[str, Any]] | dict[str, Any],
        messages: Any,
        input: Any,
        request_kwargs: dict[str, Any],
        group: list[dict[str, Any]],
    ) -> dict[str, Any]:
        if isinstance(healthy, dict):
            record_note(request_kwargs, model, NAMED_NOTE)
            return healthy
        ranking = self.ranker.rank(model, healthy, messages, input, request_kwargs, group)
        if ranking is None:
            return _compat.shuffle(self.litellm_router, healthy, model, request_kwargs)
        chosen = _compat.shuffle(self.litellm_router, ranking.ties, model, request_kwargs)
        pick(ranking.record, chosen)
        return chosen

    async def async_get_available_deployment(  # type: ignore[override]  # LiteLLM's base says None; the Router uses the deployment returned
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict | None = None,
    ) -> dict[str, Any]:
        request_kwargs = {} if request_kwargs is None else request_kwargs
        group = self._group(model)
        if self._unranked(model, group, request_kwargs):
            return await self._own_async(
                model=model,
                messages=messages,
                input=input,
                specific_deployment=specific_deployment,
                request_kwargs=request_kwargs,
            )
        healthy = await _compat.async_healthy_deployments(
            self.litellm_router, model, messages, input, specific_deployment, request_kwargs
        )
        return self._choose(model, healthy, messages, input, request_kwargs, group)

    def get_available_deployment(  # type: ignore[override]  # as above
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict | None = None,
    ) -> dict[str, Any]:
        """Sync path: LiteLLM's sync filters (cooldowns, blocked, pre-call checks, order), then ranking."""
        request_kwargs = {} if request_kwargs is None else request_kwargs
        group = self._group(model)
        if self._unranked(model, group, request_kwargs):
            return self._own_sync(
                model=model,
                messages=messages,
                input=input,
                specific_deployment=specific_deployment,
                request_kwargs=request_kwargs,
            )
        model, healthy = _compat.healthy_deployments(
            self.litellm_router, model, messages, input, specific_deployment, request_kwargs
        )
        return self._choose(model, healthy, messages, input, request_kwargs, group)


class FailureFeedback(CustomLogger):
    """A LiteLLM callback: each deployment failure in a request uniroute ranked records a 0.

    Made by ``install(..., feedback_on_failure=True)``; the proxy callback does the
    same with ``feedback_on_failure: true``. The 0 counts ``weight`` results
    (default :data:`FAILURE_WEIGHT`): an error is weak evidence about answer quality.
    """

    def __init__(self, ranker: DeploymentRanker, weight: float = FAILURE_WEIGHT):
        super().__init__()
        self.ranker = ranker
        self.weight = check_number(weight, "failure_weight")
        self.recorded = 0

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """LiteLLM's failure hook: record a 0 for the deployment that failed, if uniroute ranked it."""
        metadata, dep_id = _compat.failure_metadata(kwargs), _compat.failed_deployment(kwargs)
        if self.ranker.record_failure(metadata, dep_id, self.weight) is not None:
            self.recorded += 1

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """As :meth:`log_failure_event`, for LiteLLM's async calls."""
        self.log_failure_event(kwargs, response_obj, start_time, end_time)


class _FailureRelay(CustomLogger):
    """The one logger :func:`install` puts in ``litellm.callbacks``: hands each failure to the
    :class:`FailureFeedback` of the ranker that ranked the request.

    One for the process, holding the FailureFeedbacks weakly (each is kept by its strategy):
    LiteLLM never drops a logger from its global lists, so one per install kept every replaced or
    dropped router (its engine and embedder) alive; and it keeps one logger per class in its
    failure lists, so the failures of a router installed after the first were never recorded.
    """

    def __init__(self) -> None:
        super().__init__()
        self._handlers: weakref.WeakValueDictionary[int, FailureFeedback] = weakref.WeakValueDictionary()

    def add(self, handler: FailureFeedback) -> None:
        """Send the failures of requests ``handler.ranker`` ranked to ``handler`` (while it lives)."""
        self._handlers[id(handler.ranker)] = handler  # the handler keeps its ranker, so the id stays its

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        record = find_decision({"metadata": _compat.failure_metadata(kwargs)})
        ranker = None if record is None else record.ranker
        handler = None if ranker is None else self._handlers.get(id(ranker))
        if handler is not None and handler.ranker is ranker:
            handler.log_failure_event(kwargs, response_obj, start_time, end_time)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.log_failure_event(kwargs, response_obj, start_time, end_time)


_FAILURES = _FailureRelay()


def _attach_decision(response: Any, metadata: Mapping[str, Any]) -> Any:
    decision = find_decision({"metadata": metadata})
    hidden = _compat.hidden_params(response)
    if decision is not None and hidden is not None:
        done = answered(decision, hidden.get("model_id"))
        hidden["uniroute"] = done
        if done.ranker is not None:
            done.ranker.note_answer(done)
    return response


def _recording_sync(method: Callable[..., Any], metadata_key: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        metadata = writable_metadata(kwargs, metadata_key)
        return _attach_decision(method(*args, **kwargs), metadata)

    return call


def _recording_async(
    method: Callable[..., Awaitable[Any]], metadata_key: str
) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        metadata = writable_metadata(kwargs, metadata_key)
        return _attach_decision(await method(*args, **kwargs), metadata)

    return call


def record_feedback(where: Any, target: Any, score: Any, *, weight: float = 1.0) -> str:
    """Record how good a routed answer was; returns the profile credited.

    Parameters
    ----------
    where : litellm.Router, UniRouteStrategy, UniRouteProxyRouter or DeploymentRanker
        What routed the request: a ``litellm.Router`` set up with :func:`install`, the
        strategy :func:`install` returned, or the proxy callback.
    target : response, mapping or str
        The response (``response._hidden_params["uniroute"]``), that decision, or its
        ``decision_id`` (the proxy's ``x-uniroute-decision-id`` header).
    score : float or bool
        In [0, 1] (1 = right, 0 = wrong), or a thumbs-up (True) / thumbs-down (False).
    weight : float, default=1.0
        How many validation results this feedback counts as.

    The deployment that answered is credited (after a retry or fallback, not the first
    choice), Φ-weighted, through :meth:`uniroute.Router.record_feedback`. A decision id is
    known for 1 h in the process that routed it and, with a Redis feedback store, at every
    replica for the store's ``decision_ttl`` (900 s by default). Raises
    :class:`~uniroute.InputError` for a bad score or weight, an unknown or expired id, or
    an answer from a deployment uniroute did not rank;
    :class:`~uniroute.FeedbackUnavailableError` when an id routed elsewhere could not be
    looked up because Redis is unreachable (send it again later).

    Examples
    --------
    >>> response = router.completion(model="demo", messages=[...])  # doctest: +SKIP
    >>> record_feedback(router, response, True)  # doctest: +SKIP
    'mathbot'
    """
    ranker = where if isinstance(where, DeploymentRanker) else getattr(where, "ranker", None)
    if ranker is None:
        ranker = getattr(_compat.installed_strategy(where), "ranker", None)
    if not isinstance(ranker, DeploymentRanker):
        raise InputError(
            f"record_feedback needs what routed the request: a litellm.Router set up with install(), "
            f"the UniRouteStrategy it returned, or the proxy callback; got {type(where).__name__}"
        )
    return ranker.record_feedback(target, score, weight)


def _warn_if_replacing(litellm_router: litellm.Router) -> None:
    """Warn when the router already routes with another custom strategy, which uniroute replaces
    on every group, those it does not rank included (``routing_strategy="lar1"`` registers one)."""
    previous = _compat.registered_strategy(litellm_router)
    if previous is None or isinstance(previous, UniRouteStrategy):
        return
    message = (
        f"the router already routes with the custom strategy {type(previous).__name__}; uniroute replaces "
        "it on every group, including those it does not rank (see docs/litellm.md)"
    )
    _compat.logger.warning(message)
    warnings.warn(message, stacklevel=3)


def install(
    litellm_router: litellm.Router,
    state: Router | str | Path,
    *,
    lam: float | str = 0.0,
    operating_points: Mapping[str, float] | None = None,
    prices: PriceSource | None = None,
    expected_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    group_lam: Mapping[str, float | str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    embedder: Any = None,
    cost: PriceSource | None = None,
    feedback_on_failure: bool = False,
    failure_weight: float = FAILURE_WEIGHT,
) -> UniRouteStrategy:
    """Route ``litellm_router``'s requests with uniroute; returns the strategy it set.

    ``state`` is a fitted :class:`uniroute.Router` or the path of a saved one
    (``embedder`` as in :meth:`uniroute.Router.load`). The other arguments are those
    of :class:`DeploymentRanker` (``cost`` is the deprecated spelling of ``prices``).
    Only groups with a profiled deployment are ranked; the others keep the router's
    own strategy and weights. Logs (LiteLLM's router logger) which groups are routed
    and which deployments have no profile. The router's ``completion``,
    ``text_completion``, ``embedding``, ``responses`` and their async forms also copy
    each decision into ``response._hidden_params["uniroute"]``, with the deployment
    that answered and its ``decision_id`` (for :func:`record_feedback`; the engine's
    ``remember_decisions`` is turned on). With ``feedback_on_failure=True`` each
    deployment failure records a 0 of weight ``failure_weight`` (the returned strategy's
    ``failure_feedback``, a :class:`FailureFeedback`, reached through one relay in
    ``litellm.callbacks`` that serves every install). Off by default: an error is not a
    quality signal. Warns when the router already routes with another custom strategy
    (``routing_strategy="lar1"`` registers one), which uniroute replaces on every group.
    Raises ImportError when the installed LiteLLM is a release the front door does not
    support (``_compat.SUPPORTED``), naming the ones it does.

    Examples
    --------
    >>> import litellm, uniroute.integrations.litellm as ul  # doctest: +SKIP
    >>> router = litellm.Router(model_list=[...])  # doctest: +SKIP
    >>> ul.install(router, "router-state/", lam=20.0)  # doctest: +SKIP
    """
    _compat.check_version()
    ranker = DeploymentRanker(
        state,
        lam,
        operating_points,
        prices,
        expected_output_tokens,
        group_lam=group_lam,
        tolerance=tolerance,
        embedder=embedder,
        cost=cost,
    )
    if not isinstance(feedback_on_failure, bool):
        raise InputError(f"feedback_on_failure must be True or False, got {feedback_on_failure!r}")
    failures = FailureFeedback(ranker, failure_weight) if feedback_on_failure else None
    deployments = _compat.group_deployments(litellm_router)
    ranker.check_prices(deployments)
    ranker.check_groups(  # LiteLLM resolves the group's aliases and wildcards
        (str(d.get("model_name")) for d in deployments),
        lambda group: bool(_compat.group_deployments(litellm_router, group)),
        "group_lam",
    )
    _warn_if_replacing(litellm_router)
    strategy = UniRouteStrategy(litellm_router, ranker)
    if failures is not None:
        strategy.failure_feedback = failures
        _FAILURES.add(failures)
        if _FAILURES not in litellm.callbacks:
            litellm.callbacks.append(_FAILURES)
    _compat.set_strategy(litellm_router, strategy)
    _compat.wrap_methods(litellm_router, _recording_sync, _recording_async)
    _compat.logger.info(ranker.describe(_compat.group_deployments(litellm_router)))
    return strategy
