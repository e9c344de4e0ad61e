"""Routing throughput from several threads at once (issue 9, engine item 1).

A router on the default ``static`` embedder (K-means, K=8, the 11 RouterBench
models) is fitted, saved and loaded back, as a server would load it. Each round
routes ``--prompts`` test prompts with ``Router.route`` from 1, 2, 4 and 8 threads
(thread counts interleaved round by round, so a busy spell hits all of them);
every prompt carries a per-round suffix, so the embedding cache never answers.
Reports routes/s as min/median/max over ``--rounds`` rounds, and fails loudly if
any route raises (uniroute 0.1.0 raised ``RuntimeError: Already borrowed`` here).

    python benchmarks/threads.py                      # table only
    python benchmarks/threads.py --out results.json   # and the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from uniroute import KMeansClusterMap, Router
from uniroute.datasets import load_split

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "routerbench"
THREADS = (1, 2, 4, 8)


def build_router(data: Path, embedder: str, folder: Path) -> tuple[Router, list[str]]:
    """Fit on the train split, save, load back; return the loaded router and the test prompts."""
    train, test = load_split(data)
    router = Router(embedder, KMeansClusterMap(n_clusters=8, random_state=0)).fit(train.prompts)
    router.add_models(
        train.prompts,
        {m: train.scores[:, j] for j, m in enumerate(train.models)},
        {m: train.costs[:, j] for j, m in enumerate(train.models)},
    )
    return Router.load(router.save(folder / "state")), [str(p) for p in test.prompts]


def routes_per_second(router: Router, prompts: list[str], threads: int) -> float:
    """Route every prompt once, spread over ``threads`` threads; return routes per second."""
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        decisions = list(pool.map(router.route, prompts))
        elapsed = time.perf_counter() - start
    assert len(decisions) == len(prompts)
    return len(prompts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--embedder", default="static", help="registry name (default: static)")
    parser.add_argument("--prompts", type=int, default=400, help="prompts routed per round and thread count")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here (else nothing is written)")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5, to report a spread")

    with tempfile.TemporaryDirectory() as tmp:
        router, test_prompts = build_router(args.data, args.embedder, Path(tmp))
    base = [test_prompts[i % len(test_prompts)] for i in range(args.prompts)]
    router.route("warm-up")
    samples: dict[int, list[float]] = {t: [] for t in THREADS}
    for r in range(args.rounds):
        for threads in THREADS if r % 2 == 0 else THREADS[::-1]:
            fresh = [f"{p}\n(round {r}, {threads} threads, request {i})" for i, p in enumerate(base)]
            samples[threads].append(routes_per_second(router, fresh, threads))

    result = {
        "benchmark": "threads",
        "embedder": router.encoder.embedder.id,
        "prompts_per_round": args.prompts,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "routes_per_s": {
            str(t): {
                "min": float(np.min(s)),
                "median": float(np.median(s)),
                "max": float(np.max(s)),
                "samples": [round(x, 1) for x in s],
            }
            for t, s in samples.items()
        },
    }
    print(f"embedder {result['embedder']}, {args.prompts} never-seen prompts per round, {args.rounds} rounds")
    print(f"{os.cpu_count()} CPUs, 1-min load average {result['load_average_1min']:.1f}")
    print(f"{'threads':>7} {'min':>9} {'median':>9} {'max':>9}   routes/s")
    for t in THREADS:
        row = result["routes_per_s"][str(t)]
        print(f"{t:>7} {row['min']:>9.0f} {row['median']:>9.0f} {row['max']:>9.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
