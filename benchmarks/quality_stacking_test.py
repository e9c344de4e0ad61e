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

import argparse
import json
from pathlib import Path

import numpy as np
from quality_cv import Task, metrics
from quality_data import load
from quality_routers import knn
from quality_stacking import mixture, out_of_fold, score
from quality_test import bootstrap_area_diff, choose_k, default_uniroute, static_task, unseen_trials


def top3_mean(task: Task) -> np.ndarray:
    X, Y = task.X_fit, task.S_fit
    scores = {key: score(Y, P) for key, P in out_of_fold(X, Y, 0).items()}
    return mixture(task, {key: 1.0 for key in sorted(scores, key=scores.get)[:3]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out: dict = {}
    for name in ("routerbench", "routellm"):
        d = load(name)
        k, _ = choose_k(d, "static", True)
        task = static_task(d, True)
        err = {"default": default_uniroute()(task), "top-3 mean": top3_mean(task), "knn": knn(k)(task)}
        out[name] = {"knn_k": k} | {label: metrics(task, e) for label, e in err.items()}
        for label in ("default", "top-3 mean"):
            out[name][f"{label} - knn ci95"] = bootstrap_area_diff(task, err[label], err["knn"], args.boot)
        print(name, json.dumps(out[name]), flush=True)
    d = load("routerbench")
    k, _ = choose_k(d, "unseen", True)
    rows = unseen_trials(d, k, True, trials=args.trials, seed=1, extra={"top-3 mean": top3_mean})
    for label in ("uniroute", "top-3 mean"):
        diffs = np.array([r[label]["area"] - r["knn"]["area"] for r in rows])
        out[f"unseen {label}"] = {
            "wins": int((diffs > 0).sum()),
            "trials": len(rows),
            "area": float(np.mean([r[label]["area"] for r in rows])),
            "v_b": float(np.mean([r[label]["v_b"] for r in rows])),
            "mean_diff_to_knn": float(diffs.mean()),
        }
        print(f"unseen {label}", out[f"unseen {label}"], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
