"""Paired differences to a reference variant, pooled over the results of several CV runs.

Each ``sweep`` script's JSON holds, per data set and variant, the area of every task
(``per_task_area``: static folds; ``per_task_unseen_area``: unseen-LLM draws). Runs with
different ``--seed`` are different folds and draws of the same variants, so pooling them
gives a tighter estimate of each variant's difference to the reference than one run.

    python benchmarks/quality_paired.py benchmarks/results/cv_stacking_*_seed*.json \\
        --reference "default (lowest score)"
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--reference", required=True, help="the variant every other is compared with")
    args = parser.parse_args()
    # (data set, protocol) -> variant -> per-task areas, concatenated over the runs in the same order
    areas: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in args.results:
        for data, variants in json.loads(path.read_text()).items():
            for label, r in variants.items():
                for protocol, key in (("static", "per_task_area"), ("unseen", "per_task_unseen_area")):
                    areas[(data, protocol)][label] += r.get(key, [])
    for (data, protocol), by_label in sorted(areas.items()):
        ref = np.array(by_label.get(args.reference, []))
        if not len(ref):
            continue
        print(f"== {data} {protocol}: {len(ref)} tasks; {args.reference} {ref.mean():.4f}")
        for label, values in by_label.items():
            if label == args.reference or len(values) != len(ref):
                continue
            d = np.array(values) - ref
            se = d.std(ddof=1) / np.sqrt(len(d))
            print(
                f"  {label:28s} {np.mean(values):.4f}  Δ {d.mean():+.4f} ± {se:.4f} (se)  "
                f"ahead {int((d > 0).sum())}, behind {int((d < 0).sum())} of {len(d)}"
            )


if __name__ == "__main__":
    main()
