"""Quickstart: fit uniroute on RouterBench, profile 11 LLMs, route the test prompts.

    python examples/quickstart.py --data ../shared/data/routerbench

Fits K-means clusters on the training prompts (default static embedder; the
training LLMs' scores choose K and hard/soft assignment by cross-validation), measures
each model's per-cluster error Ψ on the training labels, then routes every test
prompt at a few operating points and compares accuracy and $ per request with
always calling one model. Costs are RouterBench's recorded $ per call.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from uniroute import Router
from uniroute.datasets import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routerbench"))
    parser.add_argument("--state", type=Path, default=Path("runs/quickstart-router"))
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(
            f"no data at {args.data}: pass --data DIR holding RouterBench *_train.csv / *_test.csv "
            "(see README, 'Data')"
        )

    train, test = load_split(args.data)
    print(f"RouterBench: {len(train)} train / {len(test)} test prompts, {len(train.models)} models")
    start = time.perf_counter()
    router = Router().fit(train.prompts, train.scores)  # the scores choose K and hard/soft by CV
    router.add_models(
        train.prompts,
        scores={m: train.scores[:, j] for j, m in enumerate(train.models)},
        costs={m: train.costs[:, j] for j, m in enumerate(train.models)},
    )
    router.save(args.state)
    print(f"fitted and profiled in {time.perf_counter() - start:.1f} s; state saved to {args.state}")

    names = router.models
    columns = [test.models.index(n) for n in names]
    observed = test.scores[:, columns]
    paid = test.costs[:, columns]
    rows = np.arange(len(test))
    top_cost = float(np.nanmean(paid, axis=0).max())

    def outcome(choice: np.ndarray) -> tuple[float, float]:
        return float(np.nanmean(observed[rows, choice])), float(np.nanmean(paid[rows, choice]))

    table = []
    for name, j in zip(names, range(len(names))):
        acc, cost = outcome(np.full(len(test), j))
        table.append((f"always {name}", "", acc, cost))
    table.sort(key=lambda r: -r[2])
    budgets = [None, 0.5, 0.25, 0.1, 0.05]
    for share in budgets:
        lam = 0.0 if share is None else router.calibrate(train.prompts, max_cost=share * top_cost)
        decisions = router.route_batch(test.prompts, lam=float(lam))  # each request priced by its length
        acc, cost = outcome(np.array([names.index(d.model) for d in decisions]))
        label = "uniroute, best quality" if share is None else f"uniroute, budget {share:.0%} of top $"
        table.insert(0 if share is None else budgets.index(share), (label, f"{lam:.4g}", acc, cost))

    print(f"\n{'router':<50} {'λ':>8} {'accuracy':>9} {'$/request':>10} {'vs top $':>9}")
    for label, lam, acc, cost in table:
        print(f"{label:<50} {lam:>8} {acc:>9.3f} {cost:>10.6f} {cost / top_cost:>8.0%}")
    d = router.route(test.prompts[0], lam=float(router.calibrate(train.prompts, max_cost=0.25 * top_cost)))
    print(f"\nexample decision for test prompt 0 (budget 25%): {d.model}; top 3: {d.ranking[:3]}")
    print(f'try: uniroute route {args.state} "What is 17 * 23?" --top 5')


if __name__ == "__main__":
    main()
