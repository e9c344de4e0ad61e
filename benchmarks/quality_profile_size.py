"""CV trial: "auto" K and assignment chosen with smaller profiles (issue 10, target 2; session 7).

``KMeansClusterMap``'s inner CV fits centres on two thirds of the training prompts,
profiles the training LLMs on the *same* two thirds and scores the third. A pool
that joins later is profiled on its validation set, which can be much smaller (the
unseen-LLM protocol profiles it on a seventh of the prompts), and the best K for a
profile of n results shrinks with n. Here the inner CV profiles on a fraction f of
the fit part only (centres still on the whole fit part), so the criterion prefers
the pooling a smaller validation set needs: f = 1 is the default.

    nice -n 10 python benchmarks/quality_profile_size.py --by-length --unseen-draws 4 \\
        --out benchmarks/results/cv_profile_size.json
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from quality_cv import Add, Task, Wanted, sweep
from quality_routers import print_choices, score_choice

from uniroute.engine import cluster_maps as cm
from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, cluster_errors

FRACTIONS = (1.0, 0.5, 0.25)
CHOSEN: dict[str, Counter] = {}


def choose(X: np.ndarray, Y: np.ndarray, fraction: float) -> tuple[int, str]:
    """``select_by_cv`` with the profiles measured on a ``fraction`` of each fit part."""
    n = len(X)
    ks = tuple(k for k in cm._AUTO_CLUSTERS if k * cm._MIN_PER_CLUSTER <= n * 2 // 3)
    rng = np.random.default_rng(0)
    folds = np.array_split(rng.permutation(n), cm._CV_FOLDS)
    totals = {(k, a): [0.0, 0.0] for k in ks for a in ("soft", "hard")}
    probe = KMeansClusterMap()
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        prof = train[: max(1, round(fraction * len(train)))]
        for k in ks:
            probe._fit_centres(X[train], k, n_init=1)
            for a in ("soft", "hard"):
                phi = probe._proba(X[prof], a)
                ref = probe._proba(X[train], a).mean(axis=0)
                psi = cluster_errors(phi, Y[prof], DEFAULT_PRIOR_STRENGTH, reference=ref)
                loss, count = cm._pairwise_brier(Y[held], 1.0 - probe._proba(X[held], a) @ psi)
                totals[(k, a)][0] += loss
                totals[(k, a)][1] += count
    return min(totals, key=lambda key: totals[key][0] / max(totals[key][1], 1.0))


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    for f in FRACTIONS:
        label = "default (f=1)" if f == 1.0 else f"profiles on f={f}"
        if wanted(label):
            score_choice(label, kind, task, add, choose(task.X_fit, task.S_fit, f), CHOSEN)


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
