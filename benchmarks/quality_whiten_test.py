"""Test-split check of session 13's lead: the family (plain or whitened maps) chosen by inner-CV AUC.

``quality_whiten_cv.py`` found that choosing, at fit time, between the default's three best plain
maps and the three best maps fitted in a whitened embedding space, by the inner CV's pairwise AUC
of their averages, gains +0.0011 on RouteLLM in train-only CV (12 tasks won, none lost) and picks
the plain maps in all 125 RouterBench tasks. This script measures it once on the test splits with
``quality_test.check_variants`` (every request priced by its length): the static protocol on
RouterBench and RouteLLM with paired-bootstrap 95% CIs of the area difference to K-NN (k by
train-only CV) and to the default, and the unseen-LLM protocol on RouterBench (``quality_test``'s
20 draws, seed 0).

    nice -n 10 python benchmarks/quality_whiten_test.py --out benchmarks/results/cv_whiten_test.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import quality_grid_extend as grid_extend
from quality_cv import Task
from quality_test import check_arguments, check_variants
from quality_whiten_cv import choices

CHOSEN: list[str] = []


def family_by_auc(task: Task) -> np.ndarray:
    """Errors under the top-3 average of the family whose averaged inner-CV predictions win by AUC."""
    chosen = choices(task.X_fit, task.S_fit)["top-3 of the better family by AUC"]
    CHOSEN.append(" + ".join(f"{f} {a} K={k}" for f, k, a in chosen))
    return grid_extend.mixture(task, chosen)


def main() -> None:
    args = check_arguments(__doc__)
    out = check_variants({"family by AUC": family_by_auc}, args.boot, args.trials, seed=0)
    out["chosen (RouterBench, RouteLLM, then the unseen draws)"] = CHOSEN
    print("chosen", CHOSEN, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
