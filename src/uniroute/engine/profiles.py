"""Model profiles Ψ(h): a model's error rate on each cluster, with the counts behind it.

A profile is measured, never trained: run the model on a labelled validation set,
weight each result by the prompt's cluster probabilities Φ(x), and sum. Each
cluster's error is the mean of a Beta posterior with ``prior_strength`` (m)
pseudo-results:

    Ψ_k = (e_k + m·μ_k) / (n_k + m),   μ_k = (n_k·g + m·½) / (n_k + m),
    g = (Σe + ½) / (Σn + 1)

where n_k is the (soft) number of results in cluster k, e_k the (soft) sum of errors
``1 - score``. The prior centre μ_k is the model's global error g where the
cluster holds results and moves to ½ (unknown) where it holds few or none: a model
validated only on multiple-choice questions says nothing about code, so its
global error must not stand in for its error on code.

Soft cluster maps give every cluster a little weight from every prompt, so a
model validated on 1,500 quiz prompts collects ~1 "result" in a code cluster.
:func:`profile_from_scores` therefore discounts each cluster's evidence by its
*coverage* when it knows the training prompts' cluster shares (``reference``):
c_k = min(1, (n_k / Σn) / reference_k), and stores c_k·n_k and c_k·e_k. A
validation set spread like the training prompts keeps its full weight.
``upper(q)`` gives the q-quantile of the posterior, for routing on a conservative
estimate.

A profile also prices requests. A request's $ depends on its length (input
tokens are billed, and the kind of prompt sets how long the answer is), so
routing on one mean $ per model sends long prompts to an expensive model as
readily as short ones. Given one $ per validation prompt, :func:`fit_price`
measures how a model's $ moves with the prompt's characters (least squares), and
:meth:`ModelProfile.price` prices any request: ``cost + cost_per_char · (chars −
mean_chars)``, at least 0. A negative slope (long prompts with short answers) is
not extrapolated past the longest validation prompt (``max_chars``), so a long
request never looks free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..exceptions import InputError

DEFAULT_PRIOR_STRENGTH = 4.0


class Price(NamedTuple):
    """$ per request as a function of the prompt's length in characters.

    ``cost`` at ``mean_chars``, ``per_char`` more per extra character, at least 0;
    with ``per_char`` < 0, lengths past ``max_chars`` are priced as ``max_chars``.
    The fields may be arrays of one value per model: ``price(chars[:, None])`` is (n, m).
    """

    cost: Any
    per_char: Any = 0.0
    mean_chars: Any = 0.0
    max_chars: Any = 0.0

    def __call__(self, chars: Any) -> np.ndarray:
        x = np.asarray(chars, np.float64)
        x = np.where(np.asarray(self.per_char) < 0, np.minimum(x, self.max_chars), x)
        return np.maximum(self.cost + self.per_char * (x - self.mean_chars), 0.0)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def _posterior(error_sums: np.ndarray, counts: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    """Beta(α, β) of each cluster's error; arrays of shape (K,) or (K, n_models)."""
    g = (error_sums.sum(axis=0) + 0.5) / (counts.sum(axis=0) + 1.0)
    denom = counts + m
    centre = np.divide(counts * g + m * 0.5, denom, out=np.full(counts.shape, 0.5), where=denom > 0)
    alpha = error_sums + m * centre
    beta = counts - error_sums + m * (1.0 - centre)
    return np.maximum(alpha, 1e-6), np.maximum(beta, 1e-6)


