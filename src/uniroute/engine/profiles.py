"""Model profiles Ψ(h): a model's error rate on each cluster, with the counts behind it.

A profile is measured, never trained: run the model on a labelled validation set,
weight each result by the prompt's cluster probabilities Φ(x), and sum. With few
results in a cluster the raw rate is noise, so each cluster's error is the mean of
a Beta posterior whose prior is centred on the model's *global* error (not on 0.5)
with ``prior_strength`` pseudo-results:

    Ψ_k = (e_k + m·g) / (n_k + m),   g = (Σe + ½) / (Σn + 1)

where n_k is the (soft) number of results in cluster k, e_k the (soft) sum of
errors ``1 - score`` and m the prior strength. ``upper(q)`` gives the q-quantile of
that posterior, for routing on a conservative estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import InputError

DEFAULT_PRIOR_STRENGTH = 4.0


@dataclass(frozen=True, eq=False)
class ModelProfile:
    """Ψ(h) of one model and its cost per request.

    Parameters
    ----------
    name : str
        The model's name in the router (a LiteLLM model string, a deployment id...).
    error_sums : ndarray of shape (n_clusters,)
        Σ Φ_k(x)·(1 - score) over the model's validation results.
    counts : ndarray of shape (n_clusters,)
        Σ Φ_k(x) over the same results (sample counts, soft for soft maps).
    cost : float
        Expected $ per request.
    prior_strength : float, default=4.0
        Pseudo-results pulling each cluster toward the model's global error.
    """

    name: str
    error_sums: np.ndarray
    counts: np.ndarray
    cost: float
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    errors: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        error_sums = np.asarray(self.error_sums, dtype=np.float64)
        counts = np.asarray(self.counts, dtype=np.float64)
        if error_sums.shape != counts.shape or error_sums.ndim != 1:
            raise InputError(f"profile {self.name!r}: error_sums and counts must be 1-D of equal length")
        if (counts < 0).any() or (error_sums < 0).any() or (error_sums > counts + 1e-9).any():
            raise InputError(f"profile {self.name!r}: need 0 <= error_sums <= counts")
        if not np.isfinite(self.cost) or self.cost < 0:
            raise InputError(f"profile {self.name!r}: cost must be a finite $ >= 0, got {self.cost!r}")
        if not self.prior_strength >= 0:
            raise InputError(f"profile {self.name!r}: prior_strength must be >= 0")
        object.__setattr__(self, "error_sums", error_sums)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "cost", float(self.cost))
        alpha, beta = self.posterior()
        object.__setattr__(self, "errors", alpha / (alpha + beta))

    @property
    def n_results(self) -> float:
        """How many validation results the profile rests on."""
        return float(self.counts.sum())

    @property
    def global_error(self) -> float:
        """Error over all clusters, lightly smoothed: (Σe + ½) / (Σn + 1)."""
        return float((self.error_sums.sum() + 0.5) / (self.counts.sum() + 1.0))

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Beta(α_k, β_k) posterior of each cluster's error rate."""
        g = self.global_error
        alpha = self.error_sums + self.prior_strength * g
        beta = self.counts - self.error_sums + self.prior_strength * (1.0 - g)
        return np.maximum(alpha, 1e-6), np.maximum(beta, 1e-6)

    def upper(self, q: float = 0.9) -> np.ndarray:
        """The q-quantile of each cluster's error: a conservative Ψ."""
        if not 0 < q < 1:
            raise InputError(f"q must lie in (0, 1), got {q!r}")
        from scipy.stats import beta as beta_dist

        alpha, beta = self.posterior()
        return np.asarray(beta_dist.ppf(q, alpha, beta), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the arrays themselves are stored as .npz)."""
        return {
            "name": self.name,
            "cost": self.cost,
            "prior_strength": self.prior_strength,
            "n_results": self.n_results,
            "global_error": self.global_error,
        }


def check_scores(scores: Any, n: int, name: str) -> np.ndarray:
    """Validate a vector of n scores in [0, 1] (NaN = missing) and return it as float64."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"scores of {name!r} must be numbers in [0, 1] or NaN: {exc}") from exc
    if s.shape != (n,):
        raise InputError(f"scores of {name!r} have shape {s.shape}; expected one per prompt ({n})")
    observed = s[~np.isnan(s)]
    if ((observed < 0) | (observed > 1)).any():
        bad = observed[(observed < 0) | (observed > 1)][0]
        raise InputError(f"scores of {name!r} must lie in [0, 1] (NaN = missing); found {bad}")
    return s


def profile_from_scores(
    name: str,
    phi: np.ndarray,
    scores: Any,
    cost: float,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> ModelProfile:
    """Build Ψ(h) from cluster probabilities ``phi`` (n, K) and the model's scores (n,).

    Missing results (NaN) are skipped, not counted as wrong.
    """
    s = check_scores(scores, phi.shape[0], name)
    observed = ~np.isnan(s)
    if not observed.any():
        raise InputError(f"model {name!r} has no observed result; cannot profile it")
    weights = phi[observed].astype(np.float64)
    return ModelProfile(
        name=name,
        error_sums=weights.T @ (1.0 - s[observed]),
        counts=weights.sum(axis=0),
        cost=cost,
        prior_strength=prior_strength,
    )
