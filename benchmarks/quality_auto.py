"""CV trial: the map chooses its own K and assignment at fit time (nested inside the outer folds).

nice -n 10 python benchmarks/quality_auto.py --data routellm routerbench --out benchmarks/results/cv_auto.json
"""

from quality_cv import main
from quality_routers import knn, uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap

routers = {
    "knn k=100": knn(100),
    "knn k=200": knn(200),
    "kmeans soft K=8 (old default)": uniroute(lambda: KMeansClusterMap()),
    "kmeans K=auto assignment=auto": uniroute(lambda: KMeansClusterMap(n_clusters="auto", assignment="auto")),
    "kmeans K=auto soft": uniroute(lambda: KMeansClusterMap(n_clusters="auto", assignment="soft")),
    "kmeans K=8 assignment=auto": uniroute(lambda: KMeansClusterMap(n_clusters=8, assignment="auto")),
}

if __name__ == "__main__":
    main(routers)
