"""What the router decided for one prompt, and why.

:func:`route_scores` is the routing rule, expected error + λ·cost; it is the one
place the engine computes it (:class:`~uniroute.Router` routing, calibration and
:class:`Decision` all call it), and the front doors never re-score.
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import InputError


def route_scores(errors: np.ndarray, costs: np.ndarray, lam: float) -> np.ndarray:
    """The routing rule: ``errors + lam * costs``, lower is better.

    ``errors`` is Φ(x)·Ψ(h), shape (m,) or (n, m); ``costs`` is $ per request, shape (m,).
    """
    return errors + lam * costs


def lambda_bound(errors: np.ndarray, costs: np.ndarray) -> float:
    """A λ at which every prompt goes to its cheapest candidate: the top of any search over λ.

    ``errors`` (n, m); ``costs`` (m,) or (n, m). Past 2·(error range + 1) / the smallest
    gap between two candidates' prices on one prompt, no error difference outweighs a price difference.
    """
    prices = np.broadcast_to(costs, errors.shape)
    gaps = np.diff(np.sort(prices, axis=1), axis=1)
    gaps = gaps[gaps > 0]
    return float(2.0 * (np.ptp(errors) + 1.0) / (gaps.min() if len(gaps) else 1.0))


_MAX_PAIRS = 1_000_000  # prompt × candidate × candidate cells lambda_sweep compares at most


def lambda_sweep(errors: np.ndarray, costs: np.ndarray, size: int = 241) -> np.ndarray:
    """λ values that sweep every routing of ``errors`` (n, m) at ``costs`` ((m,) or (n, m)).

    A prompt's choice between a dearer, better candidate and a cheaper one flips at
    λ = error gap / price gap. The grid is 0, a point between each two consecutive
    flips (their geometric mean; past ``size`` flips, between quantiles of them) and
    :func:`lambda_bound`, so it follows the flips at any price scale: with prices that
    vary per prompt the smallest price gap is tiny, the bound huge, and a grid spaced
    down from the bound would skip everything between λ = 0 and the bound / 10⁶.
    """
    errors = np.asarray(errors, dtype=np.float64)
    prices = np.broadcast_to(np.asarray(costs, dtype=np.float64), errors.shape)
    top = lambda_bound(errors, prices)
    if errors.shape[0] * errors.shape[1] ** 2 > _MAX_PAIRS:  # a deterministic sample of the prompts
        keep = np.linspace(0, errors.shape[0] - 1, max(1, _MAX_PAIRS // errors.shape[1] ** 2)).astype(int)
        errors, prices = errors[keep], prices[keep]
    gain = errors[:, None, :] - errors[:, :, None]  # [p, i, j]: how much better i is than j
    extra = prices[:, :, None] - prices[:, None, :]  # [p, i, j]: how much dearer i is than j
    trade = (gain > 0) & (extra > 0)  # a dearer, better candidate against a cheaper one
    flips = np.unique(gain[trade] / extra[trade])
    if len(flips) > size:
        flips = np.unique(np.quantile(flips, np.linspace(0.0, 1.0, size)))
    between = np.sqrt(flips[:-1] * flips[1:])
    return np.unique(np.concatenate([[0.0, top], flips[:1] / 2, between]).clip(0.0, top))


def best_index(scores: np.ndarray) -> np.ndarray:
    """Index of the best score along the last axis: the first of the lowest, NaN last.

    The same candidate a stable ascending sort puts first, so ``model == ranking[0]``.
    """
    if np.isnan(scores).any():  # argmin would stop at a NaN; the ranking puts NaN last
        return np.argsort(scores, axis=-1, kind="stable")[..., 0]
    return scores.argmin(axis=-1)


def check_number(value: Any, name: str, *, hint: str = "") -> float:
    """``value`` as a finite float >= 0; anything else (str, None, bool, NaN, < 0) is an InputError."""
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise InputError(f"{name} must be a number >= 0, got {value!r} ({type(value).__name__}){hint}")
    number = float(value)
    if not number >= 0 or not math.isfinite(number):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}{hint}")
    return number


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters: an id from a request is echoed in errors and logs."""
    return _SHORT.repr(value)


