"""The in-memory dataset every loader returns, and operations on it."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import InputError

if TYPE_CHECKING:
    from ..engine.text import Prompt


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
    prompts: Sequence[Prompt] | None
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


def concat(datasets: Sequence[RoutingDataset]) -> RoutingDataset:
    """Stack datasets over prompts, keeping the models all of them share.

    A model's recorded responses are kept if any dataset has them; rows of a dataset
    without them get None (no response), as an empty response cell does.
    """
    if not datasets:
        raise InputError("nothing to concatenate")
    shared = [m for m in datasets[0].models if all(m in d.models for d in datasets)]
    if not shared:
        raise InputError("the files share no model")
    parts = [d.select_models(shared) for d in datasets]
    prompts = [p.prompts for p in parts]
    recorded = [m for m in shared if any(m in (p.responses or {}) for p in parts)]
    return RoutingDataset(
        models=tuple(shared),
        scores=np.concatenate([p.scores for p in parts]),
        costs=np.concatenate([p.costs for p in parts]),
        prompts=None if any(p is None for p in prompts) else [x for p in prompts for x in p or ()],
        tasks=[t for p in parts for t in p.tasks],
        ids=[i for p in parts for i in p.ids],
        responses={
            m: [x for p in parts for x in (p.responses or {}).get(m, [None] * len(p))] for m in recorded
        }
        or None,
    )


def split_by_task(
    data: RoutingDataset, test_fraction: float = 0.2, random_state: int = 0
) -> tuple[RoutingDataset, RoutingDataset]:
    """A random train/test split, stratified by task tag (as RouterEval splits each subtask)."""
    rng = np.random.default_rng(random_state)
    tasks = np.asarray(data.tasks)
    test_mask = np.zeros(len(data), dtype=bool)
    for task in np.unique(tasks):
        idx = rng.permutation(np.flatnonzero(tasks == task))
        test_mask[idx[: round(test_fraction * len(idx))]] = True
    return data.rows(np.flatnonzero(~test_mask)), data.rows(np.flatnonzero(test_mask))


def drop_out_of_range(data: RoutingDataset, path: str | Path, skip_invalid: bool) -> RoutingDataset:
    """Refuse (or, skipping, drop with a warning) rows with a score outside [0, 1] or a negative cost."""
    from ._lines import settle

    with np.errstate(invalid="ignore"):
        bad_score = ((data.scores < 0) | (data.scores > 1) | np.isinf(data.scores)).any(axis=1)
        bad_cost = (data.costs < 0).any(axis=1)
    bad = np.flatnonzero(bad_score | bad_cost)
    problems = [
        f"item {data.ids[i]}: " + ("a score outside [0, 1]" if bad_score[i] else "a negative cost")
        for i in bad
    ]
    settle(path, problems, skip_invalid, "item")
    return data.rows(np.flatnonzero(~(bad_score | bad_cost))) if len(bad) else data


def prompt_key(prompt: Prompt) -> str:
    """A hashable key equal for equal prompts (strings, bytes or message lists)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, bytes):
        return prompt.decode("utf-8", "replace")
    return json.dumps(prompt, sort_keys=True, default=str)


def unique_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` with repeats renamed: the second ``x`` becomes ``x#2``, the third ``x#3``, ...

    A new name never collides with an id already present (``["x", "x", "x#2"]`` gives
    ``["x", "x#3", "x#2"]``), so the result has no repeats.
    """
    ids = [str(i) for i in ids]
    taken = set(ids)
    count: Counter[str] = Counter()
    out = []
    for original in ids:
        count[original] += 1
        if count[original] == 1:
            out.append(original)
            continue
        n = count[original]
        while f"{original}#{n}" in taken:
            n += 1
        count[original] = n
        taken.add(f"{original}#{n}")
        out.append(f"{original}#{n}")
    return out


def report_duplicates(data: RoutingDataset, source: str) -> RoutingDataset:
    """Warn about repeated ids and prompts; repeated ids get ``#2``, ``#3``, ... so every id is unique.

    Neither is fatal: a result file may legitimately hold the same prompt twice
    (two tasks, two phrasings of a record), and routing does not need ids.
    """
    repeated_ids = [i for i, n in Counter(data.ids).items() if n > 1]
    if repeated_ids:
        warnings.warn(
            f"{source}: {len(repeated_ids)} id(s) occur more than once (e.g. {repeated_ids[:3]}); "
            "renamed the repeats to id#2, id#3, ...",
            stacklevel=3,
        )
        data = replace(data, ids=unique_ids(data.ids))
    if data.prompts is not None:
        counts = Counter(prompt_key(p) for p in data.prompts)
        repeated = {k: n for k, n in counts.items() if n > 1}
        if repeated:
            first = next(iter(repeated))
            warnings.warn(
                f"{source}: {len(repeated)} prompt(s) occur more than once ({sum(repeated.values())} rows, "
                f"e.g. {first[:60]!r}); all kept",
                stacklevel=3,
            )
    return data


def shared_prompts(train: RoutingDataset, test: RoutingDataset) -> int:
    """How many test prompts also appear in train (leakage between the two halves)."""
    if train.prompts is None or test.prompts is None:
        return 0
    seen = {prompt_key(p) for p in train.prompts}
    return sum(prompt_key(p) in seen for p in test.prompts)
