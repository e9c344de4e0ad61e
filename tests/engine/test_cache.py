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
