import hashlib
import io
import json
import os
import re
import socket
import threading
import zipfile

import numpy as np
import pytest

from uniroute import (
    EmbedderMismatchError,
    HashingEmbedder,
    KMeansClusterMap,
    LearnedClusterMap,
    PrecomputedEmbedder,
    Router,
    StateError,
)
from uniroute.engine import state as state_module

MATH = "Arithmetic question: compute 12 plus 30 and answer with the number only."


@pytest.mark.parametrize("name", ["state", "state.npz"])
def test_save_and_load_reproduce_every_decision(toy_router, toy_data, tmp_path, name):
    path = toy_router.save(tmp_path / name)
    loaded = Router.load(path)
    assert loaded.models == toy_router.models
    for lam in (0.0, 3.0, 1000.0):
        for a, b in zip(
            toy_router.route_batch(toy_data["prompts"], lam), loaded.route_batch(toy_data["prompts"], lam)
        ):
            assert a.model == b.model
            np.testing.assert_allclose(a.scores, b.scores)


def test_directory_state_is_json_plus_npz_and_versioned(toy_router, tmp_path):
    toy_router.save(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "state.json").read_text())
    assert meta["schema_version"] == 5 and meta["embedder"]["id"] == "hashing:256:2-4"
    assert meta["embedder"] == {
        "kind": "hashing",
        "id": "hashing:256:2-4",
        "config": {"dim": 256, "ngram_range": [2, 4]},
    }
    assert {m["name"] for m in meta["models"]} == {"mathbot", "poet", "big"}
    assert sorted(p.suffix for p in (tmp_path / "s").iterdir()) == [".json", ".npz"]
    toy_router.remove_model("big")
    toy_router.save(tmp_path / "s")
    assert len(list((tmp_path / "s").glob("arrays-*.npz"))) == 1
    assert Router.load(tmp_path / "s").models == ("mathbot", "poet")


def test_learned_map_state_round_trips(toy_data, tmp_path):
    y = np.column_stack([toy_data["scores"][m] for m in ("mathbot", "poet")])
    router = Router(HashingEmbedder(), LearnedClusterMap(n_clusters=2, max_iter=30)).fit(
        toy_data["prompts"], y
    )
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    loaded = Router.load(router.save(tmp_path / "learned.npz"))
    np.testing.assert_allclose(router.route(MATH).cluster_probs, loaded.route(MATH).cluster_probs)


def test_missing_truncated_and_edited_states_give_state_errors(toy_router, tmp_path):
    with pytest.raises(StateError, match="no router state"):
        Router.load(tmp_path / "nothing")
    single = toy_router.save(tmp_path / "one.npz")
    single.write_bytes(single.read_bytes()[:200])
    with pytest.raises(StateError, match="cannot read"):
        Router.load(single)
    folder = toy_router.save(tmp_path / "dir")
    arrays = next(folder.glob("arrays-*.npz"))
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(StateError, match="does not match the hash"):
        Router.load(folder)


@pytest.mark.parametrize("inside", ["state.json", "arrays"])
def test_a_file_inside_a_state_directory_names_the_directory(toy_router, tmp_path, inside):
    """`uniroute route STATE/state.json ...` said only "BadZipFile: File is not a zip file"."""
    folder = toy_router.save(tmp_path / "dir")
    path = folder / inside if inside == "state.json" else next(folder.glob("arrays-*.npz"))
    with pytest.raises(
        StateError, match=re.escape(f"is a file inside the router state {folder}; name the directory")
    ):
        Router.load(path)


def test_hand_edited_json_is_caught(toy_router, tmp_path):
    folder = toy_router.save(tmp_path / "dir")
    meta_path = folder / "state.json"
    meta = json.loads(meta_path.read_text())
    meta["models"].append({"name": "ghost", "cost": 1.0, "prior_strength": 4.0})
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StateError, match="state_sha256"):
        Router.load(folder)
    meta_path.write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        Router.load(folder)
    meta_path.write_text(json.dumps({**meta, "models": meta["models"][:-1], "schema_version": 99}))
    with pytest.raises(StateError, match="schema_version 99"):
        Router.load(folder)


@pytest.mark.parametrize("name", ["dir", "one.npz"])
def test_a_plausible_hand_edit_of_the_json_is_caught(toy_router, tmp_path, name):
    """Before: a cheaper price typed into state.json loaded silently and changed every decision."""
    path = toy_router.save(tmp_path / name)

    def cheaper(meta):
        meta["models"][-1]["cost"] = 0.0

    edit_state(path, cheaper, seal=False)
    with pytest.raises(StateError, match="does not match its state_sha256"):
        Router.load(path)


