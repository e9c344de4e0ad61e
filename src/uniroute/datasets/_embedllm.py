"""EmbedLLM's long CSV files: one row per (model, prompt)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ._dataset import RoutingDataset
from ._lines import settle
from ._routerbench import bad_bytes, read_csv_text


def load_embedllm(path: str | Path, skip_invalid: bool = False) -> RoutingDataset:
    """EmbedLLM's long CSV: one row per (model, prompt) with a 0/1 ``label``.

    Rows that are not UTF-8 or whose label is not a number in [0, 1] raise one
    :class:`~uniroute.InputError` naming their lines (``skip_invalid=True``:
    dropped with a warning).
    """
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    models: dict[str, int] = {}
    prompts: dict[str, int] = {}
    texts: list[str] = []
    tasks: list[str] = []
    cells: dict[tuple[int, int], float] = {}
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(read_csv_text(path), newline=""))
    need = {"model_id", "prompt_id", "prompt", "label"}
    if not need <= set(reader.fieldnames or []):
        raise InputError(f"{path}: an EmbedLLM CSV needs columns {sorted(need)}; found {reader.fieldnames}")
    first_line = 2
    for row in reader:
        line, first_line = first_line, reader.line_num + 1
        problem = bad_bytes(row)
        try:
            label = float(row["label"])
        except (TypeError, ValueError):
            label, problem = float("nan"), problem or f"label {row['label']!r} is not a number"
        if not problem and not 0.0 <= label <= 1.0:
            problem = f"label {label} is outside [0, 1]"
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        model = row.get("model_name") or row["model_id"]
        j = models.setdefault(model, len(models))
        i = prompts.get(row["prompt_id"])
        if i is None:
            i = prompts[row["prompt_id"]] = len(prompts)
            texts.append(row["prompt"])
            tasks.append(row.get("category") or "")
        cells[(i, j)] = max(label, cells.get((i, j), -np.inf))
    settle(path, problems, skip_invalid, "row")
    if not cells:
        raise InputError(f"{path}: no rows")
    scores = np.full((len(prompts), len(models)), np.nan)
    for (i, j), value in cells.items():
        scores[i, j] = value
    return RoutingDataset(
        models=tuple(models),
        scores=scores,
        costs=np.full(scores.shape, np.nan),
        prompts=texts,
        tasks=tasks,
        ids=list(prompts),
    )
