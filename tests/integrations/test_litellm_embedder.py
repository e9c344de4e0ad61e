"""LiteLLMEmbedder against a local OpenAI-compatible embeddings server."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from litellm_fakes import EMBED_DIM, MATH_PROMPT, POETRY_PROMPT, fake_openai_server, fake_vector

from uniroute import EMBEDDERS, InputError, KMeansClusterMap, Router, StateError, get_embedder
from uniroute.engine.embedders import Embedder, normalize_rows
from uniroute.integrations import litellm_embedder
from uniroute.integrations.litellm_embedder import LiteLLMEmbedder

MODEL = "openai/fake-embed"


@pytest.mark.integration
def test_encode_returns_unit_vectors_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"text number {i}" for i in range(5)]
    monkeypatch.setattr(litellm_embedder, "BATCH_SIZE", 2)
    with fake_openai_server() as server:
        emb = LiteLLMEmbedder(MODEL, api_base=server.base_url, api_key="unused")
        out = emb.encode(texts)
        calls = [body for path, body in server.requests if path.endswith("/embeddings")]
        assert emb.encode([]).shape == (0, EMBED_DIM)
    assert out.dtype == np.float32 and out.shape == (5, EMBED_DIM)
    np.testing.assert_allclose(out, normalize_rows(np.array([fake_vector(t) for t in texts])), rtol=1e-6)
    assert [len(c["input"]) for c in calls] == [2, 2, 1]
    assert emb.dim == EMBED_DIM and emb.id == f"litellm:{MODEL}"


def test_registry_and_config() -> None:
    emb = get_embedder(
        "litellm", model=MODEL, api_base="http://127.0.0.1:1/v1", api_key="secret", dimensions=8
    )
    assert isinstance(emb, LiteLLMEmbedder) and isinstance(emb, Embedder) and emb.dim == 8
    assert EMBEDDERS["litellm"] is LiteLLMEmbedder
    assert emb.to_config() == {"model": MODEL, "api_base": "http://127.0.0.1:1/v1", "dimensions": 8}
    assert "secret" not in str(emb.to_config())
    assert pickle.loads(pickle.dumps(emb)).to_config() == emb.to_config()
    with pytest.raises(InputError, match="needs a model name"):
        get_embedder("litellm")
    with pytest.raises(InputError, match="unexpected settings"):
        LiteLLMEmbedder.from_config({"model": MODEL, "api_key": "from-a-file"}, {})


def test_encoding_without_litellm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # The entry point lists "litellm" in every install; None in sys.modules stands in for one without it.
    monkeypatch.setitem(sys.modules, "litellm", None)
    emb = get_embedder("litellm", model=MODEL, dimensions=8)
    with pytest.raises(ImportError, match=r"pip install 'uniroute\[litellm\]'"):
        emb.encode(["a prompt"])


def test_the_engine_finds_the_litellm_embedder_through_its_entry_point() -> None:
    code = (
        "import sys\n"
        "from uniroute.engine.embedders import EMBEDDERS\n"
        "assert 'litellm' in list(EMBEDDERS), sorted(EMBEDDERS)\n"
        "assert 'uniroute.integrations.litellm_embedder' not in sys.modules\n"
        "assert EMBEDDERS['litellm'].__module__ == 'uniroute.integrations.litellm_embedder'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def v1_litellm_state(router: Router, path, api_base: str):
    """A hand-made schema-1 state (uniroute 0.1.0's layout) naming the litellm embedder at ``api_base``."""
    cmap_spec, cmap_arrays = router.cluster_map_.to_state()
    profiles = list(router.profiles.values())
    arrays = {f"cluster_map_{k}": v for k, v in cmap_arrays.items()}
    arrays["profile_error_sums"] = np.stack([p.error_sums for p in profiles])
    arrays["profile_counts"] = np.stack([p.counts for p in profiles])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    blob = buffer.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    path.mkdir()
    (path / f"arrays-{digest[:16]}.npz").write_bytes(blob)
    meta = {
        "format": "uniroute-router-state",
        "schema_version": 1,
        "embedder": {
            "kind": "registry",
            "id": f"litellm:{MODEL}",
            "registry": "litellm",
            "model": MODEL,
            "api_base": api_base,
        },
        "cluster_map": cmap_spec,
        "router": {"unknown_models": "skip", "prior_strength": 4.0},
        "models": [p.to_dict() for p in profiles],
        "arrays_file": f"arrays-{digest[:16]}.npz",
        "arrays_sha256": digest,
    }
    (path / "state.json").write_text(json.dumps(meta))
    return path


@pytest.mark.integration
def test_a_state_naming_a_network_embedder_loads_only_with_consent(
    tmp_path, toy_router, toy_data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: loading a hand-made state, then routing, sent every prompt and the bearer key to its host."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leave")
    with fake_openai_server() as server:
        path = v1_litellm_state(toy_router, tmp_path / "evil", server.base_url)
        with pytest.raises(StateError, match="allow_network=True") as info:
            Router.load(path)
        assert "embedder=" in str(info.value) and server.base_url in str(info.value)
        assert server.requests == []
        trusted = Router.load(path, allow_network=True)
        assert isinstance(trusted.embedder, LiteLLMEmbedder) and trusted.embedder.model == MODEL
        passed = Router.load(path, embedder=LiteLLMEmbedder(MODEL, api_base=server.base_url))
        assert passed.models == toy_router.models and server.requests == []


@pytest.mark.integration
def test_saved_state_rebuilds_the_embedder_and_routes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "unused-local-key")  # the state never holds keys
    prompts = [MATH_PROMPT, POETRY_PROMPT] * 3
    with fake_openai_server() as server:
        emb = LiteLLMEmbedder(MODEL, api_base=server.base_url)
        router = Router(emb, KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
        router.add_models(prompts, {"a": np.ones(6), "b": np.zeros(6)}, {"a": 0.01, "b": 0.001})
        path = router.save(tmp_path / "state")
        loaded = Router.load(path, allow_network=True)
        assert isinstance(loaded.embedder, LiteLLMEmbedder) and loaded.embedder.model == MODEL
        assert loaded.route(MATH_PROMPT).model == router.route(MATH_PROMPT).model == "a"
        np.testing.assert_allclose(
            loaded.route(POETRY_PROMPT).cluster_probs, router.route(POETRY_PROMPT).cluster_probs
        )
