"""CV trial: a neighbour map in the UniRoute form, used only where the data shows it pays (issue 10).

The "anchor map" is a cluster map whose clusters are the training prompts
themselves: Φ(x) puts 1/k on the k training prompts nearest to x. Ψ(h) is then
measured exactly as for K-means (engine profiles: each anchor collects the
validation results whose k nearest anchors include it, with the engine's prior),
so a new model still joins by answering the validation set. It gives every
prompt its own neighbourhood, which is where K-NN's lead on RouteLLM comes from
(session 5's diagnosis), and it loses where pooling wins (RouterBench).

The gate decides per data set, at fit time, with the training LLMs only: a
3-fold CV over the training prompts routes each held-out third with the chosen
K-means map and with the candidates of k ∈ {10, 25, 50, 100, 200} (anchor maps,
or plain K-NN over the validation prompts: "gated knn", the upper bound of what
switching to neighbours could give), scores the pooled held-out routes by
deferral area (the training LLMs' mean $), and keeps the best candidate only if
a paired bootstrap over the prompts (300 resamples) puts its gain above zero
with one-sided confidence 95%. Every request is priced at its model's mean $, as
in sessions 2–5.

    nice -n 10 python benchmarks/quality_gate.py --data routellm routerbench --unseen-draws 2
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_routers import knn

from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import DEFAULT_PRIOR_STRENGTH, _posterior
from uniroute.evaluation.bootstrap import bootstrap_summaries
from uniroute.evaluation.metrics import curve_summaries, prompt_paths

KS = (10, 25, 50, 100, 200)
CONFIDENCE = 0.95
N_RESAMPLES = 300


def anchor_phi(anchors: np.ndarray, X: np.ndarray, k: int) -> sp.csr_matrix:
    """(n, n_anchors) with 1/k on each row's k nearest anchors (inner product, as K-NN)."""
    kk = min(k, len(anchors))
    cols = np.empty((len(X), kk), dtype=np.int64)
    for a in range(0, len(X), 1024):
        sims = X[a : a + 1024] @ anchors.T
        cols[a : a + 1024] = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    rows = np.repeat(np.arange(len(X)), kk)
    return sp.csr_matrix((np.full(rows.size, 1.0 / kk), (rows, cols.ravel())), shape=(len(X), len(anchors)))


def sparse_psi(phi_val: sp.csr_matrix, S: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Engine profiles (coverage discount + prior) of every model, from a sparse Φ."""
    observed = ~np.isnan(S)
    counts = np.asarray(phi_val.T @ observed.astype(np.float64))
    sums = np.asarray(phi_val.T @ np.where(observed, 1.0 - np.nan_to_num(S), 0.0))
    share = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1e-12)
    ref = reference.reshape(-1, 1)
    coverage = np.minimum(1.0, np.divide(share, ref, out=np.ones_like(share), where=ref > 0))
    alpha, beta = _posterior(np.minimum(sums, counts) * coverage, counts * coverage, DEFAULT_PRIOR_STRENGTH)
    return alpha / (alpha + beta)


def anchor_route(X_fit: np.ndarray, X_val: np.ndarray, S_val: np.ndarray, X_test: np.ndarray, k: int):
    reference = np.asarray(anchor_phi(X_fit, X_fit, k).mean(axis=0)).ravel()
    psi = sparse_psi(anchor_phi(X_fit, X_val, k), S_val, reference)
    return np.asarray(anchor_phi(X_fit, X_test, k) @ psi)


def kmeans_route(cmap: KMeansClusterMap, X_fit, X_val, S_val, X_test) -> np.ndarray:
    """Route with a K-means map of ``cmap``'s chosen K / assignment, refitted on X_fit."""
    probe = KMeansClusterMap(temperature=cmap.temperature, random_state=cmap.random_state)
    probe._fit_centres(X_fit, cmap.n_clusters_, n_init=1)
    phi_fit = probe._proba(X_fit, cmap.assignment_)
    phi_val = probe._proba(X_val, cmap.assignment_)
    psi = sparse_psi(sp.csr_matrix(phi_val), S_val, phi_fit.mean(axis=0))
    return probe._proba(X_test, cmap.assignment_) @ psi


def gate(task: Task, cmap: KMeansClusterMap, candidate) -> tuple[int | None, dict[str, float]]:
    """The anchor k to use instead of ``cmap``, or None; and the inner areas."""
    X, S = task.X_fit, task.S_fit
    n = len(X)
    folds = np.array_split(np.random.default_rng(0).permutation(n), 3)
    est = {"kmeans": np.zeros(S.shape)} | {k: np.zeros(S.shape) for k in KS}
    for held in folds:
        rest = np.setdiff1d(np.arange(n), held)
        est["kmeans"][held] = kmeans_route(cmap, X[rest], X[rest], S[rest], X[held])
        for k in KS:
            est[k][held] = candidate(X[rest], S[rest], X[held], k)
    keep = ~np.isnan(S).any(axis=1)
    quality = S[keep]
    cost = np.broadcast_to(task.cost_fit, quality.shape)
    paths = {name: prompt_paths(e[keep], task.cost_fit, quality, cost) for name, e in est.items()}
    areas = {str(name): float(curve_summaries(p, quality, cost)["area"][0]) for name, p in paths.items()}
    best = max(KS, key=lambda k: areas[str(k)])
    draws = bootstrap_summaries({"a": paths[best], "b": paths["kmeans"]}, quality, cost, N_RESAMPLES)
    gain = draws["a"]["area"] - draws["b"]["area"]
    areas["lower"] = float(np.quantile(gain, 1.0 - CONFIDENCE))
    return (best if areas["lower"] > 0 else None), areas


def knn_route(X_val: np.ndarray, S_val: np.ndarray, X_test: np.ndarray, k: int) -> np.ndarray:
    return knn(k)(
        Task(X_val, S_val, X_val, S_val, np.zeros(0), np.zeros(0), X_test, S_val[:0], S_val[:0], S_val[:0])
    )


CANDIDATES = {
    "anchor": lambda X, S, X_test, k: anchor_route(X, X, S, X_test, k),
    "knn": knn_route,
}
CANDIDATES_OUT = {
    "anchor": lambda t, k: anchor_route(t.X_fit, t.X_val, t.S_val, t.X_test, k),
    "knn": lambda t, k: knn(k)(t),
}


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    cmap = KMeansClusterMap(n_maps=1).fit(task.X_fit, task.S_fit)
    phi_val = cmap.predict_proba(task.X_val)
    default = cmap.predict_proba(task.X_test) @ sparse_psi(
        sp.csr_matrix(phi_val), task.S_val, cmap.cluster_weights_
    )
    add("default", kind, metrics(task, default))
    for k in (100, 200):
        add(f"knn k={k}", kind, metrics(task, knn(k)(task)))
    for k in KS:
        if wanted(f"anchor k={k}"):
            add(
                f"anchor k={k}",
                kind,
                metrics(task, anchor_route(task.X_fit, task.X_val, task.S_val, task.X_test, k)),
            )
    for label, candidate in CANDIDATES.items():
        if not wanted(f"gated {label}"):
            continue
        chosen, areas = gate(task, cmap, candidate)
        print(
            f"  gate {kind}: K={cmap.n_clusters_} {cmap.assignment_} -> {label} {chosen} {areas}", flush=True
        )
        routed = default if chosen is None else CANDIDATES_OUT[label](task, chosen)
        add(f"gated {label}", kind, metrics(task, routed) | {"switched": float(chosen is not None)})


if __name__ == "__main__":
    sweep(__doc__, per_task)
