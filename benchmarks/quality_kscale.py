"""CV trial: keep the cluster *size* the inner CV chose, not its K.

``select_by_cv`` scores K on 2/3 of the training prompts, so the K it picks gives clusters of
n_fit / K prompts; refitting on all n prompts with K·n / n_fit (= 1.5·K) keeps that size.
Nested inside the outer folds like the default.

    nice -n 10 python benchmarks/quality_kscale.py --data routellm routerbench --unseen-draws 2
"""

from quality_cv import main
from quality_routers import uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap


class ScaledK:
    def fit(self, X, y=None):
        first = KMeansClusterMap().fit(X, y)
        k = round(first.n_clusters_ * 1.5) if first.cv_scores_ else first.n_clusters_
        self.cmap = KMeansClusterMap(n_clusters=k, assignment=first.assignment_).fit(X)
        self.cluster_weights_ = self.cmap.cluster_weights_
        print(f"  K {first.n_clusters_} {first.assignment_} -> {k}", flush=True)
        return self

    def predict_proba(self, X):
        return self.cmap.predict_proba(X)


routers = {"auto, K x 1.5 after CV (same cluster size)": uniroute(ScaledK)}

if __name__ == "__main__":
    main(routers)
