"""CV trial: widen the grid the averaged default chooses from (session 9).

The default (``KMeansClusterMap(n_maps=3)``) ranks K ∈ {4, …, 64} × {soft, hard} by the
inner 3-fold CV's pairwise Brier score and averages the three best. Kinds of
candidate it never sees, each tried before as a single fixed map and each good on one
data set only, might still earn a place in an average that the inner CV picks per data set:

- "+128": K = 128 (hard K = 128 was the best single K-means map on RouteLLM in session 3,
  0.01 behind on RouterBench);
- "+temperature": soft maps at ½ and 2 × the auto temperature (more of the kind RouterBench
  prefers; the state already stores a temperature per map);
- "+difficulty": difficulty-aware maps (session 2, ``quality_difficulty.py``): each K-means
  cluster (K = 4, 8, 16) split into 3 bands of a prompt's predicted difficulty, a ridge
  regression of the training LLMs' mean error on the embedding, linear weights between
  band centres. It was +0.003 on RouteLLM and −0.002 to −0.006 on RouterBench as one map.

Every candidate obeys the default's rule of ≥ 20 inner-fit prompts per cell. The maps in
an average are profiled separately (the engine's m / n_maps per cluster is the same thing).

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_grid_extend.py --data routerbench --by-length --unseen-draws 4 \\
          --seed $s --out benchmarks/results/cv_grid_extend_routerbench_seed$s.json
      nice -n 10 python benchmarks/quality_grid_extend.py --data routellm --by-length \\
          --seed $s --out benchmarks/results/cv_grid_extend_routellm_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_grid_extend_*_seed*.json \\
        --reference "top-3 (default)"

("top-5" and "top-4 +difficulty" were run after the others, with ``--only "top-5$|top-4"``,
into ``cv_grid_extend_top5_*``; the temperature rows with ``--only temperature`` into
``cv_grid_extend_temp_*``.) None kept: +0.0007 / +0.0007 / +0.0004 at best (RouteLLM /
RouterBench static / unseen), docs/benchmarks.md "Trials of session 9".
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_difficulty import difficulty_weights, linear_bands
from quality_routers import engine_profile, print_choices
from quality_stacking import score

from uniroute.engine import cluster_maps as cm
from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, cluster_errors

CHOSEN: dict[str, Counter] = {}
BANDS = 3
Key = tuple[str, int, str]  # (family "km" | "diff" | "t0.5" | "t2", K, assignment)


class Candidate:
    """One map of the grid, fitted on (X, Y): ``phi(X)`` and ``reference`` (its training shares)."""

    def __init__(
        self, key: Key, X: np.ndarray, Y: np.ndarray, centres: dict[int, KMeansClusterMap], n_init: int
    ):
        family, k, a = key
        self.assignment = a
        self.scale = float(family[1:]) if family.startswith("t") else 1.0
        if k not in centres:  # one K-means fit per K, shared by its soft, hard and banded maps
            centres[k] = KMeansClusterMap()
            centres[k]._fit_centres(X, k, n_init=n_init)
        self.km = centres[k]
        self.w: np.ndarray | None = None
        if family == "diff":
            self.w = difficulty_weights(X, Y)
            self.centres = np.quantile(self._d(X), (np.arange(BANDS) + 0.5) / BANDS)
        self.reference = self.phi(X).mean(axis=0)

    def _d(self, X: np.ndarray) -> np.ndarray:
        assert self.w is not None
        return X @ self.w[:-1] + self.w[-1]

    def phi(self, X: np.ndarray) -> np.ndarray:
        if self.scale != 1.0:
            t = self.km.temperature_ * self.scale
            return self.km._one_map(self.km._sq_dist(X), "soft", t, 1.0).astype(np.float64)
        base = self.km._proba(X, self.assignment).astype(np.float64)
        if self.w is None:
            return base
        b = linear_bands(self._d(X), self.centres)
        return (base[:, :, None] * b[:, None, :]).reshape(len(X), -1)


def grid(n_fit: int, extend: tuple[str, ...]) -> list[Key]:
    keys: list[Key] = [("km", k, a) for k in cm._AUTO_CLUSTERS for a in ("soft", "hard")]
    if "128" in extend:
        keys += [("km", 128, a) for a in ("soft", "hard")]
    if "difficulty" in extend:
        keys += [("diff", k, a) for k in (4, 8, 16) for a in ("soft", "hard")]
    if "temperature" in extend:
        keys += [(f"t{t:g}", k, "soft") for k in cm._AUTO_CLUSTERS for t in (0.5, 2.0)]
    cells = {key: key[1] * (BANDS if key[0] == "diff" else 1) for key in keys}
    return [key for key in keys if cells[key] * cm._MIN_PER_CLUSTER <= n_fit]


def inner_scores(X: np.ndarray, Y: np.ndarray, keys: list[Key], seed: int = 0) -> dict[Key, float]:
    """Held-out pairwise Brier score of every candidate, by the default's inner 3-fold CV."""
    return {key: score(Y, P) for key, P in inner_predictions(X, Y, keys, seed).items()}


