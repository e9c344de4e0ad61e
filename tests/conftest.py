"""Shared fixtures: tiny deterministic routing data and routers built on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest

from uniroute import HashingEmbedder, KMeansClusterMap, Router

TOPICS = {
    "math": "Arithmetic question: compute {a} {op} {b} and answer with the number only.",
    "poetry": "Poetry request: write a short {style} poem about {w}, with vivid imagery.",
}
OPS = ["plus", "minus", "times"]
STYLES = ["haiku", "sonnet", "free verse"]
WORDS = ["autumn", "rivers", "the moon", "old cats", "lanterns", "snow"]


def make_prompts(n_per_topic: int = 30, seed: int = 0) -> tuple[list[str], list[str]]:
    """Prompts from two clearly separated topics, and the topic of each."""
    rng = np.random.default_rng(seed)
    prompts, topics = [], []
    for topic, template in TOPICS.items():
        for i in range(n_per_topic):
            a, b = (int(x) for x in rng.integers(2, 99, size=2))
            prompts.append(
                template.format(a=a, b=b, op=OPS[i % 3], style=STYLES[i % 3], w=WORDS[i % len(WORDS)])
            )
            topics.append(topic)
    return prompts, topics


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process and in the children it starts, however pytest
    was launched: a shell without job control starts a background job with SIGINT ignored, and an
    ignored signal stays ignored in every child, so a Ctrl-C test would wait for its CLI until it
    timed out."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def in_ascii_locale() -> Callable[..., str]:
    """``run(code, *args)``: the standard output of ``python -c code args`` in a child whose locale
    encoding is ASCII (the C locale with UTF-8 mode and locale coercion off), where ``open()``
    without an encoding reads and writes ASCII; fails the test if the child fails."""

    def run(code: str, *args: str) -> str:
        env = os.environ | {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
        out = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    return run


@pytest.fixture(scope="session")
def toy_data() -> dict:
    """Two topics; 'mathbot' is right on math only, 'poet' on poetry only, 'big' on both."""
    prompts, topics = make_prompts()
    is_math = np.array([t == "math" for t in topics])
    scores = {
        "mathbot": is_math.astype(float),
        "poet": (~is_math).astype(float),
        "big": np.ones(len(prompts)),
    }
    costs = {"mathbot": 0.001, "poet": 0.001, "big": 0.01}
    return {"prompts": prompts, "topics": topics, "scores": scores, "costs": costs}


@pytest.fixture()
def toy_router(toy_data: dict) -> Router:
    """A router fitted on the toy data with the hashing embedder and K=2."""
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0))
    router.fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    return router


_LITELLM_CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
    "service_callback",
)


@pytest.fixture(autouse=True)
def _litellm_callbacks_restored() -> Iterator[None]:
    """Each test leaves LiteLLM's global callback lists as it found them.

    A LiteLLM ``Router`` adds its strategy's logger (e.g. cost-based routing's) to
    these module-level lists and never removes it; left there, it handles every
    later test's calls (and logs errors for calls that are not its router's).
    """
    litellm = sys.modules.get("litellm")
    saved = {name: list(getattr(litellm, name, [])) for name in _LITELLM_CALLBACK_LISTS} if litellm else {}
    yield
    for name, callbacks in saved.items():
        if isinstance(getattr(litellm, name, None), list):
            getattr(litellm, name)[:] = callbacks
