"""CV trial: why LearnedMap collapses to "always gpt-4", and whether a weaker ridge repairs it.

With ``l2 = 1e-3`` the penalty on θ (initialised at K-means centres / 0.1, ‖θ‖² ≈ 800 for
K = 8) outweighs the log-loss, so L-BFGS first shrinks θ: on the RouterBench train file
‖θ_k‖ falls from ≈ 10 to 0.37 and 6 of the 8 clusters die (cluster weights 0.68 / 0.32 / 0...).

    nice -n 10 python benchmarks/quality_learned.py --data routerbench --unseen-draws 2
"""

from quality_cv import main
from quality_routers import uniroute

from uniroute.engine.cluster_maps import LearnedClusterMap

routers = {
    f"learned K=8 l2={l2:g}": uniroute(lambda l2=l2: LearnedClusterMap(l2=l2))
    for l2 in (1e-3, 1e-4, 1e-5, 0.0)
}

if __name__ == "__main__":
    main(routers)
