"""How often the default beats K-NN in the unseen-LLM protocol, over many draws (issue 10, target 2).

Target 2 counts wins in 20 paired trials (≥ 16). This runs ``quality_test.unseen_trials`` (the
same trials: 4 unseen models profiled on a seventh of the RouterBench train prompts, routed on
the test prompts, every request priced by its length; K-NN's k chosen by train-only CV) for
``--trials`` draws, and reports the win rate with a 95% Wilson interval and what it implies for
20 trials: the probability of ≥ 16 wins if each trial is won at that rate. The old default
(soft K = 8) rides along, paired: its mean area, its wins, its difference to the default.

    nice -n 10 python benchmarks/quality_unseen_wins.py --trials 100 \\
        --out benchmarks/results/cv_unseen_wins.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from quality_data import load
from quality_test import choose_k, unseen_trials
from scipy.stats import binom

NAMES = ("uniroute", "old_default", "knn")


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial rate."""
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1, help="0 draws the 20 trials quality_test.py reports")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    d = load("routerbench")
    k, _ = choose_k(d, "unseen", True)
    rows = unseen_trials(d, k, True, trials=args.trials, seed=args.seed)
    diffs = np.array([r["uniroute"]["area"] - r["knn"]["area"] for r in rows])
    old = np.array([r["old_default"]["area"] - r["uniroute"]["area"] for r in rows])
    wins = int((diffs > 0).sum())
    rate = wins / len(rows)
    lo, hi = wilson(wins, len(rows))
    out = {
        "knn_k": k,
        "trials": len(rows),
        "seed": args.seed,
        "wins": wins,
        "ties": int((diffs == 0).sum()),
        "win_rate": rate,
        "win_rate_ci95": [lo, hi],
        "p_at_least_16_of_20": {
            "at_rate": float(binom.sf(15, 20, rate)),
            "at_ci_low": float(binom.sf(15, 20, lo)),
            "at_ci_high": float(binom.sf(15, 20, hi)),
        },
        "mean_diff": float(diffs.mean()),
        "std_diff": float(diffs.std()),
        "old_default_wins": int(sum(r["old_default"]["area"] > r["knn"]["area"] for r in rows)),
        "mean_area": {name: float(np.mean([r[name]["area"] for r in rows])) for name in NAMES},
        "mean_v_b": {name: float(np.mean([r[name]["v_b"] for r in rows])) for name in NAMES},
        "old_minus_default": {
            "mean": float(old.mean()),
            "se": float(old.std(ddof=1) / math.sqrt(len(old))),
            "old_ahead": int((old > 0).sum()),
        },
        "diffs": [round(float(x), 6) for x in diffs],
    }
    print(json.dumps({key: v for key, v in out.items() if key != "diffs"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
