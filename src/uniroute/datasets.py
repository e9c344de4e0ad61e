"""Routing data: prompts × models matrices of scores and costs, and their file formats.

Every loader returns a :class:`RoutingDataset`. Formats (``--format`` choices):

``routerbench``
    RouterBench CSV (``prompt`` as a Python list literal, ``<model>`` 0/1 with empty
    cells = missing, ``<model>|total_cost``, ``<model>|model_response``, ``eval_name``).
``jsonl``
    One JSON object a line: ``{"prompt": str, "scores": {model: s in [0, 1]},
    "costs": {model: $}, "task": str}``; ``messages`` (chat format) may replace
    ``prompt``; ``id`` is optional.
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
"""

from __future__ import annotations

import ast
import csv
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .engine.text import Prompt
from .exceptions import InputError

_COST_SUFFIX = "|total_cost"
_RESPONSE_SUFFIX = "|model_response"


@dataclass(frozen=True, eq=False)
class RoutingDataset:
    """Results of several models on the same prompts.

    Attributes
    ----------
    models : tuple of str
    scores : ndarray of shape (n_prompts, n_models)
        In [0, 1]; NaN = no result.
    costs : ndarray of shape (n_prompts, n_models)
        $ per call; NaN = unknown.
    prompts : list of prompts, or None when the data has no text
    tasks : list of str
        Task or benchmark tag per prompt ("" if unknown).
    ids : list of str
    responses : dict of model name to list of str or None, optional
        Recorded answers, where the format has them.
    """

    models: tuple[str, ...]
    scores: np.ndarray
    costs: np.ndarray
    prompts: list[Prompt] | None
    tasks: list[str]
    ids: list[str]
    responses: dict[str, list[str | None]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n, m = len(self.ids), len(self.models)
        if self.scores.shape != (n, m) or self.costs.shape != (n, m):
            raise InputError(f"scores {self.scores.shape} and costs {self.costs.shape} must be ({n}, {m})")
        if len(set(self.models)) != m:
            raise InputError(f"duplicate model names in {self.models}")

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, index: Sequence[int] | np.ndarray) -> RoutingDataset:
        """The dataset restricted to some prompts."""
        index = np.asarray(index, dtype=np.intp)
        return RoutingDataset(
            models=self.models,
            scores=self.scores[index],
            costs=self.costs[index],
            prompts=None if self.prompts is None else [self.prompts[i] for i in index],
            tasks=[self.tasks[i] for i in index],
            ids=[self.ids[i] for i in index],
            responses=None
            if self.responses is None
            else {k: [v[i] for i in index] for k, v in self.responses.items()},
        )

    def select_models(self, names: Sequence[str]) -> RoutingDataset:
        """The dataset restricted to some models, in the order given."""
        missing = [n for n in names if n not in self.models]
        if missing:
            raise InputError(f"unknown model(s) {missing}; the data has {list(self.models)}")
        cols = [self.models.index(n) for n in names]
        return RoutingDataset(
            models=tuple(names),
            scores=self.scores[:, cols],
            costs=self.costs[:, cols],
            prompts=self.prompts,
            tasks=self.tasks,
            ids=self.ids,
            responses=None
            if self.responses is None
            else {n: self.responses[n] for n in names if n in self.responses},
        )

    def mean_costs(self) -> np.ndarray:
        """Mean $ per call of each model over the prompts where it is known."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.where(np.isfinite(self.costs), self.costs, np.nan), axis=0)


def _literal_text(value: str) -> str:
    """RouterBench stores text as a Python list literal holding strings."""
    value = value.strip()
    if not value.startswith("["):
        return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    if isinstance(parsed, (list, tuple)):
        return "\n".join(str(x) for x in parsed)
    return str(parsed)


def _float_or_nan(value: str | None) -> float:
    if value is None or value.strip() == "":
        return float("nan")
    return float(value)


def load_routerbench(path: str | Path) -> RoutingDataset:
    """Read a RouterBench CSV file (see module doc)."""
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "prompt" not in header:
            raise InputError(f"{path}: no 'prompt' column; is this a RouterBench CSV?")
        models = tuple(c[: -len(_COST_SUFFIX)] for c in header if c.endswith(_COST_SUFFIX))
        models = tuple(m for m in models if m in header)
        if not models:
            raise InputError(f"{path}: no '<model>' and '<model>|total_cost' column pairs found")
        prompts, tasks, ids, scores, costs = [], [], [], [], []
        responses: dict[str, list[str | None]] = {m: [] for m in models if m + _RESPONSE_SUFFIX in header}
        for line, row in enumerate(reader, start=2):
            try:
                scores.append([_float_or_nan(row[m]) for m in models])
                costs.append([_float_or_nan(row[m + _COST_SUFFIX]) for m in models])
            except (ValueError, TypeError) as exc:
                raise InputError(f"{path}:{line}: bad score or cost: {exc}") from exc
            prompts.append(_literal_text(row["prompt"]))
            tasks.append(row.get("eval_name") or "")
            ids.append(row.get("sample_id") or str(line - 2))
            for m in responses:
                raw = row.get(m + _RESPONSE_SUFFIX)
                responses[m].append(None if raw in (None, "") else _literal_text(raw))
    return RoutingDataset(
        models=models,
        scores=np.array(scores, dtype=np.float64).reshape(len(ids), len(models)),
        costs=np.array(costs, dtype=np.float64).reshape(len(ids), len(models)),
        prompts=prompts,
        tasks=tasks,
        ids=ids,
        responses=responses or None,
    )


def _check_record(record: Any) -> tuple[Prompt, dict[str, float], dict[str, float]]:
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
    return prompt, clean_scores, clean_costs


def read_jsonl(path: Path, parse: Callable[[Any, int], Any], skip_invalid: bool = False) -> list[Any]:
    """``parse(record, line_number)`` for each non-blank line of a JSON Lines file.

    Lines that are not JSON or that ``parse`` rejects (``ValueError``/``TypeError``)
    raise one :class:`~uniroute.InputError` naming their line numbers, or with
    ``skip_invalid=True`` are dropped with a warning.
    """
    parsed, errors = [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                parsed.append(parse(json.loads(line), number))
            except (ValueError, TypeError) as exc:
                errors.append(f"line {number}: {exc}")
    if errors:
        message = f"{path}: {len(errors)} malformed line(s): " + "; ".join(errors[:10])
        message += " ..." if len(errors) > 10 else ""
        if not skip_invalid:
            raise InputError(message + " (pass skip_invalid=True / --skip-invalid to keep the good lines)")
        warnings.warn(message + "; skipped", stacklevel=3)
    return parsed


def load_jsonl(path: str | Path, skip_invalid: bool = False) -> RoutingDataset:
    """Read routing records from JSON Lines (see module doc).

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
        tasks=[str(r[1].get("task", "")) for r in records],
        ids=[str(raw.get("id", n)) for n, raw, *_ in records],
    )


