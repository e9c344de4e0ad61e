"""CV trial: LearnedMap with more clusters (issue 10, "Repair LearnedMap" direction).

LearnedMap at K = 8 beat every K-means map on RouteLLM (0.7458) but not K-NN; the auto
K-means map chooses K = 64 there. This asks whether a LearnedMap at K = 16 / 32 / 64
(l2 = 1e-5, the default) closes the gap without losing RouterBench.

    nice -n 10 python benchmarks/quality_learned_k.py --data routellm routerbench --unseen-draws 2
"""

from quality_cv import main
from quality_routers import uniroute

from uniroute.engine.cluster_maps import LearnedClusterMap

routers = {
    f"learned K={k} l2=1e-5": uniroute(lambda k=k: LearnedClusterMap(n_clusters=k)) for k in (16, 32, 64)
}

if __name__ == "__main__":
    main(routers)