def test_state_from_another_embedder_is_refused(toy_router, tmp_path):
    path = toy_router.save(tmp_path / "s.npz")
    with pytest.raises(EmbedderMismatchError, match="hashing:256:2-4"):
        Router.load(path, embedder=HashingEmbedder(dim=128))


def test_external_embedder_must_be_passed_back(toy_data, tmp_path):
    table = {p: HashingEmbedder().encode([p])[0] for p in toy_data["prompts"]}
    router = Router(PrecomputedEmbedder(table, id="my-table")).fit(toy_data["prompts"])
    path = router.save(tmp_path / "ext.npz")
    with pytest.raises(EmbedderMismatchError, match="pass it"):
        Router.load(path)
    assert Router.load(path, embedder=PrecomputedEmbedder(table, id="my-table")).is_fitted


def _two_wide_router(embedder, cmap):
    """A router whose map was fitted on 2-wide vectors (not its embedder's) and one profile."""
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    router = Router(embedder, cmap).fit_embeddings(X, np.array([[1.0], [1.0], [0.0], [0.0]]))
    router.add_model_prior("m", 0.01, accuracy=0.5)
    return router


@pytest.mark.parametrize(
    "cmap", [KMeansClusterMap(n_clusters=2, random_state=0), LearnedClusterMap(n_clusters=2, max_iter=5)]
)
def test_a_map_fitted_on_vectors_of_another_width_is_refused_at_load(tmp_path, cmap):
    # before: it loaded, and every route then raised "X has 256 columns but the cluster map
    # was fitted on 2; use the embedder the router was fitted with"
    path = _two_wide_router(HashingEmbedder(), cmap).save(tmp_path / "state")
    with pytest.raises(EmbedderMismatchError, match=r"fitted on 2-wide embeddings but embedder 'hashing:256"):
        Router.load(path)


def test_a_precomputed_table_of_another_width_is_refused_at_load(tmp_path):
    table = {"a": [1.0, 0.0], "b": [0.0, 1.0]}
    router = Router(PrecomputedEmbedder(table), KMeansClusterMap(n_clusters=2)).fit(["a", "b"])
    path = router.save(tmp_path / "state")
    assert Router.load(path, embedder=PrecomputedEmbedder(table)).is_fitted
    with pytest.raises(EmbedderMismatchError, match="gives 3-wide vectors"):
        Router.load(path, embedder=PrecomputedEmbedder({"a": [1.0, 0.0, 0.0]}))
    # an empty table knows no width: the state loads and routes embeddings
    loaded = Router.load(path, embedder=PrecomputedEmbedder({}))
    assert loaded.cluster_probs(np.eye(2)).shape == (2, 2)


@pytest.mark.parametrize(
    "cmap",
    [
        KMeansClusterMap(n_clusters=np.int64(2), temperature=np.float32(0.5), random_state=np.int64(0)),
        LearnedClusterMap(n_clusters=np.int64(2), l2=np.float32(1e-5), max_iter=np.int64(5)),
    ],
    ids=["kmeans", "learned"],
)
def test_numpy_scalar_parameters_are_saved_as_numbers(toy_data, tmp_path, cmap):
    # before: TypeError "Object of type int64 is not JSON serializable" (float32 for prior_strength)
    y = np.column_stack([toy_data["scores"][m] for m in ("mathbot", "poet")])
    router = Router(HashingEmbedder(), cmap, prior_strength=np.float32(4.0)).fit(toy_data["prompts"], y)
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    loaded = Router.load(router.save(tmp_path / "state"))
    assert loaded.cluster_map_.get_params() == cmap.get_params() and loaded.prior_strength == 4.0
    np.testing.assert_allclose(router.route(MATH).cluster_probs, loaded.route(MATH).cluster_probs)


def test_unfitted_router_cannot_be_saved(tmp_path):
    with pytest.raises(StateError, match="unfitted"):
        Router(HashingEmbedder()).save(tmp_path / "x")


def test_states_never_need_pickle(toy_router, tmp_path):
    path = toy_router.save(tmp_path / "s.npz")
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)


# ---- helpers that edit a saved state as an attacker or a careless hand would -----------------


def seal(meta):
    """Re-compute the JSON digest, so a test reaches the check after it (no-op before digests existed)."""
    return getattr(state_module, "_sealed", lambda m: m)(meta)


def npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def edit_state(path, change_meta=None, change_arrays=None, seal=True):
    """Apply edits to a saved state in either layout, keeping every hash consistent."""
    seal_fn = globals()["seal"] if seal else (lambda m: m)
    if path.is_dir():
        meta = json.loads((path / "state.json").read_text())
        arrays_path = path / meta["arrays_file"]
        if change_arrays:
            with np.load(arrays_path) as data:
                arrays = {k: data[k] for k in data.files}
            change_arrays(arrays)
            blob = npz_bytes(arrays)
            arrays_path.write_bytes(blob)
            meta["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
        if change_meta:
            change_meta(meta)
        (path / "state.json").write_text(json.dumps(seal_fn({k: v for k, v in meta.items()})))
        return
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__state__")))
    if change_arrays:
        change_arrays(arrays)
    if change_meta:
        change_meta(meta)
    arrays["__state__"] = np.array(json.dumps(seal_fn(meta)))
    path.write_bytes(npz_bytes(arrays))


def load_in_thread(path, timeout=20.0):
    """Load on a thread, so a load that blocks (e.g. on a FIFO) fails the test instead of hanging it."""
    outcome = {}

    def run():
        try:
            outcome["router"] = Router.load(path)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return thread, outcome


# ---- a router state is data, never code or network ---------------------------------------------


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_a_state_never_reads_files_outside_its_directory(toy_router, tmp_path, where):
    folder = toy_router.save(tmp_path / "state")
    meta = json.loads((folder / "state.json").read_text())
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / meta["arrays_file"]).write_bytes((folder / meta["arrays_file"]).read_bytes())
    if where == "symlink":
        (folder / meta["arrays_file"]).unlink()
        (folder / meta["arrays_file"]).symlink_to(outside / meta["arrays_file"])
        name = meta["arrays_file"]
    else:
        name = (
            str(outside / meta["arrays_file"])
            if where == "absolute"
            else f"../elsewhere/{meta['arrays_file']}"
        )
    edit_state(folder, lambda m: m.update(arrays_file=name))
    with pytest.raises(StateError, match=r"inside its own directory|outside"):
        Router.load(folder)


