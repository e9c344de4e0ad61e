"""CV trial: "auto" combines maps instead of choosing one (session 8).

``KMeansClusterMap``'s inner 3-fold CV scores each (K, assignment) by the held-out
pairwise Brier score and keeps the lowest, however small its lead. Two sources of
error in that choice: the score of one 3-fold split is noisy (the unseen-LLM tasks
pick six different maps across 20 draws), and the best single map may be worse than a
mixture of a coarse and a fine one. Variants, all from the same inner-CV predictions:

- "repeated x3": the lowest score summed over three 3-fold splits (less selection noise);
- "stack": Breiman's stacked regression. Convex weights w over the candidates minimise
  the pairwise Brier score of the mixed out-of-fold predictions Σ_c w_c Φ_c·Ψ_c
  (non-negative least squares on per-prompt centred scores, a heavy row holding
  Σ w = 1). The mixture is itself a UniRoute map: the candidates' clusters side by side,
  each Φ_c scaled by w_c, so onboarding still needs only validation results;
- "stack x3": the same weights fitted on the three splits' predictions;
- "top-3 mean": the three best candidates, equal weights ("top-2/4/5 mean": two, four, five;
  "top-3 mean x3": the three best by the score summed over three splits);
- "top-3 concatenated": "top-3 mean" as one map the engine would store: the three maps'
  clusters side by side, each Φ_c / 3, profiled as one map (the prior of m pseudo-results
  per cluster then weighs 3x more against each cluster's third of the results).

Session 8 ran it on five fold seeds per data set and pooled them with ``quality_paired.py``:

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_stacking.py --data routerbench --by-length --unseen-draws 4 \\
          --seed $s --out benchmarks/results/cv_stacking_routerbench_seed$s.json
      nice -n 10 python benchmarks/quality_stacking.py --data routellm --by-length \\
          --seed $s --out benchmarks/results/cv_stacking_routellm_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_stacking_*_seed*.json \\
        --reference "default (lowest score)"

"top-3 mean" became the default (``KMeansClusterMap(n_maps=3)``), so here "default" is the
single best map, as ``KMeansClusterMap(n_maps=1)`` fits it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import engine_profile, print_choices
from scipy.optimize import nnls

from uniroute.engine import cluster_maps as cm
from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, cluster_errors

CHOSEN: dict[str, Counter] = {}
Key = tuple[int, str]


def out_of_fold(X: np.ndarray, Y: np.ndarray, seed: int) -> dict[Key, np.ndarray]:
    """Held-out predicted correctness (n, n_llms) of every candidate, as the default's inner CV makes it."""
    n = len(X)
    ks = tuple(k for k in cm._AUTO_CLUSTERS if k * cm._MIN_PER_CLUSTER <= n * 2 // 3)
    folds = np.array_split(np.random.default_rng(seed).permutation(n), cm._CV_FOLDS)
    out = {(k, a): np.zeros(Y.shape) for k in ks for a in ("soft", "hard")}
    probe = KMeansClusterMap(random_state=seed)
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        for k in ks:
            probe._fit_centres(X[train], k, n_init=1)
            for a in ("soft", "hard"):
                phi = probe._proba(X[train], a)
                psi = cluster_errors(phi, Y[train], DEFAULT_PRIOR_STRENGTH, reference=phi.mean(axis=0))
                out[(k, a)][held] = 1.0 - probe._proba(X[held], a) @ psi
    return out


def score(Y: np.ndarray, P: np.ndarray) -> float:
    loss, count = cm._pairwise_brier(Y, P)
    return loss / max(count, 1.0)


def stack_weights(Y: np.ndarray, preds: list[dict[Key, np.ndarray]]) -> dict[Key, float]:
    """Convex weights minimising the pooled pairwise Brier score of the mixed predictions.

    Per prompt, the pairwise loss is c · Σ_j (r_j − r̄)² over its c observed LLMs, so the
    problem is least squares on per-prompt centred scores with row weights √c.
    """
    keys = list(preds[0])
    observed = ~np.isnan(Y)
    c = observed.sum(axis=1, keepdims=True)
    if Y.shape[1] == 1:
        c = np.ones_like(c)

    def centred(M: np.ndarray) -> np.ndarray:
        M = np.where(observed, np.nan_to_num(M), 0.0)
        mean = M.sum(axis=1, keepdims=True) / np.maximum(c, 1)
        if Y.shape[1] == 1:
            mean = 0.0
        return (np.where(observed, M - mean, 0.0) * np.sqrt(c))[observed]

    target = np.concatenate([centred(Y) for _ in preds])
    A = np.stack([np.concatenate([centred(p[key]) for p in preds]) for key in keys], axis=1)
    big = np.sqrt(len(target)) * 100.0
    w, _ = nnls(np.vstack([A, np.full((1, len(keys)), big)]), np.append(target, big))
    w = w / w.sum()
    return {key: float(wk) for key, wk in zip(keys, w, strict=True) if wk > 1e-3}


def mixture(task: Task, weights: dict[Key, float]) -> np.ndarray:
    """Estimated errors of the test prompts under Σ_c w_c Φ_c·Ψ_c (each map refitted on all fit prompts)."""
    total = sum(weights.values())
    errors = np.zeros((len(task.X_test), task.S_val.shape[1]))
    profile = engine_profile()
    for (k, a), w in weights.items():
        cmap = KMeansClusterMap(k, a).fit(task.X_fit)
        phi_val = cmap.predict_proba(task.X_val)
        psi = np.stack(
            [profile(phi_val, task.S_val[:, j], cmap.cluster_weights_) for j in range(task.S_val.shape[1])]
        )
        errors += (w / total) * (cmap.predict_proba(task.X_test) @ psi.T)
    return errors


def concatenated(task: Task, keys: list[Key]) -> np.ndarray:
    """Estimated errors under one map whose clusters are the candidates' side by side, each Φ_c / C:
    the mixture as the engine would store and profile it (one Ψ column per cluster, prior per cluster)."""
    maps = [KMeansClusterMap(k, a).fit(task.X_fit) for k, a in keys]

    def phi(X: np.ndarray) -> np.ndarray:
        return np.hstack([cmap.predict_proba(X) for cmap in maps]) / len(maps)

    phi_val, reference = phi(task.X_val), np.concatenate([cmap.cluster_weights_ for cmap in maps]) / len(maps)
    profile = engine_profile()
    psi = np.stack([profile(phi_val, task.S_val[:, j], reference) for j in range(task.S_val.shape[1])])
    return phi(task.X_test) @ psi.T


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    X, Y = task.X_fit, task.S_fit
    m = f"{kind} m={task.S_val.shape[1]}"
    splits = [out_of_fold(X, Y, seed) for seed in (0, 1, 2)]
    scores = [{key: score(Y, P) for key, P in s.items()} for s in splits]
    summed = {key: sum(s[key] for s in scores) for key in scores[0]}
    ranked = sorted(scores[0], key=scores[0].get)
    variants: dict[str, dict[Key, float]] = {
        "default (lowest score)": {ranked[0]: 1.0},
        "repeated x3": {min(summed, key=summed.get): 1.0},
        "stack": stack_weights(Y, splits[:1]),
        "stack x3": stack_weights(Y, splits),
        "top-3 mean": {key: 1.0 for key in ranked[:3]},
        "top-2 mean": {key: 1.0 for key in ranked[:2]},
        "top-4 mean": {key: 1.0 for key in ranked[:4]},
        "top-5 mean": {key: 1.0 for key in ranked[:5]},
        "top-3 mean x3": {key: 1.0 for key in sorted(summed, key=summed.get)[:3]},
    }
    for label, weights in variants.items():
        if not wanted(label):
            continue
        CHOSEN.setdefault(f"{label} {m}", Counter())[
            " + ".join(f"{w:.2f} {a} K={k}" for (k, a), w in sorted(weights.items()))
        ] += 1
        add(label, kind, metrics(task, mixture(task, weights)))
    if wanted("top-3 concatenated"):
        add("top-3 concatenated", kind, metrics(task, concatenated(task, ranked[:3])))


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
