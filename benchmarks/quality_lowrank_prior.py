"""CV trial: a new model's prior per cluster regressed on the training LLMs' Ψ (session 11).

Session 10's borrowed prior (``quality_cf_prior.py``) moved each new model's prior centre by the
mean pattern of its nearest training LLMs, and moved nothing: the engine's centre drifts to ½
with the same m pseudo-results that pull toward it, so where a cluster holds few results (the
only place a prior matters) the borrowed centre is mostly ½ again. Here:

- the centre is a regression, not a neighbour mean: the model's validation errors on the
  training LLMs' predicted errors Φ(x)·Ψ_t, by ridge (α), so μ_k = b + Σ_t w_t Ψ_t,k. Since
  Φ·Ψ is linear, μ is a Ψ in the same cluster space: the UniRoute form and onboarding from
  validation results alone are kept;
- the drift to ½ has its own strength m0 (1 result): centre = (n μ + m0 ½) / (n + m0), so a
  cluster never validated still counts as unknown (target 4), while m (4, 16, 64) sets how
  far the regression pulls a cluster with a few results.

"check" recomputes the engine's prior (μ = g, m0 = m = 4) and must equal the default. In the
static protocol a model's own column is left out of its regressors. Not kept: −0.0003 to +0.0001
unseen at m = 4–16, and every weakening of the drift to ½ loses (docs/benchmarks.md, "Trial of
session 11").

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_lowrank_prior.py --data routerbench --by-length --unseen-draws 4 \\
          --seed $s --out benchmarks/results/cv_lowrank_prior_routerbench_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_lowrank_prior_*_seed*.json \\
        --reference "top-3 (default)"
"""

from __future__ import annotations

import numpy as np
from quality_cf_prior import averaged, default_maps
from quality_cv import Add, Task, Wanted, metrics, sweep

from uniroute.engine.profiles import evidence

VARIANTS = (  # (label, α, m, m0); α None: the engine's centre g
    ("check", None, 4.0, 4.0),
    ("ridge a=1 m=4", 1.0, 4.0, 1.0),
    ("ridge a=1 m=16", 1.0, 16.0, 1.0),
    ("ridge a=1 m=64", 1.0, 64.0, 1.0),
    ("ridge a=10 m=16", 10.0, 16.0, 1.0),
    ("global m=16 m0=1", None, 16.0, 1.0),
)


def regressed_centre(F: np.ndarray, y: np.ndarray, psi_t: np.ndarray, alpha: float) -> np.ndarray:
    """μ (K,): the ridge fit of errors y on the regressors F (n, T), read at each cluster's Ψ_t."""
    Fm, ym = F.mean(axis=0), y.mean()
    Fc = F - Fm
    w = np.linalg.solve(Fc.T @ Fc + alpha * np.eye(F.shape[1]), Fc.T @ (y - ym))
    return np.clip(ym - Fm @ w + psi_t @ w, 0.01, 0.99)


def lowrank_psi(
    phi_val: np.ndarray,
    S_val: np.ndarray,
    reference: np.ndarray,
    psi_t: np.ndarray,
    alpha: float | None,
    m: float,
    m0: float,
    exclude_self: bool,
) -> np.ndarray:
    """Ψ (K, n_pool), each model's prior centre regressed on the training LLMs' Ψ_t (K, T)."""
    e, n = evidence(phi_val, S_val, reference)
    g = (e.sum(axis=0) + 0.5) / (n.sum(axis=0) + 1.0)
    mu = np.repeat(g[None, :], len(e), axis=0)
    if alpha is not None:
        for j in range(S_val.shape[1]):
            others = [t for t in range(psi_t.shape[1]) if not (exclude_self and t == j)]
            seen = ~np.isnan(S_val[:, j])
            F = phi_val[seen] @ psi_t[:, others]
            mu[:, j] = regressed_centre(F, 1.0 - S_val[seen, j], psi_t[:, others], alpha)
    centre = np.divide(n * mu + m0 * 0.5, n + m0, out=np.full(n.shape, 0.5), where=n + m0 > 0)
    return (e + m * centre) / (n + m)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    maps = default_maps(kind, task, add)
    for label, alpha, m, m0 in VARIANTS:
        if wanted(label):
            errors = averaged(
                task,
                maps,
                lambda cand, phi_val, psi_t, alpha=alpha, m=m, m0=m0: lowrank_psi(
                    phi_val, task.S_val, cand.reference, psi_t, alpha, m, m0, kind == "static"
                ),
            )
            add(label, kind, metrics(task, errors))


if __name__ == "__main__":
    sweep(__doc__, per_task)
