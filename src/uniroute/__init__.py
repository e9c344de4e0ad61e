"""uniroute: send each LLM request to the model that answers best for its price.

An implementation of UniRoute (Jitkrittum et al., 2025, arXiv:2502.08773).
"""

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
from .exceptions import (
    EmbedderMismatchError,
    InputError,
    NotFittedError,
    StateError,
    UnirouteError,
    UnknownModelError,
)

__version__ = "0.1.0"

__all__ = [
    "EMBEDDERS",
    "CachedEmbedder",
    "Decision",
    "Embedder",
    "EmbedderMismatchError",
    "HashingEmbedder",
    "InputError",
    "KMeansClusterMap",
    "LearnedClusterMap",
    "ModelProfile",
    "NotFittedError",
    "PrecomputedEmbedder",
    "Router",
    "SentenceTransformerEmbedder",
    "StateError",
    "StaticEmbedder",
    "UnirouteError",
    "UnknownModelError",
    "get_embedder",
    "load_router",
    "routing_text",
    "save_router",
]
