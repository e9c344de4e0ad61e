"""CV trial: "auto" chooses the smoothest map within one standard error of the best (session 7).

``KMeansClusterMap``'s inner CV picks the (K, assignment) with the lowest held-out
pairwise Brier score, however small its lead. Breiman's one-standard-error rule
(CART, glmnet's ``lambda.1se``) picks instead the most regularised candidate whose
score is within one standard error of the best: here the smallest K, soft before
hard (soft pools across clusters). The standard error is that of the mean per-prompt
loss, either of the best candidate ("1se") or of each candidate's paired difference
to the best ("paired 1se"). Why it might help: the unseen-LLM protocol profiles new
models on a seventh of the prompts, where the old default (soft K = 8) wins 71 of 100
draws against K-NN and the default 57 (``quality_unseen_wins.py``).

    nice -n 10 python benchmarks/quality_one_se.py --by-length --unseen-draws 4 \\
        --out benchmarks/results/cv_one_se.json
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from quality_cv import Add, Task, Wanted, sweep
from quality_routers import print_choices, score_choice

from uniroute.engine import cluster_maps as cm
from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, cluster_errors

CHOSEN: dict[str, Counter] = {}


def per_prompt_losses(X: np.ndarray, Y: np.ndarray) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """(loss, count) per training prompt of each candidate, from the default's 3-fold inner CV."""
    n = len(X)
    ks = tuple(k for k in cm._AUTO_CLUSTERS if k * cm._MIN_PER_CLUSTER <= n * 2 // 3)
    folds = np.array_split(np.random.default_rng(0).permutation(n), cm._CV_FOLDS)
    out = {(k, a): (np.zeros(n), np.zeros(n)) for k in ks for a in ("soft", "hard")}
    probe = KMeansClusterMap()
    observed = ~np.isnan(Y)
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        c = observed[held].sum(axis=1)
        for k in ks:
            probe._fit_centres(X[train], k, n_init=1)
            for a in ("soft", "hard"):
                phi = probe._proba(X[train], a)
                psi = cluster_errors(phi, Y[train], DEFAULT_PRIOR_STRENGTH, reference=phi.mean(axis=0))
                r = np.where(observed[held], np.nan_to_num(Y[held]) - (1 - probe._proba(X[held], a) @ psi), 0)
                out[(k, a)][0][held] = c * (r**2).sum(axis=1) - r.sum(axis=1) ** 2
                out[(k, a)][1][held] = c * (c - 1) / 2
    return out


def choose(X: np.ndarray, Y: np.ndarray, rule: str) -> tuple[int, str]:
    losses = per_prompt_losses(X, Y)
    total = next(iter(losses.values()))[1].sum()
    score = {key: loss.sum() / total for key, (loss, _) in losses.items()}
    best = min(score, key=score.get)
    if rule == "min":
        return best
    n = len(X)
    per_prompt = {key: loss * n / total for key, (loss, _) in losses.items()}  # mean of these = score

    def within(key: tuple[int, str]) -> bool:
        if rule == "1se":
            se = per_prompt[best].std(ddof=1) / np.sqrt(n)
            return score[key] <= score[best] + se
        diff = per_prompt[key] - per_prompt[best]
        return diff.mean() <= diff.std(ddof=1) / np.sqrt(n)

    smooth_first = sorted(losses, key=lambda key: (key[0], key[1] != "soft"))
    return next(key for key in smooth_first if within(key))


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    for rule, label in (("min", "default (lowest score)"), ("1se", "1se"), ("paired", "paired 1se")):
        if wanted(label):
            score_choice(label, kind, task, add, choose(task.X_fit, task.S_fit, rule), CHOSEN)


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
