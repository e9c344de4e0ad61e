import json

import numpy as np
import pytest

from uniroute import (
    EmbedderMismatchError,
    HashingEmbedder,
    LearnedClusterMap,
    PrecomputedEmbedder,
    Router,
    StateError,
)

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
    assert meta["schema_version"] == 1 and meta["embedder"]["id"] == "hashing:256:2-4"
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


def test_hand_edited_json_is_caught(toy_router, tmp_path):
    folder = toy_router.save(tmp_path / "dir")
    meta_path = folder / "state.json"
    meta = json.loads(meta_path.read_text())
    meta["models"].append({"name": "ghost", "cost": 1.0, "prior_strength": 4.0})
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StateError, match="incomplete or corrupt"):
        Router.load(folder)
    meta_path.write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        Router.load(folder)
    meta_path.write_text(json.dumps({**meta, "models": meta["models"][:-1], "schema_version": 99}))
    with pytest.raises(StateError, match="schema_version 99"):
        Router.load(folder)


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


def test_unfitted_router_cannot_be_saved(tmp_path):
    with pytest.raises(StateError, match="unfitted"):
        Router(HashingEmbedder()).save(tmp_path / "x")


def test_states_never_need_pickle(toy_router, tmp_path):
    path = toy_router.save(tmp_path / "s.npz")
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