def evidence(
    phi: np.ndarray, scores: np.ndarray, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(error_sums, counts) of shape (K, n_models) from Φ (n, K) and scores (n, n_models), NaN = missing.

    With ``reference`` (the training prompts' share per cluster) each cluster's
    evidence is scaled by its coverage min(1, share of the model's results / reference).
    """
    observed = ~np.isnan(scores)
    phi = np.asarray(phi, dtype=np.float64)
    counts = phi.T @ observed
    error_sums = phi.T @ np.where(observed, 1.0 - np.nan_to_num(scores), 0.0)
    if reference is not None:
        share = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1e-12)
        ref = np.asarray(reference, dtype=np.float64).reshape(-1, 1)
        coverage = np.minimum(1.0, np.divide(share, ref, out=np.ones_like(share), where=ref > 0))
        counts, error_sums = counts * coverage, error_sums * coverage
    return np.minimum(error_sums, counts), counts


def cluster_errors(
    phi: np.ndarray,
    scores: np.ndarray,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Ψ (K, n_models) of several models at once: the posterior mean :class:`ModelProfile` uses."""
    alpha, beta = _posterior(*evidence(phi, scores, reference), prior_strength)
    return alpha / (alpha + beta)


@dataclass(frozen=True, eq=False)
class ModelProfile:
    """Ψ(h) of one model and its cost per request.

    Parameters
    ----------
    name : str
        The model's name in the router (a LiteLLM model string, a deployment id...).
    error_sums : ndarray of shape (n_clusters,)
        Σ Φ_k(x)·(1 - score) over the model's validation results (times the
        cluster's coverage, see the module docstring).
    counts : ndarray of shape (n_clusters,)
        Σ Φ_k(x) over the same results (effective sample counts).
    cost : float
        Expected $ per request.
    prior_strength : float, default=4.0
        Pseudo-results pulling each cluster toward the model's global error,
        and toward ½ (unknown) where the cluster holds few results.
    cost_per_char : float, default=0.0
        $ a request costs more per character of prompt (0: every request costs
        ``cost``; < 0: longer prompts cost less, see :class:`Price`).
    mean_chars, max_chars : float, default=0.0
        Mean and largest prompt length (characters) of the requests ``cost`` was measured on.
    """

    name: str
    error_sums: np.ndarray
    counts: np.ndarray
    cost: float
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    cost_per_char: float = 0.0
    mean_chars: float = 0.0
    max_chars: float = 0.0
    errors: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        error_sums = np.asarray(self.error_sums, dtype=np.float64)
        counts = np.asarray(self.counts, dtype=np.float64)
        if error_sums.shape != counts.shape or error_sums.ndim != 1:
            raise InputError(f"profile {self.name!r}: error_sums and counts must be 1-D of equal length")
        if not (np.isfinite(error_sums).all() and np.isfinite(counts).all()):
            raise InputError(f"profile {self.name!r}: error_sums and counts must be finite numbers")
        if (counts < 0).any() or (error_sums < 0).any() or (error_sums > counts + 1e-9).any():
            raise InputError(f"profile {self.name!r}: need 0 <= error_sums <= counts")
        if not (_is_number(self.cost) and np.isfinite(self.cost) and self.cost >= 0):
            raise InputError(f"profile {self.name!r}: cost must be a finite $ >= 0, got {self.cost!r}")
        if not (
            _is_number(self.prior_strength) and np.isfinite(self.prior_strength) and self.prior_strength >= 0
        ):
            raise InputError(
                f"profile {self.name!r}: prior_strength must be a finite number >= 0, "
                f"got {self.prior_strength!r}"
            )
        for what in ("cost_per_char", "mean_chars", "max_chars"):
            value = getattr(self, what)
            if not _is_number(value):
                raise InputError(f"profile {self.name!r}: {what} must be a number, got {value!r}")
            if not (np.isfinite(value) and (value >= 0 or what == "cost_per_char")):
                raise InputError(f"profile {self.name!r}: {what} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, what, float(value))
        object.__setattr__(self, "error_sums", error_sums)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "cost", float(self.cost))
        object.__setattr__(self, "prior_strength", float(self.prior_strength))
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

    def price(self, chars: Any) -> np.ndarray:
        """$ per request for prompts of ``chars`` characters (array-like): the profile's
        cost, moved by ``cost_per_char`` per character away from ``mean_chars``, at least 0."""
        return Price(self.cost, self.cost_per_char, self.mean_chars, self.max_chars)(chars)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Beta(α_k, β_k) posterior of each cluster's error rate."""
        return _posterior(self.error_sums, self.counts, self.prior_strength)

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
            "cost_per_char": self.cost_per_char,
            "mean_chars": self.mean_chars,
            "max_chars": self.max_chars,
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


def fit_price(chars: Any, costs: Any) -> Price:
    """The :class:`Price` of a model from its $ on prompts of known length.

    ``cost`` is the mean $, ``per_char`` the least-squares slope of $ on length,
    ``mean_chars`` and ``max_chars`` the mean and largest length; prompts whose $ is
    NaN are skipped.
    """
    x, y = np.asarray(chars, dtype=np.float64), np.asarray(costs, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"need one length per cost, got shapes {x.shape} and {y.shape}")
    known = np.isfinite(y) & np.isfinite(x)
    if not known.any():
        raise InputError("no finite cost to fit a price on")
    x, y = x[known], y[known]
    spread = x - x.mean()
    variance = float(spread @ spread)
    slope = float(spread @ (y - y.mean())) / variance if variance > 0 else 0.0
    return Price(float(y.mean()), slope, float(x.mean()), float(x.max()))


def profile_from_scores(
    name: str,
    phi: np.ndarray,
    scores: Any,
    cost: float | Price,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    reference: np.ndarray | None = None,
) -> ModelProfile:
    """Build Ψ(h) from cluster probabilities ``phi`` (n, K) and the model's scores (n,).

    Missing results (NaN) are skipped, not counted as wrong. ``reference`` is the
    training prompts' share per cluster (the map's ``cluster_weights_``): with it,
    clusters the validation set barely covers count as unknown rather than as
    evidence (see the module docstring). ``cost`` is one $ per request, or a
    :class:`Price` (:func:`fit_price`) that prices requests by their length.
    """
    s = check_scores(scores, phi.shape[0], name)
    if np.isnan(s).all():
        raise InputError(f"model {name!r} has no observed result; cannot profile it")
    if reference is not None and np.shape(reference) != (phi.shape[1],):
        raise InputError(
            f"reference must hold one share per cluster ({phi.shape[1]}), got {np.shape(reference)}"
        )
    error_sums, counts = evidence(phi, s[:, None], reference)
    price = cost if isinstance(cost, Price) else Price(cost)
    return ModelProfile(
        name=name,
        error_sums=error_sums[:, 0],
        counts=counts[:, 0],
        cost=price.cost,
        prior_strength=prior_strength,
        cost_per_char=price.per_char,
        mean_chars=price.mean_chars,
        max_chars=price.max_chars,
    )
