"""Saving and loading a router: JSON for what a person reads, ``.npz`` for arrays.

Two layouts hold the same content:

* a directory: ``state.json`` plus ``arrays-<sha256>.npz``; ``state.json`` names
  the arrays file and its hash;
* a single file ending in ``.npz``, the JSON stored in it as the string ``__state__``.

The JSON carries ``state_sha256``, a digest of its own canonical form, so a
half-written, partly copied or hand-edited state is caught (this catches
accidents, it is not a signature).

A router state is data, never code or network. Arrays load with
``allow_pickle=False`` after their headers are checked against their real sizes;
every number must be finite; the only file a state names must be a regular file
inside its directory; file sizes are capped; and a state whose embedder sends
texts over the network (``litellm``) loads only if the caller says so
(``allow_network=True``) or passes the embedder. A state whose cluster map takes
vectors of another width than its embedder gives is refused
(:class:`~uniroute.EmbedderMismatchError`): it could route no request.

Every write goes to a temporary file renamed into place, so readers see the old
state or the new one. ``schema_version`` changes when the layout does; versions 1
(uniroute 0.1.0) and 2 (0.2.0: no feedback, whose settings then take their defaults)
are still read; newer versions are refused with a message, never misread. Version 3
adds the feedback settings under ``"router"`` and the feedback counts; version 4 each
model's price by prompt length (``cost_per_char``, ``mean_chars``, ``max_chars``:
older states price every request at the model's cost); version 5 K-means maps that
average several maps (``map_sizes``, ``map_assignments``, ``map_temperatures``: older
states hold one map).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from ..exceptions import EmbedderMismatchError, InputError, StateError
from .cluster_maps import CLUSTER_MAPS, input_width
from .embedders import embedder_from_state, embedder_to_state
from .feedback import FeedbackLedger
from .files import atomic_write_bytes, read_regular_file
from .profiles import ModelProfile

if TYPE_CHECKING:
    from .router import Router

R = TypeVar("R", bound="Router")

SCHEMA_VERSION = 5
READS = (1, 2, 3, 4, 5)
FORMAT = "uniroute-router-state"
STATE_JSON = "state.json"
MAX_JSON_BYTES = 64 << 20
"""Largest ``state.json`` read (a state with thousands of models is a few MB)."""
MAX_ARRAYS_BYTES = 4 << 30
"""Largest arrays file read, and largest total its arrays may unpack to."""
_ARRAYS_NAME = re.compile(r"arrays-[0-9a-f]{16}\.npz")
FEEDBACK_SETTINGS = (
    "feedback_weight",
    "feedback_half_life",
    "remember_decisions",
    "explore_share",
    "explore_margin",
    "feedback_refresh",
)
"""Router parameters saved under ``"router"`` so a state reloads with the same feedback behaviour;
a state saved before them loads with the defaults."""
FEEDBACK_ARRAYS = ("feedback_error_sums", "feedback_counts", "feedback_at")
_WIDTH_ON_FIRST_USE = frozenset({"sentence-transformers", "litellm"})
"""Embedder kinds that load a model or call an API to know their width: a state made with one is
not asked at load (its first route compares the widths)."""


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Uncompressed: the static embedder's 30 MB of vectors take ~9 s to deflate."""
    buffer = io.BytesIO()
    named: dict[str, Any] = dict(arrays)  # numpy's stubs read **kwargs as its allow_pickle flag
    np.savez(buffer, **named)
    return buffer.getvalue()


