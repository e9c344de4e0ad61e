"""The validation sample: up to ``per_cluster`` prompts from every cluster, topped up on ``--update``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sample_per_cluster(
    clusters: np.ndarray,
    n_clusters: int,
    per_cluster: int,
    keep: Sequence[int] = (),
    random_state: int = 0,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Rows to validate on: ``keep`` first, then a seeded draw from each cluster up to ``per_cluster``.

    ``clusters`` is each candidate row's cluster (argmax Φ). Rows in ``keep`` (an
    earlier sample) stay even when their cluster already has ``per_cluster``; a
    cluster with fewer candidates gives all of them. Returns the chosen rows
    (sorted), the candidates per cluster and the chosen per cluster.
    """
    rng = np.random.default_rng(random_state)
    kept = set(int(k) for k in keep)
    chosen = set(kept)
    for k in range(n_clusters):
        members = np.flatnonzero(clusters == k)
        have = sum(int(m) in kept for m in members)
        fresh = [int(m) for m in rng.permutation(members) if int(m) not in kept]
        chosen.update(fresh[: max(0, per_cluster - have)])
    rows = sorted(chosen)
    available = np.bincount(clusters, minlength=n_clusters)
    sampled = np.bincount(clusters[rows], minlength=n_clusters) if rows else np.zeros(n_clusters, dtype=int)
    return rows, available, sampled
