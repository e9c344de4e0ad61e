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
  the cheapest model", open to any router; of equally cheap models the best;
  of curve points with equal cost, the best counts), so a fixed router's area is its
  chord from that point, not its quality at a cost it never reaches.
* QNC: the least normalised cost on the curve (its anchor included) whose quality
  reaches the best pool model's quality, divided by that model's cost (inf if
  never reached).
* RouterEval: μ_o = mean quality of the chosen models, V_B = μ_o / best single
  model's quality, V_R = μ_o / a reference model's quality, E_p = mean over
  prompts of the entropy (bits) of the router's output distribution on that
  prompt (0 for a router that names one model per prompt).
* share entropy: entropy (nats) of the share of prompts sent to each model
  (how spread the choices are over the pool; reported as E_p before).

:class:`PromptPaths` keeps every prompt's route as λ grows, so the curve and its
summaries can be recomputed for re-weighted prompts (the paired bootstrap in
:mod:`.bootstrap`) without routing again; :func:`curve_summaries` computes area
and QNC for many curves at once, and :class:`DeferralCurve` uses the same code.
"""

from __future__ import annotations

import warnings
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

    def area(self, max_cost: float, upto: float = 1.0) -> float:
        """Normalised area under the curve up to ``upto`` × ``max_cost`` (see module doc)."""
        if not max_cost > 0 or not np.isfinite(max_cost):
            raise InputError(f"max_cost must be a finite $ > 0 to normalise the area, got {max_cost}")
        if not upto > 0:
            raise InputError(f"upto must be > 0, got {upto}")
        return float(areas(self.costs[None, :] / max_cost, self.qualities[None, :], upto)[0])

    def cost_to_reach(self, target: float, tol: float = 1e-12) -> float:
        """Least mean $ at which the piecewise-linear curve reaches quality ``target``."""
        return float(costs_to_reach(self.costs[None, :], self.qualities[None, :], np.array([target]), tol)[0])

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


def _sort_rows(xs: np.ndarray, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's points by cost; points of equal cost all get the best quality among them.

    Deferral curves usually come ordered by λ, which is by falling cost: then reversing
    the rows gives the same result as sorting, much faster (the bootstrap's hot path).
    """
    dx, dq = np.diff(xs, axis=1), np.diff(qs, axis=1)
    if ((dx < 0) | ((dx == 0) & (dq == 0))).all():
        return xs[:, ::-1], qs[:, ::-1]
    order = np.lexsort((qs, xs))  # by cost, then quality: the best of equal costs comes last
    xs, qs = np.take_along_axis(xs, order, axis=1), np.take_along_axis(qs, order, axis=1)
    positions = np.arange(xs.shape[1])
    last = np.append(xs[:, 1:] != xs[:, :-1], np.ones((len(xs), 1), dtype=bool), axis=1)
    group_end = np.minimum.accumulate(np.where(last, positions, len(positions))[:, ::-1], axis=1)[:, ::-1]
    return xs, np.take_along_axis(qs, group_end, axis=1)


def areas(xs: np.ndarray, qs: np.ndarray, upto: float = 1.0) -> np.ndarray:
    """Normalised areas (1/upto)·∫₀^upto q(x) dx of many curves at once.

    ``xs`` and ``qs`` are (B, p): B curves of p points (normalised cost ≥ 0,
    quality) in any order. Each curve is linear between its points sorted by
    cost and flat beyond its ends; of points with equal cost only the best counts
    (a router that reaches it never needs the worse ones).
    """
    xs, qs = _sort_rows(np.asarray(xs, dtype=np.float64), np.asarray(qs, dtype=np.float64))
    x0, x1, q0, q1 = xs[:, :-1], xs[:, 1:], qs[:, :-1], qs[:, 1:]
    lo, hi = np.minimum(x0, upto), np.minimum(x1, upto)
    width = x1 - x0
    with np.errstate(divide="ignore", invalid="ignore"):
        q_hi = np.where(width > 0, q0 + (hi - x0) / width * (q1 - q0), q1)
    inner = ((hi - lo) * (q0 + q_hi) / 2.0).sum(axis=1)
    left = np.minimum(xs[:, 0], upto) * qs[:, 0]
    right = np.maximum(upto - xs[:, -1], 0.0) * qs[:, -1]
    return (left + inner + right) / upto


