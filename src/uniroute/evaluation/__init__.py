"""Evaluation: baselines, metrics and protocols for routers on routing data (no plotting here).

Evaluate your own router with :func:`evaluate_router` (see :mod:`.custom`); compare
routers with :func:`paired_bootstrap`. Names load on first use, so importing the
package (and the ``uniroute eval`` CLI module) stays cheap.
"""

from __future__ import annotations

from .._lazy import attach

_LAZY = {
    "DEFAULT_ROUTERS": ".baselines",
    "ROUTERS": ".baselines",
    "KNNRouter": ".baselines",
    "Routing": ".baselines",
    "Split": ".baselines",
    "choose_k": ".baselines",
    "paired_bootstrap": ".bootstrap",
    "EvaluableRouter": ".custom",
    "evaluate_router": ".custom",
    "DeferralCurve": ".metrics",
    "PromptPaths": ".metrics",
    "deferral_curve": ".metrics",
    "run_pool_sizes": ".protocols",
    "run_static": ".protocols",
    "run_unseen": ".protocols",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = attach(__name__, _LAZY)