def test_a_fifo_in_a_state_is_refused_without_blocking(toy_router, tmp_path):
    folder = toy_router.save(tmp_path / "state")
    arrays = next(folder.glob("arrays-*.npz"))
    arrays.unlink()
    os.mkfifo(arrays)
    thread, outcome = load_in_thread(folder)
    try:
        assert not thread.is_alive(), "loading a state whose arrays file is a FIFO blocked"
        assert isinstance(outcome.get("error"), StateError) and "FIFO" in str(outcome["error"])
    finally:
        if thread.is_alive():  # release the blocked reader: a writer opens and closes the pipe
            os.close(os.open(arrays, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(10)


def test_a_socket_or_fifo_as_the_single_file_state_is_refused(toy_router, tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    thread, outcome = load_in_thread(fifo)
    try:
        assert not thread.is_alive() and isinstance(outcome.get("error"), StateError)
    finally:
        if thread.is_alive():
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(10)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock.npz"))
        with pytest.raises(StateError, match="socket"):
            Router.load(tmp_path / "sock.npz")


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("one.npz", "profile_counts", np.nan),
        ("dir", "profile_error_sums", np.inf),
        ("one.npz", "cluster_map_cluster_centers", np.nan),
        ("dir", "cluster_map_cluster_weights", -np.inf),
    ],
)
def test_non_finite_arrays_are_refused(toy_router, tmp_path, name, key, value):
    path = toy_router.save(tmp_path / name)

    def poison(arrays):
        arrays[key] = arrays[key].astype(np.float64)
        arrays[key].flat[0] = value

    edit_state(path, change_arrays=poison)
    with pytest.raises(StateError, match=f"{key}.*NaN or infinity"):
        Router.load(path)


@pytest.fixture()
def learned_router(toy_data):
    y = np.column_stack([toy_data["scores"][m] for m in ("mathbot", "poet")])
    router = Router(HashingEmbedder(), LearnedClusterMap(n_clusters=2, max_iter=30)).fit(
        toy_data["prompts"], y
    )
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    return router


@pytest.mark.parametrize(
    "which, key, change",
    [
        # before: these loaded, then every route raised a bare ValueError or IndexError
        ("learned", "cluster_map_intercept", lambda a: a[:1]),
        ("learned", "cluster_map_coef", lambda a: a[:1]),
        ("learned", "cluster_map_coef", lambda a: a[0]),
        # before: these loaded and routed a prompt with no text on a Φ that is no distribution
        ("kmeans", "cluster_map_cluster_weights", lambda a: -a),
        ("kmeans", "cluster_map_cluster_weights", lambda a: a / 4),
        ("learned", "cluster_map_cluster_weights", lambda a: a[::-1] * 3),
        # before: loaded (one number per centre), then every route raised a bare ValueError
        ("kmeans", "cluster_map_cluster_centers", lambda a: a[:, 0]),
    ],
)
def test_a_cluster_map_whose_arrays_disagree_is_refused(
    toy_router, learned_router, tmp_path, which, key, change
):
    router = toy_router if which == "kmeans" else learned_router
    router.remove_model("big")  # the profiles' K must not be what catches it
    path = router.save(tmp_path / "state")
    edit_state(path, change_arrays=lambda arrays: arrays.update({key: change(arrays[key])}))
    with pytest.raises(StateError, match="map's state is inconsistent"):
        Router.load(path)


def test_nan_in_the_json_is_refused(toy_router, tmp_path):
    path = toy_router.save(tmp_path / "state")
    text = (path / "state.json").read_text().replace('"prior_strength": 4.0', '"prior_strength": NaN', 1)
    (path / "state.json").write_text(text)
    with pytest.raises(StateError, match="NaN"):
        Router.load(path)


@pytest.mark.parametrize(
    "option, value", [("feedback_half_life", "x"), ("explore_share", 5.0), ("prior_strength", -1.0)]
)
def test_router_options_out_of_range_are_refused_at_load(toy_router, tmp_path, option, value):
    # before: the state loaded, and the first route or feedback raised (or only warned)
    path = toy_router.save(tmp_path / "state")
    edit_state(path, change_meta=lambda meta: meta["router"].update({option: value}))
    with pytest.raises(StateError, match=option):
        Router.load(path)


def test_deeply_nested_json_is_a_state_error(toy_router, tmp_path):
    path = toy_router.save(tmp_path / "state")
    (path / "state.json").write_text('{"a":' * 200_000 + "1" + "}" * 200_000)
    with pytest.raises(StateError, match="nested too deeply"):
        Router.load(path)


def test_an_array_header_claiming_terabytes_is_a_state_error(toy_router, tmp_path):
    path = toy_router.save(tmp_path / "one.npz")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40, 3)}
    )
    members["profile_counts.npy"] = header.getvalue() + b"\0" * 48
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(StateError, match="claims"):
        Router.load(path)


def test_oversized_files_are_refused_unread(toy_router, tmp_path, monkeypatch):
    path = toy_router.save(tmp_path / "state")
    monkeypatch.setattr(state_module, "MAX_JSON_BYTES", 100)
    with pytest.raises(StateError, match="over the 100 bytes allowed"):
        Router.load(path)


# ---- schema version 1 (uniroute 0.1.0) is still read -------------------------------------------