def costs_to_reach(xs: np.ndarray, qs: np.ndarray, targets: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Least x at which each of B piecewise-linear curves reaches its target quality (inf: never)."""
    xs, qs = _sort_rows(np.asarray(xs, dtype=np.float64), np.asarray(qs, dtype=np.float64))
    targets = np.asarray(targets, dtype=np.float64)
    ok = qs >= targets[:, None] - tol
    k = ok.argmax(axis=1)
    rows = np.arange(len(xs))
    prev = np.maximum(k - 1, 0)
    x_k, x_p, q_k, q_p = xs[rows, k], xs[rows, prev], qs[rows, k], qs[rows, prev]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = x_p + (targets - q_p) / (q_k - q_p) * (x_k - x_p)
    out = np.where((k == 0) | (x_k == x_p), x_k, between)
    return np.where(ok.any(axis=1), out, np.inf)


@dataclass(frozen=True)
class PromptPaths:
    """Every test prompt's route as λ grows: its λ = 0 outcome and each later move.

    The deferral curve is the running mean of these; keeping them lets the curve be
    recomputed for any weighting of the prompts (a bootstrap resample) in one
    vectorised pass, without routing again.

    Attributes
    ----------
    start_quality, start_cost : ndarray of shape (n,)
        Realised quality and $ of each prompt's λ = 0 choice (expected values for
        routers that choose at random).
    lambdas : ndarray of shape (e,)
        When each move happens, ascending.
    prompts : ndarray of shape (e,)
        Which prompt moves.
    d_quality, d_cost : ndarray of shape (e,)
        Change of that prompt's realised quality and $.
    """

    start_quality: np.ndarray
    start_cost: np.ndarray
    lambdas: np.ndarray
    prompts: np.ndarray
    d_quality: np.ndarray
    d_cost: np.ndarray

    @classmethod
    def fixed(cls, quality: np.ndarray, cost: np.ndarray) -> PromptPaths:
        """A router whose choice does not depend on λ: per-prompt quality and $ only."""
        empty = np.zeros(0)
        return cls(
            np.asarray(quality, float), np.asarray(cost, float), empty, empty.astype(np.intp), empty, empty
        )

    def __len__(self) -> int:
        return len(self.start_quality)

    def points(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(costs (B, p), qualities (B, p), lambdas (p,)) of the curve under B prompt weightings.

        ``weights`` (B, n), e.g. bootstrap counts; None = every prompt once (B = 1).
        """
        w = np.ones((1, len(self))) if weights is None else np.asarray(weights, dtype=np.float64)
        total = w.sum(axis=1, keepdims=True)
        c0 = w @ self.start_cost[:, None] / total
        q0 = w @ self.start_quality[:, None] / total
        if not len(self.lambdas):
            return c0, q0, np.zeros(1)
        last = np.append(self.lambdas[1:] != self.lambdas[:-1], True)
        moved = w[:, self.prompts]
        costs = c0 + np.cumsum(moved * self.d_cost, axis=1)[:, last] / total
        quals = q0 + np.cumsum(moved * self.d_quality, axis=1)[:, last] / total
        return (
            np.concatenate([c0, costs], axis=1),
            np.concatenate([q0, quals], axis=1),
            np.concatenate([[0.0], self.lambdas[last]]),
        )

    def curve(self) -> DeferralCurve:
        """The deferral curve over the prompts as given."""
        costs, quals, lams = self.points()
        return DeferralCurve(costs[0], quals[0], lams)


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


