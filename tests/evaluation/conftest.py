"""Tiny routing datasets for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest

from uniroute.datasets import RoutingDataset


def make_prompts(n_per_topic: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    prompts, topics = [], []
    for i in range(n_per_topic):
        a, b = (int(x) for x in rng.integers(2, 99, size=2))
        prompts.append(f"Arithmetic question: compute {a} plus {b} and answer with the number only ({i}).")
        topics.append("math")
    for i in range(n_per_topic):
        word = ["autumn", "rivers", "the moon", "old cats", "lanterns"][i % 5]
        prompts.append(f"Poetry request: write a short poem about {word}, with vivid imagery ({seed}-{i}).")
        topics.append("poetry")
    return prompts, topics


def make_dataset(n_per_topic: int = 30, seed: int = 0, n_models: int = 4) -> RoutingDataset:
    """Math and poetry prompts; model k is right on math if k is even, on poetry if odd; the last on both."""
    prompts, topics = make_prompts(n_per_topic, seed)
    rng = np.random.default_rng(seed)
    is_math = np.array([t == "math" for t in topics])
    cols, costs = [], []
    for k in range(n_models):
        good = is_math if k % 2 == 0 else ~is_math
        if k == n_models - 1:
            good = np.ones_like(is_math)
        noise = rng.random(len(prompts)) < 0.1
        cols.append(np.where(noise, 1.0 - good, good.astype(float)))
        costs.append(np.full(len(prompts), 0.001 * (10 if k == n_models - 1 else 1 + k)))
    return RoutingDataset(
        models=tuple(f"m{k}" for k in range(n_models)),
        scores=np.stack(cols, axis=1),
        costs=np.stack(costs, axis=1),
        prompts=prompts,
        tasks=topics,
        ids=[f"{seed}-{i}" for i in range(len(prompts))],
    )


@pytest.fixture()
def pair() -> tuple[RoutingDataset, RoutingDataset]:
    return make_dataset(30, 0, 5), make_dataset(12, 1, 5)


@pytest.fixture()
def make_data():
    """The dataset factory, for tests that need several shapes."""
    return make_dataset
