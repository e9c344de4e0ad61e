"""CV trial: K-means and K-NN in a whitened embedding space (session 13).

The static embedder's 256 dimensions have very unequal variance, and K-means on them (like K-NN's
cosine) is dominated by the few directions of largest variance. If what separates the prompts where
one LLM beats another lies in low-variance directions (session 5 traced K-NN's lead on RouteLLM to
resolution inside a cluster), equalising the variances could sharpen the clusters there. Each task
fits a PCA on its own fit prompts only (no labels) and every prompt becomes

    z = normalise(PCA(x) / λ^(α/2)),

λ the components' variances: α = 0 is the default space up to a rotation, α = 1 full whitening, and
α = ½ halfway; "d = 64" / "d = 32" keep only the first components (whitening the rest amplifies
noise). The default router (``KMeansClusterMap()``, engine profiles) and K-NN (k = 100) both run on
z. The α = 0 row equals the default up to K-means' sensitivity to a rotation. Not kept: full
whitening gains on RouteLLM what it loses many times over on RouterBench (docs/benchmarks.md,
"Trials of session 13").

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_whiten.py --data routerbench routellm --by-length \\
          --unseen-draws 4 --seed $s --out benchmarks/results/cv_whiten_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_whiten_seed*.json --reference "default"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn, uniroute
from sklearn.decomposition import PCA

from uniroute import KMeansClusterMap
from uniroute.engine.embedders import normalize_rows

#: (α, components kept: None = all)
SPACES = ((0.0, None), (0.5, None), (1.0, None), (0.0, 64), (1.0, 64), (1.0, 32))


def whitener(
    X: np.ndarray, alpha: float = 1.0, components: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The map onto ``X``'s first ``components`` principal axes, each scaled by variance^(-α/2),
    rows renormalised."""
    pca = PCA(components, random_state=0).fit(X)
    scale = np.maximum(pca.explained_variance_, 1e-12) ** (-alpha / 2)
    return lambda Z: normalize_rows((pca.transform(Z) * scale).astype(np.float32))


def whitened(task: Task, alpha: float, components: int | None = None) -> Task:
    """``task`` with every embedding mapped by the :func:`whitener` of its fit prompts."""
    z = whitener(task.X_fit, alpha, components)
    return replace(task, **{f"X_{s}": z(getattr(task, f"X_{s}")) for s in ("fit", "val", "test")})


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    routers = {"default": uniroute(KMeansClusterMap), "knn k=100": knn(100)}
    for label, router in routers.items():
        if wanted(label):
            add(label, kind, metrics(task, router(task)))
    for alpha, components in SPACES:
        kept = "" if components is None else f" d={components}"
        labels = {name: f"{name} whiten a={alpha:g}{kept}" for name in routers}
        if not any(wanted(label) for label in labels.values()):
            continue
        space = whitened(task, alpha, components)
        for name, router in routers.items():
            if wanted(labels[name]):
                add(labels[name], kind, metrics(space, router(space)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
