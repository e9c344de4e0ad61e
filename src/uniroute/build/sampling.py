"""The validation sample: up to ``per_cluster`` prompts from every cluster, topped up on ``--update``.

Two allocations (:data:`ALLOCATIONS`, the CLI's ``--allocation``): ``share`` (the
default) splits ``per_cluster`` × K prompts in proportion to each cluster's share of
the traffic, with at least a third of ``per_cluster`` in every cluster, so the
clusters most traffic falls in are measured most precisely; ``per-cluster`` takes
``per_cluster`` from every cluster. On RouterBench ``share`` brought the built
router's deferral area within 0.01 of the all-labels router in 2 of 3 seeds, against
1 of 3 (docs/build.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exceptions import InputError

ALLOCATIONS = ("per-cluster", "share")


def cluster_targets(per_cluster: int, shares: np.ndarray, allocation: str = "per-cluster") -> np.ndarray:
    """How many prompts to draw from each cluster (see module doc)."""
    if allocation == "per-cluster":
        return np.full(len(shares), per_cluster, dtype=int)
    if allocation != "share":
        raise InputError(f"allocation must be one of {list(ALLOCATIONS)}, got {allocation!r}")
    floor = -(-per_cluster // 3)
    return np.maximum(floor, np.round(per_cluster * len(shares) * np.asarray(shares)).astype(int))


def sample_per_cluster(
    clusters: np.ndarray,
    n_clusters: int,
    per_cluster: int | np.ndarray,
    keep: Sequence[int] = (),
    random_state: int = 0,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Rows to validate on: ``keep`` first, then a seeded draw from each cluster up to ``per_cluster``.

    ``clusters`` is each candidate row's cluster (argmax Φ); ``per_cluster`` is one
    number or one per cluster (:func:`cluster_targets`). Rows in ``keep`` (an
    earlier sample) stay even when their cluster already has ``per_cluster``; a
    cluster with fewer candidates gives all of them. Returns the chosen rows
    (sorted), the candidates per cluster and the chosen per cluster.
    """
    rng = np.random.default_rng(random_state)
    targets = np.broadcast_to(np.asarray(per_cluster, dtype=int), (n_clusters,))
    kept = set(int(k) for k in keep)
    chosen = set(kept)
    for k in range(n_clusters):
        members = np.flatnonzero(clusters == k)
        have = sum(int(m) in kept for m in members)
        fresh = [int(m) for m in rng.permutation(members) if int(m) not in kept]
        chosen.update(fresh[: max(0, int(targets[k]) - have)])
    rows = sorted(chosen)
    available = np.bincount(clusters, minlength=n_clusters)
    sampled = np.bincount(clusters[rows], minlength=n_clusters) if rows else np.zeros(n_clusters, dtype=int)
    return rows, available, sampled
