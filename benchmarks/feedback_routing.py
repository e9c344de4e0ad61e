"""Engine route latency while feedback flows (issue 12: "route p99 unchanged within noise").

At 1,000 models × 100 clusters (the synthetic engine router of overhead.py,
embeddings given), each round times single-prompt routes under three conditions:

* ``none``: no feedback ever recorded (the router has no feedback source);
* ``idle``: a ledger with counts for every model, nothing new (the routing
  profiles are built; the hot path compares one int);
* ``flowing``: another thread records feedback (``Router.record_feedback`` on
  decisions) at ``--rate`` events/s the whole time; the routing profiles are
  rebuilt at most once per ``feedback_refresh`` (1 s), by the router's background
  thread;
* ``flowing_redis``: the same, into a ``RedisFeedbackStore`` on a throw-away
  ``valkey-server`` (the router routes on the store's snapshot); skipped with
  ``--no-redis``.

Also times one rebuild of the routing profiles (what one route per second pays
while feedback flows) and one ``record_feedback`` call. Writes JSON to ``--out``.
``--feedback-refresh 1e6`` (no rebuild while flowing), ``--rate 1`` and
``--no-record`` (the thread wakes but records nothing) separate the rebuild's
share of the flowing p99 from the recording thread's, and its wake-ups from its work.

    nice -n 10 python benchmarks/feedback_routing.py --out /tmp/feedback_routing.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedback import valkey
from overhead import percentiles, synthetic_router

CONDITIONS = ("none", "idle", "flowing", "flowing_redis")


def time_routes(router, X: np.ndarray, seconds: float) -> list[float]:
    """Route the rows of ``X`` one by one, cycling, for at least ``seconds``; each route's time."""
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for row in X:
            start = time.perf_counter()
            _ = router.route_embeddings(row[None, :], lam=1.0)[0].model
            samples.append(time.perf_counter() - start)
    return samples


def feed(
    router, decisions: list, rate: float, stop: threading.Event, times: list[float], record: bool = True
) -> None:
    """Record feedback on ``decisions`` at ``rate`` events/s until ``stop`` (each call timed in ``times``);
    ``record=False`` wakes as often but records nothing (the thread switches alone)."""
    period = 1.0 / rate
    next_at = time.perf_counter()
    while not stop.is_set():
        decision = decisions[len(times) % len(decisions)]
        start = time.perf_counter()
        if record:
            router.record_feedback(decision, len(times) % 2)
        times.append(time.perf_counter() - start)
        next_at += period
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def flowing(
    router, X: np.ndarray, decisions: list, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """Route times while another thread records feedback; and that thread's per-call times."""
    stop = threading.Event()
    record_times: list[float] = []
    writer = threading.Thread(
        target=feed, args=(router, decisions, args.rate, stop, record_times, not args.no_record)
    )
    writer.start()
    try:
        return time_routes(router, X, args.seconds), record_times
    finally:
        stop.set()
        writer.join(timeout=10)


def refreshed(router, args: argparse.Namespace):
    """``router`` with ``--feedback-refresh`` applied, if given."""
    if args.feedback_refresh is not None:
        router.feedback_refresh = args.feedback_refresh
    return router


def spread(values: list[float]) -> dict[str, float]:
    return {"min": float(np.min(values)), "median": float(np.median(values)), "max": float(np.max(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="routing time per condition and round")
    parser.add_argument("--rate", type=float, default=1000.0, help="feedback events per second while flowing")
    parser.add_argument("--no-redis", action="store_true", help="skip the flowing_redis condition")
    parser.add_argument(
        "--feedback-refresh",
        type=float,
        default=None,
        help="the routers' feedback_refresh, s (default: the Router's; large: no rebuild while flowing)",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="the feeding thread wakes at --rate but records nothing (its thread switches alone)",
    )
    parser.add_argument(
        "--redis-url", default=None, help="a Redis to use (default: a throw-away valkey-server)"
    )
    args = parser.parse_args()
    conditions = CONDITIONS[:-1] if args.no_redis else CONDITIONS
    rng = np.random.default_rng(0)
    per_round: dict[str, dict[str, list[float]]] = {
        c: {"p50_us": [], "p99_us": [], "p999_us": [], "max_us": [], "routes": []} for c in conditions
    }
    rebuild_ms, record_us, events, redis_record_us = [], [], [], []
    for r in range(args.rounds):
        router = refreshed(synthetic_router(1000, 100, 384, rng), args)
        X = rng.normal(size=(1000, 384)).astype(np.float32)
        decisions = router.route_embeddings(rng.normal(size=(256, 384)).astype(np.float32), lam=1.0)
        samples = {"none": time_routes(router, X, args.seconds)}
        for model in router.models:  # counts for every model: the rebuild touches all 1,000
            router.feedback.record(model, decisions[0].cluster_probs, 1.0)
        start = time.perf_counter()
        router._routing_pool()
        rebuild_ms.append((time.perf_counter() - start) * 1e3)
        samples["idle"] = time_routes(router, X, args.seconds)
        samples["flowing"], record_times = flowing(router, X, decisions, args)
        events.append(len(record_times))
        record_us.append(float(np.median(record_times)) * 1e6)
        router.close()
        if not args.no_redis:
            from uniroute.stores.redis import RedisFeedbackStore

            router = refreshed(synthetic_router(1000, 100, 384, rng), args)
            with (
                valkey(args.redis_url) as url,
                RedisFeedbackStore.from_url(url, f"routing-{r}", 100) as store,
            ):
                router.use_feedback_store(store)
                samples["flowing_redis"], record_times = flowing(router, X, decisions, args)
                redis_record_us.append(float(np.median(record_times)) * 1e6)
                router.close()
        for condition, values in samples.items():
            p50, p99 = percentiles(values, 1e6)
            per_round[condition]["p50_us"].append(p50)
            per_round[condition]["p99_us"].append(p99)
            per_round[condition]["p999_us"].append(float(np.percentile(values, 99.9)) * 1e6)
            per_round[condition]["max_us"].append(float(np.max(values)) * 1e6)
            per_round[condition]["routes"].append(len(values))
    result = {
        "models": 1000,
        "clusters": 100,
        "rounds": args.rounds,
        "seconds_per_condition": args.seconds,
        "feedback_rate_per_s": args.rate,
        "feedback_refresh_s": args.feedback_refresh,
        "record": not args.no_record,
        "loadavg_1m": [round(x, 2) for x in os.getloadavg()],
        "note": "shared 2-core machine: figures are noisy when the load average is high",
        "route": {c: {k: spread(v) for k, v in per_round[c].items()} for c in conditions},
        "rebuild_ms": spread(rebuild_ms),
        "record_feedback_p50_us": spread(record_us),
        "events_while_flowing": spread(events),
        "redis_record_feedback_p50_us": spread(redis_record_us) if redis_record_us else None,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
