import numpy as np
import pytest

from uniroute import EMBEDDERS, HashingEmbedder, PrecomputedEmbedder, get_embedder
from uniroute.engine.embedders import embedder_from_state, embedder_to_state
from uniroute.exceptions import InputError


def test_hashing_embedder_is_deterministic_and_unit_length():
    emb = HashingEmbedder(dim=64)
    a = emb.encode(["hello world", "bonjour"])
    b = HashingEmbedder(dim=64).encode(["hello world", "bonjour"])
    assert a.dtype == np.float32 and a.shape == (2, 64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_empty_batch_has_the_right_shape():
    assert HashingEmbedder(dim=32).encode([]).shape == (0, 32)


def test_precomputed_embedder_looks_up_and_rejects_unknown_text():
    emb = PrecomputedEmbedder({"a": [3.0, 4.0]}, id="table-1")
    np.testing.assert_allclose(emb.encode(["a"]), [[0.6, 0.8]])
    with pytest.raises(InputError, match="no precomputed vector"):
        emb.encode(["b"])


def test_registry_names_and_unknown_name():
    assert {"static", "minilm", "sentence-transformers", "litellm", "hashing"} <= set(EMBEDDERS)
    assert isinstance(get_embedder("hashing", dim=16), HashingEmbedder)
    with pytest.raises(InputError, match="unknown embedder 'nope'"):
        get_embedder("nope")


def test_hashing_embedder_round_trips_through_state():
    spec, arrays = embedder_to_state(HashingEmbedder(dim=48, ngram_range=(3, 5)))
    rebuilt = embedder_from_state(spec, arrays)
    assert rebuilt is not None and rebuilt.id == spec["id"]


def test_external_embedder_cannot_be_rebuilt():
    spec, arrays = embedder_to_state(PrecomputedEmbedder({"a": [1.0]}, id="mine"))
    assert embedder_from_state(spec, arrays) is None
