"""Routing metrics: deferral curves and their summaries, and RouterEval's scores.

Everything here is plain numpy on matrices of one test set:

``quality`` (n, m)
    Realised quality of each of the m pool models on each of the n test prompts.
``cost`` (n, m)
    Realised $ of each call.
``errors`` (n, m) and ``decision_costs`` (m,) or (n, m)
    What a router *believes*: it sends prompt i to argmin_j errors[i, j] + λ·decision_costs[i, j].

Definitions (also in docs/evaluation.md):

* deferral curve: the points (mean realised cost, mean realised quality) of the
  router's choices as λ sweeps [0, ∞); computed exactly from every prompt's
  lower envelope of the lines errors[i, j] + λ·cost[i, j], not on a λ grid.
* area(b): (1/b)·∫₀ᵇ q(x) dx with x = cost / (mean cost of the pool's most
  expensive model), q piecewise linear between curve points (mixing two
  operating points at random realises the chord), flat beyond the ends. Every
  curve is anchored at the cheapest pool model's point ("send everything to
  the cheapest model", open to any router), so a fixed router's area is its
  chord from that point, not its quality at a cost it never reaches.
* QNC: the least normalised cost on the curve whose quality reaches the best
  pool model's quality, divided by that model's cost (inf if never reached).
* RouterEval: μ_o = mean quality of the chosen models, V_B = μ_o / best single
  model's quality, V_R = μ_o / a reference model's quality, E_p = entropy (nats)
  of the share of prompts sent to each model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError


@dataclass(frozen=True)
class DeferralCurve:
    """Operating points of one router, ordered from λ = 0 (most expensive) to λ → ∞.

    Attributes
    ----------
    costs : ndarray of shape (p,)
        Mean realised $ per request at each point.
    qualities : ndarray of shape (p,)
        Mean realised quality at each point.
    lambdas : ndarray of shape (p,)
        The λ at which each point starts to hold (0 for the first).
    """

    costs: np.ndarray
    qualities: np.ndarray
    lambdas: np.ndarray

    @classmethod
    def single_point(cls, cost: float, quality: float) -> DeferralCurve:
        """A router whose choice does not depend on λ (random, best single model)."""
        return cls(np.array([cost], float), np.array([quality], float), np.zeros(1))

    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.costs, kind="stable")
        return self.costs[order], self.qualities[order]

    def area(self, max_cost: float, upto: float = 1.0) -> float:
        """Normalised area under the curve up to ``upto`` × ``max_cost`` (see module doc)."""
        if not max_cost > 0 or not np.isfinite(max_cost):
            raise InputError(f"max_cost must be a finite $ > 0 to normalise the area, got {max_cost}")
        if not upto > 0:
            raise InputError(f"upto must be > 0, got {upto}")
        xs, qs = self._sorted()
        xs = xs / max_cost
        knots = np.unique(np.concatenate([[0.0, upto], xs[(xs > 0) & (xs < upto)]]))
        values = np.interp(knots, xs, qs)
        return float(np.sum((values[1:] + values[:-1]) * np.diff(knots)) / 2.0 / upto)

    def cost_to_reach(self, target: float, tol: float = 1e-12) -> float:
        """Least mean $ at which the piecewise-linear curve reaches quality ``target``."""
        xs, qs = self._sorted()
        if qs[0] >= target - tol:
            return float(xs[0])
        for k in range(1, len(xs)):
            if qs[k] >= target - tol:
                if qs[k - 1] >= target - tol or xs[k] == xs[k - 1]:
                    return float(xs[k])
                share = (target - qs[k - 1]) / (qs[k] - qs[k - 1])
                return float(xs[k - 1] + share * (xs[k] - xs[k - 1]))
        return float("inf")

    def qnc(self, target_quality: float, target_cost: float) -> float:
        """Quality-neutral cost: cost to reach ``target_quality``, relative to ``target_cost``."""
        if not target_cost > 0:
            raise InputError(f"QNC needs the reference model's cost > 0, got {target_cost}")
        return self.cost_to_reach(target_quality) / target_cost

    def with_point(self, cost: float, quality: float) -> DeferralCurve:
        """The curve plus one more operating point (e.g. "send everything to the cheapest model")."""
        return DeferralCurve(
            np.append(self.costs, cost), np.append(self.qualities, quality), np.append(self.lambdas, np.inf)
        )

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "costs": self.costs.tolist(),
            "qualities": self.qualities.tolist(),
            "lambdas": self.lambdas.tolist(),
        }


def _as_matrix(values: np.ndarray, n: int, m: int, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape == (m,):
        values = np.broadcast_to(values, (n, m))
    if values.shape != (n, m):
        raise InputError(f"{name} must have shape ({m},) or ({n}, {m}), got {values.shape}")
    if not np.isfinite(values).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return values


def first_choice(errors: np.ndarray, decision_costs: np.ndarray) -> np.ndarray:
    """The λ = 0 choice per prompt: least error, ties to the cheaper model, then the first."""
    errors = np.asarray(errors, dtype=np.float64)
    n, m = errors.shape
    costs = _as_matrix(decision_costs, n, m, "decision_costs")
    best = errors.min(axis=1, keepdims=True)
    masked = np.where(errors <= best + 1e-12, costs, np.inf)
    return masked.argmin(axis=1)


def deferral_curve(
    errors: np.ndarray,
    decision_costs: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
) -> DeferralCurve:
    """The exact deferral curve of argmin_j errors[i, j] + λ·decision_costs[i, j].

    Each prompt's choice only moves to cheaper models as λ grows; the λ at which
    it moves are the breakpoints of its lower envelope. Sorting all breakpoints
    gives every distinct operating point of the router.
    """
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[1] == 0 or errors.shape[0] == 0:
        raise InputError(f"errors must be a non-empty (n_prompts, n_models) matrix, got {errors.shape}")
    n, m = errors.shape
    if not np.isfinite(errors).all():
        raise InputError("errors contains NaN or infinite values")
    dcost = _as_matrix(decision_costs, n, m, "decision_costs")
    quality = _as_matrix(quality, n, m, "quality")
    cost = _as_matrix(cost, n, m, "cost")
    rows = np.arange(n)
    current = first_choice(errors, dcost)
    lam = np.zeros(n)
    events: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    active = np.ones(n, dtype=bool)
    for _ in range(m):
        idx = rows[active]
        if not len(idx):
            break
        cur = current[idx]
        c_cur = dcost[idx, cur][:, None]
        e_cur = errors[idx, cur][:, None]
        cheaper = dcost[idx] < c_cur
        with np.errstate(divide="ignore", invalid="ignore"):
            breaks = np.where(cheaper, (errors[idx] - e_cur) / (c_cur - dcost[idx]), np.inf)
        breaks = np.maximum(breaks, lam[idx][:, None])
        first = breaks.min(axis=1)
        moving = np.isfinite(first)
        tie = np.where(breaks <= first[:, None] * (1 + 1e-12) + 1e-300, dcost[idx], np.inf)
        nxt = tie.argmin(axis=1)
        i, j_from, j_to = idx[moving], cur[moving], nxt[moving]
        events.append((first[moving], i, j_from, j_to))
        current[i] = j_to
        lam[i] = first[moving]
        active[idx[~moving]] = False
    start = first_choice(errors, dcost)
    q0 = float(quality[rows, start].mean())
    c0 = float(cost[rows, start].mean())
    if not events or not sum(len(e[0]) for e in events):
        return DeferralCurve(np.array([c0]), np.array([q0]), np.zeros(1))
    lams = np.concatenate([e[0] for e in events])
    i = np.concatenate([e[1] for e in events])
    j_from = np.concatenate([e[2] for e in events])
    j_to = np.concatenate([e[3] for e in events])
    order = np.argsort(lams, kind="stable")
    lams, i, j_from, j_to = lams[order], i[order], j_from[order], j_to[order]
    dq = (quality[i, j_to] - quality[i, j_from]) / n
    dc = (cost[i, j_to] - cost[i, j_from]) / n
    q = q0 + np.cumsum(dq)
    c = c0 + np.cumsum(dc)
    last = np.append(lams[1:] != lams[:-1], True)
    return DeferralCurve(
        np.concatenate([[c0], c[last]]),
        np.concatenate([[q0], q[last]]),
        np.concatenate([[0.0], lams[last]]),
    )


def oracle_curve(quality: np.ndarray, cost: np.ndarray) -> DeferralCurve:
    """The clairvoyant router: knows every realised quality and cost."""
    quality = np.asarray(quality, dtype=np.float64)
    return deferral_curve(1.0 - quality, cost, quality, cost)


def selection_entropy(choices: np.ndarray, n_models: int) -> float:
    """E_p: entropy (nats) of the share of prompts sent to each model.

    ``choices`` is a vector of model indices, or an (n, m) matrix of selection
    probabilities (for randomised routers such as r_o(p)).
    """
    choices = np.asarray(choices)
    if choices.ndim == 1:
        share = np.bincount(choices.astype(np.intp), minlength=n_models) / max(len(choices), 1)
    else:
        share = choices.mean(axis=0)
    share = share[share > 0]
    return float(max(0.0, -(share * np.log(share)).sum()))


def routed_quality(quality: np.ndarray, choices: np.ndarray) -> float:
    """μ_o: mean quality of the chosen models (choices as indices or probabilities)."""
    quality = np.asarray(quality, dtype=np.float64)
    choices = np.asarray(choices)
    if choices.ndim == 1:
        return float(quality[np.arange(len(quality)), choices.astype(np.intp)].mean())
    return float((quality * choices).sum(axis=1).mean())


def routed_cost(cost: np.ndarray, choices: np.ndarray) -> float:
    """Mean realised $ per request of the chosen models."""
    return routed_quality(cost, choices)


def oracle_probabilities(quality: np.ndarray, cost: np.ndarray | None = None) -> np.ndarray:
    """One-hot choice of the best model per prompt (ties: cheaper, then first)."""
    quality = np.asarray(quality, dtype=np.float64)
    m = quality.shape[1]
    return one_hot(first_choice(-quality, np.zeros(m) if cost is None else cost), m)


def one_hot(choice: np.ndarray, n_models: int) -> np.ndarray:
    """Selection probabilities (n, m) of a router that picks ``choice[i]`` for prompt i."""
    out = np.zeros((len(choice), n_models))
    out[np.arange(len(choice)), choice] = 1.0
    return out


def r_o_probabilities(quality: np.ndarray, p: float, cost: np.ndarray | None = None) -> np.ndarray:
    """RouterEval's r_o(p): the oracle's model with probability p, else a uniformly random one.

    Returned as selection probabilities, so μ_o and E_p are exact expectations.
    """
    if not 0.0 <= p <= 1.0:
        raise InputError(f"p of r_o(p) must lie in [0, 1], got {p}")
    quality = np.asarray(quality, dtype=np.float64)
    m = quality.shape[1]
    return p * oracle_probabilities(quality, cost) + (1.0 - p) / m


def summarize(
    curve: DeferralCurve | None,
    choices0: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray | None,
    reference: int | None = None,
) -> dict[str, float | None]:
    """All scalar metrics of one router on one test set.

    ``choices0`` are its λ = 0 choices (indices or probabilities). Without costs
    (``cost`` None) the curve metrics are None. ``reference`` indexes the model
    V_R compares with.
    """
    quality = np.asarray(quality, dtype=np.float64)
    m = quality.shape[1]
    means = quality.mean(axis=0)
    best = int(np.argmax(means))
    mu = routed_quality(quality, choices0)
    out: dict[str, float | None] = {
        "quality_lambda0": mu,
        "mu_o": mu,
        "v_b_lambda0": mu / means[best] if means[best] > 0 else None,
        "v_r_lambda0": mu / means[reference] if reference is not None and means[reference] > 0 else None,
        "e_p_lambda0": selection_entropy(choices0, m),
        "cost_lambda0": None,
        "area": None,
        "area_50": None,
        "qnc": None,
    }
    if cost is not None and curve is not None:
        mean_cost = np.asarray(cost, dtype=np.float64).mean(axis=0)
        top = float(mean_cost.max())
        best_cost = float(mean_cost[first_choice(-means[None, :], mean_cost)[0]])
        out["cost_lambda0"] = routed_cost(cost, choices0)
        out["cost_lambda0_rel"] = out["cost_lambda0"] / top
        anchored = curve.with_point(float(mean_cost.min()), float(means[np.argmin(mean_cost)]))
        out["area"] = anchored.area(top, 1.0)
        out["area_50"] = anchored.area(top, 0.5)
        out["qnc"] = curve.qnc(float(means.max()), best_cost)
    return out
