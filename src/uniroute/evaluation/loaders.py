"""Loaders for published routing data that is not in uniroute's own formats.

Registered in :data:`uniroute.datasets.LOADERS` (``npz``, ``embedllm``,
``routereval``); see :mod:`uniroute.datasets` for the formats. Also
:func:`load_eval_data`, which turns whatever ``uniroute eval --data`` points at
into one (train, test) pair.
"""

from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import RoutingDataset, load_dataset, load_split
from ..exceptions import InputError


def load_npz(path: str | Path) -> RoutingDataset:
    """Correctness matrix: ``scores`` (n, m), ``models``, ``benchmark``, ``item``.

    Optional arrays ``costs`` and ``prompts``.
    """
    path = Path(path)
    try:
        return _read_npz(path)
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
        prompts=prompts,  # type: ignore[arg-type]
        tasks=tasks,
        ids=[f"{t}/{i}" if t else i for t, i in zip(tasks, items, strict=True)],
    )


def load_embedllm(path: str | Path) -> RoutingDataset:
    """EmbedLLM's long CSV: one row per (model, prompt) with a 0/1 ``label``."""
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    models: dict[str, int] = {}
    prompts: dict[str, int] = {}
    texts: list[str] = []
    tasks: list[str] = []
    cells: dict[tuple[int, int], float] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        need = {"model_id", "prompt_id", "prompt", "label"}
        if not need <= set(reader.fieldnames or []):
            raise InputError(
                f"{path}: an EmbedLLM CSV needs columns {sorted(need)}; found {reader.fieldnames}"
            )
        for line, row in enumerate(reader, start=2):
            model = row.get("model_name") or row["model_id"]
            j = models.setdefault(model, len(models))
            i = prompts.get(row["prompt_id"])
            if i is None:
                i = prompts[row["prompt_id"]] = len(prompts)
                texts.append(row["prompt"])
                tasks.append(row.get("category") or "")
            try:
                label = float(row["label"])
            except ValueError as exc:
                raise InputError(f"{path}:{line}: label {row['label']!r} is not a number") from exc
            cells[(i, j)] = max(label, cells.get((i, j), -np.inf))
    if not cells:
        raise InputError(f"{path}: no rows")
    scores = np.full((len(prompts), len(models)), np.nan)
    for (i, j), value in cells.items():
        scores[i, j] = value
    return RoutingDataset(
        models=tuple(models),
        scores=scores,
        costs=np.full(scores.shape, np.nan),
        prompts=texts,  # type: ignore[arg-type]
        tasks=tasks,
        ids=list(prompts),
    )


def _routereval_part(store: dict, part: str, scores: Any, models: tuple[str, ...]) -> RoutingDataset:
    scores = np.asarray(scores, dtype=np.float64)
    prompts = store.get("prompt", {}).get(f"{part}_prompt")
    texts = None if prompts is None else [str(p) for p in prompts]
    if texts is not None and len(texts) != len(scores):
        texts = None
    return RoutingDataset(
        models=models,
        scores=scores,
        costs=np.full(scores.shape, np.nan),
        prompts=texts,  # type: ignore[arg-type]
        tasks=[""] * len(scores),
        ids=[f"{part}/{i}" for i in range(len(scores))],
    )


def load_routereval(
    path: str | Path,
    allow_pickle: bool = False,
    difficulty: str | None = None,
    n_candidates: int | None = None,
    group: str = "strong_to_weak",
) -> RoutingDataset:
    """RouterEval's ``<benchmark>_router_dataset.pkl``.

    Layout: ``{difficulty: {n: {group: {"data", "model"}}}, "prompt": {...}}``.

    Picks one candidate group (default: the largest ``n_candidates`` of
    ``group``). Rows keep their split in their id (``train/…``, ``val/…``,
    ``test/…``); :func:`load_eval_data` uses it.
    """
    path = Path(path)
    if not allow_pickle:
        raise InputError(
            f"{path} is a pickle; unpickling runs code from the file. Load it only if you trust it: "
            "pass allow_pickle=True (CLI: --allow-pickle)"
        )
    with path.open("rb") as handle:
        store = pickle.load(handle)
    if not isinstance(store, dict):
        raise InputError(
            f"{path}: expected RouterEval's dict of candidate groups, got {type(store).__name__}"
        )
    choices = [
        (d, n)
        for d in ("easy", "hard")
        if isinstance(store.get(d), dict)
        for n in store[d]
        if (difficulty is None or d == difficulty) and (n_candidates is None or n == n_candidates)
    ]
    if not choices:
        raise InputError(
            f"{path}: no candidate group for difficulty={difficulty!r}, n_candidates={n_candidates!r}"
        )
    d, n = max(choices, key=lambda c: c[1])
    entry = store[d][n].get(group)
    if not entry or not entry.get("data"):
        raise InputError(
            f"{path}: no group {group!r} under {d}/{n}; try all_strong, all_weak or strong_to_weak"
        )
    data = entry["data"]
    raw_models = entry.get("model")
    width = np.asarray(data["test_score"]).shape[1]
    models = (
        tuple(str(m) for m in raw_models)
        if raw_models is not None
        else tuple(f"llm{j}" for j in range(width))
    )
    parts = [
        _routereval_part(store, part, data[f"{part}_score"], models)
        for part in ("train", "val", "test")
        if data.get(f"{part}_score") is not None
    ]
    from ..datasets import concat

    return concat(parts)


def load_eval_data(
    path: str | Path,
    format: str | None = None,
    allow_pickle: bool = False,
    test_fraction: float = 0.2,
    random_state: int = 0,
) -> tuple[RoutingDataset, RoutingDataset]:
    """(train, test) from a directory of ``*train*``/``*test*`` files, a RouterEval pickle
    (its own split; validation joins train) or a single file (random split by task)."""
    from .protocols import holdout_split

    path = Path(path)
    options = {"allow_pickle": allow_pickle} if allow_pickle else {}
    if path.is_dir():
        return load_split(path, format, **options)
    data = load_dataset(path, format, **options)
    parts = {i.split("/", 1)[0] for i in data.ids}
    if parts <= {"train", "val", "test"} and "test" in parts and "train" in parts:
        is_test = np.array([i.startswith("test/") for i in data.ids])
        return data.rows(np.flatnonzero(~is_test)), data.rows(np.flatnonzero(is_test))
    return holdout_split(data, test_fraction, random_state)
