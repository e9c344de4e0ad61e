"""Validation sets: the labelled prompts a new model is run on to measure its Ψ.

File format (JSON Lines, one item a line)::

    {"id": "arc-17", "prompt": "Which gas ...? A) ... Answer:", "reference": "B",
     "grader": "multiple_choice", "grader_options": {"choices": "ABCD"}, "task": "arc-challenge"}

``messages`` (OpenAI chat format) may replace ``prompt``; ``reference`` may be a
list of acceptable answers, or absent for graders that need none (``regex``
without a group to compare, ``llm_judge``); ``grader_options``, ``task`` and
``id`` are optional. Malformed lines are reported with their line numbers.

:func:`build_validation` makes such a set from routing data that recorded the
models' answers (RouterBench): the reference of a prompt is the answer most of
the models *labelled correct* gave (a prompt no model got right has none and is
left out), and prompts are sampled per cluster of the router so that every
cluster is covered — Ψ is only as good as its per-cluster counts.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..datasets import RoutingDataset, read_jsonl, unique_ids
from ..engine.cluster_maps import hard_clusters, sample_per_cluster
from ..engine.files import atomic_write_bytes, refuse_directory
from ..engine.text import Prompt
from ..exceptions import InputError
from .graders import ExtractingGrader, make_grader

if TYPE_CHECKING:
    from ..engine.router import Router


@dataclass(frozen=True)
class ValidationItem:
    """One labelled prompt of a validation set (see module doc for the file format)."""

    prompt: Prompt
    reference: Any
    grader: str
    grader_options: Mapping[str, Any] = field(default_factory=dict)
    task: str = ""
    id: str = ""

    def messages(self) -> list[dict[str, Any]]:
        """The prompt as OpenAI chat messages (a string in a list is a user turn, as for routing)."""
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        if isinstance(self.prompt, (bytes, bytearray)):
            return [{"role": "user", "content": bytes(self.prompt).decode("utf-8", errors="replace")}]
        return [{"role": "user", "content": m} if isinstance(m, str) else dict(m) for m in self.prompt]

    def to_json(self) -> dict[str, Any]:
        """The item as one validation-file record (what :func:`save_validation` writes)."""
        record: dict[str, Any] = {"id": self.id}
        if isinstance(self.prompt, str):
            record["prompt"] = self.prompt
        else:
            record["messages"] = self.messages()
        record.update(reference=self.reference, grader=self.grader, task=self.task)
        if self.grader_options:
            record["grader_options"] = dict(self.grader_options)
        return record


_TEXT_PARTS = ("text", "input_text")
_IMAGE_PARTS = ("image_url", "input_image")


def fetched_parts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """What in ``messages`` other than text and ``data:`` images: each can make LiteLLM or the provider
    fetch a URL (an ``image_url`` at ``https://...``, a file, audio or video by reference).

    A validation file never chooses where anything is sent, so its messages hold text
    (and images inline as ``data:`` URLs) only.
    """
    out = []
    for message in messages:
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            out.append(f"content of type {type(content).__name__}")
            continue
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
                continue
            if kind in _IMAGE_PARTS:
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if isinstance(url, str) and url.startswith("data:"):
                    continue
            out.append(f"a {kind!r} part" if isinstance(kind, str) else "a content part without a type")
    return out


def _parse_item(record: Any, number: int) -> ValidationItem:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if ("prompt" in record) == ("messages" in record):
        raise ValueError("needs exactly one of 'prompt' (a string) or 'messages' (a list)")
    prompt: Any = record.get("prompt", record.get("messages"))
    if "prompt" in record and not isinstance(prompt, str):
        raise ValueError("'prompt' must be a string")
    if "messages" in record and not (
        isinstance(prompt, list) and prompt and all(isinstance(m, dict) and "role" in m for m in prompt)
    ):
        raise ValueError("'messages' must be a non-empty list of {'role': ..., 'content': ...}")
    fetched = fetched_parts(prompt) if "messages" in record else []
    if fetched:
        raise ValueError(
            f"'messages' hold {fetched[0]}: a validation file holds text (and images as data: URLs) only, "
            "since anything else can make LiteLLM or the provider fetch a URL the file chooses"
        )
    grader_name = record.get("grader")
    if not isinstance(grader_name, str):
        raise ValueError("needs 'grader' (a name such as 'multiple_choice', 'exact', 'numeric')")
    options = record.get("grader_options", {})
    if not isinstance(options, dict):
        raise ValueError("'grader_options' must be an object")
    grader = make_grader(grader_name, options)
    reference = record.get("reference")
    grader.check_reference(reference)
    return ValidationItem(
        prompt=prompt,
        reference=reference,
        grader=grader_name,
        grader_options=options,
        task=str(record.get("task", "")),
        id=str(record.get("id", number)),
    )


def load_validation(path: str | Path, skip_invalid: bool = False) -> list[ValidationItem]:
    """Read a validation set; malformed lines raise :class:`~uniroute.InputError` naming them.

    With ``skip_invalid=True`` they are dropped with a warning instead.
    """
    path = Path(path)
    refuse_directory(path, "a validation set (JSONL)")
    if not path.is_file():
        raise InputError(f"no validation file at {path}; make one with `uniroute make-validation`")
    items = read_jsonl(path, _parse_item, skip_invalid)
    if not items:
        raise InputError(f"{path}: no valid validation item")
    ids = unique_ids(item.id for item in items)
    renamed = [f"{item.id!r} -> {new!r}" for item, new in zip(items, ids, strict=True) if item.id != new]
    if renamed:
        warnings.warn(
            f"{path}: {len(renamed)} duplicate id(s) made unique: {', '.join(renamed[:5])}", stacklevel=2
        )
    return [item if item.id == new else replace(item, id=new) for item, new in zip(items, ids, strict=True)]


def save_validation(items: Sequence[ValidationItem], path: str | Path) -> Path:
    """Write items as JSON Lines, atomically."""
    path = Path(path)
    text = "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def consensus_reference(
    dataset: RoutingDataset,
    row: int,
    grader: ExtractingGrader,
    item: ValidationItem,
    exclude: Sequence[str] = (),
) -> Hashable | None:
    """The answer most models labelled correct on ``row`` gave, or None if none did.

    Each recorded answer of a model with score 1 (and not in ``exclude``) is read
    with ``grader.extract``; ties go to the answer seen first.
    """
    if dataset.responses is None:
        raise InputError("the data has no recorded answers (RouterBench '<model>|model_response' columns)")
    votes: Counter[Hashable] = Counter()
    for j, model in enumerate(dataset.models):
        if model in exclude or model not in dataset.responses or dataset.scores[row, j] != 1.0:
            continue
        response = dataset.responses[model][row]
        answer = None if response is None else grader.extract(response, item)
        if answer is not None:
            votes[answer] += 1
    return votes.most_common(1)[0][0] if votes else None


@dataclass
class ValidationReport:
    """What :func:`build_validation` did: per-cluster counts and dropped prompts."""

    n_candidates: int
    n_without_reference: int
    available_per_cluster: np.ndarray | None
    sampled_per_cluster: np.ndarray | None
    not_gradable: Counter[str] = field(default_factory=Counter)
    not_gradable_tasks: Counter[str] = field(default_factory=Counter)

    @property
    def n_not_gradable(self) -> int:
        return sum(self.not_gradable.values())

    def summary(self) -> str:
        lines = [f"{self.n_candidates} prompts considered"]
        if self.n_not_gradable:
            tasks = ", ".join(f"{t or '(no task)'}: {n}" for t, n in self.not_gradable_tasks.most_common())
            reasons = "; ".join(self.not_gradable)
            lines.append(f"{self.n_not_gradable} not gradable by this grader ({tasks}): {reasons}")
        lines.append(
            f"{self.n_without_reference} left out because no model labelled correct gave a readable "
            "answer (so no reference)"
        )
        if self.sampled_per_cluster is not None and self.available_per_cluster is not None:
            lines.append("cluster  available  sampled")
            for k, (a, s) in enumerate(
                zip(self.available_per_cluster, self.sampled_per_cluster, strict=True)
            ):
                lines.append(f"{k:>7}  {int(a):>9}  {int(s):>7}")
            empty = [k for k, s in enumerate(self.sampled_per_cluster) if s == 0]
            if empty:
                lines.append(
                    f"warning: cluster(s) {empty} have no validation prompt; the new model's Ψ there "
                    "falls back to its global error"
                )
        return "\n".join(lines)


def build_validation(
    dataset: RoutingDataset,
    grader: str = "multiple_choice",
    grader_options: Mapping[str, Any] | None = None,
    *,
    router: Router | None = None,
    per_cluster: int | None = None,
    tasks: Sequence[str] | None = None,
    exclude_models: Sequence[str] = (),
    random_state: int = 0,
) -> tuple[list[ValidationItem], ValidationReport]:
    """Make a validation set from routing data with recorded answers (see module doc).

    Parameters
    ----------
    dataset : RoutingDataset
        Needs prompts and recorded responses.
    grader, grader_options
        Written into every item; the grader must extract answers (not ``llm_judge``).
    router : Router, optional
        A fitted router; with ``per_cluster``, up to that many prompts are drawn at
        random from each of its clusters (hard assignment, argmax Φ; for a map that
        averages several, each map's clusters in turn, counting the prompts already
        drawn for another map's cluster).
    per_cluster : int, optional
        Prompts to draw per cluster of ``router``; give both or neither (neither keeps
        every usable prompt).
    tasks : sequence of str, optional
        Keep only prompts of these task tags (e.g. ``["arc-challenge", "winogrande"]``).
    exclude_models : sequence of str
        Models whose answers must not make the reference (the model to onboard).
    random_state : int, default=0
    """
    options = dict(grader_options or {})
    checker = make_grader(grader, options)
    if not isinstance(checker, ExtractingGrader):
        raise InputError(
            f"grader {grader!r} cannot derive references from recorded answers; use one of "
            "multiple_choice, exact, numeric, regex"
        )
    if dataset.prompts is None:
        raise InputError("the data has no prompt text; a validation set needs prompts")
    if (per_cluster is None) != (router is None):
        raise InputError(
            "give both a router and per_cluster (CLI: --state and --per-cluster) to sample per cluster, "
            "or neither"
        )
    if per_cluster is not None and per_cluster < 1:
        raise InputError(f"per_cluster must be >= 1, got {per_cluster}")
    rows = np.arange(len(dataset))
    if tasks:
        known = set(dataset.tasks)
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise InputError(f"unknown task(s) {unknown}; the data has {sorted(known)}")
        rows = rows[np.isin(np.array(dataset.tasks), list(tasks))]
    ids = unique_ids(dataset.ids)
    candidates: list[ValidationItem] = []
    report = ValidationReport(len(rows), 0, None, None)
    for i in rows:
        item = ValidationItem(dataset.prompts[i], None, grader, options, dataset.tasks[i], ids[i])
        reason = checker.not_gradable(item)
        if reason is not None:
            report.not_gradable[f"{grader}: {reason}"] += 1
            report.not_gradable_tasks[item.task] += 1
            continue
        reference = consensus_reference(dataset, int(i), checker, item, exclude_models)
        if reference is None:
            report.n_without_reference += 1
        else:
            candidates.append(replace(item, reference=reference))
    if router is None or per_cluster is None or not candidates:
        return candidates, report
    phi = router.cluster_probs(router.embed([c.prompt for c in candidates]))
    clusters, n_clusters = hard_clusters(router.cluster_map_, phi), phi.shape[1]
    chosen = sample_per_cluster(clusters, per_cluster, np.random.default_rng(random_state))
    report.available_per_cluster = np.bincount(clusters.ravel(), minlength=n_clusters)
    report.sampled_per_cluster = np.bincount(clusters[chosen].ravel(), minlength=n_clusters)
    return [candidates[i] for i in np.flatnonzero(chosen)], report
