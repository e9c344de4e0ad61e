import copy
import json
import pickle
import subprocess
import sys
import textwrap
import threading
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from uniroute import (
    EMBEDDERS,
    HashingEmbedder,
    KMeansClusterMap,
    PrecomputedEmbedder,
    Router,
    SentenceTransformerEmbedder,
    StateError,
    StaticEmbedder,
    get_embedder,
)
from uniroute.engine import embedders
from uniroute.engine.embedders import (
    Embedder,
    ExternalEmbedder,
    as_embedder,
    embedder_from_state,
    embedder_to_state,
    normalize_rows,
)
from uniroute.exceptions import InputError

WORDS = ["[UNK]", "math", "poem", "add", "two", "numbers", "write", "a", "short", "about", "the", "moon"]


def tiny_static(dim: int = 8, words: list[str] = WORDS) -> StaticEmbedder:
    """A StaticEmbedder over a 12-word WordPiece vocabulary (no model files needed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.random.default_rng(0).normal(size=(len(words), dim)).astype(np.float32)
    return StaticEmbedder(vectors, tokenizer.to_str(), name="tiny")


class PlainEmbedder:
    """A duck-typed embedder as users wrote them for uniroute 0.1 (no base class)."""

    id = "plain-hashing"
    dim = 64

    def encode(self, texts):
        return HashingEmbedder(dim=64).encode(texts)


class NetworkEmbedder(Embedder):
    """Stands for an embedding API: a state naming it must not load silently."""

    kind = "test-network"
    dim = 64

    def __init__(self, url: str):
        self.url = url

    @property
    def id(self) -> str:
        return f"test-network:{self.url}"

    def encode(self, texts):
        return HashingEmbedder(dim=64).encode(texts)

    def to_config(self):
        return {"url": self.url}

    @classmethod
    def uses_network(cls, config):
        return True


def test_hashing_embedder_is_deterministic_and_unit_length():
    emb = HashingEmbedder(dim=64)
    a = emb.encode(["hello world", "bonjour"])
    b = HashingEmbedder(dim=64).encode(["hello world", "bonjour"])
    assert a.dtype == np.float32 and a.shape == (2, 64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_empty_batch_has_the_right_shape():
    assert HashingEmbedder(dim=32).encode([]).shape == (0, 32)
    assert tiny_static().encode([]).shape == (0, 8)


def test_precomputed_embedder_looks_up_and_rejects_unknown_text():
    emb = PrecomputedEmbedder({"a": [3.0, 4.0]}, id="table-1")
    np.testing.assert_allclose(emb.encode(["a"]), [[0.6, 0.8]])
    with pytest.raises(InputError, match="no precomputed vector"):
        emb.encode(["b"])


def test_registry_names_and_unknown_name():
    assert {"static", "minilm", "sentence-transformers", "hashing"} <= set(EMBEDDERS)
    assert all(issubclass(cls, Embedder) for name, cls in EMBEDDERS.items() if name != "litellm")
    assert isinstance(get_embedder("hashing", dim=16), HashingEmbedder)
    with pytest.raises(InputError, match="unknown embedder 'nope'"):
        get_embedder("nope")


def test_every_built_in_embedder_is_a_subclass_with_a_kind():
    for cls in (StaticEmbedder, SentenceTransformerEmbedder, HashingEmbedder):
        assert Embedder in cls.__mro__ and EMBEDDERS[cls.kind] is cls
    assert PrecomputedEmbedder.kind is None  # a state cannot rebuild it: it must be passed back


def test_hashing_embedder_round_trips_through_state():
    spec, arrays = embedder_to_state(HashingEmbedder(dim=48, ngram_range=(3, 5)))
    assert spec == {"kind": "hashing", "id": "hashing:48:3-5", "config": {"dim": 48, "ngram_range": [3, 5]}}
    rebuilt = embedder_from_state(spec, arrays)
    assert rebuilt is not None and rebuilt.id == spec["id"]


def test_static_embedder_round_trips_through_state_as_arrays():
    emb = tiny_static()
    spec, arrays = embedder_to_state(emb)
    assert spec["kind"] == "static" and set(arrays) == {"embedder_vectors", "embedder_tokenizer"}
    assert all(a.dtype != object for a in arrays.values())
    rebuilt = embedder_from_state(spec, arrays)
    assert rebuilt is not None and rebuilt.id == emb.id
    np.testing.assert_array_equal(rebuilt.encode(["add two numbers"]), emb.encode(["add two numbers"]))


def test_external_embedder_cannot_be_rebuilt():
    spec, arrays = embedder_to_state(PrecomputedEmbedder({"a": [1.0]}, id="mine"))
    assert embedder_from_state(spec, arrays) is None


class InstancePlain:
    """Duck-typed with instance attributes, as uniroute 0.1's Protocol accepted."""

    def __init__(self):
        self.id, self.dim = "instance-plain", 4

    def encode(self, texts):
        return np.ones((len(texts), 4), dtype=np.float32) / 2


