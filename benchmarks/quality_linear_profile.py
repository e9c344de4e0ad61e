"""CV trial: a linear term in the profile, Φ(x) = [cluster map, embedding] (issue 10).

UniRoute scores Φ(x)·Ψ(h). With the K-means map, Ψ(h) is the per-cluster mean
error, which is the least-squares fit of the model's errors on one-hot cluster
features. Here Φ also carries the embedding x itself, so Ψ(h) gains a vector w_h
fitted by ridge regression on the residuals of the cluster profile over the
model's validation results:

    err(x, h) = Φ_K(x)·Ψ_K(h) + xᵀ w_h,   w_h = argmin Σ_i (r_ih − x_iᵀ w)² + α‖w‖²

w_h is a closed-form solve from validation results only (onboarding stays
retraining-free); a route adds one dot product per model. It gives prompts inside
one cluster different estimates, which K-NN has and a hard map lacks.
α is fixed per row, or chosen per model by its exact leave-one-out error ("linear loo").

    nice -n 10 python benchmarks/quality_linear_profile.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors

ALPHAS = (1.0, 10.0, 100.0, 1000.0)


def linear_terms(X: np.ndarray, residuals: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge weights (dim, n_models) of each model's residuals on X (NaN = no result)."""
    X = X.astype(np.float64)
    out = np.zeros((X.shape[1], residuals.shape[1]))
    eye = alpha * np.eye(X.shape[1])
    for j in range(residuals.shape[1]):
        o = ~np.isnan(residuals[:, j])
        xo = X[o]
        out[:, j] = np.linalg.solve(xo.T @ xo + eye, xo.T @ residuals[o, j])
    return out


LOO_ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)


def loo_linear_terms(X: np.ndarray, residuals: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Ridge weights with each model's α chosen by its exact leave-one-out error (closed form)."""
    X = X.astype(np.float64)
    out = np.zeros((X.shape[1], residuals.shape[1]))
    chosen = []
    for j in range(residuals.shape[1]):
        o = ~np.isnan(residuals[:, j])
        u, s, vt = np.linalg.svd(X[o], full_matrices=False)
        uty = u.T @ residuals[o, j]
        best = None
        for alpha in LOO_ALPHAS:
            shrink = s**2 / (s**2 + alpha)
            fit = u @ (shrink * uty)
            hat = (u**2) @ shrink
            press = float((((residuals[o, j] - fit) / (1.0 - hat)) ** 2).mean())
            if best is None or press < best[0]:
                best = (press, alpha, vt.T @ (shrink / s * uty))
        chosen.append(best[1])
        out[:, j] = best[2]
    return out, chosen


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    add("knn k=100", kind, metrics(task, knn(100)(task)))
    cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    phi_val, phi_test = cmap.predict_proba(task.X_val), cmap.predict_proba(task.X_test)
    psi = cluster_errors(phi_val, task.S_val, reference=cmap.cluster_weights_)
    base = phi_test @ psi
    add("default", kind, metrics(task, base))
    residuals = (1.0 - task.S_val) - phi_val @ psi
    for alpha in ALPHAS:
        if wanted(f"linear a={alpha:g}"):
            w = linear_terms(task.X_val, residuals, alpha)
            add(f"linear a={alpha:g}", kind, metrics(task, base + task.X_test.astype(np.float64) @ w))
    if wanted("linear loo"):
        w, chosen = loo_linear_terms(task.X_val, residuals)
        print("loo alphas", chosen, flush=True)
        add("linear loo", kind, metrics(task, base + task.X_test.astype(np.float64) @ w))


if __name__ == "__main__":
    sweep(__doc__, per_task)
