"""Routing data: prompts × models matrices of scores and costs, and their file formats.

Every loader returns a :class:`RoutingDataset`. :data:`FORMATS` maps each format
name (the CLI's ``--format`` choices) to its loader; importing it reads no data
library, so the CLI can list the formats instantly.

``routerbench``
    RouterBench CSV (``prompt`` as a Python list literal, ``<model>`` 0/1 or True/False
    with empty cells = missing, ``<model>|total_cost``, ``<model>|model_response``, ``eval_name``).
``jsonl``
    One JSON object a line: ``{"prompt": str, "scores": {model: s in [0, 1]},
    "costs": {model: $}, "task": str}``; ``messages`` (chat format) may replace
    ``prompt``; ``id`` is optional. RouteLLM's recorded results in
    ``../shared/data/routellm`` use this format.
``npz``
    A correctness matrix: ``scores`` (items × models, NaN = missing), ``models``,
    ``benchmark`` (task per item), ``item``; optional ``costs`` (items × models or
    one per model) and ``prompts``. No pickled objects.
``embedllm``
    EmbedLLM's long CSV (``model_id``, ``model_name``, ``prompt_id``, ``prompt``,
    ``label``, optional ``category``): one row per (model, prompt); no costs.
``routereval``
    RouterEval's ``*_router_dataset.pkl``. Unpickling runs code, so it loads only
    with ``allow_pickle=True`` (CLI ``--allow-pickle``), for files you trust.

Bad input gives an :class:`~uniroute.InputError` that names the file and line:
malformed records, text that is not valid UTF-8 (bad bytes, or a lone surrogate
escape such as ``"\\ud800"`` in JSON), scores outside [0, 1]. Every loader takes
``skip_invalid=True`` (CLI ``--skip-invalid``) to drop those rows with a warning
instead. Duplicate ids are made unique (``id#2``) and duplicate prompts kept;
both are reported with a warning.

Examples
--------
>>> from uniroute.datasets import FORMATS, load_split
>>> sorted(FORMATS)
['embedllm', 'jsonl', 'npz', 'routerbench', 'routereval']
>>> train, test = load_split("../shared/data/routellm")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from ._registry import FORMATS, Format, guess_format, has_own_split, load_dataset, load_pair, load_split

_LAZY = {
    "RoutingDataset": "._dataset",
    "concat": "._dataset",
    "split_by_task": "._dataset",
    "unique_ids": "._dataset",
    "read_jsonl": "._lines",
    "load_routerbench": "._routerbench",
    "load_jsonl": "._jsonl",
    "load_npz": "._npz",
    "load_embedllm": "._embedllm",
    "load_routereval": "._routereval",
}

__all__ = [
    "FORMATS",
    "Format",
    "RoutingDataset",
    "concat",
    "guess_format",
    "has_own_split",
    "load_dataset",
    "load_embedllm",
    "load_jsonl",
    "load_npz",
    "load_pair",
    "load_routerbench",
    "load_routereval",
    "load_split",
    "read_jsonl",
    "split_by_task",
    "unique_ids",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name == "LOADERS":
        warnings.warn("uniroute.datasets.LOADERS is now FORMATS", DeprecationWarning, stacklevel=2)
        return FORMATS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
