"""One model group's deployments as uniroute candidates: one engine call, its ranking kept.

Shared by the SDK strategy and the proxy callback. A deployment becomes a candidate
named by its ``model_info.id`` whose profile is found by :meth:`DeploymentRanker.profile_of`
and whose $ per request comes from its own prices when it has them; the engine
(:meth:`uniroute.Router.route`) scores them once, and this module only decides which
healthy deployments tie for first place and records the decision.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import litellm

from ...engine.decision import Decision
from ...engine.feedback import RecentItems
from ...engine.router import Router
from ...engine.text import Prompt, prompt_text
from ...exceptions import InputError, UniRouteError, UnknownModelError
from . import _compat
from ._feedback import AnswerBook, credit, note_answer

CONTROL_KEY = "uniroute"
DECISION_KEY = "uniroute_decision"
CONTROL_KEYS = frozenset({"lambda", "candidates", "operating_point"})
PRICE_SOURCES = ("auto", "profile", "deployment")
CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 256
DEFAULT_TOLERANCE = 1e-6
NO_PROFILE_NOTE = "no deployment of this group has a uniroute profile; LiteLLM chose"
FALLBACK_NOTE = "no profiled deployment is healthy; fell back to one without a profile"
OUTSIDE_NOTE = "answered by a deployment uniroute did not rank (a fallback to a group it does not route)"
IGNORED_CONTROL_NOTE = "; metadata.uniroute was ignored"

PriceSource = Literal["auto", "profile", "deployment"]
Prices = tuple[float, float]


# ---- prices ------------------------------------------------------------------------


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


def output_tokens_of(request_kwargs: Mapping[str, Any], expected: int) -> int:
    """Output tokens to price a request at: ``expected``, or the request's own cap
    (``max_tokens`` / ``max_completion_tokens``, whole numbers >= 0) when that is lower."""
    caps = [
        value
        for key in ("max_tokens", "max_completion_tokens")
        if isinstance(value := request_kwargs.get(key), int) and not isinstance(value, bool) and value >= 0
    ]
    return min([expected, *caps])


def deployment_id(deployment: Mapping[str, Any]) -> str:
    return str((deployment.get("model_info") or {}).get("id", ""))


def _model_names(deployment: Mapping[str, Any]) -> list[str]:
    """Names a profile may carry for this deployment, most specific first.

    ``model_info.id``, ``model_info.base_model`` (LiteLLM's name for the model behind an
    alias), ``litellm_params.base_model``, then ``litellm_params.model`` with and without its provider prefix
    (``openai/gpt-4-1106-preview`` -> ``gpt-4-1106-preview``).
    """
    info = deployment.get("model_info") or {}
    params = deployment.get("litellm_params") or {}
    names = [info.get("id"), info.get("base_model"), params.get("base_model")]
    model = params.get("model")
    while isinstance(model, str) and model:
        names.append(model)
        model = model.partition("/")[2]
    return [str(n) for n in dict.fromkeys(names) if n]


# ---- request text, metadata, the recorded decision ---------------------------------


def request_prompt(messages: Sequence[Any] | None, input: Any) -> Prompt:
    """What the engine routes on: chat ``messages``, else the ``input`` of an embedding /
    Responses call (text and message lists as they are; token ids carry no text)."""
    if messages is not None:
        return list(messages)
    if isinstance(input, (str, bytes)):
        return input
    if isinstance(input, Sequence) and input:
        if all(isinstance(x, str) for x in input):
            return list(input)
        return [m for m in input if isinstance(m, Mapping)]
    return ""


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


def writable_metadata(request_kwargs: dict[str, Any], default: str = "metadata") -> dict[str, Any]:
    """The metadata dict LiteLLM carries through the call (same rule as the Router).

    ``default`` is the key used when the request has no ``litellm_metadata``: the router
    method's own (``litellm_metadata`` for the Responses API, :data:`_compat.REQUEST_METHODS`).
    """
    key = "litellm_metadata" if "litellm_metadata" in request_kwargs else default
    bucket = request_kwargs.get(key)
    if not isinstance(bucket, dict):
        bucket = {}
        request_kwargs[key] = bucket
    return bucket


class Record(dict[str, Any]):
    """A decision uniroute wrote. A client can put any JSON under ``metadata.uniroute_decision``
    but never an instance of this class, so only uniroute's own decisions are read back.

    ``decision`` is the engine's :class:`~uniroute.Decision` behind it and ``ranker`` the
    :class:`DeploymentRanker` that made it (both kept in process, never serialised), so
    feedback can credit whichever ranked deployment answered.
    """

    decision: Decision | None = None
    ranker: DeploymentRanker | None = None


def find_decision(request_kwargs: Mapping[str, Any] | None) -> Record | None:
    """The decision uniroute recorded on a request's metadata, if any."""
    for bucket in _metadata_buckets(request_kwargs or {}):
        decision = bucket.get(DECISION_KEY)
        if isinstance(decision, Record):
            return decision
    return None