def new_decision_id() -> str:
    """A random (version 4) UUID as 32 hex digits; ~3x faster than ``uuid.uuid4().hex``."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


@dataclass(frozen=True, eq=False)
class Decision:
    """One routing decision: the chosen model and everything that explains it.

    ``errors[i] + lam * costs[i] == scores[i]`` for every candidate ``i``;
    ``ranking`` orders candidates by score, best first and stable (the fallback
    order), and ``model == ranking[0]`` always.

    Attributes
    ----------
    candidates : tuple of str
        The names routed among (a LiteLLM deployment, a LangChain child, or a model).
    errors, costs, scores : ndarray of shape (n_candidates,)
        Expected error Φ(x)·Ψ, $ per request, and ``errors + lam * costs``.
    lam : float
        The quality-cost trade-off used (error points per $).
    cluster_probs : ndarray of shape (n_clusters,)
        Φ(x) of the prompt.
    skipped : tuple of str
        Candidates left out because they have no profile.
    note : str or None
        Set when a documented default applied (e.g. a prompt with no text).
    profiles : tuple of str
        The profile each candidate was scored with (default: its own name).
    model : str
        The chosen candidate, ``ranking[0]``.
    decision_id : str
        A uuid4 hex string, unique per decision (to attach feedback to it later).
    """

    candidates: tuple[str, ...]
    errors: np.ndarray
    costs: np.ndarray
    lam: float
    cluster_probs: np.ndarray
    skipped: tuple[str, ...] = ()
    note: str | None = None
    # None = derived in __post_init__ (from candidates / the routing rule); never None afterwards.
    profiles: tuple[str, ...] = None  # type: ignore[assignment]  # see above
    scores: np.ndarray = None  # type: ignore[assignment]  # see above
    model: str = None  # type: ignore[assignment]  # see above
    decision_id: str = field(default_factory=new_decision_id)

    def __post_init__(self) -> None:
        if self.profiles is None:
            object.__setattr__(self, "profiles", self.candidates)
        if self.scores is None:
            object.__setattr__(self, "scores", route_scores(self.errors, self.costs, self.lam))
        if self.model is None:
            object.__setattr__(self, "model", self.candidates[int(best_index(self.scores))])

    @property
    def _order(self) -> np.ndarray:
        # Cached by hand: functools.cached_property takes a lock shared by all decisions.
        order = self.__dict__.get("_order_cache")
        if order is None:
            order = np.argsort(self.scores, kind="stable")
            self.__dict__["_order_cache"] = order
        return order

    @property
    def ranking(self) -> tuple[str, ...]:
        """Candidates by score, best first (stable: ties keep the candidates' order)."""
        return tuple(self.candidates[i] for i in self._order)

    def near_best(self, tolerance: float) -> tuple[str, ...]:
        """Candidates whose score is within ``tolerance`` of the best, in ranking order.

        Ties (e.g. one model deployed in several regions at one price) come out
        together, so a front door can spread load among them by its own rules.
        """
        limit = self.scores[self._order[0]] + check_number(tolerance, "tolerance")
        return tuple(self.candidates[i] for i in self._order if self.scores[i] <= limit)

    @property
    def expected_error(self) -> dict[str, float]:
        """``errors`` by candidate name."""
        return dict(zip(self.candidates, self.errors.tolist()))

    @property
    def cost(self) -> dict[str, float]:
        """``costs`` ($ per request) by candidate name."""
        return dict(zip(self.candidates, self.costs.tolist()))

    @property
    def score(self) -> dict[str, float]:
        """``scores`` (``errors + lam * costs``, lower is better) by candidate name."""
        return dict(zip(self.candidates, self.scores.tolist()))

    @property
    def cluster(self) -> int:
        """The most likely cluster of the prompt."""
        return int(np.argmax(self.cluster_probs))

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready explanation; ``top`` keeps only the best ``top`` candidates."""
        order = self._order if top is None else self._order[:top]
        return {
            "model": self.model,
            "decision_id": self.decision_id,
            "lambda": self.lam,
            "cluster": self.cluster,
            "cluster_probs": [round(float(p), 6) for p in self.cluster_probs],
            "ranking": [
                {
                    "model": self.candidates[i],
                    "profile": self.profiles[i],
                    "expected_error": float(self.errors[i]),
                    "cost": float(self.costs[i]),
                    "score": float(self.scores[i]),
                }
                for i in order
            ],
            "skipped": list(self.skipped),
            "note": self.note,
        }
