"""Issue 10 target 4: a model validated only on ARC-Challenge and Winogrande is not sent MBPP.

Fits a Router at its defaults on the RouterBench train file (all 3 tasks, the 11 models' scores),
profiles the 11 models on it, adds "quiz-only" validated on the ARC + Winogrande train prompts (all
correct, half the cheapest model's cost), and counts the 128 MBPP test prompts routed to it.

    nice -n 10 python benchmarks/quality_unvalidated.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from quality_data import load

from uniroute import Router


def main() -> None:
    d = load("routerbench")
    X, S, C, T = d["X_train"], d["S_train"], d["C_train"], d["T_train"].astype(str)
    router = Router("static").fit_embeddings(X, S)
    idx = range(len(X))
    costs = {str(m): float(np.nanmean(C[:, j])) for j, m in enumerate(d["models"])}
    router.add_models(idx, {str(m): S[:, j] for j, m in enumerate(d["models"])}, costs, embeddings=X)
    quiz = T != "mbpp"
    router.add_model(
        "quiz-only",
        range(int(quiz.sum())),
        np.ones(int(quiz.sum())),
        min(costs.values()) / 2,
        embeddings=X[quiz],
    )
    cmap = getattr(router, "cluster_map_", router.cluster_map)  # older versions: the map itself
    mbpp = d["X_test"][d["T_test"].astype(str) == "mbpp"]
    maps = " + ".join(f"{k} {a}" for k, a, _ in getattr(cmap, "maps_", ())) or cmap.assignment
    print(f"map: K={len(cmap.cluster_weights_)} ({maps})")
    for lam in (0.0, 1.0, 10.0, 100.0):
        chosen = [dec.model for dec in router.route_embeddings(mbpp, lam=lam)]
        print(f"lambda={lam:g}: {chosen.count('quiz-only')} / {len(chosen)} MBPP test prompts to quiz-only")


if __name__ == "__main__":
    main()
