"""Evaluation: baselines, metrics and protocols for routers on routing data (no plotting here)."""

from .baselines import DEFAULT_ROUTERS, ROUTERS, Routing, Split
from .metrics import DeferralCurve, deferral_curve
from .protocols import run_pool_sizes, run_static, run_unseen

__all__ = [
    "DEFAULT_ROUTERS",
    "ROUTERS",
    "DeferralCurve",
    "Routing",
    "Split",
    "deferral_curve",
    "run_pool_sizes",
    "run_static",
    "run_unseen",
]
