"""CV trial: the prior strength m estimated from each model's own results (empirical Bayes; session 7).

The engine pulls each cluster's error toward the model's global error with a fixed
m = 4 pseudo-results. How far clusters really differ is a property of the model and
the data: the beta-binomial method of moments gives it from the same validation
results a profile is built from, τ² = (weighted variance of the cluster rates
around g) − (the binomial part, g(1 − g) · mean 1 / n_k), and m = g(1 − g) / τ² − 1:
a model whose clusters barely differ gets a strong pull, one whose clusters differ a
lot a weak one. It needs nothing but the model's own validation results, so a new
model still joins without retraining. Variants: per model; the median over the pool
(one m per data set); both clipped to [1, 256]. The default map is used as is.

    nice -n 10 python benchmarks/quality_eb_prior.py --by-length --unseen-draws 4 \
        --out benchmarks/results/cv_eb_prior.json
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, _posterior, evidence

LOW, HIGH = 1.0, 256.0


def eb_strength(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Method-of-moments prior strength of each model (column), clipped to [LOW, HIGH]."""
    total = counts.sum(axis=0)
    g = sums.sum(axis=0) / np.maximum(total, 1e-12)
    rate = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    weight = counts / np.maximum(total, 1e-12)
    spread = (weight * (rate - g) ** 2).sum(axis=0)
    clusters = (counts > 0).sum(axis=0)
    noise = g * (1 - g) * clusters / np.maximum(total, 1e-12)
    tau2 = np.maximum(spread - noise, 1e-6)
    return np.clip(g * (1 - g) / tau2 - 1.0, LOW, HIGH)


def psi_at(sums: np.ndarray, counts: np.ndarray, m: np.ndarray) -> np.ndarray:
    cols = [_posterior(sums[:, j], counts[:, j], float(m[j])) for j in range(sums.shape[1])]
    return np.stack([a / (a + b) for a, b in cols], axis=1)


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    sums, counts = evidence(cmap.predict_proba(task.X_val), task.S_val, cmap.cluster_weights_)
    phi = cmap.predict_proba(task.X_test)
    n_models = sums.shape[1]
    m = eb_strength(sums, counts)
    variants = {
        "default (m=4)": np.full(n_models, DEFAULT_PRIOR_STRENGTH),
        "eb per model": m,
        "eb pool median": np.full(n_models, float(np.median(m))),
        "m=16": np.full(n_models, 16.0),
    }
    for label, strength in variants.items():
        if wanted(label):
            add(label, kind, metrics(task, phi @ psi_at(sums, counts, strength)))
    add("eb m (median over pool)", kind, {"m": float(np.median(m))})


if __name__ == "__main__":
    sweep(__doc__, per_task)