def _canonical(meta: Mapping[str, Any]) -> bytes:
    body = {key: value for key, value in meta.items() if key != "state_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _sealed(meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "state_sha256": hashlib.sha256(_canonical(meta)).hexdigest()}


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


def feedback_namespace(router: Router) -> str:
    """The feedback key prefix of a router state: a digest of its embedder id and fitted cluster map.

    Feedback counts are per (model, cluster), so they stay valid while the clusters do: adding a
    model or saving new feedback keeps the namespace, re-fitting (or another embedder) changes it,
    and two states with different clusters never mix their counts in a shared store.
    """
    spec, arrays = router.cluster_map_.to_state()
    return _namespace(router.encoder.embedder.id, spec, arrays)


class FeedbackTarget(NamedTuple):
    """Where the shared feedback of a saved state lives: its namespace, K and half-life."""

    namespace: str
    n_clusters: int
    half_life: float | None


def feedback_target(path: str | Path) -> FeedbackTarget:
    """The :func:`feedback_namespace`, K and ``feedback_half_life`` of the state saved at ``path``.

    Read from the files, without building the state's embedder.
    """
    path = Path(path)
    meta, arrays = _read(path)
    try:
        namespace = _namespace(meta["embedder"]["id"], meta["cluster_map"], _cluster_map_arrays(arrays))
        n_clusters = int(np.asarray(arrays["profile_counts"]).shape[1])
        return FeedbackTarget(namespace, n_clusters, meta["router"].get("feedback_half_life"))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StateError(
            f"router state {path} is incomplete or corrupt: {type(exc).__name__}: {exc}"
        ) from exc


def _namespace(embedder_id: str, cmap_spec: Any, cmap_arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([embedder_id, cmap_spec], sort_keys=True, allow_nan=False).encode())
    for key in sorted(cmap_arrays):
        array = np.ascontiguousarray(cmap_arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _cluster_map_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    prefix = "cluster_map_"
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _state_content(router: Router) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not router.is_fitted:
        raise StateError("cannot save an unfitted router; call fit first")
    embedder_spec, arrays = embedder_to_state(router.encoder.embedder)
    cmap_spec, cmap_arrays = router.cluster_map_.to_state()
    arrays.update({f"cluster_map_{k}": v for k, v in cmap_arrays.items()})
    profiles = list(router.profiles.values())
    n_clusters = len(router.cluster_map_.cluster_weights_)
    arrays["profile_error_sums"] = (
        np.stack([p.error_sums for p in profiles]) if profiles else np.zeros((0, n_clusters))
    )
    arrays["profile_counts"] = (
        np.stack([p.counts for p in profiles]) if profiles else np.zeros((0, n_clusters))
    )
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "embedder": embedder_spec,
        "cluster_map": cmap_spec,
        "router": {
            "unknown_models": router.unknown_models,
            "prior_strength": _plain(router.prior_strength),
            **{name: _plain(getattr(router, name)) for name in FEEDBACK_SETTINGS},
        },
        "models": [p.to_dict() for p in profiles],
    }
    ledger = router.__dict__.get("_feedback")  # the in-memory ledger, if feedback was recorded
    if isinstance(ledger, FeedbackLedger) and ledger.models:
        meta["feedback"], feedback_arrays = ledger.to_state()
        arrays.update(feedback_arrays)
    return meta, arrays


def save_router(router: Router, path: str | Path) -> Path:
    """Write ``router`` to ``path`` (a directory, or one file if it ends in ``.npz``)."""
    return _write(Path(path), *_state_content(router))


def save_feedback(path: str | Path, ledger: FeedbackLedger) -> Path:
    """Replace the feedback saved in the state at ``path`` with ``ledger``'s; nothing else changes.

    For ``uniroute state sync`` (the counts of a shared store written back into a state).
    Written atomically, as :func:`save_router` writes; the state's embedder is not built.
    """
    path = Path(path)
    meta, arrays = _read(path)
    n_clusters = int(np.asarray(arrays["profile_counts"]).shape[1])
    if ledger.n_clusters != n_clusters:
        raise StateError(
            f"the feedback has {ledger.n_clusters} clusters, router state {path} has {n_clusters}: "
            "it belongs to another state (check the namespace)"
        )
    for key in ("arrays_file", "arrays_sha256", "state_sha256", "feedback"):
        meta.pop(key, None)
    for key in FEEDBACK_ARRAYS:
        arrays.pop(key, None)
    if ledger.models:
        meta["feedback"], feedback_arrays = ledger.to_state()
        arrays.update(feedback_arrays)
    meta["schema_version"] = SCHEMA_VERSION
    return _write(path, meta, arrays)


def _write(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    if path.suffix == ".npz":
        arrays["__state__"] = np.array(json.dumps(_sealed(meta), allow_nan=False))
        atomic_write_bytes(path, _npz_bytes(arrays))
        return path
    if path.exists() and not path.is_dir():
        raise StateError(f"{path} is a file; save a state to a directory, or to a file ending in .npz")
    path.mkdir(parents=True, exist_ok=True)
    blob = _npz_bytes(arrays)
    digest = hashlib.sha256(blob).hexdigest()
    arrays_name = f"arrays-{digest[:16]}.npz"
    atomic_write_bytes(path / arrays_name, blob)
    meta.update(arrays_file=arrays_name, arrays_sha256=digest)
    text = json.dumps(_sealed(meta), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(path / STATE_JSON, text.encode())
    for old in path.glob("arrays-*.npz"):
        if old.name != arrays_name:
            # Windows refuses to delete a file a reader has open; the state is saved, a later save removes it
            with contextlib.suppress(PermissionError):
                old.unlink(missing_ok=True)
    return path


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _parse_json(text: str | bytes) -> Any:
    """JSON without NaN/Infinity; nesting too deep for Python is a ValueError."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _check_npz(blob: bytes, where: Path) -> None:
    """Refuse, before numpy allocates anything, arrays whose headers claim more than the file holds."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for info in archive.infolist():
            total += info.file_size
            if total > MAX_ARRAYS_BYTES:
                raise StateError(f"{where} unpacks to over {MAX_ARRAYS_BYTES:,} bytes; not a router state")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=10_000)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=10_000)
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if dtype.hasobject or claimed > info.file_size:
                    raise StateError(
                        f"{where}: array {info.filename!r} claims {claimed:,} bytes of {dtype} "
                        f"in {info.file_size:,} bytes; the file is corrupt or not a router state"
                    )


def _check_finite(arrays: Mapping[str, np.ndarray], where: Path) -> None:
    for key, value in arrays.items():
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise StateError(
                f"{where}: array {key!r} holds NaN or infinity; the state is corrupt, save it again"
            )


def _arrays_path(folder: Path, meta: Mapping[str, Any]) -> Path:
    name = meta.get("arrays_file")
    if not isinstance(name, str) or not _ARRAYS_NAME.fullmatch(name):
        raise StateError(
            f"{folder / STATE_JSON} names arrays file {name!r}; a state names only "
            "'arrays-<16 hex digits>.npz' inside its own directory"
        )
    return folder / name


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.exists():
        raise StateError(f"no router state at {path}; create one with `uniroute fit` or Router.save")
    if (path.name == STATE_JSON or _ARRAYS_NAME.fullmatch(path.name)) and (
        path.parent / STATE_JSON
    ).is_file():
        raise StateError(f"{path} is a file inside the router state {path.parent}; name the directory")
    try:
        if path.is_dir():
            state_file = path / STATE_JSON
            if not state_file.exists():
                raise StateError(f"{path} is a directory without {STATE_JSON}: not a router state")
            meta = _parse_json(read_regular_file(state_file, MAX_JSON_BYTES, inside=path))
            if not isinstance(meta, dict):
                raise StateError(f"{state_file} is not a uniroute router state")
            arrays_file = _arrays_path(path, meta)
            blob = read_regular_file(arrays_file, MAX_ARRAYS_BYTES, inside=path)
            if hashlib.sha256(blob).hexdigest() != meta.get("arrays_sha256"):
                raise StateError(
                    f"{arrays_file} does not match the hash in {state_file}: "
                    "the state was edited or partly copied; save it again"
                )
        else:
            blob = read_regular_file(path, MAX_ARRAYS_BYTES)
            meta = None
        _check_npz(blob, path)
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if meta is None:
            meta = _parse_json(str(arrays.pop("__state__")))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StateError(f"{path} is not a uniroute router state")
        version = meta.get("schema_version")
        if type(version) is not int or version not in READS:
            raise StateError(
                f"{path} has schema_version {version!r}; this uniroute reads {list(READS)}. "
                "Upgrade uniroute, or re-create the state"
            )
        if version >= 2 and meta.get("state_sha256") != hashlib.sha256(_canonical(meta)).hexdigest():
            raise StateError(
                f"the JSON of router state {path} does not match its state_sha256: it was edited "
                "by hand or partly written; save it again with Router.save (or uniroute fit)"
            )
        if version == 1:
            meta = _from_v1(meta)
    except StateError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RecursionError, zipfile.BadZipFile, EOFError) as exc:
        raise StateError(f"cannot read router state {path}: {type(exc).__name__}: {exc}") from exc
    _check_finite(arrays, path)
    return meta, arrays


