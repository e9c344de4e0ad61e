"""The proxy door: a ``CustomLogger`` that ranks each request's deployments."""

from __future__ import annotations

import atexit
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from ...engine.decision import check_number
from ...exceptions import InputError, StateError
from . import _compat
from ._feedback import FAILURE_WEIGHT
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
        "feedback_store",
        "feedback_namespace",
        "feedback_on_failure",
        "failure_weight",
    }
)
HEADER_PROFILE = "x-uniroute-profile"
HEADER_RANK = "x-uniroute-rank"
HEADER_DECISION = "x-uniroute-decision"
HEADER_DECISION_ID = "x-uniroute-decision-id"
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
            feedback_store: os.environ/REDIS_URL   # optional: share feedback between replicas
            feedback_on_failure: false        # true: a failed deployment records a 0

    ``async_filter_deployments`` runs after LiteLLM's health-check, cooldown, blocked and
    team filters, before its tag and ``order`` filters: it ranks only the deployments
    those filters will keep, puts those that already failed in this request last, and
    returns the ties for first place (LiteLLM's strategy chooses among them).
    Responses carry ``x-uniroute-profile``, ``x-uniroute-rank``, ``x-uniroute-decision-id``
    and ``x-uniroute-decision`` (JSON: chosen, failed, answered) headers. Inside a proxy,
    ``POST /uniroute/feedback`` and ``GET /uniroute/feedback/stats`` are added to its app,
    behind its key check (see ``_endpoints``).

    Parameters
    ----------
    ranker : DeploymentRanker
    litellm_router : litellm.Router, optional
        The router whose requests this callback sees (default: the running proxy's).
    feedback_on_failure : bool, default=False
        Record a 0 for each failed attempt of a request uniroute ranked, for the deployment
        that failed it (LiteLLM's per-attempt deployment failure hook). Off by default: an
        error is not a quality signal.
    failure_weight : float, default=0.25
        How many results such a 0 counts as.
    """

    def __init__(
        self,
        ranker: DeploymentRanker,
        litellm_router: litellm.Router | None = None,
        *,
        feedback_on_failure: bool = False,
        failure_weight: float = FAILURE_WEIGHT,
    ):
        super().__init__()
        self.ranker = ranker
        self.litellm_router = litellm_router
        self.feedback_on_failure = feedback_on_failure
        self.failure_weight = check_number(failure_weight, "failure_weight")
        self.store: Any = None
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> UniRouteProxyRouter:
        """Build from ``callback_settings.uniroute`` (default: LiteLLM's loaded settings).

        The state path is ``settings["state"]``, else ``$UNIROUTE_STATE``; a missing or
        unreadable state raises :class:`~uniroute.StateError` naming the path. Inside the
        proxy, a ``routing_strategy`` that never calls the callback is an error, and the
        routed groups and unprofiled deployments are logged.
        """
        _compat.check_version()
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
            ranker.check_prices(list(config.get("model_list") or []))
            groups, is_group = _config_groups(config)
            ranker.check_groups(groups, is_group, f"callback_settings.{CONTROL_KEY}.group_lambda")
            _compat.logger.warning(ranker.describe(list(config.get("model_list") or [])))
        on_failure = settings.get("feedback_on_failure", False)
        if not isinstance(on_failure, bool):
            raise InputError(f"callback_settings.{CONTROL_KEY}.feedback_on_failure must be true or false")
        callback = cls(
            ranker,
            feedback_on_failure=on_failure,
            failure_weight=settings.get("failure_weight", FAILURE_WEIGHT),
        )
        url = _secret_setting(settings, "feedback_store")
        if url is not None:
            if not isinstance(url, str):
                raise InputError(
                    f"callback_settings.{CONTROL_KEY}.feedback_store must be a URL like "
                    f"redis://host:port/db, got {url!r}"
                )
            namespace = _secret_setting(settings, "feedback_namespace")
            try:
                callback.use_redis(url, namespace)
            except InputError:
                raise
            except ValueError as exc:  # redis-py's URL parsing
                raise InputError(
                    f"callback_settings.{CONTROL_KEY}.feedback_store {_redacted(url)}: {exc}; "
                    "give redis://host:port/db"
                ) from exc
        app = _compat.proxy_app()
        if app is not None:
            from . import _endpoints

            _endpoints.mount(app, callback)
        return callback

    def use_redis(self, url: str, namespace: str | None = None) -> None:
        """Share feedback with every replica through Redis at ``url`` (``redis://host:port/db``).

        ``namespace`` defaults to the state's ``Router.feedback_namespace``, so replicas
        serving one state share counts and another state never mixes with them. The store
        is closed (its buffer flushed) when the process exits.
        """
        from ...stores.redis import RedisFeedbackStore

        router = self.ranker.router
        if namespace:
            store = RedisFeedbackStore.from_url(
                url, namespace, len(router.cluster_map_.cluster_weights_), half_life=router.feedback_half_life
            )
        else:
            store = RedisFeedbackStore.for_router(url, router)
        router.use_feedback_store(store)
        self.store = store
        atexit.register(store.close)
        _compat.logger.warning(
            f"uniroute feedback: shared through Redis {_redacted(url)}, namespace {store.namespace}"
        )

    def count(self, what: str) -> None:
        """Count one feedback request by outcome (accepted, bad_request, unknown_decision...)."""
        with self._counts_lock:
            self._counts[what] += 1

    def feedback_stats(self) -> dict[str, Any]:
        """This replica's feedback requests by outcome, and its store's counters."""
        with self._counts_lock:
            requests = dict(self._counts)
        source = self.ranker.router.feedback
        return {
            "requests": requests,
            "store": "redis" if self.store is not None else "memory",
            "namespace": getattr(self.store, "namespace", None),
            "store_stats": source.stats() if hasattr(source, "stats") else {},
        }

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
        """LiteLLM's pre-routing hook: the best of the deployments its tag and ``order`` filters keep
        (ties for first place, among which LiteLLM chooses); all of them for a group without profiles."""
        if not healthy_deployments:
            return healthy_deployments
        request_kwargs = {} if request_kwargs is None else request_kwargs
        router = self._router()
        group = None if router is None else _compat.group_deployments(router, model)
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
        hidden = _compat.hidden_params(response)
        done = answered(decision, (hidden or {}).get("model_id"))
        if hidden is not None:
            hidden["uniroute"] = done
        self.ranker.note_answer(done)
        return decision_headers(done)

    async def async_post_call_failure_deployment_hook(
        self,
        request_data: Mapping[str, Any],
        exception: Exception,
        call_type: Any,
        fallback_depth: int | None = None,
    ) -> None:
        """With ``feedback_on_failure``: a failed attempt's deployment gets a 0 of weight ``failure_weight``.

        LiteLLM calls this once per failed deployment attempt (first try, each retry, each
        fallback). Off by default: an error (rate limit, timeout, outage) says little about
        answer quality, and would teach Ψ about availability, which LiteLLM's cooldowns handle.
        """
        if self.feedback_on_failure:
            self._record_failure(
                _compat.attempt_metadata(request_data), _compat.attempt_deployment(request_data)
            )

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """With ``feedback_on_failure``: the failure LiteLLM logs gets a 0 too, unless the deployment
        hook above already recorded that attempt.

        Through the proxy LiteLLM logs only a request's first failure; this still covers a
        failure the deployment hook does not see (a stream that fails while it is read).
        """
        if self.feedback_on_failure:
            self._record_failure(_compat.failure_metadata(kwargs), _compat.failed_deployment(kwargs))

    def _record_failure(self, metadata: Mapping[str, Any], dep_id: str | None) -> None:
        if self.ranker.record_failure(metadata, dep_id, self.failure_weight) is not None:
            self.count("failure_recorded")


def _config_groups(config: Mapping[str, Any]) -> tuple[list[str], Callable[[str], bool]]:
    """The model groups of a proxy config, and whether a name is one of them, an alias of
    ``router_settings.model_group_alias`` or a name a wildcard group (``openai/*``) takes."""
    groups = [str(d.get("model_name")) for d in config.get("model_list") or [] if isinstance(d, Mapping)]
    aliases = (config.get("router_settings") or {}).get("model_group_alias") or {}
    wildcards = [re.compile(".*".join(map(re.escape, g.split("*")))) for g in groups if "*" in g]

    def is_group(name: str) -> bool:
        return name in groups or name in aliases or any(w.fullmatch(name) for w in wildcards)

    return groups, is_group


def _check_strategy(config: Mapping[str, Any]) -> None:
    strategy = (config.get("router_settings") or {}).get("routing_strategy") or "simple-shuffle"
    if strategy not in _compat.ASYNC_FILTER_STRATEGIES:
        raise InputError(
            f"router_settings.routing_strategy {strategy!r} takes LiteLLM's sync path, which never "
            f"calls the uniroute callback; use one of {sorted(_compat.ASYNC_FILTER_STRATEGIES)} "
            "(simple-shuffle is the default)"
        )


def _secret_setting(settings: Mapping[str, Any], key: str) -> Any:
    """``settings[key]`` with ``os.environ/NAME`` resolved; an unset variable is an error, not "no value"."""
    value = settings.get(key)
    resolved = _compat.resolve_secret(value)
    if resolved is None and value is not None:
        raise InputError(
            f"callback_settings.{CONTROL_KEY}.{key} names the environment variable "
            f"{value.removeprefix('os.environ/')}, which is not set; set it, or remove {key}"
        )
    return resolved


def _redacted(url: str) -> str:
    """``url`` without its password (for the log)."""
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


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
    if decision.get("decision_id") is not None:
        headers[HEADER_DECISION_ID] = _header_value(decision["decision_id"])
    return headers