def record_note(request_kwargs: dict[str, Any], model: str, note: str) -> None:
    """Record that uniroute did not rank this request, and why."""
    if any(CONTROL_KEY in bucket for bucket in _metadata_buckets(request_kwargs)):
        note += IGNORED_CONTROL_NOTE
    writable_metadata(request_kwargs)[DECISION_KEY] = Record(model_group=model, note=note)


def pick(record: Record, deployment: Mapping[str, Any]) -> None:
    """Record that ``deployment`` got this attempt (the first pick of a request is ``chosen``)."""
    dep_id = deployment_id(deployment)
    row = next((r for r in record.get("ranking", ()) if r["deployment"] == dep_id), None)
    record["deployment"] = dep_id
    # rank 1 = no candidate scored better (deployments that tie for first place all rank 1)
    record["rank"] = None if row is None else 1 + sum(r["score"] < row["score"] for r in record["ranking"])
    for key in ("profile", "expected_error", "cost", "score"):
        record[key] = None if row is None else row[key]
    if record.get("chosen") is None:
        record["chosen"] = dep_id
    if row is None and record.get("ranking"):
        record["note"] = FALLBACK_NOTE


def answered(record: Record, model_id: Any) -> Record:
    """The decision completed with the deployment that answered (``model_id`` of the response).

    After a fallback to another model group the last ranking is on LiteLLM's copy of the
    request metadata: the decision completed is that last one (:meth:`DeploymentRanker.latest`).
    A recorded pick that is not the answering deployment did not answer, so it joins ``failed``.
    """
    if record.ranker is not None:
        record = record.ranker.latest(record)
    done = Record(record)
    done.decision, done.ranker = record.decision, record.ranker
    if not isinstance(model_id, str) or not model_id:
        return done
    failed = list(done.get("failed") or [])
    previous = done.get("deployment")
    if previous is not None and previous != model_id and previous not in failed:
        failed.append(previous)
    done["failed"] = failed
    done["answered"] = model_id
    if previous == model_id:
        return done
    if "ranking" not in done:  # uniroute did not rank this group
        done["deployment"] = model_id
    elif any(row["deployment"] == model_id for row in done.get("ranking", ())):
        pick(done, {"model_info": {"id": model_id}})
    else:
        done.update(deployment=model_id, profile=None, rank=None, expected_error=None, cost=None, score=None)
        done["note"] = OUTSIDE_NOTE
    return done


@dataclass(frozen=True)
class Ranking:
    """A group ranked for one request attempt.

    ``ordered``: the healthy deployments, best first; deployments without a profile
    after the profiled ones, deployments that already failed in this request last.
    ``ties``: the healthy deployments that have not failed yet and whose score is
    within the tolerance of the best of them (LiteLLM's own rules choose among them).
    """

    ordered: list[dict[str, Any]]
    ties: list[dict[str, Any]]
    record: Record


@dataclass(frozen=True)
class _Control:
    lam: float
    candidates: frozenset[str] | None


