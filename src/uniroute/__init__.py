"""uniroute: send each LLM request to the model that answers best for its price.

An implementation of UniRoute (Jitkrittum et al., 2025, arXiv:2502.08773).
Names are imported on first use, so ``import uniroute`` stays fast (scikit-learn
loads only when a router or cluster map is touched).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .exceptions import (
    EmbedderMismatchError,
    GradingError,
    InputError,
    NotFittedError,
    OnboardingError,
    StateError,
    UniRouteError,
    UnknownModelError,
)

__version__ = "0.1.0"

_LAZY = {
    "CachedEmbedder": ".engine.cache",
    "KMeansClusterMap": ".engine.cluster_maps",
    "LearnedClusterMap": ".engine.cluster_maps",
    "Decision": ".engine.decision",
    "EMBEDDERS": ".engine.embedders",
    "Embedder": ".engine.embedders",
    "HashingEmbedder": ".engine.embedders",
    "PrecomputedEmbedder": ".engine.embedders",
    "SentenceTransformerEmbedder": ".engine.embedders",
    "StaticEmbedder": ".engine.embedders",
    "get_embedder": ".engine.embedders",
    "ModelProfile": ".engine.profiles",
    "Router": ".engine.router",
    "load_router": ".engine.state",
    "save_router": ".engine.state",
    "routing_text": ".engine.text",
}

__all__ = [
    "EMBEDDERS",
    "CachedEmbedder",
    "Decision",
    "Embedder",
    "EmbedderMismatchError",
    "GradingError",
    "HashingEmbedder",
    "InputError",
    "KMeansClusterMap",
    "LearnedClusterMap",
    "ModelProfile",
    "NotFittedError",
    "OnboardingError",
    "PrecomputedEmbedder",
    "Router",
    "SentenceTransformerEmbedder",
    "StateError",
    "StaticEmbedder",
    "UniRouteError",
    "UnknownModelError",
    "get_embedder",
    "load_router",
    "routing_text",
    "save_router",
]

if TYPE_CHECKING:
    from .engine.cache import CachedEmbedder
    from .engine.cluster_maps import KMeansClusterMap, LearnedClusterMap
    from .engine.decision import Decision
    from .engine.embedders import (
        EMBEDDERS,
        Embedder,
        HashingEmbedder,
        PrecomputedEmbedder,
        SentenceTransformerEmbedder,
        StaticEmbedder,
        get_embedder,
    )
    from .engine.profiles import ModelProfile
    from .engine.router import Router
    from .engine.state import load_router, save_router
    from .engine.text import routing_text


def __getattr__(name: str) -> Any:
    if name == "UnirouteError":
        from . import exceptions

        return exceptions.UnirouteError
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'uniroute' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
