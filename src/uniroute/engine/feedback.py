"""Learning from production: feedback counts per (model, cluster), kept apart from validation.

A profile Ψ(h) is a Beta posterior per cluster built from Φ-weighted counts
(:mod:`uniroute.engine.profiles`). Feedback on a routed request (a score in
[0, 1], e.g. thumbs-up = 1, thumbs-down = 0, or a graded score) adds to the same
kind of counts, Φ-weighted by the prompt's cluster probabilities:

    n_k += w·Φ_k(x),   e_k += w·Φ_k(x)·(1 - score)

:class:`FeedbackLedger` keeps these feedback counts *apart* from the validation
counts, so :meth:`FeedbackLedger.profile` can combine them with any weight (0 =
the validation-only profile, the state as onboarded). With ``half_life`` the
feedback counts decay by 0.5^(Δt / half_life), applied lazily to one model's
arrays when it is touched, so recording stays O(K). Memory is bounded: two
arrays of K floats per model, at most ``max_models`` models (the least recently
updated is dropped, counted and logged), and a bounded decision cache.

Exploration: :func:`thompson_errors` samples Ψ from each cluster's posterior;
the router scores the sample with its one routing rule, and
:class:`ExplorationCap` keeps the share of traffic sent to a clearly worse model
(by its mean score) under a cap. :func:`prior_profile` lets a model join with
zero validation prompts, from a stated accuracy or a similar model's profile.

Pure numpy: no LLM SDK, no network (the shared store for many replicas lives in
:mod:`uniroute.stores.redis`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import numpy as np

from ..exceptions import InputError, UnknownDecisionError, UnrankedAnswerError
from .decision import Decision, best_index, check_number, short_repr
from .profiles import DEFAULT_PRIOR_STRENGTH, ModelProfile

logger = logging.getLogger(__name__)
V = TypeVar("V")

__all__ = [
    "DecisionCache",
    "ExplorationCap",
    "FeedbackLedger",
    "RecentItems",
    "RememberedDecision",
    "check_feedback",
    "combine",
    "prior_profile",
    "profile_of",
    "thompson_errors",
]


#: Largest weight of one feedback event. A finite weight near the float maximum (1e308) made the
#: counts infinite once added, and every later rebuild of the routing profiles failed, so no
#: feedback reached routing again; 1e6 results per event keeps sums of any realistic count finite.
MAX_WEIGHT = 1e6


def check_feedback(cluster_probs: Any, score: Any, weight: Any, n_clusters: int) -> tuple[np.ndarray, float]:
    """Validate one feedback event; return (w·Φ as float64 (K,), 1 - score).

    ``score`` is a number in [0, 1] or a bool (True = success, False = failure);
    ``weight`` a number in [0, :data:`MAX_WEIGHT`].
    """
    if isinstance(score, (bool, np.bool_)):
        value = 1.0 if score else 0.0
    elif isinstance(score, (int, float, np.floating, np.integer)) and 0.0 <= score <= 1.0:
        value = float(score)
    else:
        raise InputError(
            f"feedback score must be a number in [0, 1] (1 = right, 0 = wrong) or a bool, got {score!r}; "
            "rescale a rating first, e.g. stars 1-5 -> (stars - 1) / 4"
        )
    w = check_number(weight, "weight", hint=" (how many results this feedback counts as, e.g. 1)")
    if w > MAX_WEIGHT:
        raise InputError(
            f"weight must be at most {MAX_WEIGHT:.0e} (how many results this feedback counts as, e.g. 1), "
            f"got {weight!r}"
        )
    try:
        phi = np.array(cluster_probs, dtype=np.float64)  # a copy: the caller's array is never aliased
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"cluster_probs must be {n_clusters} numbers (Decision.cluster_probs): {exc}"
        ) from exc
    if phi.shape != (n_clusters,):
        raise InputError(
            f"cluster_probs has shape {phi.shape}; expected ({n_clusters},): pass Decision.cluster_probs "
            "of a decision made by the same router state"
        )
    # min() propagates NaN; with min >= 0 only +inf is left, which makes the sum infinite.
    if not (phi.min() >= 0 and math.isfinite(phi.sum())):
        raise InputError("cluster_probs must be finite and >= 0 (Decision.cluster_probs)")
    if w != 1.0:
        phi *= w
    return phi, 1.0 - value


def combine(
    validation: ModelProfile, error_sums: np.ndarray, counts: np.ndarray, feedback_weight: float = 1.0
) -> ModelProfile:
    """``validation`` with ``feedback_weight`` × the feedback counts added (same name, price, prior)."""
    fw = check_number(feedback_weight, "feedback_weight", hint=" (0 = validation only, 1 = feedback as is)")
    if counts.shape != validation.counts.shape:
        raise InputError(
            f"feedback for {validation.name!r} has {counts.shape[0]} clusters, its profile "
            f"{validation.counts.shape[0]}: feedback must come from the same router state"
        )
    return replace(
        validation,
        error_sums=validation.error_sums + fw * np.minimum(error_sums, counts),
        counts=validation.counts + fw * counts,
    )


def prior_profile(
    name: str,
    n_clusters: int,
    cost: float,
    *,
    accuracy: float | None = None,
    like: ModelProfile | None = None,
    strength: float = 4.0,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> ModelProfile:
    """A profile for a model with **zero** validation prompts, to be refined by feedback.

    Give exactly one of ``accuracy`` (a stated global accuracy: ``strength``
    pseudo-results per cluster, each with error 1 - accuracy) or ``like`` (a
    similar model's profile: its per-cluster error rates, with at most
    ``strength`` of its results per cluster, so it keeps its own uncertainty where
    it saw little). Small ``strength`` = feedback takes over quickly.
    """
    strength = check_number(strength, "strength", hint=" (pseudo-results per cluster, e.g. 4)")
    if (accuracy is None) == (like is None):
        raise InputError(
            f"cold start of {name!r}: give exactly one of accuracy= or like= (a similar profile)"
        )
    if accuracy is not None:
        acc = check_number(accuracy, "accuracy", hint=" (the model's expected share of right answers)")
        if acc > 1:
            raise InputError(f"accuracy must lie in [0, 1], got {accuracy!r}")
        counts = np.full(n_clusters, strength)
        error_sums = counts * (1.0 - acc)
    else:
        assert like is not None
        if like.counts.shape != (n_clusters,):
            raise InputError(
                f"profile {like.name!r} has {like.counts.shape[0]} clusters, expected {n_clusters}"
            )
        counts = np.minimum(like.counts, strength)
        rates = np.divide(like.error_sums, like.counts, out=np.full(n_clusters, 0.5), where=like.counts > 0)
        error_sums = counts * rates
    return ModelProfile(name, error_sums, counts, cost, prior_strength)


def thompson_errors(profiles: Sequence[ModelProfile], rng: Any = None) -> np.ndarray:
    """One draw of Ψ (n_models, K) from each cluster's Beta posterior (exploration).

    ``rng``: a ``numpy.random.Generator``, a seed, or None.
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if not profiles:
        return np.zeros((0, 0))
    alpha = np.stack([p.posterior()[0] for p in profiles])
    beta = np.stack([p.posterior()[1] for p in profiles])
    return np.asarray(generator.beta(alpha, beta), dtype=np.float64)