def prompt_paths(
    errors: np.ndarray,
    decision_costs: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
) -> PromptPaths:
    """Every prompt's choices under argmin_j errors[i, j] + λ·decision_costs[i, j] as λ grows.

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
    start = first_choice(errors, dcost)
    current = start.copy()
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
    lams = np.concatenate([np.zeros(0)] + [e[0] for e in events])
    i = np.concatenate([np.zeros(0, np.intp)] + [e[1] for e in events])
    j_from = np.concatenate([np.zeros(0, np.intp)] + [e[2] for e in events])
    j_to = np.concatenate([np.zeros(0, np.intp)] + [e[3] for e in events])
    order = np.argsort(lams, kind="stable")
    lams, i, j_from, j_to = lams[order], i[order], j_from[order], j_to[order]
    return PromptPaths(
        start_quality=quality[rows, start],
        start_cost=cost[rows, start],
        lambdas=lams,
        prompts=i,
        d_quality=quality[i, j_to] - quality[i, j_from],
        d_cost=cost[i, j_to] - cost[i, j_from],
    )


def deferral_curve(
    errors: np.ndarray,
    decision_costs: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
) -> DeferralCurve:
    """The exact deferral curve of argmin_j errors[i, j] + λ·decision_costs[i, j] (:func:`prompt_paths`)."""
    return prompt_paths(errors, decision_costs, quality, cost).curve()


def oracle_curve(quality: np.ndarray, cost: np.ndarray) -> DeferralCurve:
    """The clairvoyant router: knows every realised quality and cost."""
    quality = np.asarray(quality, dtype=np.float64)
    return deferral_curve(1.0 - quality, cost, quality, cost)


def curve_summaries(
    paths: PromptPaths, quality: np.ndarray, cost: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``area``, ``area_50`` and ``qnc`` of one router under B weightings of the test prompts.

    The pool's reference points (cheapest model for the anchor, most expensive for
    the normalisation, best model for QNC) are recomputed under each weighting, so
    a bootstrap resample is scored exactly as a test set of those prompts would be.
    Returns arrays of shape (B,) (B = 1 when ``weights`` is None).
    """
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    w = np.ones((1, len(paths))) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    mean_q, mean_c = w @ quality / total, w @ cost / total
    rows = np.arange(len(w))
    top = mean_c.max(axis=1)
    if weights is None and not (top[0] > 0 and np.isfinite(top[0])):
        raise InputError(f"the most expensive model's mean cost must be a finite $ > 0, got {top[0]}")
    cheapest = np.isclose(mean_c, mean_c.min(axis=1, keepdims=True), rtol=1e-12, atol=0)
    cheap = np.where(cheapest, mean_q, -np.inf).argmax(axis=1)  # equally cheap: the best of them
    costs, quals, _ = paths.points(w)
    anchor_c, anchor_q = mean_c[rows, cheap], mean_q[rows, cheap]
    # the curve usually ends on the cheapest model: the same point up to rounding, made exactly equal
    same = np.isclose(anchor_c, costs[:, -1], rtol=1e-12, atol=0) & np.isclose(
        anchor_q, quals[:, -1], atol=1e-12
    )
    anchor_c, anchor_q = np.where(same, costs[:, -1], anchor_c), np.where(same, quals[:, -1], anchor_q)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = np.concatenate([costs, anchor_c[:, None]], axis=1) / top[:, None]
    qs = np.concatenate([quals, anchor_q[:, None]], axis=1)
    best_q = mean_q.max(axis=1)
    best_c = np.where(mean_q >= best_q[:, None] - 1e-12, mean_c, np.inf).min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # the anchor is on every curve, as for the area
        qnc = costs_to_reach(np.concatenate([costs, anchor_c[:, None]], axis=1), qs, best_q) / best_c
    return {"area": areas(xs, qs, 1.0), "area_50": areas(xs, qs, 0.5), "qnc": qnc}


