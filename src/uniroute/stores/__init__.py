"""Shared stores for production feedback, so many router replicas learn as one.

A single process needs none of these: :class:`uniroute.engine.feedback.FeedbackLedger`
keeps feedback in memory. :class:`~uniroute.stores.redis.RedisFeedbackStore` (extra
``[redis]``) shares it between replicas through Redis or Valkey. Imported lazily so
``import uniroute.stores`` needs no Redis client.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RedisFeedbackStore"]


def __getattr__(name: str) -> Any:
    if name == "RedisFeedbackStore":
        from .redis import RedisFeedbackStore

        return RedisFeedbackStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
