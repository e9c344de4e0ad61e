"""CV trial: a per-prompt difficulty shift on the cluster estimate (issue 10).

The diagnosis in docs/benchmarks.md ("Trials of session 5") shows K-NN's lead on RouteLLM
is resolution inside a cluster. One shared, prompt-level quantity can give it without
per-model parameters: the prompt's difficulty d(x), a ridge regression (on the embedding)
of the logit of the *training* LLMs' mean error, fitted once with the map. Each model's
cluster estimate is shifted in logit space by how much harder x is than its cluster:

    err(x, h) = σ(logit(Φ(x)·Ψ(h)) + β · (d(x) − Φ(x)·d̄)),   d̄_k = cluster k's mean d

Two models that differ on a cluster differ most on its medium prompts and agree on its
easy and hard ones, which is what the shift expresses. Onboarding still needs only
validation results (Ψ is unchanged; d is the map's).

    nice -n 10 python benchmarks/quality_shift.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors

BETAS = (0.5, 1.0, 2.0)
ALPHAS = (1.0, 10.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p) - np.log1p(-p)


def difficulty(X: np.ndarray, S: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge weights and intercept of logit(smoothed mean error of the training LLMs) on X."""
    observed = ~np.isnan(S)
    err = np.where(observed, 1.0 - np.nan_to_num(S), 0.0).sum(axis=1)
    y = _logit((err + 0.5) / (observed.sum(axis=1) + 1.0))
    X = X.astype(np.float64)
    mean_x, mean_y = X.mean(axis=0), y.mean()
    Xc = X - mean_x
    w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - mean_y))
    return w, float(mean_y - mean_x @ w)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    add("knn k=100", kind, metrics(task, knn(100)(task)))
    cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    phi_fit, phi_val, phi_test = (cmap.predict_proba(x) for x in (task.X_fit, task.X_val, task.X_test))
    base = phi_test @ cluster_errors(phi_val, task.S_val, reference=cmap.cluster_weights_)
    add("default", kind, metrics(task, base))
    for alpha in ALPHAS:
        w, b = difficulty(task.X_fit, task.S_fit, alpha)
        d_fit = task.X_fit.astype(np.float64) @ w + b
        d_bar = (phi_fit.T @ d_fit) / np.maximum(phi_fit.sum(axis=0), 1e-12)
        shift = task.X_test.astype(np.float64) @ w + b - phi_test @ d_bar
        for beta in BETAS:
            label = f"shift a={alpha:g} b={beta:g}"
            if wanted(label):
                est = 1.0 / (1.0 + np.exp(-(_logit(base) + beta * shift[:, None])))
                add(label, kind, metrics(task, est))


if __name__ == "__main__":
    sweep(__doc__, per_task)
