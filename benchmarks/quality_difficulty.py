"""CV trial: difficulty-aware Φ (issue 10, "richer Φ in the same framework").

A prompt's difficulty d(x) is a ridge regression, fitted on the training prompts, of the
training LLMs' mean error on x from its embedding (an item-response-style difficulty,
learned from the training LLMs only). Φ(x) = Φ_K-means(x) ⊗ bins(d(x)): each cluster is
split into B difficulty bands (cut at training quantiles; "linear" = triangular weights
between band centres, "hard" = one band). New models are still profiled on validation
results only, on the K·B cells.

    nice -n 10 python benchmarks/quality_difficulty.py --data routellm routerbench
"""

from __future__ import annotations

import numpy as np
from quality_cv import main
from quality_routers import knn, uniroute

from uniroute.engine.cluster_maps import KMeansClusterMap


def difficulty_weights(X: np.ndarray, Y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge weights (intercept last, not penalised) of the training LLMs' mean error on the embedding."""
    seen = (~np.isnan(Y)).sum(axis=1)
    ok = seen > 0
    err = 1.0 - np.nansum(Y, axis=1) / np.maximum(seen, 1)
    Xc = np.hstack([np.asarray(X[ok], np.float64), np.ones((ok.sum(), 1))])
    reg = alpha * np.eye(Xc.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(Xc.T @ Xc + reg, Xc.T @ err[ok])


def linear_bands(d: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Triangular weights of each prompt's difficulty between the band centres."""
    d = np.clip(d, centres[0], centres[-1])
    j = np.clip(np.searchsorted(centres, d) - 1, 0, len(centres) - 2)
    t = (d - centres[j]) / np.maximum(centres[j + 1] - centres[j], 1e-12)
    out = np.zeros((len(d), len(centres)))
    out[np.arange(len(d)), j] = 1 - t
    out[np.arange(len(d)), j + 1] += t
    return out


class DifficultyMap:
    def __init__(self, base, bins: int = 3, band: str = "linear", alpha: float = 1.0):
        self.base, self.bins, self.band, self.alpha = base, bins, band, alpha

    def fit(self, X, y):
        X = np.asarray(X, np.float64)
        self.w_ = difficulty_weights(X, np.asarray(y, np.float64), self.alpha)
        d = self._d(X)
        qs = (np.arange(self.bins) + 0.5) / self.bins
        self.centres_ = np.quantile(d, qs)
        self.base.fit(X, y)
        self.cluster_weights_ = self.predict_proba(X).mean(axis=0)
        return self

    def _d(self, X):
        return np.asarray(X, np.float64) @ self.w_[:-1] + self.w_[-1]

    def _bands(self, d):
        c = self.centres_
        if self.band == "hard":
            edges = (c[1:] + c[:-1]) / 2
            out = np.zeros((len(d), len(c)))
            out[np.arange(len(d)), np.searchsorted(edges, d)] = 1.0
            return out
        return linear_bands(d, c)

    def predict_proba(self, X):
        phi = self.base.predict_proba(X)
        b = self._bands(self._d(X))
        return (phi[:, :, None] * b[:, None, :]).reshape(len(phi), -1)


routers = {"knn k=50": knn(50), "knn k=100": knn(100)}
for K in (1, 4, 8):
    for bins in (2, 3, 5):
        for band in ("linear", "hard"):
            for a in ("hard", "soft"):
                if K == 1 and a == "soft":
                    continue
                routers[f"difficulty K={K} {a} bins={bins} {band}"] = uniroute(
                    lambda K=K, a=a, bins=bins, band=band: DifficultyMap(
                        KMeansClusterMap(n_clusters=K, assignment=a), bins, band
                    )
                )

if __name__ == "__main__":
    main(routers)