def _from_v1(meta: dict[str, Any]) -> dict[str, Any]:
    """A version-1 state (uniroute 0.1.0) in the current layout; only the embedder spec changed."""
    old = dict(meta["embedder"])
    kind, spec_id = old.pop("kind"), old.pop("id")
    if kind == "static":
        spec = {"kind": "static", "id": spec_id, "config": {"name": old["name"]}}
    elif kind == "sentence-transformers":
        spec = {"kind": kind, "id": spec_id, "config": {"model": old["model"]}}
    elif kind == "registry":
        spec = {"kind": old.pop("registry"), "id": spec_id, "config": old}
    else:
        spec = {"kind": "external", "id": spec_id}
    return {**meta, "embedder": spec}


@dataclass(frozen=True)
class RouterParts:
    """What a saved state holds, checked and rebuilt: everything a router is made of.

    :func:`read_state` returns it; :meth:`build` makes the router. The state
    module never imports the router module (the router imports this one).
    """

    path: Path
    embedder: Any
    cluster_map: Any
    options: dict[str, Any]
    profiles: list[ModelProfile]
    feedback: FeedbackLedger | None = None

    def build(self, router_cls: type[R]) -> R:
        """``router_cls(embedder, cluster_map, **options)`` with the profiles (and feedback) added."""
        try:
            router = router_cls(self.embedder, self.cluster_map, **self.options)
            router._check_params()
            router.add_profiles(self.profiles)
            if self.feedback is not None:
                router.use_feedback_store(self.feedback)
        except (TypeError, ValueError) as exc:
            raise StateError(
                f"router state {self.path} is incomplete or corrupt: {type(exc).__name__}: {exc}"
            ) from exc
        return router


