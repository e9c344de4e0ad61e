"""CV trial: K-means on the embedding and the training LLMs' results together (session 14).

Every K-means map so far groups prompts by their embedding alone, and the training LLMs' results only
choose among such maps (the default's inner CV). Here a map's centres are fitted on

    z = [x, β · (s − s̄) / √m],

x the prompt's embedding (unit norm), s the m training LLMs' 0/1 results on it (s̄ their means; a
missing result counts as the mean), so that prompts close in the embedding *and* alike in which LLMs
get them right share a cluster. A new prompt has no results: it is assigned by the centres'
embedding part alone (squared distance, the soft temperature recomputed on the embedding), and
every model, old or new, is profiled on that map as usual, so onboarding still needs only
validation results. β = 0 is the default's K-means.

The joint maps join the default's inner-CV grid (K ∈ {4, …, 64} × {soft, hard}, pairwise Brier,
three best averaged) as extra candidates, one β at a time; "joint only" ranks the joint maps alone.

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_joint.py --data routerbench routellm --by-length \\
          --unseen-draws 4 --seed $s --out benchmarks/results/cv_joint_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_joint_seed*.json --reference "top-3 (default)"
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import quality_grid_extend as grid_extend
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import print_choices
from quality_stacking import score

from uniroute.engine import cluster_maps as cm
from uniroute.engine.cluster_maps import KMeansClusterMap

BETAS = (0.5, 1.0, 2.0)
CHOSEN: dict[str, Counter] = {}


def behaviour(Y: np.ndarray) -> np.ndarray:
    """The training LLMs' results, centred per LLM (missing = the mean) and scaled by 1/√m."""
    centred = Y - np.nanmean(Y, axis=0)
    return np.nan_to_num(centred) / np.sqrt(Y.shape[1])


class Candidate(grid_extend.Candidate):
    """A map of the grid; family "j<β>" has centres fitted on [x, β·behaviour], assigned on x alone."""

    def __init__(self, key: grid_extend.Key, X: np.ndarray, Y: np.ndarray, centres: dict, n_init: int):
        family, k, a = key
        if not family.startswith("j"):
            super().__init__(key, X, Y, centres, n_init)
            return
        own = centres.setdefault(family, {})
        if k not in own:
            Z = np.hstack([X, float(family[1:]) * behaviour(Y)]).astype(np.float32)
            km = KMeansClusterMap()
            km._fit_centres(Z, k, n_init=n_init)
            cut = np.ascontiguousarray(km.cluster_centers_[:, : X.shape[1]])
            sq = np.einsum("kd,kd->k", cut, cut)[None, :] - 2.0 * (X @ cut.T)
            temperature = max(float((sq.min(axis=1) + np.einsum("nd,nd->n", X, X)).mean()), 1e-6)
            km._set_maps(cut, [(k, "soft", temperature)])
            own[k] = km
        super().__init__(("km", k, a), X, Y, own, n_init)


grid_extend.Candidate = Candidate  # inner_predictions and estimates build their maps through it


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    X, Y = task.X_fit, task.S_fit
    n_fit = len(X) * (cm._CV_FOLDS - 1) // cm._CV_FOLDS
    plain = grid_extend.grid(n_fit, ())
    joint = {beta: [(f"j{beta:g}", k, a) for _, k, a in plain] for beta in BETAS}
    variants = {"top-3 (default)": plain}
    variants |= {f"top-3 +joint β={b:g}": plain + keys for b, keys in joint.items()}
    variants["top-3 joint only β=1"] = joint[1.0]
    variants = {label: keys for label, keys in variants.items() if wanted(label)}
    needed = sorted({key for keys in variants.values() for key in keys})
    scores = {key: score(Y, P) for key, P in grid_extend.inner_predictions(X, Y, needed).items()}
    m = f"{kind} m={task.S_val.shape[1]}"
    for label, keys in variants.items():
        chosen = sorted(keys, key=scores.__getitem__)[:3]
        CHOSEN.setdefault(f"{label} {m}", Counter())[" + ".join(f"{f} {a} K={k}" for f, k, a in chosen)] += 1
        add(label, kind, metrics(task, grid_extend.mixture(task, chosen)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
