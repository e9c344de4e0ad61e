"""CV trials: bagged K-means maps (issue 10).

Φ(x) is the mean of B K-means maps fitted with different seeds, each on a random
subsample of the training prompts: a distribution over B·K clusters, so Ψ, the
coverage discount and onboarding work unchanged. Averaging several partitions
smooths the cluster boundaries the way a random forest smooths one tree.

* ``bag K B frac m assignment``: B maps at K clusters, each fitted on ``frac`` of
  the prompts (1.0 = all prompts, seeds differ), prior strength m per cluster;
* ``single K assignment``: one map (B = 1, all prompts), the reference.

    nice -n 10 python benchmarks/quality_bagging.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors


def _fit(X: np.ndarray, k: int, seed: int, frac: float) -> KMeansClusterMap:
    rows = np.random.default_rng(seed).permutation(len(X))[: max(k, round(frac * len(X)))]
    cmap = KMeansClusterMap(n_clusters=k, random_state=seed)
    cmap._validate_params()
    cmap._fit_centres(X[rows], k, n_init=1)
    cmap.n_clusters_ = k
    return cmap


def _phi(cmaps: list[KMeansClusterMap], X: np.ndarray, assignment: str) -> np.ndarray:
    return np.hstack([c._proba(X, assignment) for c in cmaps]) / len(cmaps)


def bagged(task: Task, cmaps: list[KMeansClusterMap], assignment: str, m: float) -> np.ndarray:
    ref = _phi(cmaps, task.X_fit, assignment).mean(axis=0)
    psi = cluster_errors(_phi(cmaps, task.X_val, assignment), task.S_val, m, reference=ref)
    return _phi(cmaps, task.X_test, assignment) @ psi


KS = (16, 32, 64, 128)
BAGS = (4, 8)
FRACS = (1.0, 0.5)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    for k in (50, 100, 200):
        add(f"knn k={k}", kind, metrics(task, knn(k)(task)))
    for K in KS:
        if K * 16 > len(task.X_fit):
            continue
        for frac in FRACS:
            maps = [_fit(task.X_fit, K, seed, frac) for seed in range(max(BAGS))]
            for assignment in ("hard", "soft"):
                if frac == 1.0:
                    add(
                        f"single {K} {assignment}",
                        kind,
                        metrics(task, bagged(task, maps[:1], assignment, 4.0)),
                    )
                for B in BAGS:
                    for m in (4.0, 4.0 / B):
                        label = f"bag {K} {B} {frac} {m:g} {assignment}"
                        if wanted(label):
                            add(label, kind, metrics(task, bagged(task, maps[:B], assignment, m)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