def output_entropy(probabilities: np.ndarray) -> float:
    """E_p as RouterEval defines it: mean over prompts of the entropy, in bits, of the router's
    output distribution on that prompt (rows of ``probabilities``; 0 for one model per prompt)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise InputError(f"E_p needs (n_prompts, n_models) output probabilities, got shape {p.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return float(max(0.0, terms.sum(axis=1).mean()))


def share_entropy(choices: np.ndarray, n_models: int) -> float:
    """Entropy (nats) of the share of prompts sent to each model (E_p before RouterEval's definition).

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


def selection_entropy(choices: np.ndarray, n_models: int) -> float:
    """Deprecated name of :func:`share_entropy`."""
    warnings.warn(
        "selection_entropy is now share_entropy (E_p is output_entropy)", DeprecationWarning, stacklevel=2
    )
    return share_entropy(choices, n_models)


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


def r_o_probabilities(quality: np.ndarray, p: float) -> np.ndarray:
    """RouterEval's r_o(p): with probability p the oracle, else a uniformly random model.

    The oracle's share is spread evenly over every model with the prompt's best
    quality (all correct models; all models when none is correct), as RouterEval
    defines it. Returned as selection probabilities, so μ_o and E_p are exact.
    """
    if not 0.0 <= p <= 1.0:
        raise InputError(f"p of r_o(p) must lie in [0, 1], got {p}")
    quality = np.asarray(quality, dtype=np.float64)
    m = quality.shape[1]
    best = quality >= quality.max(axis=1, keepdims=True) - 1e-12
    return p * best / best.sum(axis=1, keepdims=True) + (1.0 - p) / m


def paths_of_choices(choices: np.ndarray, quality: np.ndarray, cost: np.ndarray) -> PromptPaths:
    """The paths of a router whose (possibly random) choice does not depend on λ."""
    choices = np.asarray(choices, dtype=np.float64)
    return PromptPaths.fixed((quality * choices).sum(axis=1), (cost * choices).sum(axis=1))


def paths_of_grid(
    lambdas: np.ndarray, choices: np.ndarray, quality: np.ndarray, cost: np.ndarray
) -> PromptPaths:
    """The paths of a router asked at a grid of λ: ``choices`` (L, n) model indices at ``lambdas`` (L,).

    Unlike an argmin router's, these choices need not move monotonically to cheaper models.
    """
    lambdas = np.asarray(lambdas, dtype=np.float64)
    choices = np.asarray(choices, dtype=np.intp)
    rows = np.arange(choices.shape[1])
    step, prompts = np.nonzero(choices[1:] != choices[:-1])
    j_from, j_to = choices[step, prompts], choices[step + 1, prompts]
    return PromptPaths(
        start_quality=quality[rows, choices[0]],
        start_cost=cost[rows, choices[0]],
        lambdas=lambdas[step + 1],
        prompts=prompts,
        d_quality=quality[prompts, j_to] - quality[prompts, j_from],
        d_cost=cost[prompts, j_to] - cost[prompts, j_from],
    )


def summarize(
    paths: PromptPaths | None,
    choices0: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray | None,
    reference: int | None = None,
) -> dict[str, float | None]:
    """All scalar metrics of one router on one test set.

    ``choices0`` are its λ = 0 output probabilities (n, m), or the chosen model's
    index per prompt. Without costs (``cost`` None) the curve metrics are
    None. ``reference`` indexes the model V_R compares with.
    """
    quality = np.asarray(quality, dtype=np.float64)
    m = quality.shape[1]
    choices0 = np.asarray(choices0)
    choices0 = one_hot(choices0.astype(np.intp), m) if choices0.ndim == 1 else choices0.astype(np.float64)
    means = quality.mean(axis=0)
    best = int(np.argmax(means))
    mu = routed_quality(quality, choices0)
    out: dict[str, float | None] = {
        "quality_lambda0": mu,
        "mu_o": mu,
        "v_b_lambda0": mu / means[best] if means[best] > 0 else None,
        "v_r_lambda0": mu / means[reference] if reference is not None and means[reference] > 0 else None,
        "e_p_lambda0": output_entropy(choices0),
        "share_entropy_lambda0": share_entropy(choices0, m),
        "cost_lambda0": None,
        "area": None,
        "area_50": None,
        "qnc": None,
    }
    if cost is not None and paths is not None:
        top = float(np.asarray(cost, dtype=np.float64).mean(axis=0).max())
        cost0 = routed_cost(cost, choices0)
        out["cost_lambda0"], out["cost_lambda0_rel"] = cost0, cost0 / top
        out.update({k: float(v[0]) for k, v in curve_summaries(paths, quality, cost).items()})
    return out
