"""The proxy door: a ``CustomLogger`` that ranks each request's deployments."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from ...exceptions import InputError, StateError
from . import _compat
from ._ranker import (
    CONTROL_KEY,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_TOLERANCE,
    NO_PROFILE_NOTE,
    DeploymentRanker,
    answered,
    find_decision,
    pick,
    record_note,
    resolve_prices,
)

STATE_ENV = "UNIROUTE_STATE"
SETTINGS_KEYS = frozenset(
    {
        "state",
        "lambda",
        "operating_points",
        "prices",
        "cost",
        "expected_output_tokens",
        "group_lambda",
        "tolerance",
    }
)
HEADER_PROFILE = "x-uniroute-profile"
HEADER_RANK = "x-uniroute-rank"
HEADER_DECISION = "x-uniroute-decision"
_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e]")


class UniRouteProxyRouter(CustomLogger):
    """LiteLLM proxy callback: hands LiteLLM only uniroute's best deployments of each request.

    Configure it in the proxy's ``config.yaml``::

        litellm_settings:
          callbacks: ["uniroute.integrations.litellm.proxy_router"]
        callback_settings:
          uniroute:
            state: /path/to/router-state      # or the env var UNIROUTE_STATE
            lambda: 0.0                       # or an operating point's name
            operating_points: {balanced: 20.0}
            group_lambda: {cheap-group: balanced}
            prices: auto                      # auto | profile | deployment
            expected_output_tokens: 256

    ``async_filter_deployments`` runs after LiteLLM's health-check, cooldown, blocked and
    team filters, before its tag and ``order`` filters: it ranks only the deployments
    those filters will keep, puts those that already failed in this request last, and
    returns the ties for first place (LiteLLM's strategy chooses among them).
    Responses carry ``x-uniroute-profile``, ``x-uniroute-rank`` and
    ``x-uniroute-decision`` (JSON: chosen, failed, answered) headers.

    Parameters
    ----------
    ranker : DeploymentRanker
    litellm_router : litellm.Router, optional
        The router whose requests this callback sees (default: the running proxy's).
    """

    def __init__(self, ranker: DeploymentRanker, litellm_router: litellm.Router | None = None):
        super().__init__()
        self.ranker = ranker
        self.litellm_router = litellm_router

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> UniRouteProxyRouter:
        """Build from ``callback_settings.uniroute`` (default: LiteLLM's loaded settings).

        The state path is ``settings["state"]``, else ``$UNIROUTE_STATE``; a missing or
        unreadable state raises :class:`~uniroute.StateError` naming the path. Inside the
        proxy, a ``routing_strategy`` that never calls the callback is an error, and the
        routed groups and unprofiled deployments are logged.
        """
        if settings is None:
            settings = (getattr(litellm, "callback_settings", None) or {}).get(CONTROL_KEY) or {}
        if not isinstance(settings, Mapping):
            raise InputError(f"callback_settings.{CONTROL_KEY} must be a mapping, got {settings!r}")
        unknown = sorted(set(settings) - SETTINGS_KEYS)
        if unknown:
            raise InputError(
                f"unknown key(s) {unknown} in callback_settings.{CONTROL_KEY}; "
                f"allowed: {sorted(SETTINGS_KEYS - {'cost'})}"
            )
        path = settings.get("state") or os.environ.get(STATE_ENV)
        if not path:
            raise StateError(
                f"no uniroute router state configured: set callback_settings.{CONTROL_KEY}.state "
                f"in the proxy config or the environment variable {STATE_ENV}"
            )
        config = _compat.proxy_config()
        if config is not None:
            _check_strategy(config)
        try:
            ranker = DeploymentRanker(
                str(path),
                lam=settings.get("lambda", 0.0),
                operating_points=settings.get("operating_points"),
                prices=resolve_prices(
                    settings.get("prices"), settings.get("cost"), "callback_settings.uniroute"
                ),
                expected_output_tokens=settings.get("expected_output_tokens", DEFAULT_OUTPUT_TOKENS),
                group_lam=settings.get("group_lambda"),
                tolerance=settings.get("tolerance", DEFAULT_TOLERANCE),
            )
        except StateError as exc:
            raise StateError(f"uniroute proxy router: cannot load router state {path}: {exc}") from exc
        if config is not None:
            _compat.logger.warning(ranker.describe(list(config.get("model_list") or [])))
        return cls(ranker)

    def _router(self) -> Any:
        return self.litellm_router if self.litellm_router is not None else _compat.proxy_llm_router()

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
        router = self._router()
        group = None if router is None else router.get_model_list(model_name=model)
        if not self.ranker.routes(group or healthy_deployments):
            record_note(request_kwargs, model, NO_PROFILE_NOTE)
            return healthy_deployments
        kept = healthy_deployments
        if router is not None:
            kept = await _compat.tag_and_order_filtered(router, model, healthy_deployments, request_kwargs)
            if not kept:  # LiteLLM's own filters will raise their own error
                return healthy_deployments
        input_ = None
        if messages is None:
            body = (request_kwargs.get("proxy_server_request") or {}).get("body") or {}
            input_ = body.get("input", request_kwargs.get("input"))
        ranking = self.ranker.rank(model, kept, messages, input_, request_kwargs, group)
        if ranking is None:
            return healthy_deployments
        if len(ranking.ties) == 1:  # else LiteLLM chooses; the header hook records which
            pick(ranking.record, ranking.ties[0])
        return ranking.ties

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
        hidden = _compat.hidden_params(response) or {}
        return decision_headers(answered(decision, hidden.get("model_id")))


def _check_strategy(config: Mapping[str, Any]) -> None:
    strategy = (config.get("router_settings") or {}).get("routing_strategy") or "simple-shuffle"
    if strategy not in _compat.ASYNC_FILTER_STRATEGIES:
        raise InputError(
            f"router_settings.routing_strategy {strategy!r} takes LiteLLM's sync path, which never "
            f"calls the uniroute callback; use one of {sorted(_compat.ASYNC_FILTER_STRATEGIES)} "
            "(simple-shuffle is the default)"
        )


def _header_value(value: Any) -> str:
    return _UNSAFE_HEADER_CHARS.sub("?", str(value))


def decision_headers(decision: Mapping[str, Any]) -> dict[str, str]:
    """Response headers describing a decision (``ranking`` left out to keep them small)."""
    summary = {k: v for k, v in decision.items() if k != "ranking"}
    headers = {HEADER_DECISION: json.dumps(summary, separators=(",", ":"), ensure_ascii=True)}
    if decision.get("profile") is not None:
        headers[HEADER_PROFILE] = _header_value(decision["profile"])
    if decision.get("rank") is not None:
        headers[HEADER_RANK] = _header_value(decision["rank"])
    return headers
