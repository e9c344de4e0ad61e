"""RouterBench's CSV files."""

from __future__ import annotations

import ast
import csv
import io
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ._dataset import RoutingDataset
from ._lines import UTF8_HINT, settle

_COST_SUFFIX = "|total_cost"
_RESPONSE_SUFFIX = "|model_response"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _literal_text(value: str) -> str:
    """RouterBench stores text as a Python list literal holding strings; any other cell is the text itself."""
    value = value.strip()
    if not value.startswith("["):
        return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        # not a literal; "[{{}}]" (a set of a dict), or nesting too deep for Python's parser
        return value
    if isinstance(parsed, (list, tuple)):
        return "\n".join(str(x) for x in parsed)
    return str(parsed)


_BOOLEANS = {"true": 1.0, "false": 0.0}


def _float_or_nan(value: str | None) -> float:
    if value is None or value.strip() == "":
        return float("nan")
    return float(value)


def _score(value: str | None) -> float:
    """A score cell: a number, ``True``/``False`` (a boolean column written by pandas) as 1/0, empty = NaN."""
    boolean = _BOOLEANS.get((value or "").strip().lower())
    return _float_or_nan(value) if boolean is None else boolean


def _half_models(path: Path, header: Sequence[str]) -> None:
    """Refuse a model with a score column but no cost column, or a cost column but no score column.

    Only the format's own sibling columns mark a model (``<model>|model_response``,
    ``<model>|total_cost``), so other extra columns (``oracle_model_to_route_to``, an index) stay ignored.
    """
    columns = set(header)
    costless = [c for c in header if c + _RESPONSE_SUFFIX in columns and c + _COST_SUFFIX not in columns]
    scoreless = [c for c in header if c.endswith(_COST_SUFFIX) and c[: -len(_COST_SUFFIX)] not in columns]
    if costless:
        raise InputError(
            f"{path}: model column(s) {costless} have a '|model_response' column but no cost; add "
            f"{[c + _COST_SUFFIX for c in costless]} ($ per row), or remove the model's columns"
        )
    if scoreless:
        raise InputError(
            f"{path}: cost column(s) {scoreless} have no score column; add "
            f"{[c[: -len(_COST_SUFFIX)] for c in scoreless]} (0/1, empty = missing), or remove them"
        )


def _out_of_range(models: tuple[str, ...], scores: list[float], costs: list[float]) -> str | None:
    """Why a row's scores or costs cannot be results (a score outside [0, 1], a negative cost), or None."""
    for model, score, cost in zip(models, scores, costs, strict=True):
        if not (np.isnan(score) or 0.0 <= score <= 1.0):
            return f"score of {model!r} is {score}, outside [0, 1]"
        if cost < 0:
            return f"cost of {model!r} is {cost}, negative"
    return None


def read_csv_text(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 become lone surrogates, found per row later."""
    return path.read_bytes().decode("utf-8-sig", "surrogateescape")


def bad_bytes(row: dict[str, str | None]) -> str | None:
    """Why a CSV row read by :func:`read_csv_text` is not text, or None."""
    for column, value in row.items():
        match = _ESCAPED_BYTE.search(value or "")
        if match:
            byte = ord(match.group()) - 0xDC00
            return f"column {column!r} is not valid UTF-8 (byte 0x{byte:02x}; {UTF8_HINT})"
    return None


def load_routerbench(path: str | Path, skip_invalid: bool = False) -> RoutingDataset:
    """Read a RouterBench CSV file (see :mod:`uniroute.datasets`).

    A score cell is a number or ``True``/``False`` (any case: 1/0); empty is missing. Rows with
    bytes that are not UTF-8, a score or cost that is not a number, a score outside [0, 1] or a
    negative cost raise one :class:`~uniroute.InputError` naming their lines; with
    ``skip_invalid=True`` they are dropped with a warning. A model with a score column and a
    ``|model_response`` column but no ``|total_cost`` column (or a cost column but no score column)
    is an InputError, not a model silently left out.
    """
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.DictReader(io.StringIO(read_csv_text(path), newline=""))
    header = reader.fieldnames or []
    if "prompt" not in header:
        raise InputError(f"{path}: no 'prompt' column; is this a RouterBench CSV?")
    _half_models(path, header)
    models = tuple(c[: -len(_COST_SUFFIX)] for c in header if c.endswith(_COST_SUFFIX))
    if not models:
        raise InputError(f"{path}: no '<model>' and '<model>|total_cost' column pairs found")
    prompts, tasks, ids, scores, costs, problems = [], [], [], [], [], []
    responses: dict[str, list[str | None]] = {m: [] for m in models if m + _RESPONSE_SUFFIX in header}
    first_line = 2
    for row in reader:
        line, first_line = first_line, reader.line_num + 1
        problem = bad_bytes(row)
        try:
            row_scores = [_score(row[m]) for m in models]
            row_costs = [_float_or_nan(row[m + _COST_SUFFIX]) for m in models]
        except (ValueError, TypeError) as exc:
            problem = problem or f"bad score or cost: {exc}"
        else:
            problem = problem or _out_of_range(models, row_scores, row_costs)
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        scores.append(row_scores)
        costs.append(row_costs)
        prompts.append(_literal_text(row["prompt"]))
        tasks.append(row.get("eval_name") or "")
        ids.append(row.get("sample_id") or str(line - 1))
        for m in responses:
            raw = row.get(m + _RESPONSE_SUFFIX)
            responses[m].append(None if raw in (None, "") else _literal_text(raw))
    settle(path, problems, skip_invalid, "row")
    return RoutingDataset(
        models=models,
        scores=np.array(scores, dtype=np.float64).reshape(len(ids), len(models)),
        costs=np.array(costs, dtype=np.float64).reshape(len(ids), len(models)),
        prompts=prompts,
        tasks=tasks,
        ids=ids,
        responses=responses or None,
    )
