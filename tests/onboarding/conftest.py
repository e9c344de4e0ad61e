"""Fixtures: fake LLM servers started and stopped per test, and a small router state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from onboarding_fakes import FakeLLMServer, Script

from uniroute import HashingEmbedder, KMeansClusterMap, Router
from uniroute.onboarding import ValidationItem


@pytest.fixture()
def fake_server() -> Iterator[Callable[[Script], FakeLLMServer]]:
    """Start fake servers with a script; all are stopped at the end of the test."""
    servers: list[FakeLLMServer] = []

    def start(script: Script) -> FakeLLMServer:
        server = FakeLLMServer(script).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture()
def toy_state(tmp_path: Path, toy_data: dict) -> Path:
    """A saved router (hashing embedder, K=2) with 'mathbot', 'poet' and 'big'."""
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0))
    router.fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    return router.save(tmp_path / "state")


@pytest.fixture()
def toy_items(toy_data: dict) -> list[ValidationItem]:
    """Every toy prompt, graded by exact match against "yes"."""
    return [
        ValidationItem(prompt, "yes", "exact", {}, topic, f"toy-{i}")
        for i, (prompt, topic) in enumerate(zip(toy_data["prompts"], toy_data["topics"], strict=True))
    ]
