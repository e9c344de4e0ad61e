"""The generic JSON Lines routing-record format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InputError
from ._dataset import RoutingDataset
from ._lines import read_jsonl


def _given(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when the record leaves it out or gives null (not the text "None")."""
    return default if value is None else value


def _check_record(record: Any) -> tuple[Any, dict[str, float], dict[str, float]]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    prompt = record.get("prompt", record.get("messages"))
    if not isinstance(prompt, (str, list)):
        raise ValueError("needs 'prompt' (a string) or 'messages' (a list)")
    scores = record.get("scores", {})
    costs = record.get("costs", {})
    if not isinstance(scores, dict) or not isinstance(costs, dict):
        raise ValueError("'scores' and 'costs' must be objects {model: number}")
    clean_scores: dict[str, float] = {}
    for model, value in scores.items():
        value = float("nan") if value is None else float(value)
        if not np.isnan(value) and not 0.0 <= value <= 1.0:
            raise ValueError(f"score of {model!r} is {value}, outside [0, 1]")
        clean_scores[model] = value
    clean_costs = {m: float("nan") if v is None else float(v) for m, v in costs.items()}
    negative = next((m for m, v in clean_costs.items() if v < 0), None)
    if negative is not None:
        raise ValueError(f"cost of {negative!r} is {clean_costs[negative]}, negative")
    return prompt, clean_scores, clean_costs


def load_jsonl(path: str | Path, skip_invalid: bool = False) -> RoutingDataset:
    """Read routing records from JSON Lines (see :mod:`uniroute.datasets`).

    Malformed lines raise :class:`~uniroute.InputError` naming their line numbers;
    with ``skip_invalid=True`` they are dropped with a warning instead.
    """
    path = Path(path)
    records = read_jsonl(path, lambda raw, number: (number, raw, *_check_record(raw)), skip_invalid)
    if not records:
        raise InputError(f"{path}: no valid record")
    models = tuple(dict.fromkeys(m for r in records for m in r[3]))
    index = {m: j for j, m in enumerate(models)}
    scores = np.full((len(records), len(models)), np.nan)
    costs = np.full((len(records), len(models)), np.nan)
    for i, (_, _, _, s, c) in enumerate(records):
        for m, v in s.items():
            scores[i, index[m]] = v
        for m, v in c.items():
            if m in index:
                costs[i, index[m]] = v
    return RoutingDataset(
        models=models,
        scores=scores,
        costs=costs,
        prompts=[r[2] for r in records],
        tasks=[str(_given(r[1].get("task"), "")) for r in records],
        ids=[str(_given(raw.get("id"), n)) for n, raw, *_ in records],
    )
