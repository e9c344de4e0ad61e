"""uniroute: send each LLM request to the model that answers best for its price.

An implementation of UniRoute (Jitkrittum et al., 2025, arXiv:2502.08773).
Names are imported on first use, so ``import uniroute`` stays fast (scikit-learn
loads only when a router or cluster map is touched).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import attach
from .exceptions import (
    EmbedderMismatchError,
    FeedbackUnavailableError,
    GradingError,
    InputError,
    MissingExtraError,
    NotFittedError,
    OnboardingError,
    StateError,
    UniRouteError,
    UnknownDecisionError,
    UnknownModelError,
    UnrankedAnswerError,
)

__version__ = "0.2.0"

_LAZY = {
    "CachedEmbedder": ".engine.cache",
    "CLUSTER_MAPS": ".engine.cluster_maps",
    "ClusterMap": ".engine.cluster_maps",
    "KMeansClusterMap": ".engine.cluster_maps",
    "LearnedClusterMap": ".engine.cluster_maps",
    "register_cluster_map": ".engine.cluster_maps",
    "Decision": ".engine.decision",
    "EMBEDDERS": ".engine.embedders",
    "Embedder": ".engine.embedders",
    "HashingEmbedder": ".engine.embedders",
    "PrecomputedEmbedder": ".engine.embedders",
    "SentenceTransformerEmbedder": ".engine.embedders",
    "StaticEmbedder": ".engine.embedders",
    "as_embedder": ".engine.embedders",
    "get_embedder": ".engine.embedders",
    "register_embedder": ".engine.embedders",
    "ModelProfile": ".engine.profiles",
    "Price": ".engine.profiles",
    "Router": ".engine.router",
    "load_router": ".engine.router",
    "save_router": ".engine.state",
    "routing_text": ".engine.text",
}

__all__ = [
    "CLUSTER_MAPS",
    "EMBEDDERS",
    "CachedEmbedder",
    "ClusterMap",
    "Decision",
    "Embedder",
    "EmbedderMismatchError",
    "FeedbackUnavailableError",
    "GradingError",
    "HashingEmbedder",
    "InputError",
    "KMeansClusterMap",
    "LearnedClusterMap",
    "MissingExtraError",
    "ModelProfile",
    "NotFittedError",
    "OnboardingError",
    "PrecomputedEmbedder",
    "Price",
    "Router",
    "SentenceTransformerEmbedder",
    "StateError",
    "StaticEmbedder",
    "UniRouteError",
    "UnknownDecisionError",
    "UnknownModelError",
    "UnrankedAnswerError",
    "as_embedder",
    "get_embedder",
    "load_router",
    "register_cluster_map",
    "register_embedder",
    "routing_text",
    "save_router",
]

if TYPE_CHECKING:
    from .engine.cache import CachedEmbedder
    from .engine.cluster_maps import (
        CLUSTER_MAPS,
        ClusterMap,
        KMeansClusterMap,
        LearnedClusterMap,
        register_cluster_map,
    )
    from .engine.decision import Decision
    from .engine.embedders import (
        EMBEDDERS,
        Embedder,
        HashingEmbedder,
        PrecomputedEmbedder,
        SentenceTransformerEmbedder,
        StaticEmbedder,
        as_embedder,
        get_embedder,
        register_embedder,
    )
    from .engine.profiles import ModelProfile, Price
    from .engine.router import Router, load_router
    from .engine.state import save_router
    from .engine.text import routing_text


_lazy_getattr, __dir__ = attach(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if name == "UnirouteError":  # deprecated spelling: resolved on every access, so it always warns
        from . import exceptions

        return exceptions.UnirouteError
    return _lazy_getattr(name)
