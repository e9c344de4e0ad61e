"""Paired bootstrap over test prompts: how sure is "router A beats router B"?

Every router is scored on the same resamples of the test prompts (drawn with
replacement, fixed seed), so a difference of two routers' area or QNC is
measured on identical prompt sets and the noise they share cancels. Each
resample recomputes the whole deferral curve from the routers' recorded
:class:`~uniroute.evaluation.metrics.PromptPaths` in one vectorised pass (no
re-routing), so 1,000 resamples take well under a second on thousands of prompts.

Differences are ``primary − baseline``: a positive area difference and a
negative QNC difference favour the primary router. Intervals are percentile
intervals. QNC is infinite where a curve never reaches the best model's quality;
such a resample counts as "not reached" (a QNC difference is ±inf when one of the
two reaches it, left out when neither does), so an interval bound may be
infinite (``null`` in JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..exceptions import InputError
from .metrics import PromptPaths, curve_summaries

N_RESAMPLES = 1000
CONFIDENCE = 0.95
QNC_MAX_WIDTH = 0.5
"""QNC on a split is "too noisy to mean anything" when its bootstrap interval is wider than
this (half the best model's cost) or when whether it is reached at all is uncertain."""


def resample_weights(n: int, n_resamples: int = N_RESAMPLES, random_state: int = 0) -> np.ndarray:
    """(n_resamples, n) counts: how often each of n prompts is drawn in each resample."""
    if n < 1 or n_resamples < 1:
        raise InputError(f"the bootstrap needs prompts and resamples, got n={n}, n_resamples={n_resamples}")
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(np.float64)


def bootstrap_summaries(
    paths: Mapping[str, PromptPaths],
    quality: np.ndarray,
    cost: np.ndarray,
    n_resamples: int = N_RESAMPLES,
    random_state: int = 0,
    chunk: int = 100,
) -> dict[str, dict[str, np.ndarray]]:
    """``area``, ``area_50`` and ``qnc`` of every router on the same resamples: {router: {metric: (B,)}}."""
    quality = np.asarray(quality, dtype=np.float64)
    weights = resample_weights(len(quality), n_resamples, random_state)
    out: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in paths}
    for start in range(0, n_resamples, chunk):
        block = weights[start : start + chunk]
        for name, p in paths.items():
            for key, values in curve_summaries(p, quality, cost, block).items():
                out[name].setdefault(key, []).append(values)
    return {name: {k: np.concatenate(v) for k, v in rows.items()} for name, rows in out.items()}


def _interval(values: np.ndarray, confidence: float) -> list[float] | None:
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
    return [float(lo), float(hi)]


def _qnc_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        diff = a - b
    return np.where(np.isinf(a) & np.isinf(b), np.nan, diff)


def paired_bootstrap(
    paths: Mapping[str, PromptPaths],
    quality: np.ndarray,
    cost: np.ndarray,
    primary: str,
    n_resamples: int = N_RESAMPLES,
    random_state: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Bootstrap intervals of every router's area and QNC, and of ``primary`` minus each other router.

    Parameters
    ----------
    paths : mapping of router name to PromptPaths
        Recorded routes on the test prompts (``evaluate_split(..., keep_paths=True)``).
    quality, cost : ndarray of shape (n, m)
        Realised results of the pool on the test prompts.
    primary : str
        The router compared with every other one.

    Returns
    -------
    dict
        ``{"primary", "n_resamples", "random_state", "confidence", "n_prompts",
        "routers": {name: {"area_ci", "qnc_ci", "qnc_reached"}},
        "vs": {other: {"area_diff", "area_diff_ci", "area_ahead", "qnc_diff",
        "qnc_diff_ci", "qnc_both_reached"}}}``; ``area_ahead`` is the share of
        resamples in which the primary router's area is larger.
    """
    if primary not in paths:
        raise InputError(f"primary router {primary!r} is not among {sorted(paths)}")
    observed = {name: curve_summaries(p, quality, cost) for name, p in paths.items()}
    draws = bootstrap_summaries(paths, quality, cost, n_resamples, random_state)
    routers = {
        name: {
            "area": float(observed[name]["area"][0]),
            "area_ci": _interval(d["area"], confidence),
            "qnc": float(observed[name]["qnc"][0]),
            "qnc_ci": _interval(d["qnc"], confidence),
            "qnc_reached": float(np.isfinite(d["qnc"]).mean()),
        }
        for name, d in draws.items()
    }
    mine = draws[primary]
    vs = {}
    for name, theirs in draws.items():
        if name == primary:
            continue
        area_diff = mine["area"] - theirs["area"]
        qnc_diff = _qnc_difference(mine["qnc"], theirs["qnc"])
        point = _qnc_difference(observed[primary]["qnc"], observed[name]["qnc"])[0]
        vs[name] = {
            "area_diff": float(observed[primary]["area"][0] - observed[name]["area"][0]),
            "area_diff_ci": _interval(area_diff, confidence),
            "area_ahead": float((area_diff > 0).mean()),
            "qnc_diff": None if np.isnan(point) else float(point),
            "qnc_diff_ci": _interval(qnc_diff, confidence),
            "qnc_both_reached": float((np.isfinite(mine["qnc"]) & np.isfinite(theirs["qnc"])).mean()),
        }
    return {
        "primary": primary,
        "n_resamples": n_resamples,
        "random_state": random_state,
        "confidence": confidence,
        "n_prompts": len(quality),
        "routers": routers,
        "vs": vs,
    }


def qnc_warnings(bootstrap: Mapping[str, Any], max_width: float = QNC_MAX_WIDTH) -> list[str]:
    """One message naming the routers whose QNC this test split is too small to pin down, or none.

    Too small means, for a router: its QNC's bootstrap interval is wider than
    ``max_width`` (:data:`QNC_MAX_WIDTH`, half the best model's cost), or it reaches
    the best model's quality in some resamples but not in others (between 2.5% and
    97.5% of them at 95% confidence), so whether it reaches it at all is unsettled.
    """
    tail = (1.0 - bootstrap["confidence"]) / 2.0
    noisy = []
    for name, row in bootstrap["routers"].items():
        reached, ci = row["qnc_reached"], row["qnc_ci"]
        if tail < reached < 1.0 - tail:
            noisy.append(f"{name} (reaches the best model's quality in {reached:.0%} of resamples)")
        elif reached >= 1.0 - tail and ci is not None and np.isfinite(ci[1]) and ci[1] - ci[0] > max_width:
            noisy.append(f"{name} (interval [{ci[0]:.2f}, {ci[1]:.2f}])")
    if not noisy:
        return []
    return [
        f"test split too small for QNC: with {bootstrap['n_prompts']} test prompts, the "
        f"{bootstrap['confidence']:.0%} bootstrap interval of QNC is wider than {max_width} (half the best "
        f"model's cost) or it is unsettled whether QNC is reached, for: {'; '.join(noisy)}. Read those QNC "
        "values as noise, or evaluate on a larger test split"
    ]
