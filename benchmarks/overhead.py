"""Routing overhead: what uniroute adds in front of every LLM call.

Measures, in one run on this machine:
* the default (static) embedder: route latency for prompts of ~10, 256 and 2,000
  tokens, and its bare encode of the 2,000-token prompt;
* MiniLM (sentence-transformers): route vs its bare encode of the same prompt;
* the engine alone (embeddings given): one decision at 1,000 models × 100 clusters,
  and a batch of 10,000 prompts;
* fitting K-means on 100,000 × 384 embeddings, with the peak memory it allocates
  (tracemalloc, which sees numpy's buffers; the input matrix itself is 146 MiB).

Every timed route uses a prompt never seen before (a unique suffix), so the
embedding cache never answers. Prints a table, then one JSON object as the last
line (``--json``); ``--out FILE`` writes it there too (the committed figures are
``benchmarks/results/overhead.json``).

    python benchmarks/overhead.py --json --out runs/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from uniroute import KMeansClusterMap, ModelProfile, PrecomputedEmbedder, Router, get_embedder
from uniroute.datasets import load_split

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "routerbench"


def percentiles(samples: list[float], scale: float) -> tuple[float, float]:
    arr = np.asarray(samples) * scale
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def prompt_of_tokens(corpus: str, n_tokens: int, tokenizer) -> str:
    """A prefix of real text with about n_tokens MiniLM tokens."""
    words = corpus.split()
    lo, hi = 1, len(words)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer.encode(" ".join(words[:mid]), add_special_tokens=False)) < n_tokens:
            lo = mid + 1
        else:
            hi = mid
    return " ".join(words[:lo])


def time_calls(fn, prompts: list[str]) -> list[float]:
    out = []
    for p in prompts:
        start = time.perf_counter()
        fn(p)
        out.append(time.perf_counter() - start)
    return out


def synthetic_router(
    n_models: int,
    n_clusters: int,
    dim: int,
    rng: np.random.Generator,
    table: dict | None = None,
    priced: bool = False,
) -> Router:
    """Random profiles (``priced``: each priced by prompt length); ``table``: prompt text -> embedding
    (for routes by text; none needed to route embeddings)."""
    centres = rng.normal(size=(n_clusters * 20, dim)).astype(np.float32)
    embedder = PrecomputedEmbedder({} if table is None else table, id="synthetic")
    router = Router(embedder, KMeansClusterMap(n_clusters=n_clusters))
    router.fit_embeddings(centres)
    counts = rng.integers(5, 50, size=(n_models, n_clusters)).astype(float)
    errors = counts * rng.uniform(0, 1, size=(n_models, n_clusters))
    router.add_profiles(
        ModelProfile(
            f"model-{i}",
            errors[i],
            counts[i],
            float(rng.uniform(1e-4, 1e-2)),
            cost_per_char=float(rng.uniform(-1e-7, 1e-6)) if priced else 0.0,
            mean_chars=500.0,
            max_chars=4000.0,
        )
        for i in range(n_models)
    )
    return router


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the JSON summary as the last line")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON summary here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    result: dict[str, float | int | str] = {}

    train, _ = load_split(args.data)
    corpus = " ".join(p for p in train.prompts if isinstance(p, str))
    minilm = get_embedder("minilm")
    tokenizer = minilm._load().tokenizer  # type: ignore[attr-defined]

    def fresh(base: str, n: int) -> list[str]:
        return [f"{base} (request {i})" for i in range(n)]

    lengths = {"10": 10, "256": 256, "2000": 2000}
    bases = {k: prompt_of_tokens(corpus, n, tokenizer) for k, n in lengths.items()}

    router = Router("static", KMeansClusterMap(n_clusters=8, random_state=0)).fit(train.prompts[:2000])
    router.add_models(
        train.prompts[:2000],
        {m: train.scores[:2000, j] for j, m in enumerate(train.models)},
        {m: train.costs[:2000, j] for j, m in enumerate(train.models)},
    )
    router.route("warm-up")
    for key, base in bases.items():
        p50, p99 = percentiles(time_calls(router.route, fresh(base, args.repeats)), 1e3)
        result[f"route_p50_ms_{key}tok"], result[f"route_p99_ms_{key}tok"] = p50, p99
    result["route_p50_ms"], result["route_p99_ms"] = (
        result["route_p50_ms_2000tok"],
        result["route_p99_ms_2000tok"],
    )
    static = router.encoder.embedder
    enc = time_calls(lambda p: static.encode([p]), fresh(bases["2000"], args.repeats))
    result["encode_p50_ms"] = percentiles(enc, 1e3)[0]

    mini_router = Router(minilm, KMeansClusterMap(n_clusters=8, random_state=0)).fit(train.prompts[:500])
    mini_router.add_models(
        train.prompts[:500],
        {m: train.scores[:500, j] for j, m in enumerate(train.models)},
        {m: train.costs[:500, j] for j, m in enumerate(train.models)},
    )
    n_mini = max(30, args.repeats // 5)
    result["minilm_route_p50_ms"] = percentiles(
        time_calls(mini_router.route, fresh(bases["2000"], n_mini)), 1e3
    )[0]
    bare = time_calls(lambda p: minilm.encode([p]), fresh(bases["2000"], n_mini))
    result["minilm_encode_p50_ms"] = percentiles(bare, 1e3)[0]
    result["minilm_route_over_encode"] = result["minilm_route_p50_ms"] / result["minilm_encode_p50_ms"]

    X = rng.normal(size=(args.repeats, 384)).astype(np.float32)
    texts = [" ".join([f"request {i}"] * (i % 40 + 1)) for i in range(args.repeats)]  # 10-500 chars
    table = dict(zip(texts, X, strict=True))
    engine = synthetic_router(1000, 100, 384, rng, table, priced=False)
    samples = []
    for row in X:
        start = time.perf_counter()
        _ = engine.route_embeddings(row[None, :], lam=1.0)[0].model
        samples.append(time.perf_counter() - start)
    result["engine_p50_us"], result["engine_p99_us"] = percentiles(samples, 1e6)
    # by text (the embedding looked up in a table): one price per model, then each priced by length
    for key, router_ in (
        ("text", engine),
        ("priced", synthetic_router(1000, 100, 384, rng, table, priced=True)),
    ):
        samples = []
        for text in texts:
            start = time.perf_counter()
            _ = router_.route(text, lam=1.0).model
            samples.append(time.perf_counter() - start)
        result[f"engine_{key}_p50_us"], result[f"engine_{key}_p99_us"] = percentiles(samples, 1e6)
    batch = rng.normal(size=(10_000, 384)).astype(np.float32)
    start = time.perf_counter()
    chosen = [d.model for d in engine.route_embeddings(batch, lam=1.0)]
    result["engine_batch_10000_s"] = time.perf_counter() - start
    assert len(chosen) == 10_000

    big = rng.normal(size=(100_000, 384)).astype(np.float32)
    start = time.perf_counter()
    KMeansClusterMap(n_clusters=100, random_state=0).fit(big)
    result["fit_kmeans_100k_384_k100_s"] = time.perf_counter() - start
    tracemalloc.start()
    KMeansClusterMap(n_clusters=100, random_state=0).fit(big)
    result["fit_peak_alloc_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    result["input_matrix_mb"] = big.nbytes / 2**20
    result["cpu_count"] = os.cpu_count() or 0

    for key, value in result.items():
        print(f"{key:<32} {value:.4g}" if isinstance(value, float) else f"{key:<32} {value}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
