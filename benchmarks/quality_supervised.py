"""CV trial: K-means in a supervised projection of the embeddings (issue 10).

PLS (partial least squares) finds the directions of the prompt embeddings that
predict the *training* LLMs' correctness; K-means then clusters the prompts in that
c-dimensional space, so clusters separate prompts on which the models differ (the
aim of LearnedMap, with a closed-form projection). Profiles and onboarding are
unchanged: a new model is profiled on the projected validation prompts.

* ``pls c K assignment``: c PLS components, K clusters, hard or soft (auto temperature);
* ``raw K assignment``: K-means on the embeddings themselves, the reference.

    nice -n 10 python benchmarks/quality_supervised.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import warnings

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors


def _route(
    task: Task, Z_fit: np.ndarray, Z_val: np.ndarray, Z_test: np.ndarray, k: int, a: str
) -> np.ndarray:
    cmap = KMeansClusterMap(n_clusters=k, assignment=a)
    cmap._validate_params()
    cmap._fit_centres(Z_fit, k, n_init=2)
    cmap.n_clusters_, cmap.assignment_ = k, a
    ref = cmap._proba(Z_fit).mean(axis=0)
    psi = cluster_errors(cmap._proba(Z_val), task.S_val, 4.0, reference=ref)
    return cmap._proba(Z_test) @ psi


def _project(task: Task, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.cross_decomposition import PLSRegression

    Y = np.where(np.isnan(task.S_fit), np.nanmean(task.S_fit, axis=0), task.S_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pls = PLSRegression(n_components=c, scale=False).fit(task.X_fit, Y)
    return tuple(pls.transform(X).astype(np.float32) for X in (task.X_fit, task.X_val, task.X_test))


COMPONENTS = (4, 8, 16, 32)
KS = (16, 64, 128)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    add("knn k=100", kind, metrics(task, knn(100)(task)))
    spaces = {"raw": (task.X_fit, task.X_val, task.X_test)}
    spaces |= {f"pls {c}": _project(task, c) for c in COMPONENTS}
    for space, (zf, zv, zt) in spaces.items():
        for k in KS:
            for a in ("hard", "soft"):
                if k * 16 <= len(zf) and wanted(f"{space} {k} {a}"):
                    add(f"{space} {k} {a}", kind, metrics(task, _route(task, zf, zv, zt, k, a)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
