"""CV trial: Φ = the K-means map and LearnedMap side by side (issue 10).

Φ(x) = [½·Φ_kmeans(x), ½·Φ_learned(x)], a distribution over K₁ + K₂ clusters, so Φ·Ψ
is the mean of the two routers' estimates and onboarding is unchanged. The two maps
err differently (LearnedMap leads on RouteLLM, K-means on RouterBench); this asks
whether their average leads on both.

    nice -n 10 python benchmarks/quality_mixture.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
from quality_cv import Task, main
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap, LearnedClusterMap
from uniroute.engine.profiles import cluster_errors


def mixture(learned_k: int, weight: float):
    def route(task: Task) -> np.ndarray:
        maps = [
            KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit),
            LearnedClusterMap(learned_k).fit(task.X_fit, task.S_fit),
        ]
        w = (1.0 - weight, weight)

        def phi(X: np.ndarray) -> np.ndarray:
            return np.hstack([wi * m.predict_proba(X) for wi, m in zip(w, maps)])

        ref = np.concatenate([wi * m.cluster_weights_ for wi, m in zip(w, maps)])
        return phi(task.X_test) @ cluster_errors(phi(task.X_val), task.S_val, reference=ref)

    return route


routers = {
    "knn k=100": knn(100),
    "kmeans auto + learned 16, 1/2 each": mixture(16, 0.5),
    "kmeans auto + learned 8, 1/2 each": mixture(8, 0.5),
}

if __name__ == "__main__":
    main(routers)