def test_plain_objects_still_count_as_embedders_and_are_wrapped():
    plain = PlainEmbedder()
    assert isinstance(plain, Embedder) and isinstance(InstancePlain(), Embedder)
    assert not isinstance(object(), Embedder) and not issubclass(PlainEmbedder, Embedder)
    assert as_embedder(InstancePlain()).id == "instance-plain"
    wrapped = as_embedder(plain)
    assert isinstance(wrapped, ExternalEmbedder) and wrapped.id == "plain-hashing" and wrapped.dim == 64
    assert as_embedder(wrapped) is wrapped
    spec, _ = embedder_to_state(plain)
    assert spec == {"kind": "external", "id": "plain-hashing"}
    with pytest.raises(InputError, match="not an embedder"):
        as_embedder(object())


def test_router_with_a_plain_embedder_saves_and_loads_when_passed_back(toy_data, tmp_path):
    router = Router(PlainEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    path = router.save(tmp_path / "plain.npz")
    with pytest.raises(StateError, match="pass it"):
        Router.load(path)
    assert (
        Router.load(path, embedder=PlainEmbedder()).route(toy_data["prompts"][-1], lam=10.0).model == "poet"
    )


def test_a_registered_subclass_is_rebuilt_from_a_state(toy_data, tmp_path, monkeypatch):
    monkeypatch.setattr(embedders, "EMBEDDERS", embedders._Registry(dict(EMBEDDERS._classes)))

    class Doubled(HashingEmbedder):
        kind = "test-doubled"

        @property
        def id(self) -> str:
            return "doubled:" + super().id

    embedders.register_embedder(Doubled)
    assert get_embedder("test-doubled", dim=32).id == "doubled:hashing:32:2-4"
    with pytest.raises(InputError, match="taken"):
        embedders.register_embedder(HashingEmbedder, name="test-doubled")
    router = Router(Doubled(dim=32), KMeansClusterMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    loaded = Router.load(router.save(tmp_path / "doubled"))
    assert (
        type(loaded.embedder) is Doubled and loaded.route(toy_data["prompts"][0], lam=10.0).model == "mathbot"
    )


def test_a_network_embedder_in_a_state_needs_consent(toy_data, tmp_path, monkeypatch):
    monkeypatch.setattr(embedders, "EMBEDDERS", embedders._Registry(dict(EMBEDDERS._classes)))
    embedders.register_embedder(NetworkEmbedder)
    router = Router(NetworkEmbedder("http://127.0.0.1:9"), KMeansClusterMap(n_clusters=2, random_state=0))
    router.fit(toy_data["prompts"]).add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    path = router.save(tmp_path / "net.npz")
    with pytest.raises(StateError, match="allow_network=True") as info:
        Router.load(path)
    assert "embedder=" in str(info.value)
    assert Router.load(path, allow_network=True).embedder.url == "http://127.0.0.1:9"
    assert Router.load(path, embedder=NetworkEmbedder("http://127.0.0.1:9")).is_fitted


def test_entry_points_register_third_party_embedders_without_importing_them(tmp_path, monkeypatch):
    (tmp_path / "thirdparty_emb.py").write_text(
        textwrap.dedent(
            """
            from uniroute import HashingEmbedder

            class ThirdParty(HashingEmbedder):
                kind = "third-party"
            """
        )
    )
    dist = tmp_path / "thirdparty_emb-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-emb\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[uniroute.embedders]\nthird-party = thirdparty_emb:ThirdParty\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = embedders._Registry(dict(EMBEDDERS._classes))
    assert "third-party" in list(registry) and "thirdparty_emb" not in sys.modules
    monkeypatch.setattr(embedders, "EMBEDDERS", registry)
    emb = get_embedder("third-party", dim=16)
    assert type(emb).__name__ == "ThirdParty" and emb.encode(["x y"]).shape == (1, 16)


def test_the_engine_never_imports_the_integrations():
    code = (
        "import sys\n"
        "from uniroute.engine import state\n"
        "from uniroute.engine.embedders import EMBEDDERS, get_embedder\n"
        "names = sorted(EMBEDDERS); get_embedder('hashing').encode(['x'])\n"
        "bad = [m for m in sys.modules if m.startswith(('uniroute.integrations', 'litellm', 'langchain'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    for module in (embedders, sys.modules["uniroute.engine.state"]):
        assert "integrations" not in Path(module.__file__).read_text()


def test_embedders_pickle_and_deepcopy():
    static = tiny_static()
    for emb in (static, HashingEmbedder(dim=32), SentenceTransformerEmbedder("some-model")):
        for clone in (pickle.loads(pickle.dumps(emb)), copy.deepcopy(emb)):
            assert type(clone) is type(emb) and clone.id == emb.id
    clone = pickle.loads(pickle.dumps(static))
    np.testing.assert_array_equal(clone.encode(["write a short poem"]), static.encode(["write a short poem"]))
    assert clone._tokenizer is not static._tokenizer


class _SentenceTransformer5:
    """Stands for a sentence-transformers 5 model: the dimension under its old name only."""

    def __init__(self, path: str, device: str) -> None:
        self.tokenizer = types.SimpleNamespace(truncation_side="right")

    def get_sentence_embedding_dimension(self) -> int:
        return 6


class _SentenceTransformer6(_SentenceTransformer5):
    """sentence-transformers 6 renamed the method; the old name warns (FutureWarning)."""

    def get_embedding_dimension(self) -> int:
        return 6

    def get_sentence_embedding_dimension(self) -> int:
        warnings.warn("renamed to get_embedding_dimension", FutureWarning, stacklevel=2)
        return 6


@pytest.mark.parametrize("model_class", [_SentenceTransformer5, _SentenceTransformer6])
def test_sentence_transformer_dim_uses_the_installed_releases_name(monkeypatch, model_class):
    """Before, ``dim`` (and so encoding no text) called the name sentence-transformers 6 deprecates."""
    fake = types.SimpleNamespace(SentenceTransformer=model_class)
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    emb = SentenceTransformerEmbedder("some-model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert emb.dim == 6
        assert emb.encode([]).shape == (0, 6)


def on_threads(work, n: int, threads: int = 8) -> list:
    """``[work(i) for i in range(n)]`` on ``threads`` threads; the first calls start together."""
    start = threading.Barrier(threads)

    def one(i: int):
        if i < threads:
            start.wait(timeout=120)
        return work(i)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def test_the_distilled_tokenizer_is_read_as_utf8_whatever_the_locale(tmp_path, in_ascii_locale):
    """tokenizer.json is written as UTF-8 (its vocabulary is not ASCII) and was read back in the locale's
    encoding: a UnicodeDecodeError under an ASCII locale, silently other tokens under latin-1."""
    emb = tiny_static(words=[*WORDS, "café"])
    (tmp_path / "tokenizer.json").write_bytes(emb.tokenizer_json.encode())
    np.save(tmp_path / "vectors.npy", emb.vectors)
    code = "import json, sys; from pathlib import Path; from uniroute import StaticEmbedder as S; "
    code += "emb = S.from_local_minilm(directory=Path(sys.argv[1])); "
    code += "print(json.dumps(emb.encode(['caf\\xe9 moon']).tolist()))"
    encoded = json.loads(in_ascii_locale(code, str(tmp_path)))
    np.testing.assert_allclose(encoded, emb.encode(["café moon"]), rtol=1e-6)


def test_static_embedder_encodes_from_many_threads():
    emb = tiny_static()
    texts = [" ".join(WORDS[1 + (i * 7 + j) % 11] for j in range(3 + i % 40)) for i in range(400)]
    got = np.stack(on_threads(lambda i: emb.encode([texts[i]])[0], len(texts)))
    np.testing.assert_array_equal(got, emb.encode(texts))


def test_static_embedder_drops_unknown_tokens_and_empty_texts_are_zero():
    emb = tiny_static()
    out = emb.encode(["", "zzz qqq", "moon zzz"])
    assert not out[0].any() and not out[1].any()
    np.testing.assert_allclose(out[2], normalize_rows(emb.vectors[[WORDS.index("moon")]])[0], rtol=1e-6)


def test_static_embedder_refuses_vectors_that_do_not_fit_the_vocabulary():
    with pytest.raises(InputError, match="one vector per token"):
        StaticEmbedder(np.zeros((3, 4), dtype=np.float32), tiny_static().tokenizer_json)


def test_state_config_is_a_deprecated_alias_of_to_config():
    with pytest.warns(DeprecationWarning, match="to_config"):
        assert HashingEmbedder(dim=8).state_config() == {
            "registry": "hashing",
            "dim": 8,
            "ngram_range": [2, 4],
        }


# ---- the real default embedder (loads the distilled MiniLM: integration) -------------------


@pytest.fixture(scope="module")
def static_state(tmp_path_factory, toy_data):
    """A router on the real default embedder, saved and loaded back (as a server would)."""
    prompts, topics = toy_data["prompts"], toy_data["topics"]
    is_math = np.array([t == "math" for t in topics])
    router = Router("static", KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
    router.add_models(
        prompts, {"mathbot": is_math * 1.0, "poet": ~is_math * 1.0}, {"mathbot": 1.0, "poet": 1.0}
    )
    return Router.load(router.save(tmp_path_factory.mktemp("static") / "state"))


def never_seen(n: int) -> list[str]:
    return [f"Prompt {i}: explain topic {i * 7919 % 1009} in {3 + i % 5} short sentences." for i in range(n)]


def two_topics(n: int, start: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` arithmetic and poetry prompts, alternating, and whether each is arithmetic."""
    prompts = [
        f"Arithmetic question {i}: compute {i} plus {2 * i + 7}."
        if i % 2
        else f"Poetry request {i}: a haiku about {i * 7919 % 1009} cats."
        for i in range(start, start + n)
    ]
    return prompts, np.array([i % 2 for i in range(start, start + n)], dtype=float)


@pytest.fixture(scope="module")
def default_state(tmp_path_factory):
    """A router of all-default parts (static embedder, the map averaging the CV's three best),
    fitted with training scores, saved and loaded back."""
    prompts, math = two_topics(300)
    router = Router().fit(prompts, scores=np.column_stack([math, 1 - math]))
    router.add_models(prompts, {"mathbot": math, "poet": 1 - math}, {"mathbot": 1.0, "poet": 1.0})
    state = Router.load(router.save(tmp_path_factory.mktemp("default") / "state"))
    assert state.cluster_map_.n_maps_ == 3
    return state


@pytest.mark.integration
@pytest.mark.parametrize("fixture", ["static_state", "default_state"])
def test_eight_threads_route_never_seen_prompts_with_the_default_embedder(fixture, request):
    router = request.getfixturevalue(fixture)
    prompts = never_seen(200) + two_topics(200, start=1000)[0]
    chosen = on_threads(lambda i: router.route(prompts[i]).model, len(prompts))
    assert chosen == [d.model for d in router.route_batch(prompts)]
    assert set(chosen) == {"mathbot", "poet"}


@pytest.mark.integration
def test_static_embedder_encodes_as_model2vec_does(static_state):
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    emb = static_state.encoder.embedder
    texts = ["hello world", "", "Arithmetic: 12 + 30?", "ünïcödé ☃ 日本語", "x" * 20000, "word " * 2000]
    model = StaticModel(emb.vectors, Tokenizer.from_str(emb.tokenizer_json), normalize=True, max_length=512)
    expected = normalize_rows(model.encode(texts, use_multiprocessing=False))
    np.testing.assert_allclose(emb.encode(texts), expected, atol=1e-6)
    clone = pickle.loads(pickle.dumps(emb))
    assert clone.id == emb.id and clone.id.startswith("model2vec:minilm-distilled-pca256:")


@pytest.mark.integration
def test_sentence_transformer_embedder_from_many_threads(monkeypatch):
    import sentence_transformers

    loads = []

    class Counted(sentence_transformers.SentenceTransformer):
        def __init__(self, *args, **kwargs):
            loads.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Counted)
    emb = SentenceTransformerEmbedder()
    texts = never_seen(48)
    got = np.stack(on_threads(lambda i: emb.encode([texts[i]])[0], len(texts)))
    assert len(loads) == 1  # 8 threads arriving at once share one load
    expected = emb.encode(texts)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    clone = copy.deepcopy(emb)
    np.testing.assert_allclose(clone.encode(texts[:2]), expected[:2], atol=1e-5)


def test_broken_entry_points_and_unknown_kinds_say_what_to_do(tmp_path, monkeypatch):
    dist = tmp_path / "broken_emb-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-emb\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[uniroute.embedders]\nbroken = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(embedders, "EMBEDDERS", embedders._Registry(dict(EMBEDDERS._classes)))
    with pytest.raises(InputError, match=r"cannot be imported.*ModuleNotFoundError"):
        get_embedder("broken")
    with pytest.raises(StateError, match="no installed package registers"):
        embedder_from_state({"kind": "made-up", "id": "x"}, {})
