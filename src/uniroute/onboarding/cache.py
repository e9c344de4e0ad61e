"""The answer cache: an append-only JSONL file per model, so a run resumes without paying twice.

One ``{"key": ..., "response": ..., "cost": ...}`` record a line; the key is
:meth:`~uniroute.onboarding.CallSettings.cache_key`. Opening the cache reads every
complete line; a last line cut short (a crash while writing) is cut off the file
so appends start on a clean line; an unreadable line elsewhere (not JSON, JSON nested
too deeply for Python, or a field of the wrong type) is skipped with a warning and its
prompt called again.

Runs in other processes may share the file (two ``uniroute onboard`` on one cache
directory): opening (the recovery) and each append hold a lock file beside it,
``.<name>.lock``, so a run never takes another's half-written record for a line cut
short, and two records never interleave.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock


def cache_file(model: str, directory: str | Path | None = None) -> Path:
    """Where the answers of ``model`` are cached (default ``<uniroute cache>/onboarding``)."""
    if directory is None:
        from ..engine.embedders import cache_dir

        directory = cache_dir() / "onboarding"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:80]
    return Path(directory) / f"{slug}-{hashlib.sha1(model.encode()).hexdigest()[:8]}.jsonl"


def _readable(record: Any) -> bool:
    """A record the runner and the judges can use: a string key, and a text response, a $ and a usage
    (prompt and completion tokens) that are of their types when present."""
    if not isinstance(record, dict) or not isinstance(record.get("key"), str):
        return False
    usage, cost = record.get("usage"), record.get("cost")
    return (
        isinstance(record.get("response"), (str, type(None)))
        and (cost is None or (type(cost) in (int, float) and math.isfinite(cost)))
        and (
            usage is None
            or (isinstance(usage, list) and len(usage) == 2 and all(type(n) is int for n in usage))
        )
    )


class ResponseCache:
    """Append-only JSONL store of answers (see module doc); a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self.recovered = 0
        self._handle: Any = None
        self._lock = FileLock(self.path.parent / f".{self.path.name}.lock")

    def __enter__(self) -> ResponseCache:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._recover()
            self._handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @staticmethod
    def read(path: Path) -> tuple[dict[str, dict[str, Any]], int]:
        """The records of a cache file and the number of damaged lines, without changing it."""
        records: dict[str, dict[str, Any]] = {}
        bad = 0
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # not JSON, or nested too deeply for Python
                    record = None
                if _readable(record):
                    records[record["key"]] = record
                else:
                    bad += 1
        return records, bad

    def _recover(self) -> None:
        cut = 0
        if self.path.exists():
            data = self.path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                cut = 1
                with self.path.open("r+b") as handle:
                    handle.truncate(end)
        self.records, damaged = self.read(self.path)
        self.recovered = cut + damaged
        if self.recovered:
            warnings.warn(
                f"{self.path}: dropped {self.recovered} damaged line(s) (cut short or unreadable); "
                "those prompts will be called again",
                stacklevel=3,
            )

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def put(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS (under the lock: see module doc)."""
        self.records[record["key"]] = record
        with self._lock:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._handle.flush()
