"""CV trial: the fit-time CV's criterion, pairwise Brier vs pairwise AUC (issue 10).

The default map chooses K and hard/soft by the held-out *pairwise Brier* score of the
predicted differences between training LLMs. Routing (and the deferral area) needs
the *ranking* of prompts by which model is better, not calibrated differences, so
this trial scores the same 3-fold inner CV by the pairwise AUC instead: for every
pair of training LLMs, over held-out prompts where exactly one of the two is right,
how often the predicted difference orders them correctly (weighted by such prompts).
Candidates: K-means K in 4..256 (≥ 20 training prompts per cluster) × {hard, soft},
optionally LearnedMap K = 8 / 16. Nested inside the outer folds. ``--hybrid``: Brier
chooses hard or soft, then AUC chooses K among that family (K-means, K ≤ 128).

    nice -n 10 python benchmarks/quality_criterion.py --data routellm routerbench --unseen-draws 2 [--hybrid]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from quality_cv import Task, main
from quality_routers import knn

from uniroute.engine.cluster_maps import _CV_FOLDS, KMeansClusterMap, LearnedClusterMap, _pairwise_brier
from uniroute.engine.profiles import cluster_errors

KS = (4, 8, 16, 32, 64, 128, 256)
LEARNED = True  # LearnedMap candidates too (``--hybrid`` runs drop them)
CHOICES: dict[str, list[str]] = {}


def pairwise_auc(Y: np.ndarray, P: np.ndarray) -> float:
    """Weighted mean over LLM pairs of P(predicted difference orders a disagreeing prompt right)."""
    from scipy.stats import rankdata

    total = weight = 0.0
    for i in range(Y.shape[1]):
        for j in range(i + 1, Y.shape[1]):
            d = Y[:, i] - Y[:, j]
            keep = ~np.isnan(d) & (d != 0)
            pos = d[keep] > 0
            n_pos, n_neg = int(pos.sum()), int((~pos).sum())
            if n_pos == 0 or n_neg == 0:
                continue
            ranks = rankdata(P[keep, i] - P[keep, j])
            auc = (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            total, weight = total + auc * keep.sum(), weight + keep.sum()
    return total / max(weight, 1.0)


def _heldout(make: Callable[[], object], X: np.ndarray, Y: np.ndarray, folds) -> np.ndarray:
    P = np.full(Y.shape, np.nan)
    for held in folds:
        train = np.setdiff1d(np.arange(len(X)), held)
        cmap = make().fit(X[train], Y[train])
        phi = cmap.predict_proba(X[train])
        psi = cluster_errors(phi, Y[train], reference=phi.mean(axis=0))
        P[held] = 1.0 - cmap.predict_proba(X[held]) @ psi
    return P


_MEMO: dict[int, dict[str, tuple[float, float]]] = {}


def _makers(n_fit: int) -> dict[str, Callable[[], object]]:
    makers: dict[str, Callable[[], object]] = {
        f"km {k} {a}": (lambda k=k, a=a: KMeansClusterMap(k, a))
        for k in KS
        if k * 20 <= n_fit
        for a in ("hard", "soft")
    }
    if LEARNED:
        makers |= {f"learned {k}": (lambda k=k: LearnedClusterMap(k)) for k in (8, 16)}
    return makers


def _scores(task: Task) -> dict[str, tuple[float, float]]:
    """(pairwise AUC, pairwise Brier) of every candidate, computed once per task."""
    if id(task) not in _MEMO:
        X, Y = task.X_fit, task.S_fit
        folds = np.array_split(np.random.default_rng(0).permutation(len(X)), _CV_FOLDS)
        out = {}
        for name, make in _makers(len(X) * (_CV_FOLDS - 1) // _CV_FOLDS).items():
            P = _heldout(make, X, Y, folds)
            loss, count = _pairwise_brier(Y, P)
            out[name] = (pairwise_auc(Y, P), loss / count)
        print("  ", {k: (round(a, 4), round(b, 5)) for k, (a, b) in out.items()}, flush=True)
        _MEMO[id(task)] = out
    return _MEMO[id(task)]


def _hybrid(scores: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Brier chooses hard or soft (it tells the families apart on both sets), then AUC chooses K."""
    best = min((name for name in scores if name.startswith("km")), key=lambda name: scores[name][1])
    family = best.split()[-1]
    return {name: -auc for name, (auc, _) in scores.items() if name.endswith(f" {family}")}


def chooser(criterion: str, learned: bool):
    label = f"{criterion}{' +learned' if learned else ''}"

    def route(task: Task) -> np.ndarray:
        X, Y = task.X_fit, task.S_fit
        makers = _makers(len(X) * (_CV_FOLDS - 1) // _CV_FOLDS)
        if criterion == "hybrid":
            scores = _hybrid(_scores(task))
        else:
            scores = {
                name: (-auc if criterion == "auc" else brier)
                for name, (auc, brier) in _scores(task).items()
                if learned or not name.startswith("learned")
            }
        choice = min(scores, key=scores.__getitem__)
        CHOICES.setdefault(label, []).append(choice)
        print(f"  {label}: {choice}", flush=True)
        cmap = makers[choice]().fit(X, Y)
        phi = cmap.predict_proba(task.X_val)
        psi = cluster_errors(phi, task.S_val, reference=cmap.cluster_weights_)
        return cmap.predict_proba(task.X_test) @ psi

    return label, route


routers = {"knn k=100": knn(100)}
if "--hybrid" in sys.argv:  # K ≤ 128, K-means only: the hybrid rule against plain Brier
    sys.argv.remove("--hybrid")
    KS, LEARNED = (4, 8, 16, 32, 64, 128), False
    combos = (("hybrid", False), ("brier", False))
else:
    combos = (("auc", False), ("auc", True), ("brier", False))
for criterion, learned in combos:
    name, fn = chooser(criterion, learned)
    routers[name] = fn

if __name__ == "__main__":
    main(routers)
    print("choices:", CHOICES)
