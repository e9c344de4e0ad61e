"""CV trial: a new model's prior per cluster borrowed from the training LLMs most like it (session 10).

The engine's Ψ is a Beta posterior per cluster whose centre drifts from the model's global
error g (where the cluster holds results) to ½ (where it holds none, target 4). With a small
validation set (the unseen protocol: a seventh of the prompts over 56 columns, a handful of
results per cluster) the prior carries much of Ψ. Session 5's ability prior borrowed one
number per cluster from the training LLMs (their mean difficulty); here each new model
borrows the cluster pattern of the r training LLMs whose validated pattern is closest
(collaborative filtering over models): the centre's g becomes

    μ_k = g + mean over the r nearest training LLMs t of (Ψ_t,k − g_t),

distance = the result-weighted squared difference of (error_k − g) patterns. The drift to ½
where results are few is kept, so a cluster never validated still counts as unknown.
"r = 0" is the engine's prior computed the same way (a check: it must equal the default);
"r = all" borrows the mean pattern of every training LLM. In the static protocol a model's
own column is left out of its neighbours. Not kept: ±0.0003 at most (docs/benchmarks.md,
"Trials of session 10").

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_cf_prior.py --data routerbench --by-length --unseen-draws 4 \\
          --seed $s --out benchmarks/results/cv_cf_prior_routerbench_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_cf_prior_*_seed*.json \\
        --reference "top-3 (default)"
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_grid_extend import Candidate, grid, inner_scores, mixture

from uniroute.engine import cluster_maps as cm
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, cluster_errors, evidence

VARIANTS = ((0, 4.0), (1, 4.0), (2, 4.0), (3, 4.0), (-1, 4.0), (2, 16.0))  # (r, m); r = -1: all


def cf_psi(phi_val, S_val, reference, psi_t, g_t, r: int, m: float, exclude_self: bool) -> np.ndarray:
    """Ψ (K, n_pool) with each model's prior centre borrowed from its r nearest training LLMs."""
    e, n = evidence(phi_val, S_val, reference)
    g = (e.sum(axis=0) + 0.5) / (n.sum(axis=0) + 1.0)
    dev_t = psi_t - g_t  # (K, n_train): each training LLM's pattern around its own global error
    mu = np.repeat(g[None, :], len(e), axis=0)
    if r != 0:
        raw = np.divide(e, n, out=np.repeat(g[None, :], len(e), axis=0), where=n > 0) - g
        for j in range(S_val.shape[1]):
            others = [t for t in range(dev_t.shape[1]) if not (exclude_self and t == j)]
            d = (n[:, j : j + 1] * (raw[:, j : j + 1] - dev_t[:, others]) ** 2).sum(axis=0)
            near = [others[i] for i in np.argsort(d)[: (len(others) if r < 0 else r)]]
            mu[:, j] = np.clip(g[j] + dev_t[:, near].mean(axis=1), 0.01, 0.99)
    centre = np.divide(n * mu + m * 0.5, n + m, out=np.full(n.shape, 0.5), where=n + m > 0)
    return (e + m * centre) / (n + m)


Map = tuple[Candidate, np.ndarray, np.ndarray, np.ndarray]  # (map, Φ of val, Φ of test, training LLMs' Ψ)


def default_maps(kind: str, task: Task, add: Add) -> list[Map]:
    """The default's three maps on ``task`` (its row added as "top-3 (default)"), each with Φ of the
    validation and test prompts and the training LLMs' Ψ on it."""
    X, Y = task.X_fit, task.S_fit
    n_fit = len(X) * (cm._CV_FOLDS - 1) // cm._CV_FOLDS
    scores = inner_scores(X, Y, grid(n_fit, ()))
    keys = sorted(grid(n_fit, ()), key=scores.__getitem__)[:3]
    add("top-3 (default)", kind, metrics(task, mixture(task, keys)))
    maps = []
    centres: dict = {}
    for key in keys:
        cand = Candidate(key, X, Y, centres, n_init=4)
        psi_t = cluster_errors(cand.phi(X), Y, DEFAULT_PRIOR_STRENGTH, reference=cand.reference)
        maps.append((cand, cand.phi(task.X_val), cand.phi(task.X_test), psi_t))
    return maps


def averaged(
    task: Task, maps: list[Map], psi: Callable[[Candidate, np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Test errors under the mean of the maps' routers, the pool profiled by ``psi(map, Φ val, Ψ_t)``."""
    errors = np.zeros((len(task.X_test), task.S_val.shape[1]))
    for cand, phi_val, phi_test, psi_t in maps:
        errors += phi_test @ psi(cand, phi_val, psi_t) / len(maps)
    return errors


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    maps = default_maps(kind, task, add)
    g_t = np.nanmean(1.0 - task.S_fit, axis=0)
    for r, m in VARIANTS:
        label = f"cf r={'all' if r < 0 else r} m={m:g}"
        if wanted(label):
            errors = averaged(
                task,
                maps,
                lambda cand, phi_val, psi_t, r=r, m=m: cf_psi(
                    phi_val, task.S_val, cand.reference, psi_t, g_t, r, m, kind == "static"
                ),
            )
            add(label, kind, metrics(task, errors))


if __name__ == "__main__":
    sweep(__doc__, per_task)
