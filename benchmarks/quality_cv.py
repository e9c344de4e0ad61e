"""Train-only cross-validation of routing settings on the cached data sets.

Reads only the *train* split of each data set cached by ``quality_data.py``,
makes 5 folds, and scores each setting by the static protocol (fit Φ and profile
every model on 4 folds, route the 5th) and, where the data has enough models, the
unseen-LLM protocol (per fold 4 draws: Φ fitted on 2/3 of the models, the other
1/3 profiled on a validation seventh, routed on the held-out fold). Metrics are
the harness's (``uniroute.evaluation.metrics``): deferral area and V_B at λ = 0.

    nice -n 10 python benchmarks/quality_cv.py --data routerbench routellm --out benchmarks/results/cv_x.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from quality_data import load

from uniroute.evaluation.baselines import _length_prices
from uniroute.evaluation.metrics import deferral_curve, first_choice


@dataclass
class Task:
    """One routing problem: fit Φ on (X_fit, S_fit), profile the pool on the validation rows, route test."""

    X_fit: np.ndarray
    S_fit: np.ndarray
    X_val: np.ndarray
    S_val: np.ndarray
    cost_val: np.ndarray
    T_val: np.ndarray
    X_test: np.ndarray
    S_test: np.ndarray
    C_test: np.ndarray
    T_test: np.ndarray
    cost_fit: np.ndarray | None = None  # mean $ of the models in S_fit (for a cost-aware fit)
    price_test: np.ndarray | None = None  # (n_test, n_pool) $ of each test prompt, priced by length


def priced(task: Task, L_val: np.ndarray, C_val: np.ndarray, L_test: np.ndarray) -> Task:
    """``task`` with each test prompt priced by its length, as the engine prices requests
    (``fit_price`` on the validation prompts' lengths and $)."""
    return replace(task, price_test=_length_prices(L_val, C_val, L_test))


Router = Callable[[Task], np.ndarray]  # returns estimated errors (n_test, n_pool)


def metrics(task: Task, errors: np.ndarray) -> dict[str, float]:
    """Deferral area (the harness's definition: anchored at the cheapest model, cost normalised by the
    most expensive model's mean cost) and V_B at λ = 0 (quality of the λ = 0 choices / best model's)."""
    dcost = np.broadcast_to(task.cost_val if task.price_test is None else task.price_test, errors.shape)
    rows = np.arange(len(errors))
    means = task.S_test.mean(axis=0)
    out = {"v_b": float(task.S_test[rows, first_choice(errors, dcost)].mean() / means.max())}
    if np.isfinite(task.C_test).all():
        mean_cost = task.C_test.mean(axis=0)
        curve = deferral_curve(errors, dcost, task.S_test, task.C_test)
        anchored = curve.with_point(float(mean_cost.min()), float(means[np.argmin(mean_cost)]))
        out["area"] = anchored.area(float(mean_cost.max()))
    return out


def _complete(S: np.ndarray) -> np.ndarray:
    return ~np.isnan(S).any(axis=1)


def cv_tasks(
    d: dict[str, np.ndarray], n_folds: int = 5, unseen_draws: int = 4, seed: int = 0, by_length: bool = False
):
    """Yield ("static" | "unseen", Task) on the train split only; ``by_length``: test prompts
    priced by their length (``priced``), else every request at its model's mean $."""
    for kind, task, val, test, pool in _cv_tasks(d, n_folds, unseen_draws, seed):
        if by_length and np.isfinite(d["C_train"]).any():
            L = d["L_train"]
            task = priced(task, L[val], d["C_train"][np.ix_(val, pool)], L[test])
        yield kind, task


def _cv_tasks(d: dict[str, np.ndarray], n_folds: int, unseen_draws: int, seed: int):
    X, S, C, T = d["X_train"], d["S_train"], d["C_train"], d["T_train"]
    n, m = S.shape
    rng = np.random.default_rng(seed)
    cost = np.where(np.isfinite(C), C, np.nan)
    for held in np.array_split(np.random.default_rng(seed).permutation(n), n_folds):
        rest = np.setdiff1d(np.arange(n), held)
        keep = held[_complete(S[held])]
        mean_cost = np.nan_to_num(np.nanmean(cost[rest], axis=0)) if np.isfinite(C).any() else np.zeros(m)
        yield (
            "static",
            Task(
                X[rest],
                S[rest],
                X[rest],
                S[rest],
                mean_cost,
                T[rest],
                X[keep],
                S[keep],
                C[keep],
                T[keep],
                mean_cost,
            ),
            rest,
            keep,
            np.arange(m),
        )
        if m < 6:
            continue
        n_unseen = max(2, math.ceil(m / 3))
        for _ in range(unseen_draws):
            pool = np.sort(rng.choice(m, n_unseen, replace=False))
            seen = np.setdiff1d(np.arange(m), pool)
            order = rng.permutation(rest)
            n_val = round(n / 7)
            val, fit = order[:n_val], order[n_val:]
            keep = held[_complete(S[np.ix_(held, pool)])]
            vc = (
                np.nan_to_num(np.nanmean(cost[np.ix_(val, pool)], axis=0))
                if np.isfinite(C).any()
                else np.zeros(len(pool))
            )
            yield (
                "unseen",
                Task(
                    X[fit],
                    S[np.ix_(fit, seen)],
                    X[val],
                    S[np.ix_(val, pool)],
                    vc,
                    T[val],
                    X[keep],
                    S[np.ix_(keep, pool)],
                    C[np.ix_(keep, pool)],
                    T[keep],
                    np.nan_to_num(np.nanmean(cost[np.ix_(fit, seen)], axis=0))
                    if np.isfinite(C).any()
                    else None,
                ),
                val,
                keep,
                pool,
            )


def run(routers: dict[str, Router], tasks: list[tuple[str, Task]]) -> dict[str, dict[str, float]]:
    """Mean metrics per router and protocol, plus the per-task areas (for paired comparisons)."""
    out: dict[str, dict[str, float]] = {}
    for name, router in routers.items():
        t0 = time.perf_counter()
        rows: dict[str, list[float]] = {}
        for kind, task in tasks:
            for key, value in metrics(task, router(task)).items():
                rows.setdefault(f"{kind}_{key}", []).append(value)
        out[name] = {k: float(np.mean(v)) for k, v in rows.items()}
        out[name]["per_task_area"] = [
            round(a, 5) for k in ("static_area", "unseen_area") for a in rows.get(k, [])
        ]
        out[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(
            f"{name:50s} " + " ".join(f"{k} {v:.4f}" for k, v in out[name].items() if isinstance(v, float)),
            flush=True,
        )
    return out


def main(routers: dict[str, Router]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["routerbench", "routellm"])
    parser.add_argument("--only", default=None, help="regex: run the routers whose name matches it")
    parser.add_argument("--unseen-draws", type=int, default=4)
    parser.add_argument("--by-length", action="store_true", help="price test prompts by their length")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    chosen = {k: v for k, v in routers.items() if args.only is None or re.search(args.only, k)}
    results = {}
    for name in args.data:
        print(f"== {name}", flush=True)
        tasks = list(cv_tasks(load(name), unseen_draws=args.unseen_draws, by_length=args.by_length))
        results[name] = run(chosen, tasks)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


Add = Callable[[str, str, dict[str, float]], None]  # (label, protocol, metrics) -> None
Wanted = Callable[[str], bool]  # label -> run it? (--only)


def sweep(description: str, per_task: Callable[[str, Task, Add, Wanted], None]) -> None:
    """Command line for the variant scripts: ``per_task(kind, task, add, wanted)`` scores every
    variant on one task (``wanted(label)`` applies ``--only``); prints and saves the means per label,
    with the static areas per fold for paired comparisons."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["routellm", "routerbench"])
    parser.add_argument("--unseen-draws", type=int, default=2)
    parser.add_argument("--only", default=None, help="regex over the variant labels")
    parser.add_argument("--by-length", action="store_true", help="price test prompts by their length")
    parser.add_argument("--seed", type=int, default=0, help="folds and unseen draws (0: the earlier trials')")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    def wanted(label: str) -> bool:
        return args.only is None or re.search(args.only, label) is not None

    results: dict[str, dict] = {}
    for name in args.data:
        print(f"== {name}", flush=True)
        tasks = list(
            cv_tasks(load(name), unseen_draws=args.unseen_draws, seed=args.seed, by_length=args.by_length)
        )
        rows: dict[str, dict[str, list[float]]] = {}

        def add(label: str, kind: str, m: dict[str, float], rows=rows) -> None:
            for key, value in m.items():
                rows.setdefault(label, {}).setdefault(f"{kind}_{key}", []).append(value)

        t0 = time.perf_counter()
        for i, (kind, task) in enumerate(tasks):
            per_task(kind, task, add, wanted)
            print(f"task {i + 1}/{len(tasks)} {kind} {time.perf_counter() - t0:.0f}s", flush=True)
        results[name] = {
            label: {k: float(np.mean(v)) for k, v in r.items()}
            | {"per_task_area": r.get("static_area", []), "per_task_unseen_area": r.get("unseen_area", [])}
            for label, r in rows.items()
        }
        for label, r in results[name].items():
            print(f"{label:32s} " + " ".join(f"{k} {v:.4f}" for k, v in r.items() if isinstance(v, float)))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
