"""Embedding caches keyed by (embedder id, text hash).

:class:`CachedEmbedder` wraps any embedder: a bounded in-memory LRU for serving
(repeated prompts skip the encoder), and optionally a directory on disk for batch
jobs (evaluation and onboarding re-embed the same thousands of prompts). The disk
cache is a set of ``.npz`` shards, one per call that found new texts; it is read
once when the wrapper is made.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embedders import Embedder, text_key
from .files import atomic_write_npz


class CachedEmbedder:
    """An embedder that remembers what it has encoded.

    Parameters
    ----------
    embedder : Embedder
        The embedder to wrap; its ``id`` keys every entry.
    maxsize : int, default=4096
        Texts kept in memory, least recently used dropped first.
    directory : path, optional
        Keep vectors on disk here as well, under a folder per embedder id.
    """

    def __init__(self, embedder: Embedder, maxsize: int = 4096, directory: Path | str | None = None):
        self.embedder = embedder
        self.maxsize = maxsize
        self.directory = None if directory is None else Path(directory)
        self._start()

    def _start(self) -> None:
        """Empty memory cache, a new lock, and the disk shards read (if any)."""
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._disk: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        if self.directory is not None:
            self._read_disk()

    def __getstate__(self) -> dict[str, Any]:
        """The arguments only: a copy starts with an empty memory cache and its own lock."""
        return {"embedder": self.embedder, "maxsize": self.maxsize, "directory": self.directory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()

    @property
    def id(self) -> str:
        """The wrapped embedder's ``id``."""
        return self.embedder.id

    @property
    def dim(self) -> int:
        """The wrapped embedder's ``dim``."""
        return self.embedder.dim

    def _folder(self) -> Path:
        assert self.directory is not None
        return self.directory / text_key(self.embedder.id)[:16]

    def _read_disk(self) -> None:
        for shard in sorted(self._folder().glob("*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                self._disk.update(zip(data["keys"].tolist(), data["vectors"]))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``, float32 (n, dim): cached ones looked up, the rest embedded in one call."""
        keys = [text_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._memory.get(key)
                if vector is None:
                    vector = self._disk.get(key)
                if vector is not None:
                    found[key] = vector
                    if key in self._memory:
                        self._memory.move_to_end(key)
        todo = {key: text for key, text in zip(keys, texts) if key not in found}
        if todo:
            fresh = self.embedder.encode(list(todo.values()))
            new = dict(zip(todo, fresh))
            found.update(new)
            if self.directory is not None:
                atomic_write_npz(
                    self._folder() / f"{uuid.uuid4().hex}.npz",
                    {"keys": np.array(list(new)), "vectors": fresh},
                )
                with self._lock:
                    self._disk.update(new)
        with self._lock:
            for key in keys:
                self._memory[key] = found[key]
                self._memory.move_to_end(key)
            while len(self._memory) > self.maxsize:
                self._memory.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
