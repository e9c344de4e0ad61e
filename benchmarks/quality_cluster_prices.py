"""CV trial: price a request by its cluster as well as its length (issue 10, session 6).

The default prices a request by its length alone (``fit_price``). A model's $ also
depends on how long it answers, which depends on the kind of prompt (code and
chain-of-thought math get long answers, multiple choice short ones). Priced here,
on the same folds, with the default map's Φ and the default Ψ (so only the λ
trade-off changes):

* ``mean``: one $ per model (sessions 2–5); ``length``: ``fit_price`` (the default);
* ``cluster``: Φ(x)·C(h), C(h) the model's mean $ per cluster over the validation
  prompts (soft counts, 4 pseudo-results at its overall mean);
* ``cluster+length``: the same plus a slope on the prompt's length fitted to the
  residuals;
* ``knn50 $``: the mean $ of the 50 nearest validation prompts (RouterBench's K-NN).

K-NN's errors (k = 100 on RouteLLM, 200 on RouterBench) are scored under the same prices.
Each pricing's error as a prediction of the realised $ is printed too ("rmse": root mean
square of (price − realised $) / the model's mean $ over the test prompts).

    nice -n 10 python benchmarks/quality_cluster_prices.py routerbench routellm \
        > benchmarks/results/cv_cluster_prices.txt
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from quality_cv import _cv_tasks, metrics, priced
from quality_data import load
from quality_routers import engine_profile, knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import fit_price


def prices(task, phi_val, phi_test, C_val, L_val, L_test) -> dict[str, np.ndarray | None]:
    known = np.isfinite(C_val)
    mean = np.nanmean(np.where(known, C_val, np.nan), axis=0)
    per_cluster = (phi_val.T @ np.where(known, C_val, 0.0) + 4 * mean) / (phi_val.T @ known + 4)
    residual = C_val - phi_val @ per_cluster
    slope = np.array([fit_price(L_val, residual[:, j]).per_char for j in range(C_val.shape[1])])
    sims = task.X_test @ task.X_val.T
    nearest = np.argpartition(-sims, 49, axis=1)[:, :50]
    return {
        "mean": None,
        "length": priced(task, L_val, C_val, L_test).price_test,
        "cluster": phi_test @ per_cluster,
        "cluster+length": np.maximum(phi_test @ per_cluster + slope * (L_test[:, None] - L_val.mean()), 0.0),
        "knn50 $": np.nanmean(np.where(known, C_val, np.nan)[nearest], axis=1),
    }


def run(name: str) -> None:
    d = load(name)
    L, C = d["L_train"], d["C_train"]
    rows: dict[tuple[str, str, str], list[float]] = {}
    for kind, task, val, test, pool in _cv_tasks(d, 5, 2, 0):
        cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
        phi_val, phi_test = cmap.predict_proba(task.X_val), cmap.predict_proba(task.X_test)
        psi = np.stack(
            [engine_profile()(phi_val, task.S_val[:, j], cmap.cluster_weights_) for j in range(len(pool))]
        )
        errors = {"default": phi_test @ psi.T, "knn": knn(100 if name == "routellm" else 200)(task)}
        for label, price in prices(task, phi_val, phi_test, C[np.ix_(val, pool)], L[val], L[test]).items():
            flat = np.nanmean(C[np.ix_(val, pool)], axis=0)
            predicted = np.broadcast_to(flat if price is None else price, task.C_test.shape)
            relative = (predicted - task.C_test) / task.C_test.mean(axis=0)
            rows.setdefault(("rmse", label, kind), []).append(float(np.sqrt(np.nanmean(relative**2))))
            for router, err in errors.items():
                area = metrics(replace(task, price_test=price), err)["area"]
                rows.setdefault((router, label, kind), []).append(area)
    for key, areas in sorted(rows.items()):
        print(name, *key, f"{np.mean(areas):.4f}", flush=True)


if __name__ == "__main__":
    for data in sys.argv[1:] or ["routerbench", "routellm"]:
        run(data)