def check_lambda(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number >= 0, got {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise InputError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def _bad_request(model: str, exc: UniRouteError) -> litellm.BadRequestError:
    return litellm.BadRequestError(message=f"uniroute: {exc}", model=model, llm_provider="uniroute")


def load_state(state: Router | str | Path, embedder: Any = None) -> Router:
    """A fitted :class:`uniroute.Router`, or the one saved at ``state``."""
    if isinstance(state, Router):
        return state
    return Router.load(Path(state).expanduser(), embedder=embedder)


def resolve_prices(prices: str | None, cost: str | None, where: str) -> PriceSource:
    """``prices``, or the deprecated ``cost`` spelling of it (with a warning)."""
    if cost is not None:
        warnings.warn(
            f"{where}: 'cost' is deprecated (cost means dollars); use 'prices' (auto | profile | deployment)",
            DeprecationWarning,
            stacklevel=3,
        )
        if prices is not None and prices != cost:
            raise InputError(f"{where}: give 'prices' or the deprecated 'cost', not both")
        prices = cost
    return cast(PriceSource, "auto" if prices is None else prices)


class DeploymentRanker:
    """Ranks a LiteLLM model group's deployments for one request with one engine call.

    Shared by :class:`UniRouteStrategy` (SDK) and :class:`UniRouteProxyRouter` (proxy).

    Parameters
    ----------
    state : uniroute.Router or path
        A fitted router (or the path of a saved state) whose profiles are named after
        deployments or their models (see :meth:`profile_of`).
    lam : float or str, default=0.0
        Default λ (error points per $ per request), or the name of an operating point.
    operating_points : mapping of str to float, optional
        Named λ values a request can pick with ``{"operating_point": name}``.
    prices : {"auto", "profile", "deployment"}, default="auto"
        Where a deployment's $ per request comes from. ``"profile"``: the profile's
        price of the request (``ModelProfile.price``: by the request's length when the
        profile learned it). ``"auto"``: the deployment's own ``input_cost_per_token`` /
        ``output_cost_per_token`` (``model_info``, then ``litellm_params``) if it sets
        them, else the profile's price. ``"deployment"``: like ``"auto"``, then
        LiteLLM's price map for ``model_info.base_model`` or ``litellm_params.model``,
        then the profile's price. Per-token prices are multiplied by the request's
        input tokens (characters / 4) and its expected output tokens.
    expected_output_tokens : int, default=256
        Output tokens assumed when pricing a request from per-token prices; a request
        that sets ``max_tokens`` / ``max_completion_tokens`` lower is priced at that cap
        (it cannot be billed for more).
    group_lam : mapping of str to float or str, optional
        Default λ (or operating point name) per model group; other groups use ``lam``.
    tolerance : float, default=1e-6
        Deployments whose score is within ``tolerance`` of the best healthy one tie;
        LiteLLM's ``simple-shuffle`` rules (weights, rpm, tpm, else uniform) choose
        among them, so regions of one model share the load.
    embedder : Embedder, optional
        Passed to :meth:`uniroute.Router.load` when ``state`` is a path.
    cost : str, optional
        Deprecated spelling of ``prices``.

    Notes
    -----
    Deployments without a profile follow the engine's ``unknown_models`` policy:
    with ``"skip"`` they are ranked after every profiled deployment (used only when
    none of those is healthy) with a one-time warning; with ``"error"`` the request
    fails. A group with no profiled deployment at all is left to LiteLLM.
    """

    def __init__(
        self,
        state: Router | str | Path,
        lam: float | str = 0.0,
        operating_points: Mapping[str, float] | None = None,
        prices: PriceSource | None = None,
        expected_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
        *,
        group_lam: Mapping[str, float | str] | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        embedder: Any = None,
        cost: PriceSource | None = None,
    ):
        router = load_state(state, embedder)
        if not router.is_fitted:
            raise InputError("the uniroute router is not fitted; fit it or load a saved state")
        prices = resolve_prices(prices, cost, "DeploymentRanker")
        if prices not in PRICE_SOURCES:
            raise InputError(f"prices must be one of {list(PRICE_SOURCES)}, got {prices!r}")
        if isinstance(expected_output_tokens, bool) or not (
            isinstance(expected_output_tokens, int) and expected_output_tokens >= 0
        ):
            raise InputError(f"expected_output_tokens must be an int >= 0, got {expected_output_tokens!r}")
        self.router = router
        if operating_points is not None and not isinstance(operating_points, Mapping):
            raise InputError(f"operating_points must map names to λ, got {operating_points!r}")
        self.operating_points = {
            str(name): check_lambda(value, f"operating point {name!r}")
            for name, value in (operating_points or {}).items()
        }
        self.lam = self._lambda(lam, "lam")
        if group_lam is not None and not isinstance(group_lam, Mapping):
            raise InputError(f"group_lam must map model group names to λ, got {group_lam!r}")
        self.group_lam = {
            str(group): self._lambda(value, f"λ of group {group!r}")
            for group, value in (group_lam or {}).items()
        }
        self.tolerance = check_lambda(tolerance, "tolerance")
        self.prices = prices
        self.expected_output_tokens = expected_output_tokens
        self._warned: set[str] = set()
        router.remember_decisions = True  # feedback names a decision by its id
        self.answers = AnswerBook()
        # decision_id -> the next ranking of the same request (a retry or fallback); read when the
        # request's response arrives, so kept briefly
        self._next: RecentItems[Record] = RecentItems(max_size=10_000, ttl=600.0)
        # "decision_id/deployment" of the failures already recorded: LiteLLM may report one failed
        # attempt twice (its deployment hook and its failure log), and it must count once
        self._failures: RecentItems[bool] = RecentItems(max_size=10_000, ttl=600.0)
        self._failures_lock = threading.Lock()

    @property
    def engine(self) -> Router:
        """Deprecated alias of :attr:`router`."""
        warnings.warn("DeploymentRanker.engine is deprecated; use .router", DeprecationWarning, stacklevel=2)
        return self.router

    def _lambda(self, value: Any, where: str) -> float:
        if isinstance(value, str):
            if value not in self.operating_points:
                raise InputError(
                    f"unknown operating point {value!r}; defined: {sorted(self.operating_points)}"
                )
            return self.operating_points[value]
        return check_lambda(value, where)

    # ---- feedback -------------------------------------------------------------------

    def record_feedback(self, target: Any, score: Any, weight: float = 1.0) -> str:
        """Credit the deployment that answered ``target`` (a response, its decision, or its
        ``decision_id``) with ``score`` (in [0, 1], or a bool); returns the profile credited."""
        return credit(self.router, self.answers, target, score, weight)

    def note_answer(self, done: Record) -> None:
        """Remember who answered ``done`` when it was not the engine's first choice (for feedback by id),
        here and, through the engine's shared feedback store, at every replica."""
        kept = note_answer(self.answers, done)
        if kept is not None:
            self.router.remember_answer(*kept)

    def record_failure(
        self, metadata: Mapping[str, Any], deployment: str | None, weight: float
    ) -> str | None:
        """Record a 0 of ``weight`` for ``deployment``, which failed a request this ranker routed.

        ``metadata`` is the failed call's; returns the profile credited, or ``None`` when
        the request was not ranked here, the deployment was not among its candidates, or
        this failure (the same ranking and deployment: one attempt) was already recorded.
        """
        record = find_decision({"metadata": metadata})
        decision = None if record is None or record.ranker is not self else record.decision
        if decision is None or deployment not in decision.candidates:
            return None
        key = f"{decision.decision_id}/{deployment}"
        with self._failures_lock:
            if self._failures.get(key):
                return None
            self._failures.put(key, True)
        return self.router.record_feedback(decision, 0.0, weight=weight, model=deployment)

    def latest(self, record: Record) -> Record:
        """The last ranking of ``record``'s request (``record`` itself unless a retry or a fallback
        ranked again: a fallback to another model group ranks on a copy of the request metadata)."""
        while (later := self._next.get(str(record.get("decision_id")))) is not None:
            record = later  # each link goes to a newer decision: the chain ends
        return record

    # ---- per-request control --------------------------------------------------------

    def control(self, request_kwargs: Mapping[str, Any], model: str = "") -> _Control:
        """λ and candidate names for a request, from ``metadata["uniroute"]`` (validated)."""
        lam = self.group_lam.get(model, self.lam)
        raw = next((b[CONTROL_KEY] for b in _metadata_buckets(request_kwargs) if CONTROL_KEY in b), None)
        if raw is None:
            return _Control(lam, None)
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
        if "lambda" in raw:
            lam = check_lambda(raw["lambda"], f"metadata[{CONTROL_KEY!r}]['lambda']")
        elif "operating_point" in raw:
            lam = self._lambda(str(raw["operating_point"]), "operating_point")
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

    def profile_of(self, deployment: Mapping[str, Any]) -> str | None:
        """The profile of a deployment, or ``None``.

        ``model_info.uniroute_profile`` if set, else the first of ``model_info.id``,
        ``model_info.base_model``, ``litellm_params.base_model``, ``litellm_params.model`` and
        that model without its provider prefix that names a profile. Read afresh: the proxy
        can edit deployments.
        """
        known = self.router.models
        explicit = (deployment.get("model_info") or {}).get("uniroute_profile")
        if explicit is not None:
            return str(explicit) if str(explicit) in known else None
        return next((name for name in _model_names(deployment) if name in known), None)

    def _prices(self, deployment: Mapping[str, Any]) -> Prices | None:
        if self.prices == "profile":
            return None
        prices = _declared_prices(deployment)
        if prices is None and self.prices == "deployment":
            model_info = deployment.get("model_info") or {}
            base = model_info.get("base_model") or (deployment.get("litellm_params") or {}).get("model")
            prices = _price_map_prices(str(base)) if base else None
        return prices

    def check_prices(self, model_list: Sequence[Mapping[str, Any]]) -> None:
        """Refuse at start a declared price that would fail every request of its group (as a 400)."""
        if self.prices == "profile":
            return
        for d in model_list:
            for section in ("model_info", "litellm_params"):
                for key in ("input_cost_per_token", "output_cost_per_token"):
                    value = (d.get(section) or {}).get(key)
                    if value is not None:
                        what = deployment_id(d) or (d.get("litellm_params") or {}).get("model")
                        check_lambda(value, f"{section}.{key} of deployment {what!r} ({d.get('model_name')})")

    def check_groups(self, groups: Iterable[str], is_group: Callable[[str], bool], where: str) -> None:
        """Warn at start about ``group_lam`` keys that name no model group (nor an alias or a
        name a wildcard group takes): a typo would leave its λ unused without a word.

        A warning, not an error: groups can be added while running (``litellm.Router``'s
        ``add_deployment`` / ``set_model_list``; the proxy's ``/model/new`` and models kept in
        its database, loaded after start), and the key then applies to them.
        """
        unknown = sorted(group for group in self.group_lam if not is_group(group))
        if unknown:
            message = (
                f"uniroute: {where} names no model group of the router: {unknown}; known groups: "
                f"{sorted(set(groups))}. Its λ applies only if such a group is added later; check for a typo"
            )
            _compat.logger.warning(message)
            warnings.warn(message, stacklevel=3)

    def routes(self, deployments: Sequence[Mapping[str, Any]]) -> bool:
        """Whether uniroute ranks a group with these deployments (one of them has a profile)."""
        return any(self.profile_of(d) is not None for d in deployments)

    def describe(self, model_list: Sequence[Mapping[str, Any]]) -> str:
        """One log line: the groups uniroute routes, those left to LiteLLM, the unprofiled deployments."""
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for d in model_list:
            groups.setdefault(str(d.get("model_name")), []).append(d)
        routed = sorted(g for g, ds in groups.items() if self.routes(ds))
        left = sorted(set(groups) - set(routed))
        missing = [
            f"{g}/{deployment_id(d) or (d.get('litellm_params') or {}).get('model')}"
            for g in routed
            for d in groups[g]
            if self.profile_of(d) is None
        ]
        return (
            f"uniroute routes model groups {routed}; left to LiteLLM (no profiled deployment): {left}; "
            f"deployments without a profile (used only when no profiled one is healthy): {missing}"
        )

    def _unprofiled(self, model: str, deployment: Mapping[str, Any]) -> None:
        dep_id = deployment_id(deployment)
        what = f"deployment {dep_id!r} ({(deployment.get('litellm_params') or {}).get('model')}) of {model!r}"
        if self.router.unknown_models == "error":
            raise UnknownModelError(
                f"{what} has no uniroute profile; set model_info.uniroute_profile, add a profile "
                f"named after its id or model, or load the state with unknown_models='skip'"
            )
        if dep_id not in self._warned:
            self._warned.add(dep_id)
            message = (
                f"uniroute: {what} has no profile; it is used only when no profiled deployment is healthy"
            )
            _compat.logger.warning(message)
            warnings.warn(message, stacklevel=3)

    # ---- ranking --------------------------------------------------------------------

    def rank(
        self,
        model: str,
        healthy: Sequence[dict[str, Any]],
        messages: Sequence[Any] | None,
        input: Any,
        request_kwargs: dict[str, Any],
        group: Sequence[dict[str, Any]] | None = None,
    ) -> Ranking | None:
        """The healthy deployments ranked, or ``None`` if none of the group has a profile.

        ``group`` (all deployments of the model group, healthy or not) only sets the
        recorded rank: 1 means the engine's first choice was healthy. Writes the
        decision to the request's metadata. Raises ``litellm.BadRequestError`` for bad
        per-request control or an unprofiled deployment under the ``"error"`` policy.
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
        group: Sequence[dict[str, Any]] | None,
    ) -> Ranking | None:
        control = self.control(request_kwargs, model)
        by_id = {deployment_id(d): d for d in [*(group or ()), *healthy]}
        profiles = {dep_id: self.profile_of(d) for dep_id, d in by_id.items()}
        wanted = control.candidates

        def eligible(dep_id: str) -> bool:
            return wanted is None or dep_id in wanted or profiles[dep_id] in wanted

        pool = [d for d in healthy if eligible(deployment_id(d))]
        if not pool:
            raise InputError(
                f"none of the candidates {sorted(wanted or ())} is a healthy deployment of {model!r}; "
                f"healthy: {[deployment_id(d) for d in healthy]} "
                f"(profiles {sorted({str(profiles[deployment_id(d)]) for d in healthy})})"
            )
        healthy_ids = [deployment_id(d) for d in pool]
        candidates = {i: p for i, p in profiles.items() if p is not None and eligible(i)}
        if not candidates:
            if self.router.unknown_models == "error":
                self._unprofiled(model, pool[0])
            record_note(request_kwargs, model, NO_PROFILE_NOTE)
            return None
        for i in healthy_ids:
            if i not in candidates:
                self._unprofiled(model, by_id[i])
        prompt = request_prompt(messages, input)
        declared = {i: prices for i in candidates if (prices := self._prices(by_id[i])) is not None}
        costs = None
        if declared:  # per-token prices: count the request's tokens (only then: it reads the whole text)
            input_tokens = len(prompt_text(prompt)) / CHARS_PER_TOKEN
            output_tokens = output_tokens_of(request_kwargs, self.expected_output_tokens)
            costs = {i: p[0] * input_tokens + p[1] * output_tokens for i, p in declared.items()}
        decision = self.router.route(prompt, lam=control.lam, candidates=candidates, costs=costs)
        failed = _compat.failed_deployment_ids(request_kwargs)
        scores = dict(zip(decision.candidates, decision.scores.tolist()))
        fresh = [i for i in decision.ranking if i in healthy_ids and i not in failed]
        ties = [i for i in fresh if scores[i] - scores[fresh[0]] <= self.tolerance]
        unprofiled = [i for i in healthy_ids if i not in scores]
        order = [
            *fresh,
            *(i for i in unprofiled if i not in failed),
            *(i for i in decision.ranking if i in healthy_ids and i in failed),
            *(i for i in unprofiled if i in failed),
        ]
        previous = find_decision(request_kwargs)
        errors = dict(zip(decision.candidates, decision.errors.tolist()))
        costs_used = dict(zip(decision.candidates, decision.costs.tolist()))
        record = Record(
            model_group=model,
            deployment=None,
            profile=None,
            rank=None,
            expected_error=None,
            cost=None,
            score=None,
            **{"lambda": control.lam},
            cluster=decision.cluster,
            note=decision.note,
            tied=ties,
            # the first deployment this request went to: an earlier attempt's pick, else the first to fail
            chosen=(previous.get("chosen") if previous else None) or (failed[0] if failed else None),
            failed=failed,
            decision_id=decision.decision_id,
            ranking=[
                {
                    "deployment": i,
                    "profile": candidates[i],
                    "expected_error": errors[i],
                    "cost": costs_used[i],
                    "score": scores[i],
                    "healthy": i in healthy_ids,
                }
                for i in decision.ranking
            ],
        )
        record.decision, record.ranker = decision, self
        writable_metadata(request_kwargs)[DECISION_KEY] = record
        if previous is not None and previous.get("decision_id"):  # a retry or a fallback: link them
            self._next.put(previous["decision_id"], record)
        return Ranking([by_id[i] for i in order], [by_id[i] for i in ties or order[:1]], record)
