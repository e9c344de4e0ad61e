"""CV trial: whitened maps as candidates of the averaged default's inner CV (session 13).

``quality_whiten.py`` found that K-means in a whitened embedding space gains +0.0020 on RouteLLM
and loses 0.018–0.029 on RouterBench. The default already chooses its maps per data set: the
inner 3-fold CV ranks K ∈ {4, …, 64} × {soft, hard} by pairwise Brier and averages the three best.
Here the grid also holds the same maps fitted in the whitened space of their own training prompts
(a PCA fitted on them, each component scaled to unit variance, rows renormalised), so the inner CV
can pick whitened maps where they score better, and plain ones elsewhere.

- "top-3 (default)": the default's grid (equals the default, as in session 9);
- "top-3 +whitened": the default's grid and the whitened maps;
- "top-3 whitened only": the whitened maps alone;
- "top-3 of the better family": the three best plain maps or the three best whitened ones, whichever
  average has the lower inner-CV pairwise Brier (added after the first three rows were run);
- "... by AUC": the same choice by the averages' inner-CV pairwise AUC (added last, run alone with
  ``--only "by AUC"`` into ``cv_whiten_cv_auc_seed*``).

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_whiten_cv.py --data routerbench routellm --by-length \\
          --unseen-draws 4 --seed $s --out benchmarks/results/cv_whiten_cv_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_whiten_cv_seed*.json \\
        --reference "top-3 (default)"
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import quality_grid_extend as grid_extend
from quality_criterion import pairwise_auc
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import print_choices
from quality_stacking import score
from quality_whiten import whitener

from uniroute.engine import cluster_maps as cm

CHOSEN: dict[str, Counter] = {}


class Candidate(grid_extend.Candidate):
    """A map of the grid; family "w" is a K-means map fitted in its training prompts' whitened space."""

    def __init__(self, key: grid_extend.Key, X: np.ndarray, Y: np.ndarray, centres: dict, n_init: int):
        family, k, a = key
        self.white: Callable[[np.ndarray], np.ndarray] | None = None
        if family != "w":
            super().__init__(key, X, Y, centres, n_init)
            return
        white = whitener(X)
        super().__init__(("km", k, a), white(X), Y, centres.setdefault("w", {}), n_init)
        self.white = white

    def phi(self, X: np.ndarray) -> np.ndarray:
        return super().phi(X if self.white is None else self.white(X))


grid_extend.Candidate = Candidate  # inner_scores and estimates build their maps through it


def choices(X: np.ndarray, Y: np.ndarray) -> dict[str, list[grid_extend.Key]]:
    """The three maps each variant averages, by the inner CV on (X, Y)."""
    n_fit = len(X) * (cm._CV_FOLDS - 1) // cm._CV_FOLDS
    plain = grid_extend.grid(n_fit, ())
    white = [("w", k, a) for _, k, a in plain]
    predictions = grid_extend.inner_predictions(X, Y, plain + white)
    scores = {key: score(Y, P) for key, P in predictions.items()}

    def top3(keys: list[grid_extend.Key]) -> list[grid_extend.Key]:
        return sorted(keys, key=scores.__getitem__)[:3]

    def averaged(keys: list[grid_extend.Key]) -> float:
        """Inner-CV pairwise Brier of the mean of the family's three best maps' predictions."""
        return score(Y, np.mean([predictions[key] for key in top3(keys)], axis=0))

    def averaged_auc(keys: list[grid_extend.Key]) -> float:
        """Inner-CV pairwise AUC (session 4's criterion) of the same averaged predictions."""
        return pairwise_auc(Y, np.mean([predictions[key] for key in top3(keys)], axis=0))

    return {
        "top-3 (default)": top3(plain),
        "top-3 +whitened": top3(plain + white),
        "top-3 whitened only": top3(white),
        "top-3 of the better family": top3(min((plain, white), key=averaged)),
        "top-3 of the better family by AUC": top3(max((plain, white), key=averaged_auc)),
    }


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    m = f"{kind} m={task.S_val.shape[1]}"
    for label, chosen in choices(task.X_fit, task.S_fit).items():
        if not wanted(label):
            continue
        CHOSEN.setdefault(f"{label} {m}", Counter())[" + ".join(f"{f} {a} K={k}" for f, k, a in chosen)] += 1
        add(label, kind, metrics(task, grid_extend.mixture(task, chosen)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
