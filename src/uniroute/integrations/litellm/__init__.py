"""LiteLLM front door: uniroute picks the deployment for each request.

Two ways in, one code path (:class:`DeploymentRanker`, one engine call per attempt):

* **SDK** - :func:`install` sets a :class:`UniRouteStrategy` on a ``litellm.Router``.
  The strategy asks the router for the deployments LiteLLM would choose among (cooldowns,
  tags, ``order`` applied), ranks them and lets LiteLLM's ``simple-shuffle`` rules choose
  among the ties for first place. Groups without profiles keep the router's own strategy.
* **Proxy** - ``litellm_settings.callbacks: ["uniroute.integrations.litellm.proxy_router"]``
  loads :class:`UniRouteProxyRouter`, a ``CustomLogger`` whose ``async_filter_deployments``
  hands LiteLLM only the best deployments that its tag and ``order`` filters keep.

Deployments map to router profiles by ``model_info.uniroute_profile``, else the first
of ``model_info.id``, ``model_info.base_model``, ``litellm_params.model`` and that model
without its provider prefix that names a profile. The cost of a deployment is its
profile's $ per request, or its own prices times the request's expected tokens
(``prices=``; see :class:`DeploymentRanker`).

Per request, ``metadata={"uniroute": {"lambda": 0.2, "candidates": [...]}}`` (or
``"operating_point": name``) overrides the defaults. Deployments that already failed in
the request are ranked last. The decision (chosen, failed, answered) is written to the
request's metadata under ``"uniroute_decision"``, to ``response._hidden_params
["uniroute"]`` for routers set up with :func:`install`, and to ``x-uniroute-*``
response headers on the proxy.

Feedback: every routed response carries its ``decision_id`` (hidden params, and the
``x-uniroute-decision-id`` header on the proxy). :func:`record_feedback` (SDK) and
``POST /uniroute/feedback`` (proxy, behind the proxy's key check) credit the deployment
that answered; ``feedback_store: redis://...`` shares the counts between proxy replicas.
Every use of LiteLLM's private API is in ``_compat``.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from ..._optional import require

require("litellm", extra="litellm")

from ...exceptions import FeedbackUnavailableError, UnknownDecisionError, UnrankedAnswerError  # noqa: E402
from ._feedback import FAILURE_WEIGHT  # noqa: E402
from ._proxy import (  # noqa: E402
    HEADER_DECISION,
    HEADER_DECISION_ID,
    HEADER_PROFILE,
    HEADER_RANK,
    STATE_ENV,
    UniRouteProxyRouter,
    decision_headers,
)
from ._ranker import (  # noqa: E402
    CHARS_PER_TOKEN,
    CONTROL_KEY,
    DECISION_KEY,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_TOLERANCE,
    DeploymentRanker,
    cost_per_request,
    find_decision,
    request_prompt,
)
from ._sdk import FailureFeedback, UniRouteStrategy, install, record_feedback  # noqa: E402

__all__ = [
    "CHARS_PER_TOKEN",
    "CONTROL_KEY",
    "DECISION_KEY",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_TOLERANCE",
    "FAILURE_WEIGHT",
    "HEADER_DECISION",
    "HEADER_DECISION_ID",
    "HEADER_PROFILE",
    "HEADER_RANK",
    "STATE_ENV",
    "DeploymentRanker",
    "FailureFeedback",
    "FeedbackUnavailableError",
    "UniRouteProxyRouter",
    "UniRouteStrategy",
    "UnknownDecisionError",
    "UnrankedAnswerError",
    "cost_per_request",
    "decision_headers",
    "find_decision",
    "install",
    "record_feedback",
    "request_prompt",
]

_DEPRECATED = {"UnirouteStrategy": UniRouteStrategy, "UnirouteProxyRouter": UniRouteProxyRouter}
_proxy_router: UniRouteProxyRouter | None = None
_proxy_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``proxy_router`` is built on first access, when the proxy loads its callbacks;
    the old ``Uniroute*`` spellings are deprecated aliases."""
    global _proxy_router
    if name == "proxy_router":
        with _proxy_lock:
            if _proxy_router is None:
                _proxy_router = UniRouteProxyRouter.from_settings()
        return _proxy_router
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(f"{name} is deprecated; use {new.__name__}", DeprecationWarning, stacklevel=2)
        return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
