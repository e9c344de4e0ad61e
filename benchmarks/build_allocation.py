"""Label-only check of ``uniroute build``'s sampling: equal (``per-cluster``) vs traffic-share allocation.

No call and no grading: on the offline proof's data (RouterBench ARC + Winogrande train prompts, the 817
complete test prompts), fit the default K-means map per seed, draw ``--draws`` seeded validation samples of
``--per-cluster`` × K prompts with each allocation (the package's own ``cluster_targets`` and
``sample_per_cluster``), profile the map on RouterBench's labels of the sample, and compare its test deferral
area with the same map profiled on every train label. This isolates what the sample alone does to the area.

    nice -n 10 python benchmarks/build_allocation.py --data ../shared/data/routerbench --out /tmp/alloc.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from build_proof import area, load

from uniroute import KMeansClusterMap, Router
from uniroute.build.sampling import ALLOCATIONS, cluster_targets, sample_per_cluster
from uniroute.datasets import RoutingDataset
from uniroute.engine.files import atomic_write_bytes
from uniroute.evaluation.protocols import complete_rows

TARGET = 0.01


def profiled(base: Router, train: RoutingDataset, rows: np.ndarray, X: np.ndarray) -> Router:
    """A copy of ``base`` (fitted map, no models) profiled on the train labels of ``rows``."""
    router = copy.deepcopy(base)
    costs = train.mean_costs()
    router.add_models(
        [train.prompts[i] for i in rows],
        {m: train.scores[rows, j] for j, m in enumerate(train.models)},
        {m: float(costs[j]) for j, m in enumerate(train.models)},
        embeddings=X[rows],
        progress=False,
    )
    return router


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routerbench"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-cluster", type=int, default=30)
    parser.add_argument("--draws", type=int, default=12, help="samples per seed and allocation")
    parser.add_argument(
        "--out", type=Path, help="write the figures as JSON here (nothing is written without it)"
    )
    args = parser.parse_args()

    train, test = load(args.data, "train"), load(args.data, "test")
    test = complete_rows(test, list(train.models))
    results: dict[str, dict[str, list[float]]] = {alloc: {} for alloc in ALLOCATIONS}
    for seed in args.seeds:
        base = Router("static", KMeansClusterMap(random_state=seed)).fit(train.prompts)
        X, X_test = base.embed(train.prompts), base.embed(test.prompts)
        clusters = base.cluster_probs(X).argmax(axis=1)
        n_clusters = len(base.cluster_map_.cluster_weights_)
        shares = np.bincount(clusters, minlength=n_clusters) / len(clusters)
        reference = area(profiled(base, train, np.arange(len(train.prompts)), X), test, X_test)
        for alloc in ALLOCATIONS:
            targets = cluster_targets(args.per_cluster, shares, alloc)
            gaps = []
            for draw in range(args.draws):
                rows, _, _ = sample_per_cluster(
                    clusters, n_clusters, targets, (), random_state=1000 * seed + draw
                )
                gaps.append(area(profiled(base, train, np.asarray(rows), X), test, X_test) - reference)
            results[alloc][str(seed)] = gaps
            g = np.abs(gaps)
            print(
                f"seed {seed} {alloc:>11}: K={n_clusters} median |gap| {np.median(g):.4f} max {g.max():.4f} "
                f"within {TARGET}: {(g <= TARGET).sum()}/{len(g)}",
                flush=True,
            )
    for alloc, by_seed in results.items():
        g = np.abs(np.concatenate(list(by_seed.values())))
        print(f"{alloc}: {(g <= TARGET).sum()} of {len(g)} draws within {TARGET}")
    if args.out:
        payload = {"per_cluster": args.per_cluster, "draws": args.draws, "area_gaps": results}
        atomic_write_bytes(args.out, json.dumps(payload, indent=2).encode())


if __name__ == "__main__":
    main()
