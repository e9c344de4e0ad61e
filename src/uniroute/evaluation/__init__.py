"""Evaluation: baselines, metrics and protocols for routers on routing data (no plotting here).

Evaluate your own router with :func:`evaluate_router` (see :mod:`.custom`); compare
routers with :func:`paired_bootstrap`. Names load on first use, so importing the
package (and the ``uniroute eval`` CLI module) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
