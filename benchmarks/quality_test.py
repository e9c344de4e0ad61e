"""The issue-10 targets on the TEST splits, at package defaults, with paired-bootstrap CIs.

* static protocol on RouterBench and RouteLLM: fit Φ and profile every model on the train
  file, route the test file; uniroute's deferral area minus K-NN's (k chosen by train-only
  CV from 10, 25, 50, 100, 200 on the same protocol), 95% paired-bootstrap CI over test prompts;
* unseen-LLM protocol on RouterBench, 20 trials (4 unseen models profiled on a seventh of
  the train file, Φ fitted on the rest with the 7 other models' results): paired wins vs K-NN;
* V_B at λ = 0 on every data set (Open LLM Leaderboard: task-tag clusters vs best single).

Every test prompt is priced by its length as the engine prices requests (each model's
``fit_price`` on the training prompts' lengths and $; ``--flat-prices``: one mean $ per
model, as before session 6). Routers are compared under the same prices: K-NN gets them too
(its k chosen by CV under them), and ``knn_flat`` keeps the old K-NN, priced at mean $.

    nice -n 10 python benchmarks/quality_test.py --out benchmarks/results/cv_test_targets.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from quality_cv import Task, cv_tasks, metrics, priced
from quality_data import load
from quality_routers import knn, tags, uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap

KS = (10, 25, 50, 100, 200)


def default_uniroute():
    return uniroute(lambda: KMeansClusterMap())


def old_default():
    return uniroute(lambda: KMeansClusterMap(n_clusters=8, assignment="soft"))


def choose_k(d, kind: str, by_length: bool) -> tuple[int, dict[int, float]]:
    """K-NN's k by train-only 5-fold CV (mean area of the given protocol)."""
    tasks = [t for k, t in cv_tasks(d, unseen_draws=2, by_length=by_length) if k == kind]
    areas = {k: float(np.mean([metrics(t, knn(k)(t))["area"] for t in tasks])) for k in KS}
    return max(areas, key=areas.get), areas


def static_task(d, by_length: bool) -> Task:
    keep = ~np.isnan(d["S_test"]).any(axis=1)
    mean_cost = np.nan_to_num(np.nanmean(d["C_train"], axis=0))
    task = Task(
        d["X_train"],
        d["S_train"],
        d["X_train"],
        d["S_train"],
        mean_cost,
        d["T_train"],
        d["X_test"][keep],
        d["S_test"][keep],
        d["C_test"][keep],
        d["T_test"][keep],
    )
    return priced(task, d["L_train"], d["C_train"], d["L_test"][keep]) if by_length else task


def flat(task: Task) -> Task:
    """The same task with every request priced at its model's mean $."""
    return Task(**{**task.__dict__, "price_test": None})


def bootstrap_area_diff(
    task: Task, err_a: np.ndarray, err_b: np.ndarray, n_boot: int = 1000, seed: int = 0, flat_b: bool = False
):
    """95% CI of area(a) − area(b) over paired resamples of the test prompts (b at mean $ if ``flat_b``)."""
    rng = np.random.default_rng(seed)
    n = len(task.S_test)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        sub = Task(**{**task.__dict__, "S_test": task.S_test[i], "C_test": task.C_test[i]})
        sub_b = sub
        if task.price_test is not None:
            sub = Task(**{**sub.__dict__, "price_test": task.price_test[i]})
            sub_b = sub if not flat_b else flat(sub)
        diffs.append(metrics(sub, err_a[i])["area"] - metrics(sub_b, err_b[i])["area"])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def unseen_trials(d, k: int, by_length: bool, trials: int = 20, seed: int = 0, extra=None):
    """Per draw: the pool and the metrics of the default, K-NN k, the old default and each ``extra``."""
    X, S, C = d["X_train"], d["S_train"], d["C_train"]
    m = S.shape[1]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(trials):
        pool = np.sort(rng.choice(m, max(2, math.ceil(m / 3)), replace=False))
        seen = np.setdiff1d(np.arange(m), pool)
        order = rng.permutation(len(X))
        n_val = round(len(X) / 7)
        val, fit = order[:n_val], order[n_val:]
        keep = ~np.isnan(d["S_test"][:, pool]).any(axis=1)
        task = Task(
            X[fit],
            S[np.ix_(fit, seen)],
            X[val],
            S[np.ix_(val, pool)],
            np.nan_to_num(np.nanmean(C[np.ix_(val, pool)], axis=0)),
            d["T_train"][val],
            d["X_test"][keep],
            d["S_test"][np.ix_(keep, pool)],
            d["C_test"][np.ix_(keep, pool)],
            d["T_test"][keep],
        )
        if by_length:
            task = priced(task, d["L_train"][val], C[np.ix_(val, pool)], d["L_test"][keep])
        u, kn = metrics(task, default_uniroute()(task)), metrics(task, knn(k)(task))
        rows.append(
            {
                "pool": pool.tolist(),
                "uniroute": u,
                "knn": kn,
                "old_default": metrics(task, old_default()(task)),
            }
            | {label: metrics(task, router(task)) for label, router in (extra or {}).items()}
        )
    return rows


