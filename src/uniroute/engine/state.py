"""Saving and loading a router: JSON for what a person reads, ``.npz`` for arrays.

Two layouts hold the same content:

* a directory: ``state.json`` plus ``arrays-<sha256>.npz``; ``state.json`` names
  the arrays file and its hash, so a half-written or hand-edited pair is caught;
* a single file ending in ``.npz``, the JSON stored in it as the string ``__state__``.

Every write goes to a temporary file renamed into place, so readers see the old
state or the new one. Arrays load with ``allow_pickle=False``: a state file cannot
run code. ``schema_version`` changes when the layout does; older versions are
read or refused with a message, never misread.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import EmbedderMismatchError, StateError
from .cluster_maps import CLUSTER_MAPS
from .embedders import Embedder, embedder_from_state, embedder_to_state
from .files import atomic_write_bytes
from .profiles import ModelProfile
from .router import Router

SCHEMA_VERSION = 1
FORMAT = "uniroute-router-state"
STATE_JSON = "state.json"


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Uncompressed: the static embedder's 30 MB of vectors take ~9 s to deflate."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _state_content(router: Router) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not router.is_fitted:
        raise StateError("cannot save an unfitted router; call fit first")
    embedder_spec, arrays = embedder_to_state(router.encoder.embedder)
    cmap_spec, cmap_arrays = router.cluster_map.to_state()
    arrays.update({f"cluster_map_{k}": v for k, v in cmap_arrays.items()})
    profiles = list(router.profiles.values())
    n_clusters = len(router.cluster_map.cluster_weights_)
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
        "router": {"unknown_models": router.unknown_models, "prior_strength": router.prior_strength},
        "models": [p.to_dict() for p in profiles],
    }
    return meta, arrays


def save_router(router: Router, path: str | Path) -> Path:
    """Write ``router`` to ``path`` (a directory, or one file if it ends in ``.npz``)."""
    path = Path(path)
    meta, arrays = _state_content(router)
    if path.suffix == ".npz":
        arrays["__state__"] = np.array(json.dumps(meta))
        atomic_write_bytes(path, _npz_bytes(arrays))
        return path
    path.mkdir(parents=True, exist_ok=True)
    blob = _npz_bytes(arrays)
    digest = hashlib.sha256(blob).hexdigest()
    arrays_name = f"arrays-{digest[:16]}.npz"
    atomic_write_bytes(path / arrays_name, blob)
    meta.update(arrays_file=arrays_name, arrays_sha256=digest)
    atomic_write_bytes(path / STATE_JSON, (json.dumps(meta, indent=2) + "\n").encode())
    for old in path.glob("arrays-*.npz"):
        if old.name != arrays_name:
            old.unlink(missing_ok=True)
    return path


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.exists():
        raise StateError(f"no router state at {path}; create one with `uniroute fit` or Router.save")
    try:
        if path.is_dir():
            state_file = path / STATE_JSON
            if not state_file.exists():
                raise StateError(f"{path} is a directory without {STATE_JSON}: not a router state")
            meta = json.loads(state_file.read_text())
            blob = (path / meta["arrays_file"]).read_bytes()
            if hashlib.sha256(blob).hexdigest() != meta["arrays_sha256"]:
                raise StateError(
                    f"{path / meta['arrays_file']} does not match the hash in {state_file}: "
                    "the state was edited or partly copied; save it again"
                )
        else:
            blob = path.read_bytes()
            meta = None
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if meta is None:
            meta = json.loads(str(arrays.pop("__state__")))
    except StateError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        raise StateError(f"cannot read router state {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StateError(f"{path} is not a uniroute router state")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StateError(
            f"{path} has schema_version {version!r}; this uniroute reads {SCHEMA_VERSION}. "
            "Upgrade uniroute, or re-create the state"
        )
    return meta, arrays


def load_router(path: str | Path, embedder: Embedder | None = None) -> Router:
    """Load a router saved by :func:`save_router`.

    ``embedder`` is needed only for embedders a state cannot rebuild (e.g. a
    custom or precomputed one); if given, its id must match the state's.
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
            embedder = embedder_from_state(spec, arrays)
        if embedder is None:
            raise EmbedderMismatchError(
                f"{path} was made with embedder {spec['id']!r}, which a state cannot rebuild; "
                "pass it: Router.load(path, embedder=...)"
            )
        cmap_spec = meta["cluster_map"]
        cmap_cls = CLUSTER_MAPS[cmap_spec["kind"]]
        prefix = "cluster_map_"
        cmap = cmap_cls.from_state(
            cmap_spec["params"], {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        )
        router = Router(embedder, cmap, **meta["router"])
        profiles = [
            ModelProfile(
                name=m["name"],
                error_sums=arrays["profile_error_sums"][i],
                counts=arrays["profile_counts"][i],
                cost=m["cost"],
                prior_strength=m["prior_strength"],
            )
            for i, m in enumerate(meta["models"])
        ]
        router.add_profiles(profiles)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StateError(
            f"router state {path} is incomplete or corrupt: {type(exc).__name__}: {exc}"
        ) from exc
    if embedder.id != spec["id"]:
        raise EmbedderMismatchError(
            f"{path} was made with embedder {spec['id']!r} but rebuilt {embedder.id!r}"
        )
    return router
