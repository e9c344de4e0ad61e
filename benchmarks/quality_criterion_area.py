"""CV trial: the fit-time CV scored by the deferral area itself (issue 10).

Like ``quality_criterion.py``, but each candidate map is scored on the held-out
training prompts by the quantity the router is judged on: the deferral area of the
training LLMs, routed with their mean $ per request (so the fit needs those costs).
Candidates: K-means K in 4..256 (≥ 20 training prompts per cluster) × {hard, soft}.

    nice -n 10 python benchmarks/quality_criterion_area.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_criterion import KS, _heldout
from quality_cv import Task, main
from quality_routers import knn

from uniroute.engine.cluster_maps import _CV_FOLDS, KMeansClusterMap
from uniroute.engine.profiles import cluster_errors
from uniroute.evaluation.metrics import deferral_curve

CHOICES: list[str] = []


def heldout_area(Y: np.ndarray, P: np.ndarray, cost: np.ndarray) -> float:
    """Deferral area of predicted errors P on observed scores Y (complete rows), costs per model."""
    rows = ~np.isnan(Y).any(axis=1)
    Y, P = Y[rows], P[rows]
    C = np.broadcast_to(cost, Y.shape)
    means = Y.mean(axis=0)
    curve = deferral_curve(1.0 - P, C, Y, C).with_point(float(cost.min()), float(means[np.argmin(cost)]))
    return curve.area(float(cost.max()))


def by_area(task: Task) -> np.ndarray:
    X, Y = task.X_fit, task.S_fit
    folds = np.array_split(np.random.default_rng(0).permutation(len(X)), _CV_FOLDS)
    n_fit = len(X) * (_CV_FOLDS - 1) // _CV_FOLDS
    scores = {}
    for k in KS:
        if k * 20 > n_fit:
            continue
        for a in ("hard", "soft"):
            P = _heldout(lambda k=k, a=a: KMeansClusterMap(k, a), X, Y, folds)
            scores[(k, a)] = heldout_area(Y, P, task.cost_fit)
    k, a = max(scores, key=scores.__getitem__)
    CHOICES.append(f"{k} {a}")
    print(f"  area: {k} {a}", {f"{kk} {aa}": round(v, 4) for (kk, aa), v in scores.items()}, flush=True)
    cmap = KMeansClusterMap(k, a).fit(X, Y)
    phi = cmap.predict_proba(task.X_val)
    psi = cluster_errors(phi, task.S_val, reference=cmap.cluster_weights_)
    return cmap.predict_proba(task.X_test) @ psi


routers = {"knn k=100": knn(100), "area K<=256": by_area}

if __name__ == "__main__":
    main(routers)
    print("choices:", CHOICES)
