"""uniroute inside a litellm.Router, offline: mock deployments, a tiny router state.

    python examples/litellm_sdk.py [--embedder hashing|static]

Builds a router state from synthetic validation results (three deployments: a
cheap math model, a cheap poetry model and an expensive all-rounder), installs
it on a litellm.Router whose deployments answer with ``mock_response``, and
prints which deployment each request went to and why. No network, no API key.
``build_demo_router`` is also used by examples/litellm_proxy/make_state.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from uniroute import HashingEmbedder, KMeansClusterMap, Router, get_embedder

MATH = "Arithmetic question: compute {a} {op} {b} and answer with the number only."
POETRY = "Poetry request: write a short {style} poem about {w}, with vivid imagery."
DEPLOYMENTS = {"mathbot": 0.0005, "poet": 0.0005, "big": 0.01}  # profile -> $ per request


def demo_validation_set(n: int = 40, seed: int = 0) -> tuple[list[str], dict[str, np.ndarray]]:
    """Synthetic validation results: each model's score (1 = correct) on each prompt."""
    rng = np.random.default_rng(seed)
    ops, styles, words = (
        ["plus", "minus", "times"],
        ["haiku", "sonnet", "limerick"],
        ["snow", "rivers", "cats"],
    )
    prompts = [MATH.format(a=rng.integers(2, 99), b=rng.integers(2, 99), op=ops[i % 3]) for i in range(n)]
    prompts += [POETRY.format(style=styles[i % 3], w=words[(i // 3) % 3]) for i in range(n)]
    is_math = np.arange(2 * n) < n
    scores = {
        "mathbot": np.where(is_math, rng.random(2 * n) < 0.9, rng.random(2 * n) < 0.2).astype(float),
        "poet": np.where(is_math, rng.random(2 * n) < 0.2, rng.random(2 * n) < 0.85).astype(float),
        "big": (rng.random(2 * n) < 0.95).astype(float),
    }
    return prompts, scores


def build_demo_router(embedder: str = "hashing") -> Router:
    """A fitted router with profiles named after the demo deployments' ids."""
    emb = HashingEmbedder() if embedder == "hashing" else get_embedder(embedder)
    prompts, scores = demo_validation_set()
    router = Router(emb, KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
    router.add_models(prompts, scores, DEPLOYMENTS)
    return router


def model_list() -> list[dict]:
    """One model group, ``demo``, with three mock deployments."""
    return [
        {
            "model_name": "demo",
            "litellm_params": {"model": f"openai/{name}", "api_key": "unused", "mock_response": f"[{name}]"},
            "model_info": {"id": name},
        }
        for name in DEPLOYMENTS
    ]


async def main(embedder: str) -> None:
    import litellm

    from uniroute.integrations.litellm import install

    with tempfile.TemporaryDirectory() as tmp:
        state = build_demo_router(embedder).save(Path(tmp) / "state")
        router = litellm.Router(model_list=model_list(), num_retries=1)
        install(
            router,
            state,
            lam="balanced",
            operating_points={"best": 0.0, "balanced": 30.0, "cheapest": 1000.0},
        )

    requests = [
        ("Arithmetic question: compute 17 times 4 and answer with the number only.", {}),
        ("Poetry request: write a short haiku about rivers, with vivid imagery.", {}),
        ("Poetry request: write a short sonnet about cats.", {"operating_point": "best"}),
        ("Arithmetic question: compute 5 plus 8.", {"lambda": 1000.0, "candidates": ["poet", "big"]}),
        ("", {}),
    ]
    for text, control in requests:
        response = await router.acompletion(
            model="demo",
            messages=[{"role": "user", "content": text}],
            metadata={"uniroute": control} if control else None,
        )
        d = response._hidden_params["uniroute"]
        print(
            f"{text[:40]!r:44} {json.dumps(control):50} -> {d['deployment']:8} rank {d['rank']} "
            f"err {d['expected_error']:.3f} ${d['cost']:.4f} cluster {d['cluster']}"
            + (f" ({d['note']})" if d["note"] else "")
        )
    embedding = await router.aembedding(model="demo", input=["Compute 3 plus 4"], mock_response=[0.1, 0.2])
    print(f"{'embedding: Compute 3 plus 4':95} -> {embedding._hidden_params['uniroute']['deployment']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--embedder", default="hashing", help="hashing (instant) or static (distils once)")
    asyncio.run(main(parser.parse_args().embedder))
