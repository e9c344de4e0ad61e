"""The format registry and the entry points that pick a loader (cheap to import: no numpy)."""

from __future__ import annotations

import csv
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import InputError

if TYPE_CHECKING:
    from ._dataset import RoutingDataset


@dataclass(frozen=True)
class Format:
    """One file format: call it like its loader, ``FORMATS[name](path, **options)``.

    The loader lives in a private module imported on first use.
    """

    name: str
    module: str
    function: str
    suffixes: tuple[str, ...]
    summary: str

    @property
    def loader(self) -> Callable[..., RoutingDataset]:
        return getattr(importlib.import_module(self.module, __package__), self.function)

    def __call__(self, path: str | Path, **options: Any) -> RoutingDataset:
        return self.loader(path, **options)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("routerbench", "._routerbench", "load_routerbench", (".csv",), "RouterBench CSV"),
        Format("jsonl", "._jsonl", "load_jsonl", (".jsonl", ".json"), "JSON Lines routing records"),
        Format("npz", "._npz", "load_npz", (".npz",), "correctness matrix (numpy .npz)"),
        Format("embedllm", "._embedllm", "load_embedllm", (), "EmbedLLM long CSV"),
        Format("routereval", "._routereval", "load_routereval", (".pkl", ".pickle"), "RouterEval pickle"),
    )
}
"""Format name (``--format`` choice) to loader."""


def guess_format(path: str | Path) -> str:
    """The format of a file from its suffix (and, for CSV, its header)."""
    path = Path(path)
    suffix = path.suffix.lower()
    name = next((f.name for f in FORMATS.values() if suffix in f.suffixes), None)
    if name == "routerbench" and _csv_header(path) >= {"model_id", "prompt_id", "label"}:
        name = "embedllm"
    if name is None:
        raise InputError(
            f"cannot tell the format of {path}; pass format= (CLI: --format) one of {sorted(FORMATS)}"
        )
    return name


def _csv_header(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return set(next(csv.reader(handle), []))


def load_dataset(path: str | Path, format: str | None = None, **options: Any) -> RoutingDataset:
    """Load routing data, guessing the format from the file name if not given.

    ``options`` go to the loader (``skip_invalid``; ``allow_pickle`` for RouterEval).
    """
    from ._dataset import report_duplicates

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(
            f"{path} is a directory; give one file of routing results in it "
            "(load_split reads a directory of *train* and *test* files)"
        )
    format = format or guess_format(path)
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {sorted(FORMATS)}")
    return report_duplicates(FORMATS[format](path, **options), str(path))


def load_split(
    directory: str | Path, format: str | None = None, **options: Any
) -> tuple[RoutingDataset, RoutingDataset]:
    """Load a directory of ``*train*`` and ``*test*`` files as one (train, test) pair."""
    from ._dataset import concat

    train, test = _split_files(directory)
    return (
        concat([load_dataset(p, format, **options) for p in train]),
        concat([load_dataset(p, format, **options) for p in test]),
    )


def _split_files(directory: str | Path) -> tuple[list[Path], list[Path]]:
    """The ``*train*`` and ``*test*`` files of a directory (:func:`load_split`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of *train* and *test* files")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    train = [p for p in files if "train" in p.name]
    test = [p for p in files if "test" in p.name]
    if not train or not test:
        raise InputError(f"{directory} needs files named *train* and *test*; found {[p.name for p in files]}")
    return train, test


def data_format(path: str | Path, format: str | None = None) -> str:
    """The format :func:`load_pair` reads ``path`` as: ``format`` if given, else the guessed one.

    For a directory, the guessed format of its ``*train*`` and ``*test*`` files; when they
    differ, their names sorted and joined by ``+`` (each file was read as its own).
    """
    if format is not None:
        return format
    path = Path(path)
    if not path.is_dir():
        return guess_format(path)
    train, test = _split_files(path)
    return "+".join(sorted({guess_format(p) for p in {*train, *test}}))


def has_own_split(data: RoutingDataset) -> bool:
    """True when every id names its split (``train/…``, ``val/…``, ``test/…``, as RouterEval's do)."""
    parts = {i.split("/", 1)[0] for i in data.ids}
    return parts <= {"train", "val", "test"} and {"train", "test"} <= parts


def load_pair(
    path: str | Path,
    format: str | None = None,
    *,
    test_fraction: float = 0.2,
    random_state: int = 0,
    **options: Any,
) -> tuple[RoutingDataset, RoutingDataset]:
    """(train, test) from whatever holds routing data.

    A directory of ``*train*``/``*test*`` files (:func:`load_split`); a file whose
    ids carry their split (RouterEval: ``train/…``, ``val/…`` (joins train),
    ``test/…``); or any other single file, split at random within each task tag
    (``test_fraction`` of each, :func:`split_by_task`).
    """
    from ._dataset import split_by_task

    path = Path(path)
    if path.is_dir():
        return load_split(path, format, **options)
    data = load_dataset(path, format, **options)
    if has_own_split(data):
        test = [k for k, i in enumerate(data.ids) if i.startswith("test/")]
        train = [k for k, i in enumerate(data.ids) if not i.startswith("test/")]
        return data.rows(train), data.rows(test)
    return split_by_task(data, test_fraction, random_state)
