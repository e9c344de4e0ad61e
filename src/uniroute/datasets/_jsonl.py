"""The generic JSON Lines routing-record format."""

from __future__ import annotations

from array import array
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


class _Columns:
    """``{model: value}`` records as flat buffers, a column per model in order of first appearance.

    A results file has a value per model on every line: kept as parsed (a dict per line
    and model), 200,000 lines of 50 models took 3 GB; here a value takes 12 bytes.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.counts = array("q")
        self.columns = array("i")
        self.values = array("d")

    def add(self, values: dict[str, float]) -> None:
        """The next row's values."""
        self.counts.append(len(values))
        for model, value in values.items():
            self.columns.append(self.index.setdefault(model, len(self.index)))
            self.values.append(value)

    def matrix(self, models: dict[str, int]) -> np.ndarray:
        """(rows, len(models)), NaN where a row has no value; models not in ``models`` left out."""
        out = np.full((len(self.counts), len(models)), np.nan)
        column = np.array([models.get(m, -1) for m in self.index], dtype=np.intp)
        rows = np.repeat(np.arange(len(self.counts)), np.asarray(self.counts))
        columns = column[np.asarray(self.columns)]
        kept = columns >= 0
        out[rows[kept], columns[kept]] = np.asarray(self.values)[kept]
        return out


def load_jsonl(path: str | Path, skip_invalid: bool = False) -> RoutingDataset:
    """Read routing records from JSON Lines (see :mod:`uniroute.datasets`).

    Malformed lines raise :class:`~uniroute.InputError` naming their line numbers;
    with ``skip_invalid=True`` they are dropped with a warning instead.
    """
    path = Path(path)
    prompts: list[Any] = []
    tasks: list[str] = []
    ids: list[str] = []
    scores, costs = _Columns(), _Columns()

    def keep(raw: Any, number: int) -> None:
        """One line's record into the columns (nothing kept of a line ``_check_record`` refuses)."""
        prompt, line_scores, line_costs = _check_record(raw)
        task, name = str(_given(raw.get("task"), "")), str(_given(raw.get("id"), number))
        prompts.append(prompt)
        tasks.append(task)
        ids.append(name)
        scores.add(line_scores)
        costs.add(line_costs)

    read_jsonl(path, keep, skip_invalid)
    if not prompts:
        raise InputError(f"{path}: no valid record")
    return RoutingDataset(
        models=tuple(scores.index),
        scores=scores.matrix(scores.index),
        costs=costs.matrix(scores.index),
        prompts=prompts,
        tasks=tasks,
        ids=ids,
    )
