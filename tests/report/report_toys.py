"""Tiny deterministic routing data for the report tests: three topics, four models with prices."""

from __future__ import annotations

import numpy as np

TEMPLATES = {
    "math": "Arithmetic question: compute {a} plus {b} and answer with the number only.",
    "poetry": "Poetry request: write a short haiku poem about {w}, with vivid imagery.",
    "cooking": "Cooking recipe: how long should I bake {w} bread in the oven at {a} degrees?",
}
WORDS = [
    "autumn",
    "rivers",
    "moon",
    "cats",
    "lanterns",
    "snow",
    "rye",
    "spelt",
    "barley",
    "oats",
    "figs",
    "pears",
]
COSTS = {"big": 0.01, "mathbot": 0.001, "poet": 0.002, "cheap": 0.0001}
SCRIPT = "<script>alert(1)</script>"


def make_topic_prompts(n_per_topic: int = 12) -> tuple[list[str], list[str]]:
    prompts, topics = [], []
    for topic, template in TEMPLATES.items():
        for i in range(n_per_topic):
            prompts.append(template.format(a=10 + 7 * i, b=3 + 5 * i, w=WORDS[i % len(WORDS)]))
            topics.append(topic)
    return prompts, topics


def topic_scores(topics: list[str]) -> dict[str, np.ndarray]:
    t = np.array(topics)
    return {
        "big": np.ones(len(t)),
        "mathbot": (t == "math").astype(float),
        "poet": (t == "poetry").astype(float),
        "cheap": (np.arange(len(t)) % 3 == 0).astype(float),
    }
