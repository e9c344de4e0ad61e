"""RouterEval's router-dataset pickles (trusted files only: unpickling runs code)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InputError
from ._dataset import RoutingDataset, concat, drop_out_of_range


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
        prompts=texts,
        tasks=[""] * len(scores),
        ids=[f"{part}/{i}" for i in range(len(scores))],
    )


def load_routereval(
    path: str | Path,
    allow_pickle: bool = False,
    skip_invalid: bool = False,
    difficulty: str | None = None,
    n_candidates: int | None = None,
    group: str = "strong_to_weak",
) -> RoutingDataset:
    """RouterEval's ``<benchmark>_router_dataset.pkl``.

    Layout: ``{difficulty: {n: {group: {"data", "model"}}}, "prompt": {...}}``.

    Picks one candidate group (default: the largest ``n_candidates`` of
    ``group``). Rows keep their split in their id (``train/…``, ``val/…``,
    ``test/…``); :func:`uniroute.datasets.load_pair` uses it. Rows with a score
    outside [0, 1] raise :class:`~uniroute.InputError` (``skip_invalid=True``:
    dropped with a warning).
    """
    path = Path(path)
    if not allow_pickle:
        raise InputError(
            f"{path} is a pickle; unpickling runs code from the file. Load it only if you trust it: "
            "pass allow_pickle=True (CLI: --allow-pickle)"
        )
    try:
        with path.open("rb") as handle:
            store = pickle.load(handle)
    except (pickle.UnpicklingError, EOFError) as exc:
        raise InputError(
            f"{path} is not a pickle ({type(exc).__name__}: {exc}); RouterEval's files are "
            "<benchmark>_router_dataset.pkl. Is this file in another format (--format)?"
        ) from exc
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
    return drop_out_of_range(concat(parts), path, skip_invalid)
