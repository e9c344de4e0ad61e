"""What the router decided for one prompt, and why."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Decision:
    """One routing decision: the chosen model and everything that explains it.

    ``expected_error[m] + lam * cost[m] == score[m]`` for every candidate ``m``;
    ``ranking`` orders candidates by score, best first (the fallback order).

    Attributes
    ----------
    model : str
        The chosen model (``ranking[0]``).
    lam : float
        The quality-cost trade-off used (error points per $).
    cluster_probs : ndarray of shape (n_clusters,)
        Φ(x) of the prompt.
    skipped : tuple of str
        Candidates left out because they have no profile.
    note : str or None
        Set when a documented default applied (e.g. a prompt with no text).
    """

    candidates: tuple[str, ...]
    errors: np.ndarray
    costs: np.ndarray
    lam: float
    cluster_probs: np.ndarray
    skipped: tuple[str, ...] = ()
    note: str | None = None

    @cached_property
    def scores(self) -> np.ndarray:
        return self.errors + self.lam * self.costs

    @cached_property
    def _order(self) -> np.ndarray:
        return np.argsort(self.scores, kind="stable")

    @property
    def model(self) -> str:
        return self.candidates[int(np.argmin(self.scores))]

    @property
    def ranking(self) -> tuple[str, ...]:
        return tuple(self.candidates[i] for i in self._order)

    @property
    def expected_error(self) -> dict[str, float]:
        return dict(zip(self.candidates, self.errors.tolist()))

    @property
    def cost(self) -> dict[str, float]:
        return dict(zip(self.candidates, self.costs.tolist()))

    @property
    def score(self) -> dict[str, float]:
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
            "lambda": self.lam,
            "cluster": self.cluster,
            "cluster_probs": [round(float(p), 6) for p in self.cluster_probs],
            "ranking": [
                {
                    "model": self.candidates[i],
                    "expected_error": float(self.errors[i]),
                    "cost": float(self.costs[i]),
                    "score": float(self.scores[i]),
                }
                for i in order
            ],
            "skipped": list(self.skipped),
            "note": self.note,
        }
