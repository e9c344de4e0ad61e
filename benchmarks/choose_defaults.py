"""Choose uniroute's default settings by cross-validation on the TRAIN files only.

Reads only the ``*train*`` files of a routing-data directory (never ``*test*``),
splits their prompts into folds, and scores each setting by the static protocol
(fit and profile on the other folds, route the held-out fold, all models) and
the unseen-LLM protocol (fit on 2/3 of the models, profile the other 1/3 on a
validation part of the other folds, route the held-out fold over them).

    python benchmarks/choose_defaults.py --data ../shared/data/routerbench --embedder static

This is the previous session's sweep through the evaluation harness (RouterBench only). The
issue-10 trials on all three data sets run faster on cached embeddings with
``benchmarks/quality_cv.py`` and the ``benchmarks/quality_*.py`` scripts (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from uniroute.datasets import concat, load_dataset
from uniroute.evaluation import protocols
from uniroute.evaluation.baselines import ROUTERS, Split


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def cv_splits(data, X, n_folds: int, seed: int, unseen_trials: int):
    """Yield (kind, Split) pairs: one static split per fold, ``unseen_trials`` model splits per fold."""
    rng = np.random.default_rng(seed)
    m = len(data.models)
    n_unseen = max(2, math.ceil(m / 3))
    for held in folds(len(data), n_folds, seed):
        rest = np.setdiff1d(np.arange(len(data)), held)
        test = protocols.complete_rows(data.rows(held), data.models)
        mask = ~np.isnan(data.scores[held]).any(axis=1)
        yield "static", Split(data.rows(rest), data.rows(rest), test, X[rest], X[rest], X[held][mask])
        for _ in range(unseen_trials):
            unseen = sorted(rng.choice(m, n_unseen, replace=False).tolist())
            pool = [data.models[j] for j in unseen]
            seen = [data.models[j] for j in range(m) if j not in unseen]
            order = rng.permutation(rest)
            n_valid = round(len(data) / 7)
            valid, train = order[:n_valid], order[n_valid:]
            mask = ~np.isnan(data.select_models(pool).scores[held]).any(axis=1)
            yield (
                "unseen",
                Split(
                    data.rows(train).select_models(seen),
                    data.rows(valid).select_models(pool),
                    protocols.complete_rows(data.rows(held), pool),
                    X[train],
                    X[valid],
                    X[held][mask],
                ),
            )


def score(router, splits) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for kind, split in splits:
        res = protocols.evaluate_split(split, {"r": router})["routers"]["r"]
        out.setdefault(f"{kind}_area", []).append(res["area"])
        out.setdefault(f"{kind}_qnc", []).append(min(res["qnc"], 2.0))
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--embedder", default="static")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--unseen-trials", type=int, default=4)
    parser.add_argument("--cache", default="runs/embeddings")
    parser.add_argument("--out", default=None)
    parser.add_argument("--quick", action="store_true", help="small grid: K in 4, 8, 16")
    args = parser.parse_args()
    files = sorted(p for p in Path(args.data).iterdir() if "train" in p.name)
    data = concat([load_dataset(p) for p in files])
    X = protocols.embed_datasets([data], args.embedder, args.cache, progress=False)[0]
    splits = list(cv_splits(data, X, args.folds, 0, args.unseen_trials))
    grid: dict[str, tuple[str, dict]] = {}
    ks = (4, 8, 16) if args.quick else (2, 4, 8, 16, 32, 64)
    for k in ks:
        for prior in (1.0, 4.0, 16.0):
            grid[f"kmeans K={k} prior={prior:g}"] = (
                "uniroute-kmeans",
                {"n_clusters": k, "prior_strength": prior, "assignment": "hard"},
            )
    for k in (8,) if args.quick else (8, 16, 32):
        grid[f"kmeans-soft K={k} T=auto"] = ("uniroute-kmeans", {"n_clusters": k, "temperature": "auto"})
    for k in () if args.quick else (8, 16, 32):
        for t in (0.02, 0.05, 0.1, 0.2, 0.5):
            grid[f"kmeans-soft K={k} T={t:g}"] = (
                "uniroute-kmeans",
                {"n_clusters": k, "assignment": "soft", "temperature": t},
            )
    for k in (8,) if args.quick else (4, 8, 16, 32):
        for l2 in (1e-3,) if args.quick else (1e-4, 1e-3, 1e-2):
            grid[f"learned K={k} l2={l2:g}"] = ("uniroute-learnedmap", {"n_clusters": k, "l2": l2})
    for k in (10, 50) if args.quick else (5, 10, 25, 50, 100, 200):
        grid[f"knn k={k}"] = ("knn", {"k": k})
    results = {}
    for label, (name, options) in grid.items():
        results[label] = score(ROUTERS[name](**options), splits)
        row = results[label]
        print(f"{label:34s} " + " ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"embedder": args.embedder, "results": results}, indent=1))


if __name__ == "__main__":
    main()
