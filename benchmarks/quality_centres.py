"""CV trial: many small clusters, routed through the nearest centres (issue 10).

Why: on RouteLLM, K-NN's estimates averaged inside the default's hard clusters lose
all of K-NN's lead (``--diagnose``): its edge is resolution *inside* a cluster. So:
K-means with K = n / s clusters (s training prompts each on average); Ψ is measured on
that hard map (engine profiles); a prompt is routed on the nearest centres, taken in
order of distance until they hold ~k training prompts, each weighted by its size
("topc": K-NN over centres), or on a cold soft map over all centres ("soft").

    nice -n 10 python benchmarks/quality_centres.py --data routellm routerbench --unseen-draws 2
    nice -n 10 python benchmarks/quality_centres.py --diagnose   # RouteLLM, K-NN averaged in clusters
"""

from __future__ import annotations

import sys

import numpy as np
from quality_cv import Add, Task, Wanted, cv_tasks, metrics, sweep
from quality_data import load
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap, _softmax
from uniroute.engine.profiles import cluster_errors

SIZES = (5, 10, 20)
REACH = (50, 100, 200)
COLD = (0.05, 0.1, 0.2)


def _hard(X: np.ndarray, k: int) -> KMeansClusterMap:
    return KMeansClusterMap(n_clusters=k, assignment="hard").fit(X)


def _sq_dist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    x = X.astype(np.float64)
    return np.maximum((x**2).sum(1)[:, None] - 2 * x @ C.T + (C**2).sum(1)[None, :], 0.0)


def nearest_centres(d2: np.ndarray, sizes: np.ndarray, reach: float) -> np.ndarray:
    """Φ over the nearest centres, in order of distance, until they hold ``reach`` prompts; weight ∝ size."""
    order = np.argsort(d2, axis=1)
    w = sizes[order]
    take = (np.cumsum(w, axis=1) - w) < reach
    phi = np.zeros_like(d2)
    np.put_along_axis(phi, order, take * w, axis=1)
    return phi / phi.sum(axis=1, keepdims=True)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    add("knn k=100", kind, metrics(task, knn(100)(task)))
    default = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    psi = cluster_errors(default.predict_proba(task.X_val), task.S_val, reference=default.cluster_weights_)
    add("default", kind, metrics(task, default.predict_proba(task.X_test) @ psi))
    n = len(task.X_fit)
    for s in SIZES:
        if not wanted(f"s={s}"):
            continue
        cmap = _hard(task.X_fit, max(8, n // s))
        C = cmap.cluster_centers_.astype(np.float64)
        psi = cluster_errors(cmap.predict_proba(task.X_val), task.S_val, reference=cmap.cluster_weights_)
        d2 = _sq_dist(task.X_test, C)
        for r in REACH:
            phi = nearest_centres(d2, cmap.cluster_weights_ * n, r)
            add(f"s={s} topc k={r}", kind, metrics(task, phi @ psi))
        for t in COLD:
            add(f"s={s} soft t={t:g}", kind, metrics(task, _softmax(-d2 / (t * cmap.temperature_)) @ psi))


def diagnose() -> None:
    """RouteLLM: K-NN (k = 100) estimates averaged within hard clusters vs K-NN and the hard map."""
    rows: dict[str, list[float]] = {}
    for _, task in cv_tasks(load("routellm"), unseen_draws=0):
        est = knn(100)(task)
        rows.setdefault("knn k=100", []).append(metrics(task, est)["area"])
        for k in (64, 128, 512):
            cmap = _hard(task.X_fit, k)
            label = cmap.predict_proba(task.X_test).argmax(axis=1)
            averaged = np.zeros_like(est)
            for c in np.unique(label):
                averaged[label == c] = est[label == c].mean(axis=0)
            rows.setdefault(f"knn averaged in hard K={k}", []).append(metrics(task, averaged)["area"])
            psi = cluster_errors(cmap.predict_proba(task.X_val), task.S_val, reference=cmap.cluster_weights_)
            hard = metrics(task, cmap.predict_proba(task.X_test) @ psi)["area"]
            rows.setdefault(f"hard K={k}", []).append(hard)
    for label, areas in rows.items():
        print(f"{label:32s} static_area {np.mean(areas):.4f} per fold {np.round(areas, 4).tolist()}")


if __name__ == "__main__":
    if "--diagnose" in sys.argv:
        diagnose()
    else:
        sweep(__doc__, per_task)