class ExplorationCap:
    """Cap the share of traffic that exploration sends to a clearly worse model.

    :meth:`choose` takes the candidates' mean scores (Φ·Ψ + λ·cost on the
    posterior mean) and their scores on a posterior sample. The sample's best is
    taken unless its mean score is worse than the mean best's by more than
    ``margin`` *and* taking it would lift the share of such picks above
    ``max_share``; then the mean best is taken (counted as ``capped``).

    Parameters
    ----------
    max_share : float, default=0.1
        Largest share of decisions that may go to a model worse than the best by more than ``margin``.
    margin : float, default=0.02
        Score difference (error points) within which a model counts as as good as the best.
    """

    def __init__(self, max_share: float = 0.1, margin: float = 0.02):
        self.max_share = max_share
        self.margin = margin
        if not 0 <= check_number(max_share, "max_share") <= 1:
            raise InputError(f"max_share must lie in [0, 1], e.g. 0.1; got {max_share!r}")
        check_number(margin, "margin", hint=" (error points, e.g. 0.02)")
        self._lock = threading.Lock()
        self.decisions = 0
        self.explored = 0
        self.capped = 0

    def choose(self, mean_scores: Any, sampled_scores: Any) -> int:
        """Index of the candidate to route to (see the class docstring)."""
        mean = np.asarray(mean_scores, dtype=np.float64)
        sampled = np.asarray(sampled_scores, dtype=np.float64)
        if mean.shape != sampled.shape or mean.ndim != 1 or not len(mean):
            raise InputError(
                f"mean and sampled scores must be 1-D of one length, got {mean.shape}, {sampled.shape}"
            )
        best, pick = int(best_index(mean)), int(best_index(sampled))
        with self._lock:
            self.decisions += 1
            if not mean[pick] - mean[best] > self.margin:
                return pick
            if self.explored + 1 <= self.max_share * self.decisions:
                self.explored += 1
                return pick
            self.capped += 1
            return best

    def stats(self) -> dict[str, Any]:
        """Decisions seen, worse-than-margin picks allowed (explored) and refused (capped)."""
        with self._lock:
            share = self.explored / self.decisions if self.decisions else 0.0
            return {
                "decisions": self.decisions,
                "explored": self.explored,
                "capped": self.capped,
                "share": share,
            }


