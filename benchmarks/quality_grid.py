"""CV trial: the "auto" grid of K extended to 128 and 256 (nested: chosen inside each outer fold).

The grid is patched per router (``cluster_maps._AUTO_CLUSTERS``); fit keeps its rule of at least
20 training prompts per cluster, so small data sets (RouterBench) never reach the new K.

    nice -n 10 python benchmarks/quality_grid.py --data routellm routerbench --unseen-draws 2
"""

from quality_cv import main
from quality_routers import uniroute

from uniroute.engine import cluster_maps
from uniroute.engine.cluster_maps import KMeansClusterMap


def with_grid(grid):
    def make():
        cluster_maps._AUTO_CLUSTERS = grid
        return KMeansClusterMap()

    return uniroute(make)


routers = {
    "auto, K grid 4-64 (default)": with_grid((4, 8, 16, 32, 64)),
    "auto, K grid 4-128": with_grid((4, 8, 16, 32, 64, 128)),
    "auto, K grid 4-256": with_grid((4, 8, 16, 32, 64, 128, 256)),
}

if __name__ == "__main__":
    main(routers)
