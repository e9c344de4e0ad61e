"""CV trial: price each request by its length instead of one mean $ per model (issue 10, session 6).

A request's $ depends on its length (input tokens are billed; the kind of prompt
sets the answer's length), and on RouteLLM a model's $ per request varies by a
factor of ~2 around its mean (coefficient of variation 0.93–0.99). The default
router priced every request at its model's mean $, so at a given λ it sent long
and short prompts alike to the expensive model. Each model's ``fit_price`` (least
squares of $ on the prompt's characters over the validation prompts) prices each
test prompt; every router below is scored under both pricings on the same folds
(the routers' error estimates do not change, only the λ trade-off does).
``--diagnose`` adds a third score: routed at mean $ and *measured* at mean $ too
(the realised per-prompt $ replaced by each model's mean), which shows how much of
a router's area comes from which prompts it happens to send to the expensive model.

    nice -n 10 python benchmarks/quality_prices.py --by-length --out benchmarks/results/cv_prices.json
    nice -n 10 python benchmarks/quality_prices.py --by-length --data routellm --diagnose \
        --only "^default$|^knn k=100$" > benchmarks/results/cv_prices_diagnose.txt
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn, uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap, LearnedClusterMap

ROUTERS = {
    "default": uniroute(lambda: KMeansClusterMap()),
    "old default (soft K=8)": uniroute(lambda: KMeansClusterMap(n_clusters=8, assignment="soft")),
    "soft K=16": uniroute(lambda: KMeansClusterMap(n_clusters=16, assignment="soft")),
    "hard K=64": uniroute(lambda: KMeansClusterMap(n_clusters=64, assignment="hard")),
    "hard K=128": uniroute(lambda: KMeansClusterMap(n_clusters=128, assignment="hard")),
    "learned K=16": uniroute(lambda: LearnedClusterMap(n_clusters=16)),
} | {f"knn k={k}": knn(k) for k in (25, 50, 100, 200)}


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    if task.price_test is None:
        raise SystemExit("run with --by-length: each router is scored under both pricings")
    flat = replace(task, price_test=None)
    for name, route in ROUTERS.items():
        if not wanted(name):
            continue
        errors = route(task)
        add(f"{name} | by length", kind, metrics(task, errors))
        add(f"{name} | mean $", kind, metrics(flat, errors))
        if DIAGNOSE:
            realised = np.broadcast_to(task.C_test.mean(axis=0), task.C_test.shape)
            add(f"{name} | mean $, measured at mean $", kind, metrics(replace(flat, C_test=realised), errors))


DIAGNOSE = "--diagnose" in sys.argv
if DIAGNOSE:
    sys.argv.remove("--diagnose")


if __name__ == "__main__":
    sweep(__doc__, per_task)