@dataclass(frozen=True)
class RememberedDecision:
    """What feedback by decision id needs: the prompt's Φ and the profile to credit.

    ``profile`` is the chosen model's, or that of the candidate that answered after a
    fallback; ``None`` when a model outside the candidates answered (nothing to credit).
    """

    cluster_probs: np.ndarray
    model: str
    profile: str | None
    at: float

    def credited(self, decision_id: str) -> str:
        """The profile feedback on this decision goes to; :class:`UnrankedAnswerError` if none."""
        if self.profile is None:
            raise UnrankedAnswerError(
                f"decision {decision_id!r} was answered by a model outside its candidates (a fallback to "
                "another model group); there is no profile to credit"
            )
        return self.profile


class RecentItems(Generic[V]):
    """A map that keeps its newest ``max_size`` items (oldest out) for ``ttl`` seconds; thread-safe.

    The bounded memory behind feedback by id: decisions here, LangChain runs and
    LiteLLM answers in the front doors. ``evicted`` and ``expired`` count what was lost.
    """

    def __init__(self, max_size: int = 100_000, ttl: float = 3600.0):
        self.max_size = max_size
        self.ttl = ttl
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise InputError(f"max_size must be an int >= 1, got {max_size!r}")
        check_number(ttl, "ttl", hint=" (seconds an item can still receive feedback)")
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def put(self, key: str, value: V, now: float | None = None) -> None:
        """Keep ``value`` under ``key`` (as the newest item), from ``now`` (default: the clock)."""
        at = time.time() if now is None else now
        with self._lock:
            self._items[key] = (at, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
                self.evicted += 1

    def get(self, key: str, now: float | None = None) -> V | None:
        """The value under ``key``, or None if unknown, pushed out or older than ``ttl``."""
        now = time.time() if now is None else now
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if now - item[0] > self.ttl:
                del self._items[key]
                self.expired += 1
                return None
            return item[1]

    def update(self, other: RecentItems[V]) -> None:
        """Add ``other``'s items with their times; the two merge oldest first (the newer item wins a
        key both hold), so this map's bounds then drop the oldest of either."""
        with other._lock:
            theirs = list(other._items.items())
        with self._lock:
            merged = sorted([*self._items.items(), *theirs], key=lambda item: item[1][0])
            self._items = OrderedDict()
            for key, value in merged:
                self._items[key] = value
                self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
                self.evicted += 1

    def pop(self, key: str) -> V | None:
        """Remove and return the value under ``key`` (None if there is none)."""
        with self._lock:
            item = self._items.pop(key, None)
        return None if item is None else item[1]

    def __len__(self) -> int:
        return len(self._items)


def profile_of(decision: Decision, candidate: str | None = None) -> str:
    """The profile ``candidate`` (a candidate of ``decision``; default: its choice) was scored with."""
    name = decision.model if candidate is None else candidate
    if decision.profiles == decision.candidates:  # each candidate is its own profile: no search
        return name
    return decision.profiles[decision.candidates.index(name)]


class DecisionCache(RecentItems[RememberedDecision]):
    """Recent decisions by ``decision_id``, bounded in size (oldest out) and age (``ttl`` seconds)."""

    def remember(self, decision: Decision, now: float | None = None) -> None:
        """Keep ``decision`` so feedback can name it by ``decision.decision_id``."""
        at = time.time() if now is None else now
        item = RememberedDecision(
            np.array(decision.cluster_probs, dtype=np.float64), decision.model, profile_of(decision), at
        )
        self.put(decision.decision_id, item, at)


class _Cell:
    """One model's feedback counts, decayed up to ``at``."""

    __slots__ = ("at", "counts", "error_sums", "events")

    def __init__(self, n_clusters: int, at: float):
        self.error_sums = np.zeros(n_clusters)
        self.counts = np.zeros(n_clusters)
        self.at = at
        self.events = 0


class FeedbackLedger:
    """Production feedback per (model, cluster), Φ-weighted, apart from validation counts.

    Parameters
    ----------
    n_clusters : int
        K of the router state the feedback's decisions came from.
    half_life : float, optional
        Seconds after which a feedback count weighs half (drift); None = no decay.
    max_models : int, default=1000
        Models kept; beyond it the least recently updated is dropped (``stats()["evicted_models"]``).
    decisions : DecisionCache, optional
        Where decisions are remembered for feedback by id (default: 100,000 for 1 h).

    Examples
    --------
    >>> ledger = FeedbackLedger(n_clusters=2)
    >>> ledger.record("gpt", [0.75, 0.25], score=0.0, now=0.0)
    >>> ledger.counts("gpt", now=0.0)[1].tolist()
    [0.75, 0.25]
    """

    def __init__(
        self,
        n_clusters: int,
        half_life: float | None = None,
        max_models: int = 1000,
        decisions: DecisionCache | None = None,
    ):
        self.n_clusters = n_clusters
        self.half_life = half_life
        self.max_models = max_models
        for value, name in ((n_clusters, "n_clusters"), (max_models, "max_models")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be an int >= 1, got {value!r}")
        if half_life is not None and not check_number(half_life, "half_life") > 0:
            raise InputError(f"half_life must be > 0 seconds or None (no decay), got {half_life!r}")
        self.decisions = DecisionCache() if decisions is None else decisions
        self._cells: OrderedDict[str, _Cell] = OrderedDict()
        self._lock = threading.Lock()
        self.events = 0
        self.evicted_models = 0
        # Grows whenever the counts change: a router rebuilds its profiles only when it moved.
        self.version = 0

    def _decay(self, cell: _Cell, now: float) -> None:
        if self.half_life is not None and now > cell.at:
            factor = 0.5 ** ((now - cell.at) / self.half_life)
            cell.error_sums *= factor
            cell.counts *= factor
        cell.at = max(cell.at, now)

    def record(
        self, model: str, cluster_probs: Any, score: Any, weight: float = 1.0, now: float | None = None
    ) -> None:
        """Add one feedback: profile ``model`` scored ``score`` on a prompt of Φ ``cluster_probs``."""
        if not isinstance(model, str) or not model:
            raise InputError(f"model must be a non-empty profile name, got {model!r}")
        phi, error = check_feedback(cluster_probs, score, weight, self.n_clusters)
        now = time.time() if now is None else now
        with self._lock:
            cell = self._cells.get(model)
            if cell is None:
                cell = self._cells[model] = _Cell(self.n_clusters, now)
                if len(self._cells) > self.max_models:
                    dropped, _ = self._cells.popitem(last=False)
                    self.evicted_models += 1
                    logger.warning(
                        "uniroute feedback: dropped the counts of %r (least recently updated of %d models; "
                        "raise max_models to keep more)",
                        dropped,
                        self.max_models,
                    )
            else:
                self._cells.move_to_end(model)
                self._decay(cell, now)
                if self.half_life is not None and now < cell.at:  # older than the counts: weighs less
                    phi *= 0.5 ** ((cell.at - now) / self.half_life)
            cell.counts += phi
            if error:
                cell.error_sums += phi * error
            cell.events += 1
            self.events += 1
            self.version += 1

    def remember(self, decision: Decision, now: float | None = None) -> None:
        """Keep ``decision`` so :meth:`record_decision` can name it by id later."""
        self.decisions.remember(decision, now)

    def record_decision(
        self, decision_id: str, score: Any, weight: float = 1.0, now: float | None = None
    ) -> str:
        """Feedback on a remembered decision (its chosen model's profile); returns that profile name."""
        item = self.decisions.get(decision_id, now)
        if item is None:
            raise UnknownDecisionError(
                f"decision {short_repr(decision_id)} is unknown or expired (kept {self.decisions.ttl:g} s, "
                f"at most {self.decisions.max_size}); record with the model and the decision's "
                "cluster_probs instead"
            )
        profile = item.credited(decision_id)
        self.record(profile, item.cluster_probs, score, weight, now)
        return profile

    @property
    def models(self) -> tuple[str, ...]:
        """Models with feedback, least recently updated first."""
        return tuple(self._cells)

    def counts(self, model: str, now: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(error_sums, counts) of ``model``'s feedback, decayed to ``now``; zeros if it has none."""
        now = time.time() if now is None else now
        with self._lock:
            cell = self._cells.get(model)
            if cell is None:
                return np.zeros(self.n_clusters), np.zeros(self.n_clusters)
            factor = 1.0
            if self.half_life is not None and now > cell.at:
                factor = 0.5 ** ((now - cell.at) / self.half_life)
            return cell.error_sums * factor, cell.counts * factor

    def profile(
        self, validation: ModelProfile, feedback_weight: float = 1.0, now: float | None = None
    ) -> ModelProfile:
        """``validation`` (the onboarded profile) plus ``feedback_weight`` × this model's feedback."""
        return combine(validation, *self.counts(validation.name, now), feedback_weight)

    def reset(self, model: str | None = None) -> None:
        """Forget the feedback of ``model`` (or of every model): back to validation-only profiles."""
        with self._lock:
            if model is None:
                self._cells.clear()
            else:
                self._cells.pop(model, None)
            self.version += 1

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: events, models, evictions, remembered decisions."""
        return {
            "events": self.events,
            "models": len(self._cells),
            "evicted_models": self.evicted_models,
            "decisions": len(self.decisions),
            "decisions_evicted": self.decisions.evicted,
            "decisions_expired": self.decisions.expired,
        }

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-ready meta, arrays) for saving beside a router state (see :meth:`from_state`)."""
        with self._lock:
            names = list(self._cells)
            cells = list(self._cells.values())
            meta = {
                "half_life": self.half_life,
                "max_models": self.max_models,
                "models": names,
                "events": [c.events for c in cells],
            }
            shape = (0, self.n_clusters)
            arrays = {
                "feedback_error_sums": np.stack([c.error_sums for c in cells]) if cells else np.zeros(shape),
                "feedback_counts": np.stack([c.counts for c in cells]) if cells else np.zeros(shape),
                "feedback_at": np.array([c.at for c in cells], dtype=np.float64),
            }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeedbackLedger:
        """The ledger :meth:`to_state` wrote (counts, times and event counts restored)."""
        counts = np.asarray(arrays["feedback_counts"], dtype=np.float64)
        error_sums = np.asarray(arrays["feedback_error_sums"], dtype=np.float64)
        at = np.asarray(arrays["feedback_at"], dtype=np.float64)
        names = list(meta["models"])
        if counts.ndim != 2 or error_sums.shape != counts.shape or not len(names) == len(counts) == len(at):
            raise InputError("feedback arrays do not match the model list; the state's feedback is corrupt")
        max_models = max(int(meta.get("max_models", 1000)), len(names))
        ledger = cls(int(counts.shape[1]), meta.get("half_life"), max_models)
        for i, name in enumerate(names):
            cell = _Cell(ledger.n_clusters, float(at[i]))
            cell.error_sums, cell.counts = error_sums[i].copy(), counts[i].copy()
            cell.events = int(meta.get("events", [0] * len(names))[i])
            ledger._cells[name] = cell
            ledger.events += cell.events
        return ledger