def read_state(path: str | Path, embedder: Any = None, *, allow_network: bool = False) -> RouterParts:
    """Read and check a saved state; rebuild its embedder, cluster map and profiles.

    ``embedder`` is needed only for embedders a state cannot rebuild (e.g. a
    custom or precomputed one); if given, its id must match the state's.
    ``allow_network``: rebuild an embedder that sends texts over the network
    (``litellm``) from the state; without it such a state raises
    :class:`~uniroute.StateError` unless ``embedder`` is given.
    """
    path = Path(path)
    meta, arrays = _read(path)
    try:
        spec = meta["embedder"]
        if embedder is not None and embedder.id != spec["id"]:
            raise EmbedderMismatchError(
                f"{path} was made with embedder {spec['id']!r}, not {embedder.id!r}; "
                "load it with the same embedder or re-fit the router"
            )
        if embedder is None:
            embedder = embedder_from_state(spec, arrays, allow_network=allow_network)
        if embedder is None:
            raise EmbedderMismatchError(
                f"{path} was made with embedder {spec['id']!r}, which a state cannot rebuild; "
                "pass it: Router.load(path, embedder=...)"
            )
        cmap_spec = meta["cluster_map"]
        cmap = CLUSTER_MAPS[cmap_spec["kind"]].from_state(cmap_spec["params"], _cluster_map_arrays(arrays))
        profiles = [
            ModelProfile(
                name=m["name"],
                error_sums=arrays["profile_error_sums"][i],
                counts=arrays["profile_counts"][i],
                cost=m["cost"],
                prior_strength=m["prior_strength"],
                cost_per_char=m.get("cost_per_char", 0.0),
                mean_chars=m.get("mean_chars", 0.0),
                max_chars=m.get("max_chars", 0.0),
            )
            for i, m in enumerate(meta["models"])
        ]
        if len(profiles) != len(arrays["profile_counts"]):
            raise ValueError(f"{len(profiles)} models but {len(arrays['profile_counts'])} profile rows")
        options = dict(meta["router"])
        feedback = None
        if "feedback" in meta:
            try:
                feedback = FeedbackLedger.from_state(meta["feedback"], arrays)
            except InputError as exc:
                raise StateError(f"router state {path}: {exc}") from exc
            if feedback.n_clusters != len(cmap.cluster_weights_):
                raise StateError(f"router state {path}: feedback has {feedback.n_clusters} clusters; corrupt")
    except StateError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(
            f"router state {path} is incomplete or corrupt: {type(exc).__name__}: {exc}"
        ) from exc
    if embedder.id != spec["id"]:
        raise EmbedderMismatchError(
            f"{path} was made with embedder {spec['id']!r} but rebuilt {embedder.id!r}"
        )
    _check_width(path, embedder, cmap)
    return RouterParts(path, embedder, cmap, options, profiles, feedback)


def _check_width(path: Path, embedder: Any, cmap: Any) -> None:
    """Refuse a map fitted on vectors of another width than the embedder gives: it could route
    no request. An embedder with no vectors yet (an empty precomputed table) is not checked."""
    width = input_width(cmap)
    if width is None or getattr(embedder, "kind", None) in _WIDTH_ON_FIRST_USE:
        return
    dim = int(embedder.dim)
    if dim and dim != width:
        raise EmbedderMismatchError(
            f"router state {path}: its cluster map was fitted on {width}-wide embeddings but embedder "
            f"{embedder.id!r} gives {dim}-wide vectors, so it could route no request; load it with "
            "the embedder whose vectors the map was fitted on (Router.load(path, embedder=...)), or "
            "fit the router again with this embedder (router.fit(prompts)) and save it"
        )


def __getattr__(name: str) -> Any:
    """``load_router`` moved to the router module (the state module never imports it)."""
    if name == "load_router":
        warnings.warn(
            "uniroute.engine.state.load_router is deprecated; use uniroute.load_router or Router.load",
            DeprecationWarning,
            stacklevel=2,
        )
        from .router import load_router

        return load_router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
