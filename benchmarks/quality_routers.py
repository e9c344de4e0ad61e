"""Routers for the train-only CV scripts: uniroute variants and K-NN on cached embeddings.

Each factory returns ``task -> estimated errors (n_test, n_pool)``; see ``quality_cv.py``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable

import numpy as np
from quality_cv import Add, Task, metrics

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, profile_from_scores

Profiler = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (phi_val, scores, ref) -> Ψ


def engine_profile(reference: bool = True, **options) -> Profiler:
    """Ψ exactly as the engine computes it (``profile_from_scores``; ``reference`` = the map's shares)."""

    def psi(phi: np.ndarray, s: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return profile_from_scores("m", phi, s, 0.0, reference=ref if reference else None, **options).errors

    return psi


def variant_profile(centre: str, m: float = 4.0) -> Profiler:
    """Prototype priors: centre "global" (model's global error), "half" (0.5) or "coverage"."""

    def psi(phi: np.ndarray, s: np.ndarray, ref: np.ndarray) -> np.ndarray:
        o = ~np.isnan(s)
        w = phi[o].astype(np.float64)
        e, n = w.T @ (1 - s[o]), w.sum(axis=0)
        g = (e.sum() + 0.5) / (n.sum() + 1)
        if centre == "global":
            mu = g
        elif centre == "half":
            mu = 0.5
        else:
            cov = np.minimum(1.0, n / (n.sum() * ref))
            mu = cov * g + (1 - cov) * 0.5
        return (e + m * mu) / (n + m)

    return psi


def uniroute(make_map: Callable[[], object], profile: Profiler | None = None, labels: bool = True):
    """Φ fitted on the task's fit rows, Ψ of the pool from its validation rows; by default the
    engine's profiles with the Router's prior (spread over the maps an averaged map holds)."""

    def route(task: Task) -> np.ndarray:
        cmap = make_map()
        cmap.fit(task.X_fit, task.S_fit if labels else None)
        per_cluster = DEFAULT_PRIOR_STRENGTH / getattr(cmap, "n_maps_", 1)
        psi_of = profile or engine_profile(prior_strength=per_cluster)
        phi_val = cmap.predict_proba(task.X_val)
        psi = np.stack(
            [psi_of(phi_val, task.S_val[:, j], cmap.cluster_weights_) for j in range(task.S_val.shape[1])]
        )
        return cmap.predict_proba(task.X_test) @ psi.T

    return route


def tags(profile: Profiler | None = None):
    """UniRoute with the task tag as the cluster (data without text)."""
    profile = profile or engine_profile()

    def route(task: Task) -> np.ndarray:
        cats = sorted(set(task.T_val.tolist()))
        index = {c: k for k, c in enumerate(cats)}

        def one_hot(t: np.ndarray) -> np.ndarray:
            phi = np.full((len(t), len(cats)), 1.0 / len(cats))
            for i, label in enumerate(t.tolist()):
                if label in index:
                    phi[i] = 0.0
                    phi[i, index[label]] = 1.0
            return phi

        phi_val = one_hot(task.T_val)
        ref = phi_val.mean(axis=0)
        psi = np.stack([profile(phi_val, task.S_val[:, j], ref) for j in range(task.S_val.shape[1])])
        return one_hot(task.T_test) @ psi.T

    return route


def knn(k: int):
    """The harness's K-NN: mean error of the k most similar validation prompts."""

    def route(task: Task) -> np.ndarray:
        kk = min(k, len(task.X_val))
        err = 1.0 - task.S_val
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fallback = np.nanmean(err, axis=0)
            out = np.empty((len(task.X_test), err.shape[1]))
            for a in range(0, len(task.X_test), 512):
                sims = task.X_test[a : a + 512] @ task.X_val.T
                nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
                out[a : a + 512] = np.nanmean(err[nearest], axis=1)
        return np.where(np.isnan(out), fallback[None, :], out)

    return route


def score_choice(
    label: str, kind: str, task: Task, add: Add, choice: tuple[int, str], chosen: dict[str, Counter]
) -> None:
    """Score the K-means map ``choice`` = (K, assignment) on ``task`` as ``label``; count it in ``chosen``."""
    k, assignment = choice
    chosen.setdefault(f"{label} {kind} m={task.S_val.shape[1]}", Counter())[f"{assignment} K={k}"] += 1
    add(label, kind, metrics(task, uniroute(lambda: KMeansClusterMap(k, assignment))(task)))


def print_choices(chosen: dict[str, Counter]) -> None:
    for label, counts in chosen.items():
        print(f"chosen, {label}: {dict(counts)}")
