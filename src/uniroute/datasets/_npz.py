"""Correctness matrices saved with ``numpy.savez`` (the Open LLM Leaderboard set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ._dataset import RoutingDataset, drop_out_of_range


def load_npz(path: str | Path, skip_invalid: bool = False) -> RoutingDataset:
    """Correctness matrix: ``scores`` (n, m), ``models``, ``benchmark``, ``item``.

    Optional arrays ``costs`` and ``prompts``. Items with a score outside [0, 1]
    or a negative cost raise :class:`~uniroute.InputError` (``skip_invalid=True``:
    dropped with a warning).
    """
    path = Path(path)
    try:
        return drop_out_of_range(_read_npz(path), path, skip_invalid)
    except ValueError as exc:
        raise InputError(f"{path}: not a plain .npz of arrays (pickled objects are refused): {exc}") from exc


def _read_npz(path: Path) -> RoutingDataset:
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("scores", "models") if k not in data.files]
        if missing:
            raise InputError(
                f"{path}: needs arrays 'scores' and 'models'; missing {missing} (has {data.files})"
            )
        scores = np.asarray(data["scores"], dtype=np.float64)
        models = tuple(str(m) for m in data["models"])
        if scores.ndim != 2 or scores.shape[1] != len(models):
            raise InputError(f"{path}: 'scores' must be (n_items, {len(models)}), got {scores.shape}")
        n = scores.shape[0]
        tasks = [str(t) for t in data["benchmark"]] if "benchmark" in data.files else [""] * n
        items = [str(i) for i in data["item"]] if "item" in data.files else [str(i) for i in range(n)]
        costs = np.full(scores.shape, np.nan)
        if "costs" in data.files:
            costs = np.broadcast_to(np.asarray(data["costs"], dtype=np.float64), scores.shape).copy()
        prompts = [str(p) for p in data["prompts"]] if "prompts" in data.files else None
    return RoutingDataset(
        models=models,
        scores=scores,
        costs=costs,
        prompts=prompts,
        tasks=tasks,
        ids=[f"{t}/{i}" if t else i for t, i in zip(tasks, items, strict=True)],
    )
