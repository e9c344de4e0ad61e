"""Test-split check of the best variant of ``quality_stacking.py`` ("top-3 mean") against the targets.

The same tasks as ``quality_test.py`` (every request priced by its length): static protocol on
RouterBench and RouteLLM with the paired-bootstrap 95% CI of the area difference to K-NN (k by
train-only CV), and the unseen-LLM protocol on RouterBench over ``--trials`` draws. Its log
(``cv_stacking_test.txt``) was made before "top-3 mean" became the default: "default" and
"uniroute" there are the single best map; rerun now, they are the new default itself.

    nice -n 10 python benchmarks/quality_stacking_test.py --trials 100 \\
        --out benchmarks/results/cv_stacking_test.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from quality_cv import Task
from quality_stacking import mixture, out_of_fold, score
from quality_test import check_arguments, check_variants


def top3_mean(task: Task) -> np.ndarray:
    X, Y = task.X_fit, task.S_fit
    scores = {key: score(Y, P) for key, P in out_of_fold(X, Y, 0).items()}
    return mixture(task, {key: 1.0 for key in sorted(scores, key=scores.get)[:3]})


def main() -> None:
    args = check_arguments(__doc__)
    out = check_variants({"top-3 mean": top3_mean}, args.boot, args.trials, seed=1)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
