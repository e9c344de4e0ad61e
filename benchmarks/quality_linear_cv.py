"""CV trial: a linear term on top of the averaged default, its strength chosen by the inner CV (session 10).

Session 5 (``quality_linear_profile.py``) added to Φ(x)·Ψ(h) a term xᵀw_h, a ridge fit of
each model's residuals on the embedding over its validation results. At a fixed α it moved
the two data sets apart (α = 1: +0.0036 on RouteLLM, −0.006 on RouterBench; α = 1000: ±0.001),
and α chosen per model by its leave-one-out squared error did not find RouteLLM's α. Not
tried: choosing α the way the default chooses its maps, by the inner 3-fold CV's pairwise
Brier score over the training LLMs, with "no linear term" among the choices, on top of
today's averaged default (whose 56–112 columns already give prompts more resolution).

Not kept (docs/benchmarks.md, "Trials of session 10"). Per outer task: the default's three
maps (``quality_grid_extend.inner_scores`` on the default grid); for each inner fold, those
maps fitted and profiled on the inner training rows, their residuals ridge-fitted for every
α, the held-out rows scored; α = the lowest pooled score ("inf" = no term). Then the term
is fitted on the task's validation rows at that α.

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_linear_cv.py --data routerbench --by-length --unseen-draws 4 \\
          --seed $s --out benchmarks/results/cv_linear_cv_routerbench_seed$s.json
      nice -n 10 python benchmarks/quality_linear_cv.py --data routellm --by-length \\
          --seed $s --out benchmarks/results/cv_linear_cv_routellm_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_linear_cv_*_seed*.json \\
        --reference "top-3 (default)"
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_grid_extend import Key, estimates, grid, inner_scores
from quality_linear_profile import linear_terms
from quality_routers import print_choices
from quality_stacking import score

from uniroute.engine import cluster_maps as cm

ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
CHOSEN: dict[str, Counter] = {}


def choose_alpha(X: np.ndarray, Y: np.ndarray, keys: list[Key], seed: int = 0) -> float:
    """α (or inf: no term) with the best held-out pairwise Brier score over the inner folds."""
    n = len(X)
    folds = np.array_split(np.random.default_rng(seed).permutation(n), cm._CV_FOLDS)
    pred = {a: np.zeros(Y.shape) for a in (*ALPHAS, np.inf)}
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        e_train, e_held = estimates(keys, X[train], Y[train], X[train], Y[train], [X[train], X[held]], False)
        pred[np.inf][held] = 1.0 - e_held
        residuals = (1.0 - Y[train]) - e_train
        for a in ALPHAS:
            w = linear_terms(X[train], residuals, a)
            pred[a][held] = 1.0 - (e_held + X[held].astype(np.float64) @ w)
    return min(pred, key=lambda a: score(Y, pred[a]))


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    X, Y = task.X_fit, task.S_fit
    n_fit = len(X) * (cm._CV_FOLDS - 1) // cm._CV_FOLDS
    scores = inner_scores(X, Y, grid(n_fit, ()))
    keys = sorted(grid(n_fit, ()), key=scores.__getitem__)[:3]
    e_val, e_test = estimates(keys, X, Y, task.X_val, task.S_val, [task.X_val, task.X_test], True)
    add("top-3 (default)", kind, metrics(task, e_test))
    residuals = (1.0 - task.S_val) - e_val
    x_test = task.X_test.astype(np.float64)
    for a in ALPHAS:
        if wanted(f"linear a={a:g}"):
            w = linear_terms(task.X_val, residuals, a)
            add(f"linear a={a:g}", kind, metrics(task, e_test + x_test @ w))
    if wanted("linear cv"):
        a = choose_alpha(X, Y, keys)
        CHOSEN.setdefault(f"linear cv {kind}", Counter())[f"a={a:g}"] += 1
        term = 0.0 if np.isinf(a) else x_test @ linear_terms(task.X_val, residuals, a)
        add("linear cv", kind, metrics(task, e_test + term))


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
