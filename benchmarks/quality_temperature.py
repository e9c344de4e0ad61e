"""CV trial: is the soft map's "auto" temperature too smooth at large K? (RouteLLM: auto ≈ 0.42–0.48)

nice -n 10 python benchmarks/quality_temperature.py --data routellm
"""

from quality_cv import main
from quality_routers import uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap

routers = {
    f"soft K={k} T={t:g}": uniroute(lambda k=k, t=t: KMeansClusterMap(k, "soft", temperature=t))
    for k in (16, 64)
    for t in (0.05, 0.15)
}

if __name__ == "__main__":
    main(routers)
