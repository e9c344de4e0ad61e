import copy
import pickle

import numpy as np

from uniroute import CachedEmbedder, HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=16)
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        return super().encode(texts)


def test_memory_cache_skips_repeated_texts_and_is_bounded():
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, maxsize=2)
    first = cached.encode(["a", "b"])
    again = cached.encode(["b", "a"])
    np.testing.assert_array_equal(first[::-1], again)
    assert inner.seen == ["a", "b"]
    cached.encode(["c"])  # evicts "b", the least recently used
    cached.encode(["a", "b"])
    assert inner.seen == ["a", "b", "c", "b"]


def test_duplicate_texts_in_one_call_are_encoded_once():
    inner = CountingEmbedder()
    out = CachedEmbedder(inner).encode(["x", "x", "y"])
    assert inner.seen == ["x", "y"] and out.shape == (3, 16)


def test_disk_cache_survives_a_new_wrapper(tmp_path):
    first = CountingEmbedder()
    vectors = CachedEmbedder(first, directory=tmp_path).encode(["p", "q"])
    second = CountingEmbedder()
    again = CachedEmbedder(second, directory=tmp_path).encode(["q", "p"])
    assert second.seen == []
    np.testing.assert_array_equal(vectors[::-1], again)


def test_cache_copies_and_pickles_with_its_own_lock(tmp_path):
    cached = CachedEmbedder(HashingEmbedder(dim=16), maxsize=8, directory=tmp_path)
    vectors = cached.encode(["a", "b"])
    for clone in (copy.deepcopy(cached), pickle.loads(pickle.dumps(cached))):
        assert clone._lock is not cached._lock and clone.maxsize == 8
        np.testing.assert_array_equal(clone.encode(["a", "b"]), vectors)
        assert set(clone._disk) == set(cached._disk)
