"""CV trial: number of clusters K x assignment, against K-NN's k grid (issue 10).

nice -n 10 python benchmarks/quality_k.py --data routerbench routellm --out benchmarks/results/cv_k.json
"""

from quality_cv import main
from quality_routers import knn, uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap

routers = {f"knn k={k}": knn(k) for k in (10, 25, 50, 100, 200)}
for K in (2, 4, 8, 16, 32, 64):
    for assignment in ("soft", "hard"):
        routers[f"kmeans {assignment} K={K}"] = uniroute(
            lambda K=K, a=assignment: KMeansClusterMap(n_clusters=K, assignment=a)
        )

if __name__ == "__main__":
    main(routers)
