"""LiteLLMEmbedder against a local OpenAI-compatible embeddings server."""

from __future__ import annotations

import numpy as np
import pytest
from litellm_fakes import EMBED_DIM, MATH_PROMPT, POETRY_PROMPT, fake_openai_server, fake_vector

from uniroute import InputError, KMeansClusterMap, Router, get_embedder
from uniroute.engine.embedders import normalize_rows
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


def test_registry_and_state_config() -> None:
    emb = get_embedder(
        "litellm", model=MODEL, api_base="http://127.0.0.1:1/v1", api_key="secret", dimensions=8
    )
    assert isinstance(emb, LiteLLMEmbedder) and emb.dim == 8
    assert emb.state_config() == {
        "registry": "litellm",
        "model": MODEL,
        "api_base": "http://127.0.0.1:1/v1",
        "dimensions": 8,
    }
    assert "secret" not in str(emb.state_config())
    with pytest.raises(InputError, match="needs a model name"):
        get_embedder("litellm")


@pytest.mark.integration
def test_saved_state_rebuilds_the_embedder_and_routes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "unused-local-key")  # the state never holds keys
    prompts = [MATH_PROMPT, POETRY_PROMPT] * 3
    with fake_openai_server() as server:
        emb = LiteLLMEmbedder(MODEL, api_base=server.base_url)
        router = Router(emb, KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
        router.add_models(prompts, {"a": np.ones(6), "b": np.zeros(6)}, {"a": 0.01, "b": 0.001})
        path = router.save(tmp_path / "state")
        loaded = Router.load(path)
        assert isinstance(loaded.embedder, LiteLLMEmbedder) and loaded.embedder.model == MODEL
        assert loaded.route(MATH_PROMPT).model == router.route(MATH_PROMPT).model == "a"
        np.testing.assert_allclose(
            loaded.route(POETRY_PROMPT).cluster_probs, router.route(POETRY_PROMPT).cluster_probs
        )
