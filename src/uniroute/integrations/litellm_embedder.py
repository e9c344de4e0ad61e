"""Embeddings from any API LiteLLM can call (the ``"litellm"`` embedder).

``get_embedder("litellm", model="text-embedding-3-small")`` builds a
:class:`LiteLLMEmbedder`. The engine finds it through the ``uniroute.embedders``
entry point (importing this module registers it too), never by importing it.

A saved router state records the model name (and ``api_base`` / ``dimensions`` if
given), never credentials. Because it sends every prompt to that endpoint, a
state naming it loads only with ``Router.load(path, allow_network=True)`` or with
the embedder passed (``Router.load(path, embedder=LiteLLMEmbedder(...))``); keys
come from the environment, as LiteLLM reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._optional import require
from ..engine.embedders import Embedder, normalize_rows, register_embedder
from ..exceptions import InputError

BATCH_SIZE = 256
SAVED_KWARGS = ("api_base", "dimensions")
_PROBE_TEXT = "uniroute dimension probe"


class LiteLLMEmbedder(Embedder):
    """Embeds texts with ``litellm.embedding``.

    Parameters
    ----------
    model : str
        A LiteLLM embedding model, e.g. ``"text-embedding-3-small"`` or
        ``"openai/my-model"`` with ``api_base=...``.
    **litellm_kwargs
        Passed to every ``litellm.embedding`` call (``api_base``, ``api_key``,
        ``dimensions``, ``timeout``...). Only ``api_base`` and ``dimensions`` are
        saved with a state; keys come from the environment, as LiteLLM reads them.

    Examples
    --------
    >>> from uniroute import get_embedder
    >>> emb = get_embedder("litellm", model="text-embedding-3-small")
    >>> emb.id
    'litellm:text-embedding-3-small'
    """

    kind = "litellm"

    def __init__(self, model: str | None = None, **litellm_kwargs: Any):
        if not model or not isinstance(model, str):
            raise InputError(
                f"the litellm embedder needs a model name, got {model!r}; "
                "e.g. get_embedder('litellm', model='text-embedding-3-small')"
            )
        self.model = model
        self.litellm_kwargs = litellm_kwargs
        self._dim: int | None = litellm_kwargs.get("dimensions")

    @property
    def id(self) -> str:
        dims = self.litellm_kwargs.get("dimensions")
        return f"litellm:{self.model}" + (f":{dims}" if dims else "")

    @property
    def dim(self) -> int:
        """Vector length; asks the API once (one probe text) if not given as ``dimensions``."""
        if self._dim is None:
            self._dim = int(self._call([_PROBE_TEXT]).shape[1])
        return self._dim

    def to_config(self) -> dict[str, Any]:
        """What a saved state needs to rebuild this embedder (no credentials)."""
        config: dict[str, Any] = {"model": self.model}
        for key in SAVED_KWARGS:
            if self.litellm_kwargs.get(key):
                config[key] = self.litellm_kwargs[key]
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Embedder:
        """Only the model and the saved settings; a state never sets keys or other options."""
        unknown = set(config) - {"model", *SAVED_KWARGS}
        if unknown:
            raise InputError(f"litellm embedder config has unexpected settings {sorted(unknown)}")
        return cls(**config)

    @classmethod
    def uses_network(cls, config: Mapping[str, Any]) -> bool:
        return True

    def _call(self, texts: list[str]) -> np.ndarray:
        litellm: Any = require("litellm", "litellm")  # imported on first call: the module loads without it
        response = litellm.embedding(model=self.model, input=texts, **self.litellm_kwargs)
        rows = sorted(response.data, key=lambda item: item["index"])
        if len(rows) != len(texts):
            raise InputError(
                f"embedding model {self.model!r} returned {len(rows)} vectors for {len(texts)} texts"
            )
        return np.asarray([row["embedding"] for row in rows], dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors of ``texts``, ``BATCH_SIZE`` texts per API call."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [self._call(texts[i : i + BATCH_SIZE]) for i in range(0, len(texts), BATCH_SIZE)]
        out = normalize_rows(np.concatenate(chunks))
        self._dim = int(out.shape[1])
        return out


register_embedder(LiteLLMEmbedder)
