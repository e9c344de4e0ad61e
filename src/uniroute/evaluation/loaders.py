"""Deprecated: the loaders moved to :mod:`uniroute.datasets` (``load_eval_data`` is ``load_pair``)."""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = {
    "load_npz": "load_npz",
    "load_embedllm": "load_embedllm",
    "load_routereval": "load_routereval",
    "load_eval_data": "load_pair",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"uniroute.evaluation.loaders.{name} is now uniroute.datasets.{_MOVED[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        from .. import datasets

        return getattr(datasets, _MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
