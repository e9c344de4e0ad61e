"""CV trials: Ψ shrinkage across neighbouring clusters, many clusters, prior strength (issue 10).

One K-means fit per (fold task, K) is shared by every variant (``n_init=2``), so the
variants differ only in how Φ / Ψ are formed from the same centres:

* ``hard K m``: hard map, engine profiles with prior strength m (the engine's prior);
* ``nbprior K t m``: hard map; each cluster's prior centre is its neighbours' pooled
  error rate (Gaussian kernel over centres, width t × the auto temperature, self
  excluded) instead of the model's global error: Ψ_k = (e_k + m·μ_k) / (n_k + m);
* ``phismooth K t``: Φ = one-hot(nearest centre) · S, S the row-normalised kernel over
  centres (self included): the evidence and the routing both borrow from neighbours;
* ``soft K t``: the engine's soft map at t × the auto temperature;
* ``multi Ks``: Φ = mean of one-hot maps at several K (several granularities at once).

    nice -n 10 python benchmarks/quality_shrinkage.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors, evidence


def _fit(task: Task, k: int) -> KMeansClusterMap:
    cmap = KMeansClusterMap(n_clusters=k, assignment="hard")
    cmap._validate_params()
    cmap._fit_centres(task.X_fit, k, n_init=2)
    cmap.n_clusters_, cmap.assignment_ = k, "hard"
    cmap.cluster_weights_ = cmap._proba(task.X_fit).mean(axis=0)
    return cmap


def _kernel(cmap: KMeansClusterMap, t: float, self_weight: bool) -> np.ndarray:
    c = cmap.cluster_centers_.astype(np.float64)
    d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    s = np.exp(-(d2 - d2.min()) / (t * cmap.temperature_))
    if not self_weight:
        np.fill_diagonal(s, 0.0)
    return s


def _psi(phi_val: np.ndarray, task: Task, m: float, ref: np.ndarray) -> np.ndarray:
    return cluster_errors(phi_val, task.S_val, m, reference=ref)


def variant(task: Task, cmap: KMeansClusterMap, spec: tuple) -> np.ndarray:
    kind = spec[0]
    if kind == "hard":
        m = spec[2]
        pv, pt = cmap._proba(task.X_val, "hard"), cmap._proba(task.X_test, "hard")
        return pt @ _psi(pv, task, m, cmap.cluster_weights_)
    if kind == "soft":
        t = spec[2]
        base = cmap.temperature_
        cmap.temperature_ = base * t
        pv, pt, ref = cmap._proba(task.X_val, "soft"), cmap._proba(task.X_test, "soft"), None
        ref = cmap._proba(task.X_fit, "soft").mean(axis=0)
        cmap.temperature_ = base
        return pt @ _psi(pv, task, 4.0, ref)
    if kind == "phismooth":
        s = _kernel(cmap, spec[2], True)
        s /= s.sum(axis=1, keepdims=True)
        pv = cmap._proba(task.X_val, "hard") @ s
        pt = cmap._proba(task.X_test, "hard") @ s
        return pt @ _psi(pv, task, 4.0, cmap.cluster_weights_ @ s)
    if kind == "nbprior":
        t, m = spec[2], spec[3]
        pv, pt = cmap._proba(task.X_val, "hard"), cmap._proba(task.X_test, "hard")
        e, n = evidence(pv, task.S_val, cmap.cluster_weights_)
        s = _kernel(cmap, t, False)
        g = (e.sum(axis=0) + 0.5) / (n.sum(axis=0) + 1.0)
        mu = (s @ e + 4.0 * g) / (s @ n + 4.0)
        return pt @ ((e + m * mu) / (n + m))
    raise ValueError(kind)


def multi(task: Task, cmaps: list[KMeansClusterMap]) -> np.ndarray:
    pv = np.hstack([c._proba(task.X_val, "hard") for c in cmaps]) / len(cmaps)
    pt = np.hstack([c._proba(task.X_test, "hard") for c in cmaps]) / len(cmaps)
    ref = np.concatenate([c.cluster_weights_ for c in cmaps]) / len(cmaps)
    return pt @ _psi(pv, task, 4.0, ref)


SPECS: list[tuple] = []
for K in (16, 64, 128, 256):
    for m in (4.0, 16.0, 64.0):
        SPECS.append(("hard", K, m))
    for t in (0.5, 1.0, 2.0):
        SPECS.append(("phismooth", K, t))
        for m in (4.0, 16.0, 64.0):
            SPECS.append(("nbprior", K, t, m))
    for t in (0.1, 0.3):
        SPECS.append(("soft", K, t))
MULTI = [(8, 64), (16, 128), (8, 32, 128), (16, 64, 256)]


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    for k in (50, 100, 200):
        add(f"knn k={k}", kind, metrics(task, knn(k)(task)))
    fits = {K: _fit(task, K) for K in sorted({8, 16, 32, 64, 128, 256}) if K * 8 <= len(task.X_fit)}
    for spec in SPECS:
        label = " ".join(str(x) for x in spec)
        if spec[1] in fits and wanted(label):
            add(label, kind, metrics(task, variant(task, fits[spec[1]], spec)))
    for ks in MULTI:
        if all(k in fits for k in ks):
            add(f"multi {'+'.join(map(str, ks))}", kind, metrics(task, multi(task, [fits[k] for k in ks])))


if __name__ == "__main__":
    sweep(__doc__, per_task)