def check_arguments(doc: str) -> argparse.Namespace:
    """The command line of a script that checks variants with :func:`check_variants`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--embedder", default="static", help="the cache of quality_data.py to read")
    return parser.parse_args()


def check_variants(
    variants: dict, boot: int = 1000, trials: int = 20, seed: int = 0, embedder: str = "static"
) -> dict:
    """The targets of ``variants`` (label → router) on the test splits, next to the default's and
    K-NN's, every request priced by its length: static areas on both text sets, each with the
    paired-bootstrap 95% CI of its difference to K-NN and to the default, and the unseen-LLM wins
    over K-NN in ``trials`` RouterBench draws (``seed``); prompts embedded by ``embedder``."""
    out: dict = {"embedder": embedder}
    for name in ("routerbench", "routellm"):
        d = load(name, embedder)
        k, _ = choose_k(d, "static", True)
        task = static_task(d, True)
        err = {"default": default_uniroute()(task), "knn": knn(k)(task)}
        err |= {label: router(task) for label, router in variants.items()}
        out[name] = {"knn_k": k} | {label: metrics(task, e) for label, e in err.items()}
        pairs = [("default", "knn")] + [(label, base) for label in variants for base in ("knn", "default")]
        for a, b in pairs:
            out[name][f"{a} - {b}"] = out[name][a]["area"] - out[name][b]["area"]
            out[name][f"{a} - {b} ci95"] = bootstrap_area_diff(task, err[a], err[b], boot)
        print(name, json.dumps(out[name]), flush=True)
    d = load("routerbench", embedder)
    k, _ = choose_k(d, "unseen", True)
    rows = unseen_trials(d, k, True, trials=trials, seed=seed, extra=variants)
    for label in ("uniroute", *variants):
        diffs = np.array([r[label]["area"] - r["knn"]["area"] for r in rows])
        out[f"unseen {label}"] = {
            "wins": int((diffs > 0).sum()),
            "trials": len(rows),
            "area": float(np.mean([r[label]["area"] for r in rows])),
            "v_b": float(np.mean([r[label]["v_b"] for r in rows])),
            "mean_diff_to_knn": float(diffs.mean()),
        }
        print(f"unseen {label}", out[f"unseen {label}"], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--flat-prices", action="store_true", help="one mean $ per model (before session 6)")
    args = parser.parse_args()
    by_length = not args.flat_prices
    out: dict = {"prices": "flat" if args.flat_prices else "by length"}
    for name in ("routerbench", "routellm"):
        d = load(name)
        k, k_areas = choose_k(d, "static", by_length)
        task = static_task(d, by_length)
        err_u, err_k = default_uniroute()(task), knn(k)(task)
        mu, mk = metrics(task, err_u), metrics(task, err_k)
        lo, hi = bootstrap_area_diff(task, err_u, err_k, args.boot)
        err_o = old_default()(task)
        olo, ohi = bootstrap_area_diff(task, err_o, err_k, args.boot)
        out[name] = {
            "old_default": metrics(task, err_o),
            "old_area_diff_ci95": [olo, ohi],
            "knn_k": k,
            "knn_cv_areas": k_areas,
            "uniroute": mu,
            "knn": mk,
            "area_diff": mu["area"] - mk["area"],
            "area_diff_ci95": [lo, hi],
        }
        if by_length:  # the K-NN of the earlier sessions: k by CV at mean $, routed at mean $
            k_flat, _ = choose_k(d, "static", False)
            err_f = knn(k_flat)(task)
            mf = metrics(flat(task), err_f)
            flo, fhi = bootstrap_area_diff(task, err_u, err_f, args.boot, flat_b=True)
            out[name]["knn_flat"] = mf | {"k": k_flat}
            out[name]["area_diff_vs_knn_flat"] = mu["area"] - mf["area"]
            out[name]["area_diff_vs_knn_flat_ci95"] = [flo, fhi]
            out[name]["uniroute_flat"] = metrics(flat(task), err_u)
        print(name, json.dumps(out[name]), flush=True)
    d = load("routerbench")
    k_unseen, k_areas = choose_k(d, "unseen", by_length)
    rows = unseen_trials(d, k_unseen, by_length)
    diffs = np.array([r["uniroute"]["area"] - r["knn"]["area"] for r in rows])
    out["routerbench_unseen"] = {
        "knn_k": k_unseen,
        "knn_cv_areas": k_areas,
        "wins": int((diffs > 0).sum()),
        "trials": len(rows),
        "old_wins": int(sum(r["old_default"]["area"] > r["knn"]["area"] for r in rows)),
        "old_area": float(np.mean([r["old_default"]["area"] for r in rows])),
        "mean_diff": float(diffs.mean()),
        "std_diff": float(diffs.std()),
        "uniroute_area": float(np.mean([r["uniroute"]["area"] for r in rows])),
        "knn_area": float(np.mean([r["knn"]["area"] for r in rows])),
        "uniroute_v_b": float(np.mean([r["uniroute"]["v_b"] for r in rows])),
        "knn_v_b": float(np.mean([r["knn"]["v_b"] for r in rows])),
        "rows": rows,
    }
    print("unseen", {k: v for k, v in out["routerbench_unseen"].items() if k != "rows"}, flush=True)
    d = load("open-llm-lb-v2")
    keep = ~np.isnan(d["S_test"]).any(axis=1)
    task = Task(
        d["X_train"],
        d["S_train"],
        d["X_train"],
        d["S_train"],
        np.zeros(d["S_train"].shape[1]),
        d["T_train"],
        d["X_test"][keep],
        d["S_test"][keep],
        d["C_test"][keep],
        d["T_test"][keep],
    )
    out["open-llm-lb-v2"] = {"uniroute-tasks": metrics(task, tags()(task)), "test_items": int(keep.sum())}
    print("open-llm-lb-v2", out["open-llm-lb-v2"], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
