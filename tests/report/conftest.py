"""A tiny deterministic router for the report tests: three topics, three clusters, four models.

``mathbot`` is profiled on the math prompts only, so it lacks validation data in
the other two clusters; ``big`` is right everywhere and the most expensive.
"""

from __future__ import annotations

import numpy as np
import pytest
from report_toys import COSTS, make_topic_prompts, topic_scores

from uniroute import HashingEmbedder, KMeansClusterMap, Router
from uniroute.datasets import RoutingDataset


@pytest.fixture()
def topics_data() -> dict:
    prompts, topics = make_topic_prompts()
    return {"prompts": prompts, "topics": topics, "scores": topic_scores(topics)}


@pytest.fixture()
def report_router(topics_data: dict) -> Router:
    """Fitted with K=3; mathbot profiled on math prompts only."""
    prompts, topics, scores = topics_data["prompts"], topics_data["topics"], topics_data["scores"]
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=3, random_state=0)).fit(prompts)
    math = [i for i, t in enumerate(topics) if t == "math"]
    others = {m: s for m, s in scores.items() if m != "mathbot"}
    router.add_models(prompts, others, {m: COSTS[m] for m in others})
    router.add_model("mathbot", [prompts[i] for i in math], scores["mathbot"][math], cost=COSTS["mathbot"])
    return router


@pytest.fixture()
def report_dataset(topics_data: dict) -> RoutingDataset:
    """The topic prompts with every model's scores: validation data with measured quality."""
    prompts, scores = topics_data["prompts"], topics_data["scores"]
    models = tuple(COSTS)
    return RoutingDataset(
        models=models,
        scores=np.column_stack([scores[m] for m in models]),
        costs=np.tile([COSTS[m] for m in models], (len(prompts), 1)),
        prompts=prompts,
        tasks=list(topics_data["topics"]),
        ids=[str(i) for i in range(len(prompts))],
    )
