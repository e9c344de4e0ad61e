"""CV trial: profile with one assignment, route with the other (issue 10).

Hard maps give sharp per-cluster estimates (RouteLLM's preference), soft maps blend
neighbouring clusters (RouterBench's). Here Ψ is measured with one assignment and a
prompt is routed with the other, K = 16 and 64, on the same K-means centres.

    nice -n 10 python benchmarks/quality_asymmetric.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

from quality_cv import Add, Task, Wanted, metrics, sweep

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import cluster_errors

ASSIGNMENTS = ("hard", "soft")


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    for k in (16, 64):
        cmap = KMeansClusterMap(n_clusters=k).fit(task.X_fit)
        for measured in ASSIGNMENTS:
            reference = cmap._proba(task.X_fit, measured).mean(axis=0)
            psi = cluster_errors(cmap._proba(task.X_val, measured), task.S_val, reference=reference)
            for routed in ASSIGNMENTS:
                label = f"K={k} profile {measured} route {routed}"
                if wanted(label):
                    add(label, kind, metrics(task, cmap._proba(task.X_test, routed) @ psi))


if __name__ == "__main__":
    sweep(__doc__, per_task)
