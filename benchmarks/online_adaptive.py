"""uniroute's online learning against LiteLLM's adaptive router on the same streams (issue 12, proof 3).

    nice -n 10 .venv/bin/python benchmarks/online_adaptive.py --out benchmarks/results/online_adaptive.json

Both routers see the same data and the same feedback (``benchmarks/online.py`` makes the
streams: RouterBench and RouteLLM, per order 5 validation prompts per cluster, the rest
of the complete train prompts shuffled, the first ``--events`` of them streamed):

* **uniroute**: Φ fitted on the train prompts (package defaults), Ψ started from the
  validation prompts, each streamed prompt routed with ``explore="thompson"`` at λ
  (``--explore none``: the deterministic default route) and only the chosen model's
  label fed back through ``Router.record_feedback``.
* **LiteLLM** (``litellm.router_strategy.adaptive_router``, the installed version): its
  ``AdaptiveRouter`` makes the cold-start cells (every model at the default tier 2, no
  declared strengths), ``classify_prompt`` gives the request type of the prompt text,
  ``pick_best`` Thompson-samples the (type, model) cells exactly as ``pick_model`` does
  (with a seeded ``random.Random``), and the chosen model's label is credited the way
  ``record_turn`` credits signals: label 1 → ``SignalDelta(satisfaction=1)``, label 0 →
  ``SignalDelta(failure=1)``, through ``AdaptiveRouter._compute_bandit_delta`` and
  ``apply_delta`` (so its hard cap of 200 per cell applies). Its cells start from the
  same validation results (each validation prompt credits every model's cell of its
  type). Model costs: each model's mean train $ per request (LiteLLM min-max
  normalises them, so only their ratios matter). A second LiteLLM variant lifts the cap
  (cells updated without ``apply_delta``'s drop), to show what the cap costs it.

Metric: cumulative accuracy (mean label of the chosen models over the stream) and mean
$ per request. uniroute sweeps λ, LiteLLM its cost weight (quality weight = 1 − cost
weight); per order, uniroute's accuracy is interpolated linearly on the mean-cost axis
at each LiteLLM operating point's mean cost (only inside uniroute's cost range), and
the paired difference is reported as mean ± sd over orders.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from online import DATASETS, Data, bandit, load, split_stream

from uniroute.engine.text import prompt_text

LAMBDAS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2, 0.5, 2.0)  # × 1 / c_max
COST_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)  # LiteLLM's default is 0.3


def run_uniroute(
    data: Data, valid: np.ndarray, stream: np.ndarray, lam_rel: float, seed: int, explore: str | None
) -> tuple[float, float]:
    """(cumulative accuracy, mean $) of uniroute over ``stream`` in the bandit regime."""
    router = data.router()
    data.profile(router, valid, data.models)
    feed = bandit(data, lam_rel / data.c_max, explore=explore)
    rng = np.random.default_rng(seed)
    chosen = np.array([data.models.index(feed(router, int(row), rng)) for row in stream])
    return _outcome(data, stream, chosen)


def _outcome(data: Data, stream: np.ndarray, chosen: np.ndarray) -> tuple[float, float]:
    return (
        float(data.train.scores[stream, chosen].mean()),
        float(data.train.costs[stream, chosen].mean()),
    )


class LiteLLMBandit:
    """LiteLLM's adaptive router driven with per-request labels (see the module doc)."""

    def __init__(self, data: Data, cost_weight: float, cap: bool, seed: int):
        from litellm.router_strategy.adaptive_router.adaptive_router import AdaptiveRouter
        from litellm.types.router import AdaptiveRouterConfig, AdaptiveRouterWeights

        config = AdaptiveRouterConfig(
            available_models=list(data.models),
            weights=AdaptiveRouterWeights(quality=round(1.0 - cost_weight, 6), cost=cost_weight),
        )
        self.router = AdaptiveRouter("uniroute-benchmark", config, {}, dict(data.costs))
        self.cap = cap
        self.rng = random.Random(seed)

    def pick(self, request_type: Any) -> str:
        from litellm.router_strategy.adaptive_router.bandit import pick_best

        r = self.router
        cells = {m: r.cell(request_type, m) for m in r.config.available_models}
        costs = {m: r.model_to_cost.get(m, 0.0) for m in r.config.available_models}
        return pick_best(cells, costs, r.config.weights.quality, r.config.weights.cost, rng=self.rng)

    def credit(self, request_type: Any, model: str, label: float) -> None:
        from litellm.router_strategy.adaptive_router.bandit import BanditCell, apply_delta
        from litellm.router_strategy.adaptive_router.signals import SignalDelta

        delta = SignalDelta(satisfaction=1) if label >= 0.5 else SignalDelta(failure=1)
        d_alpha, d_beta = self.router._compute_bandit_delta(delta)
        cell = self.router.cell(request_type, model)
        if self.cap:
            self.router._cells[(request_type, model)] = apply_delta(cell, d_alpha, d_beta)
        else:
            self.router._cells[(request_type, model)] = BanditCell(cell.alpha + d_alpha, cell.beta + d_beta)


def request_types(data: Data) -> list[Any]:
    from litellm.router_strategy.adaptive_router.classifier import classify_prompt

    return [classify_prompt(prompt_text(p)) for p in data.train.prompts]


