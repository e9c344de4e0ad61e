"""CV trial: the map family chosen at fit time too (issue 10).

The default ``KMeansClusterMap()`` already chooses K and hard/soft by a 3-fold CV on
the training LLMs' scores (pairwise Brier, ``select_by_cv``). Here that CV also scores
LearnedMap at K = 8 and 16 on the same folds, and the router keeps the best of all.
Reported next to the default, LearnedMap alone and K-NN, on the same outer folds.

    nice -n 10 python benchmarks/quality_automap.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Task, main
from quality_routers import knn

from uniroute.engine.cluster_maps import (
    _CV_FOLDS,
    KMeansClusterMap,
    LearnedClusterMap,
    _pairwise_brier,
)
from uniroute.engine.profiles import cluster_errors

LEARNED_KS = (8, 16)
CHOICES: dict[str, list[str]] = {}


def _learned_cv(X: np.ndarray, Y: np.ndarray, k: int, seed: int = 0) -> float:
    folds = np.array_split(np.random.default_rng(seed).permutation(len(X)), _CV_FOLDS)
    loss = count = 0.0
    for held in folds:
        train = np.setdiff1d(np.arange(len(X)), held)
        cmap = LearnedClusterMap(n_clusters=k).fit(X[train], Y[train])
        phi = cmap.predict_proba(X[train])
        psi = cluster_errors(phi, Y[train], reference=phi.mean(axis=0))
        a, b = _pairwise_brier(Y[held], 1.0 - cmap.predict_proba(X[held]) @ psi)
        loss, count = loss + a, count + b
    return loss / max(count, 1.0)


def _route(cmap, task: Task) -> np.ndarray:
    phi = cmap.predict_proba(task.X_val)
    psi = cluster_errors(phi, task.S_val, reference=cmap.cluster_weights_)
    return cmap.predict_proba(task.X_test) @ psi


def automap(task: Task) -> np.ndarray:
    km = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    scores = {"kmeans": min(km.cv_scores_.values())}
    scores |= {f"learned {k}": _learned_cv(task.X_fit, task.S_fit, k) for k in LEARNED_KS}
    choice = min(scores, key=scores.__getitem__)
    CHOICES.setdefault("automap", []).append(f"{choice} ({km.n_clusters_} {km.assignment_})")
    print("  inner CV:", {k: round(v, 5) for k, v in scores.items()}, "->", choice, flush=True)
    if choice == "kmeans":
        return _route(km, task)
    return _route(LearnedClusterMap(n_clusters=int(choice.split()[1])).fit(task.X_fit, task.S_fit), task)


routers = {
    "knn k=100": knn(100),
    "default (kmeans auto)": lambda t: _route(KMeansClusterMap(n_maps=1).fit(t.X_fit, t.S_fit), t),
    "automap (kmeans auto | learned 8 | learned 16)": automap,
}

if __name__ == "__main__":
    main(routers)
    print("choices:", CHOICES)
