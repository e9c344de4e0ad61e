"""CV trial: where a profile's sparse clusters are pulled (issue 10, target 4).

nice -n 10 python benchmarks/quality_prior.py --data routerbench routellm
"""

from quality_cv import main
from quality_routers import engine_profile, knn, tags, uniroute, variant_profile

from uniroute.engine.cluster_maps import KMeansClusterMap

routers = {
    "knn k=50": knn(50),
    "tags prior=global m=4 (old)": tags(variant_profile("global")),
    "tags engine prior (new)": tags(engine_profile()),
}
for assignment in ("soft", "hard"):
    for centre in ("global", "half", "coverage"):
        for m in (4.0, 16.0):
            routers[f"kmeans {assignment} K=8 prior={centre} m={m:g}"] = uniroute(
                lambda a=assignment: KMeansClusterMap(assignment=a), variant_profile(centre, m)
            )

for assignment in ("soft", "hard"):
    for ref in (False, True):
        routers[f"kmeans {assignment} K=8 engine prior (new) reference={ref}"] = uniroute(
            lambda a=assignment: KMeansClusterMap(assignment=a), engine_profile(reference=ref)
        )

if __name__ == "__main__":
    main(routers)