def run_litellm(
    data: Data,
    types: list[Any],
    valid: np.ndarray,
    stream: np.ndarray,
    cost_weight: float,
    cap: bool,
    seed: int,
) -> tuple[float, float]:
    bandit_ = LiteLLMBandit(data, cost_weight, cap, seed)
    for row in valid:
        for j, model in enumerate(data.models):
            bandit_.credit(types[row], model, float(data.train.scores[row, j]))
    chosen = []
    for row in stream:
        model = bandit_.pick(types[row])
        bandit_.credit(types[row], model, float(data.train.scores[row, data.models.index(model)]))
        chosen.append(data.models.index(model))
    return _outcome(data, stream, np.array(chosen))


def equal_cost(uni: np.ndarray, lite: np.ndarray) -> list[float | None]:
    """uniroute's accuracy minus LiteLLM's at LiteLLM's mean cost, per order (None: outside uniroute's range).

    ``uni`` (orders, n_lambdas, 2) and ``lite`` (orders, 2): (accuracy, cost) pairs.
    """
    out: list[float | None] = []
    for (acc, cost), points in zip(lite, uni):
        order = np.argsort(points[:, 1])
        costs, accs = points[order, 1], points[order, 0]
        if not costs[0] <= cost <= costs[-1]:
            out.append(None)
            continue
        out.append(float(np.interp(cost, costs, accs)) - float(acc))
    return out


def summary(values: list[float | None]) -> dict[str, Any]:
    v = np.array([x for x in values if x is not None], dtype=float)
    return {
        "mean": None if not len(v) else round(float(v.mean()), 4),
        "sd": None if len(v) < 2 else round(float(v.std(ddof=1)), 4),
        "orders_compared": len(v),
    }


def run(
    data: Data, orders: int, events: int, lambdas: list[float], explore: str | None, log: Any
) -> dict[str, Any]:
    types = request_types(data)
    names, counts = np.unique([t.value for t in types], return_counts=True)
    uni = np.zeros((orders, len(lambdas), 2))
    lite = {cap: np.zeros((orders, len(COST_WEIGHTS), 2)) for cap in (True, False)}
    for order in range(orders):
        start = time.perf_counter()
        valid, stream = split_stream(data, np.random.default_rng(order))
        stream = stream[:events]
        for i, lam in enumerate(lambdas):
            uni[order, i] = run_uniroute(data, valid, stream, lam, 1000 + order, explore)
        for cap, table in lite.items():
            for i, w in enumerate(COST_WEIGHTS):
                table[order, i] = run_litellm(data, types, valid, stream, w, cap, 3000 + order)
        log(f"  {data.name} order {order}: {time.perf_counter() - start:.0f} s")
    out: dict[str, Any] = {
        "models": list(data.models),
        "mean_costs": data.costs,
        "events": events,
        "request_types_of_train_prompts": dict(zip(names.tolist(), counts.tolist())),
        "uniroute": {
            f"{lam}": {
                "accuracy": summary(uni[:, i, 0].tolist()),
                "cost": summary(uni[:, i, 1].tolist()),
            }
            for i, lam in enumerate(lambdas)
        },
    }
    for cap, table in lite.items():
        key = "litellm" if cap else "litellm_no_cap"
        out[key] = {
            f"{w}": {
                "accuracy": summary(table[:, i, 0].tolist()),
                "cost": summary(table[:, i, 1].tolist()),
                "uniroute_minus_litellm_at_equal_cost": summary(equal_cost(uni, table[:, i])),
            }
            for i, w in enumerate(COST_WEIGHTS)
        }
    out["per_order"] = {
        "uniroute": uni.round(5).tolist(),
        "litellm": lite[True].round(5).tolist(),
        "litellm_no_cap": lite[False].round(5).tolist(),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument(
        "--lambdas", type=float, nargs="+", default=list(LAMBDAS), help="uniroute's λ × c_max"
    )
    parser.add_argument(
        "--explore", choices=("thompson", "none"), default="thompson", help="uniroute's route(explore=...)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON here (nothing is written without it)")
    args = parser.parse_args()
    started = time.time()
    result: dict[str, Any] = {
        "lambdas_times_c_max": args.lambdas,
        "uniroute_explore": args.explore,
        "litellm_cost_weights": list(COST_WEIGHTS),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "datasets": {},
    }
    for name in args.datasets:
        explore = None if args.explore == "none" else args.explore
        result["datasets"][name] = run(
            load(args.data, name), args.orders, args.events, args.lambdas, explore, print
        )
    result["seconds"] = round(time.time() - started, 1)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    for name, res in result["datasets"].items():
        print(name, "request types:", res["request_types_of_train_prompts"])
        for lam, r in res["uniroute"].items():
            print(
                f"  uniroute λ·c_max={lam}: acc {r['accuracy']['mean']} ± {r['accuracy']['sd']}, "
                f"$ {r['cost']['mean']:.3g}"
            )
        for key in ("litellm", "litellm_no_cap"):
            for w, r in res[key].items():
                d = r["uniroute_minus_litellm_at_equal_cost"]
                print(
                    f"  {key} cost weight {w}: acc {r['accuracy']['mean']} ± {r['accuracy']['sd']}, "
                    f"$ {r['cost']['mean']:.3g}; uniroute − litellm at equal $: {d['mean']} ± {d['sd']} "
                    f"({d['orders_compared']} orders)"
                )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
