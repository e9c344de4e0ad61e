"""CV trial: a prior from cluster difficulty and model ability (issue 10).

The engine's prior centre for a model's error on cluster k is its global error g.
Here it is an item-response-style centre instead: the *training* LLMs measure how
hard each cluster is, b_k = logit of their mean error there, and the model's
ability a_h is the one number that makes Σ_k n_k σ(a_h + b_k) equal its observed
errors (a 1-D root, from validation results only: onboarding stays retraining-free).

    ν_k = σ(a_h + b_k),   μ_k = (n_k·ν_k + m·½) / (n_k + m),   Ψ_k = (e_k + m·μ_k) / (n_k + m)

so a cluster that every training LLM finds hard starts hard for a new model too, and a
cluster without validation results still counts as unknown (½). Expected to matter
where the validation set is small (the unseen-LLM protocol) and with strong priors.

    nice -n 10 python benchmarks/quality_ability_prior.py --data routerbench routellm --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors, evidence


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def difficulty(phi_fit: np.ndarray, S_fit: np.ndarray) -> np.ndarray:
    """b_k: logit of the training LLMs' mean error per cluster (lightly smoothed toward ½)."""
    e, n = evidence(phi_fit, S_fit)
    return _logit((e.sum(axis=1) + 1.0) / (n.sum(axis=1) + 2.0))


def ability(b: np.ndarray, e: np.ndarray, n: np.ndarray) -> float:
    """a with Σ n_k σ(a + b_k) = Σ e_k (+ ½ / + 1 smoothing), by bisection."""
    target = (e.sum() + 0.5) / (n.sum() + 1.0)
    w = n / max(n.sum(), 1e-12)
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (w / (1 + np.exp(-(mid + b)))).sum() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def ability_psi(
    phi_val: np.ndarray, S_val: np.ndarray, ref: np.ndarray, b: np.ndarray, m: float
) -> np.ndarray:
    """Ψ (K, n_models) with the ability prior centre."""
    e, n = evidence(phi_val, S_val, ref)
    out = np.empty_like(e)
    for j in range(e.shape[1]):
        nu = 1.0 / (1.0 + np.exp(-(ability(b, e[:, j], n[:, j]) + b)))
        mu = (n[:, j] * nu + m * 0.5) / (n[:, j] + m)
        out[:, j] = (e[:, j] + m * mu) / (n[:, j] + m)
    return out


STRENGTHS = (4.0, 16.0, 64.0)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    add("knn k=100", kind, metrics(task, knn(100)(task)))
    cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    phi_fit, phi_val, phi_test = (cmap.predict_proba(x) for x in (task.X_fit, task.X_val, task.X_test))
    ref = cmap.cluster_weights_
    b = difficulty(phi_fit, task.S_fit)
    for m in STRENGTHS:
        if wanted(f"engine m={m:g}"):
            psi = cluster_errors(phi_val, task.S_val, m, ref)
            add(f"engine m={m:g}", kind, metrics(task, phi_test @ psi))
        if wanted(f"ability m={m:g}"):
            psi = ability_psi(phi_val, task.S_val, ref, b, m)
            add(f"ability m={m:g}", kind, metrics(task, phi_test @ psi))


if __name__ == "__main__":
    sweep(__doc__, per_task)
