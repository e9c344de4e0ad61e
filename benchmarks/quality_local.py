"""CV trial: local evidence on top of the cluster profile (issue 10).

The cluster estimate Φ(x)·Ψ(h) becomes the prior of a per-prompt estimate: the
k validation prompts nearest to x add their own results,

    err(x, h) = (Σ_{i ∈ NN_k(x)} e_ih + m · Φ(x)·Ψ(h)) / (n_k(x, h) + m),

with n_k the observed results among the neighbours. m → ∞ is the default router,
m = 0 is K-NN. Still onboarding by validation results only, but the router must keep
the validation prompts' embeddings and every model's per-prompt results.

    nice -n 10 python benchmarks/quality_local.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn, uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap


def local_sums(task: Task, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(error sums, counts) over the k nearest validation prompts of each test prompt."""
    kk = min(k, len(task.X_val))
    err = 1.0 - task.S_val
    observed = ~np.isnan(err)
    err0 = np.where(observed, err, 0.0)
    sums = np.empty((len(task.X_test), err.shape[1]))
    counts = np.empty_like(sums)
    for a in range(0, len(task.X_test), 512):
        sims = task.X_test[a : a + 512] @ task.X_val.T
        nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        sums[a : a + 512] = err0[nearest].sum(axis=1)
        counts[a : a + 512] = observed[nearest].sum(axis=1)
    return sums, counts


KS = (25, 50, 100, 200)
STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0)


_DEFAULT = uniroute(lambda: KMeansClusterMap())


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    prior = _DEFAULT(task)
    add("default", kind, metrics(task, prior))
    for k in KS:
        add(f"knn k={k}", kind, metrics(task, knn(k)(task)))
        sums, counts = local_sums(task, k)
        for s in STRENGTHS:
            if wanted(f"local k={k} m={s:g}k"):
                m = s * k
                add(f"local k={k} m={s:g}k", kind, metrics(task, (sums + m * prior) / (counts + m)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