def write_v1_state(router, path, embedder_spec, embedder_arrays):
    """The layout uniroute 0.1.0 wrote (schema_version 1, no JSON digest), byte for byte in content."""
    cmap_spec, cmap_arrays = router.cluster_map_.to_state()
    profiles = list(router.profiles.values())
    arrays = {**embedder_arrays, **{f"cluster_map_{k}": v for k, v in cmap_arrays.items()}}
    arrays["profile_error_sums"] = np.stack([p.error_sums for p in profiles])
    arrays["profile_counts"] = np.stack([p.counts for p in profiles])
    meta = {
        "format": "uniroute-router-state",
        "schema_version": 1,
        "embedder": embedder_spec,
        "cluster_map": cmap_spec,
        "router": {"unknown_models": router.unknown_models, "prior_strength": router.prior_strength},
        "models": [p.to_dict() for p in profiles],
    }
    if path.suffix == ".npz":
        arrays["__state__"] = np.array(json.dumps(meta))
        path.write_bytes(npz_bytes(arrays))
        return path
    path.mkdir()
    blob = npz_bytes(arrays)
    digest = hashlib.sha256(blob).hexdigest()
    (path / f"arrays-{digest[:16]}.npz").write_bytes(blob)
    meta.update(arrays_file=f"arrays-{digest[:16]}.npz", arrays_sha256=digest)
    (path / "state.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


@pytest.mark.parametrize("name", ["v1", "v1.npz"])
def test_version_1_states_still_load(toy_router, toy_data, tmp_path, name):
    spec = {
        "kind": "registry",
        "id": "hashing:256:2-4",
        "registry": "hashing",
        "dim": 256,
        "ngram_range": [2, 4],
    }
    path = write_v1_state(toy_router, tmp_path / name, spec, {})
    loaded = Router.load(path)
    assert loaded.models == toy_router.models and loaded.embedder.id == "hashing:256:2-4"
    for a, b in zip(
        toy_router.route_batch(toy_data["prompts"], 3.0), loaded.route_batch(toy_data["prompts"], 3.0)
    ):
        assert a.model == b.model


def test_version_1_static_and_external_states_still_load(toy_data, tmp_path):
    from test_embedders import tiny_static

    emb = tiny_static()
    router = Router(emb, KMeansClusterMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    spec = {"kind": "static", "id": emb.id, "name": "tiny"}
    arrays = {"embedder_vectors": emb.vectors, "embedder_tokenizer": np.array(emb.tokenizer_json)}
    loaded = Router.load(write_v1_state(router, tmp_path / "static", spec, arrays))
    assert loaded.embedder.id == emb.id
    np.testing.assert_array_equal(loaded.embed(["add two numbers"]), router.embed(["add two numbers"]))
    external = write_v1_state(router, tmp_path / "ext", {"kind": "external", "id": emb.id}, {})
    with pytest.raises(EmbedderMismatchError, match="pass it"):
        Router.load(external)
    assert Router.load(external, embedder=emb).models == router.models


def test_a_version_1_state_with_a_broken_embedder_spec_is_a_state_error(toy_router, tmp_path):
    """Before: the KeyError of the missing field escaped as a KeyError."""
    path = write_v1_state(toy_router, tmp_path / "broken", {"kind": "static", "id": "model2vec:x:1"}, {})
    with pytest.raises(StateError, match="KeyError"):
        Router.load(path)


def test_read_state_builds_any_router_class(toy_router, toy_data, tmp_path):
    class MyRouter(Router):
        pass

    parts = state_module.read_state(toy_router.save(tmp_path / "s"))
    mine = parts.build(MyRouter)
    assert type(mine) is MyRouter and mine.models == toy_router.models
    assert (
        mine.route(toy_data["prompts"][0], 3.0).model == toy_router.route(toy_data["prompts"][0], 3.0).model
    )


def test_a_hub_model_named_by_a_state_needs_consent(toy_router, tmp_path):
    """Before: a state naming any sentence-transformers model loaded (fetched from the Hub on first use)."""
    spec = {
        "kind": "sentence-transformers",
        "id": "sentence-transformers:someone/model",
        "model": "someone/model",
    }
    path = write_v1_state(toy_router, tmp_path / "hub", spec, {})
    with pytest.raises(StateError, match="allow_network=True") as info:
        Router.load(path)
    assert "'someone/model'" in str(info.value) and "local path" in str(info.value)
    assert Router.load(path, allow_network=True).embedder.model == "someone/model"


def test_load_router_lives_with_the_router_and_the_old_name_warns(toy_router, tmp_path):
    from uniroute.engine.router import load_router

    path = toy_router.save(tmp_path / "s")
    assert load_router(path).models == toy_router.models
    with pytest.warns(DeprecationWarning, match="uniroute.load_router"):
        assert state_module.load_router is load_router


def test_a_save_succeeds_when_the_old_arrays_file_cannot_be_deleted_yet(toy_router, tmp_path, monkeypatch):
    """On Windows a reader holding the previous arrays file open makes its deletion fail with
    PermissionError; the new state is complete by then, so the save must not report a failure."""
    toy_router.save(tmp_path / "s")
    first = next((tmp_path / "s").glob("arrays-*.npz"))
    real_unlink = type(first).unlink

    def held_open(self, missing_ok=False):
        if self.name == first.name:
            raise PermissionError(13, "The process cannot access the file", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(type(first), "unlink", held_open)
    toy_router.remove_model("big")
    toy_router.save(tmp_path / "s")
    assert Router.load(tmp_path / "s").models == ("mathbot", "poet")
    monkeypatch.undo()
    toy_router.save(tmp_path / "s")  # the reader has let go: the next save removes the leftover
    assert not first.exists() and len(list((tmp_path / "s").glob("arrays-*.npz"))) == 1