def load_npz(path: str | Path) -> RoutingDataset:
    """Read a correctness matrix saved with ``numpy.savez`` (see module doc)."""
    from .evaluation.loaders import load_npz as _load

    return _load(path)


def load_embedllm(path: str | Path) -> RoutingDataset:
    """Read one of EmbedLLM's CSV files (see module doc)."""
    from .evaluation.loaders import load_embedllm as _load

    return _load(path)


def load_routereval(path: str | Path, allow_pickle: bool = False, **options: Any) -> RoutingDataset:
    """Read a RouterEval router-dataset pickle (see module doc and :mod:`uniroute.evaluation.loaders`)."""
    from .evaluation.loaders import load_routereval as _load

    return _load(path, allow_pickle=allow_pickle, **options)


LOADERS: dict[str, Callable[..., RoutingDataset]] = {
    "routerbench": load_routerbench,
    "jsonl": load_jsonl,
    "npz": load_npz,
    "embedllm": load_embedllm,
    "routereval": load_routereval,
}
_SUFFIXES = {
    ".csv": "routerbench",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".npz": "npz",
    ".pkl": "routereval",
    ".pickle": "routereval",
}


def load_dataset(path: str | Path, format: str | None = None, **options: Any) -> RoutingDataset:
    """Load routing data, guessing the format from the file name if not given."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if format is None:
        format = _SUFFIXES.get(path.suffix.lower())
        if format == "routerbench" and _csv_header(path) >= {"model_id", "prompt_id", "label"}:
            format = "embedllm"
        if format is None:
            raise InputError(f"cannot tell the format of {path}; pass format= one of {sorted(LOADERS)}")
    if format not in LOADERS:
        raise InputError(f"unknown format {format!r}; choose one of {sorted(LOADERS)}")
    return LOADERS[format](path, **options)


def _csv_header(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return set(next(csv.reader(handle), []))


def concat(datasets: Sequence[RoutingDataset]) -> RoutingDataset:
    """Stack datasets over prompts, keeping the models all of them share."""
    if not datasets:
        raise InputError("nothing to concatenate")
    shared = [m for m in datasets[0].models if all(m in d.models for d in datasets)]
    if not shared:
        raise InputError("the files share no model")
    parts = [d.select_models(shared) for d in datasets]
    has_prompts = all(p.prompts is not None for p in parts)
    has_responses = all(p.responses is not None for p in parts)
    return RoutingDataset(
        models=tuple(shared),
        scores=np.concatenate([p.scores for p in parts]),
        costs=np.concatenate([p.costs for p in parts]),
        prompts=[x for p in parts for x in p.prompts] if has_prompts else None,  # type: ignore[union-attr]
        tasks=[t for p in parts for t in p.tasks],
        ids=[i for p in parts for i in p.ids],
        responses={m: [r for p in parts for r in p.responses[m]] for m in parts[0].responses}  # type: ignore[index,union-attr]
        if has_responses
        else None,
    )


def load_split(
    directory: str | Path, format: str | None = None, **options: Any
) -> tuple[RoutingDataset, RoutingDataset]:
    """Load a directory of ``*train*`` and ``*test*`` files as one (train, test) pair."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of *train* and *test* files")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    train = [p for p in files if "train" in p.name]
    test = [p for p in files if "test" in p.name]
    if not train or not test:
        raise InputError(f"{directory} needs files named *train* and *test*; found {[p.name for p in files]}")
    return (
        concat([load_dataset(p, format, **options) for p in train]),
        concat([load_dataset(p, format, **options) for p in test]),
    )
