"""CV trial: leave the best single model only on evidence (issue 10, target 3; session 7).

At λ = 0 the default router sends a prompt to a model other than the best single
one (the reference: lowest validation error over the pool) whenever that
model's Φ(x)·Ψ is lower, however thin the evidence: on RouteLLM two of 64
clusters go to Mixtral on z = 1.35 and z = 0.46, which costs V_B 0.0005. Two
rules that use the posterior the profiles already hold (Beta per cluster, so
var_k = αβ / ((α+β)²(α+β+1)) and, for a prompt, var(Φ·Ψ) = Σ Φ_k² var_k):

- "clip z": where a model's estimate beats the reference's by less than z
  standard errors of the difference, it is scored as the reference's error
  (plus a hair, so the reference wins ties at λ = 0; at λ > 0 a cheaper model
  still wins an "equal" prompt on price);
- "penalty z": every other model's estimate is raised by z standard errors of
  the difference (a risk-averse router at every λ).

Errors, not prices, change; the default map and engine profiles are used as is.

    nice -n 10 python benchmarks/quality_reference_gate.py --by-length \
        --out benchmarks/results/cv_reference_gate.json
    nice -n 10 python benchmarks/quality_reference_gate.py --by-length --unseen-draws 4 --data routerbench \
        --out benchmarks/results/cv_reference_gate_4draws.json
"""

from __future__ import annotations

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, _posterior, evidence

ZS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.64, 1.96)
HAIR = 1e-9


def estimates(task: Task) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean (n_test, m), variance (n_test, m), reference index) from the default map and engine profiles."""
    cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    sums, counts = evidence(cmap.predict_proba(task.X_val), task.S_val, cmap.cluster_weights_)
    alpha, beta = _posterior(sums, counts, DEFAULT_PRIOR_STRENGTH)
    total = alpha + beta
    psi, var = alpha / total, alpha * beta / (total**2 * (total + 1.0))
    phi = cmap.predict_proba(task.X_test)
    reference = int(np.argmin(np.nanmean(1.0 - task.S_val, axis=0)))
    return phi @ psi, (phi**2) @ var, reference


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    mean, var, ref = estimates(task)
    add("default", kind, metrics(task, mean))
    se = np.sqrt(var + var[:, [ref]])
    gain = mean[:, [ref]] - mean  # > 0: the model claims to beat the reference
    others = np.arange(mean.shape[1]) != ref
    for z in ZS:
        if wanted(f"clip z={z}"):
            clipped = np.where((gain > 0) & (gain < z * se) & others, mean[:, [ref]] + HAIR, mean)
            add(f"clip z={z}", kind, metrics(task, clipped))
        if wanted(f"penalty z={z}"):
            add(f"penalty z={z}", kind, metrics(task, mean + z * se * others))


if __name__ == "__main__":
    sweep(__doc__, per_task)