def inner_predictions(X: np.ndarray, Y: np.ndarray, keys: list[Key], seed: int = 0) -> dict[Key, np.ndarray]:
    """Held-out predicted scores of every candidate, by the default's inner 3-fold CV."""
    n = len(X)
    folds = np.array_split(np.random.default_rng(seed).permutation(n), cm._CV_FOLDS)
    out = {key: np.zeros(Y.shape) for key in keys}
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        centres: dict[int, KMeansClusterMap] = {}
        for key in keys:
            cand = Candidate(key, X[train], Y[train], centres, n_init=1)
            phi = cand.phi(X[train])
            psi = cluster_errors(phi, Y[train], DEFAULT_PRIOR_STRENGTH, reference=phi.mean(axis=0))
            out[key][held] = 1.0 - cand.phi(X[held]) @ psi
    return out


def estimates(
    keys: list[Key],
    X_fit: np.ndarray,
    S_fit: np.ndarray,
    X_prof: np.ndarray,
    S_prof: np.ndarray,
    X_out: list[np.ndarray],
    engine: bool = True,
) -> list[np.ndarray]:
    """Errors on each of ``X_out`` under the mean of the maps' routers: maps fitted on
    (X_fit, S_fit), the pool profiled on (X_prof, S_prof) with the engine's Ψ, or (``engine``
    False) cheaply, as the default's inner CV does."""
    out = [np.zeros((len(X), S_prof.shape[1])) for X in X_out]
    profile, centres = engine_profile(), {}
    for key in keys:
        cand = Candidate(key, X_fit, S_fit, centres, n_init=4 if engine else 1)
        phi = cand.phi(X_prof)
        if engine:
            psi = np.stack([profile(phi, S_prof[:, j], cand.reference) for j in range(S_prof.shape[1])]).T
        else:
            psi = cluster_errors(phi, S_prof, DEFAULT_PRIOR_STRENGTH, reference=phi.mean(axis=0))
        for o, X in zip(out, X_out, strict=True):
            o += cand.phi(X) @ psi / len(keys)
    return out


def mixture(task: Task, keys: list[Key]) -> np.ndarray:
    """Estimated errors of the test prompts under the mean of the maps' routers."""
    return estimates(keys, task.X_fit, task.S_fit, task.X_val, task.S_val, [task.X_test])[0]


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    X, Y = task.X_fit, task.S_fit
    n_fit = len(X) * (cm._CV_FOLDS - 1) // cm._CV_FOLDS
    scores = inner_scores(X, Y, grid(n_fit, ("128", "difficulty", "temperature")))
    m = f"{kind} m={task.S_val.shape[1]}"
    for label, extend, top in (
        ("top-3 (default)", (), 3),
        ("top-3 +128", ("128",), 3),
        ("top-3 +difficulty", ("difficulty",), 3),
        ("top-3 +128 +difficulty", ("128", "difficulty"), 3),
        ("top-5 +128 +difficulty", ("128", "difficulty"), 5),
        ("top-5", (), 5),
        ("top-4 +difficulty", ("difficulty",), 4),
        ("top-3 +temperature", ("temperature",), 3),
        ("top-5 +temperature", ("temperature",), 5),
    ):
        if not wanted(label):
            continue
        keys = sorted(grid(n_fit, extend), key=scores.__getitem__)[:top]
        CHOSEN.setdefault(f"{label} {m}", Counter())[" + ".join(f"{f} {a} K={k}" for f, k, a in keys)] += 1
        add(label, kind, metrics(task, mixture(task, keys)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
    print_choices(CHOSEN)
