"""Two real LiteLLM proxy replicas sharing feedback through one real Valkey (issue 12, proof 1).

Each replica is ``litellm --config`` with the uniroute callback and ``feedback_store:
os.environ/UNIROUTE_REDIS_URL``; deployments answer offline (``mock_response``); clients
use keep-alive ``httpx`` clients and the proxy's master key. Everything binds 127.0.0.1.

``UNIROUTE_REPLICA_ROUNDS`` (default 1) repeats the 10,000-event run to measure
throughput; each round prints events/s per replica (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from litellm_fakes import MATH_PROMPT, POETRY_PROMPT, deployment

from uniroute import HashingEmbedder, KMeansClusterMap, Router
from valkey_server import HELLO_REPLY, fake_redis, redis, running_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "litellm_proxy"))
from proxy_launcher import start_proxy, stop_proxy, wait_ready  # noqa: E402

MASTER_KEY = "sk-uniroute-replicas"
START_TIMEOUT = 240.0
EVENTS = 10_000
CLIENTS = 16
PROPAGATION_LIMIT = 2.0  # seconds: the bound for feedback at A to change B's decision
# model -> (misses on math prompts, $ per request). "duo": two nearly tied models (same errors,
# duo-a $0.0001 cheaper: at λ = 1 one thumbs-down on duo-a flips the choice); "load": two others
# for the load tests, so their events never move the duo's profiles.
MODELS = {"duo-a": (1, 0.001), "duo-b": (1, 0.0011), "load-a": (1, 0.001), "load-b": (2, 0.001)}


def _state(folder: Path) -> Path:
    """Two clusters (math, poetry); each model right on every prompt but its few math misses."""
    prompts = [MATH_PROMPT, POETRY_PROMPT] * 10
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
    scores = {}
    for name, (misses, _) in MODELS.items():
        row = np.ones(len(prompts))
        row[0 : 2 * misses : 2] = 0.0  # the first `misses` math prompts
        scores[name] = row
    router.add_models(prompts, scores, {name: cost for name, (_, cost) in MODELS.items()})
    return router.save(folder / "state")


def _config(folder: Path, state: Path) -> Path:
    config = {
        "model_list": [deployment(name, group=name.split("-")[0]) for name in MODELS],
        "litellm_settings": {"callbacks": ["uniroute.integrations.litellm.proxy_router"]},
        "callback_settings": {
            "uniroute": {
                "state": str(state),
                "lambda": 1.0,  # duo-a and duo-b tie on errors; duo-a is cheaper
                "feedback_store": "os.environ/UNIROUTE_REDIS_URL",
            }
        },
        "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def _replicas(config: Path, folder: Path, redis_url: str, n: int = 2) -> Iterator[list[str]]:
    """``n`` proxies started together (their slow startups overlap), stopped at the end."""
    env = {
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "UNIROUTE_REDIS_URL": redis_url,
    }
    logs = [folder / f"replica-{i}.log" for i in range(n)]
    processes = [start_proxy(config, log, env) for log in logs]
    try:
        yield [wait_ready(p, log, START_TIMEOUT) for p, log in zip(processes, logs)]
    finally:
        for process in processes:
            stop_proxy(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("replicas")
    state = _state(folder)
    with ExitStack() as stack:
        server = stack.enter_context(contextmanager(running_server)(folder))
        urls = stack.enter_context(_replicas(_config(folder, state), folder, server.url))
        clients = [stack.enter_context(_client(url)) for url in urls]
        namespace = Router.load(state).feedback_namespace
        yield {"server": server, "urls": urls, "clients": clients, "namespace": namespace, "folder": folder}


@contextmanager
def _client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60) as client:
        yield client


def _route(client: httpx.Client, group: str, prompt: str) -> tuple[str, str]:
    """(deployment that answered, decision id) of one chat completion."""
    answer = client.post(
        "/v1/chat/completions", json={"model": group, "messages": [{"role": "user", "content": prompt}]}
    )
    answer.raise_for_status()
    return answer.headers["x-litellm-model-id"], answer.headers["x-uniroute-decision-id"]


def _events_in_redis(cluster: dict) -> int:
    client = redis.Redis(port=cluster["server"].port, socket_timeout=5)
    try:
        raw = client.hgetall(f"uniroute:{{{cluster['namespace']}}}:events")
    finally:
        client.close()
    return sum(int(v) for v in raw.values())


def _stats(client: httpx.Client) -> dict:
    answer = client.get("/uniroute/feedback/stats")
    answer.raise_for_status()
    return answer.json()


def _drained_stats(client: httpx.Client, timeout: float = 30.0) -> dict:
    """The replica's store counters once nothing is buffered (or at ``timeout``). A batch is in
    Redis a moment before its replica counts it sent, so a read right after the events are seen in
    Redis can still find it buffered."""
    deadline = time.monotonic() + timeout
    stats = _stats(client)["store_stats"]
    while stats["buffered"] and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = _stats(client)["store_stats"]
    return stats


def _wait_for_events(cluster: dict, expected: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        try:
            seen = _events_in_redis(cluster)
        except redis.RedisError:
            seen = -1
        if seen == expected:
            return seen
        time.sleep(0.1)
    return seen


def _decision_ids(cluster: dict, per_replica: int = 8) -> list[list[str]]:
    """Decision ids made by each replica for the load group (feedback goes to the replica that routed)."""
    ids = []
    for client in cluster["clients"]:
        prompts = [MATH_PROMPT, POETRY_PROMPT] * (per_replica // 2)
        ids.append([_route(client, "load", p)[1] for p in prompts])
    return ids


def _send_feedback(url: str, ids: list[str], count: int, start: int) -> Counter:
    """``count`` feedback events on one keep-alive connection; the answers' status codes."""
    codes: Counter = Counter()
    scores = (True, False, 0.5, 1.0)
    with _client(url) as client:
        for i in range(start, start + count):
            answer = client.post(
                "/uniroute/feedback",
                json={"decision_id": ids[i % len(ids)], "score": scores[i % len(scores)]},
            )
            codes[answer.status_code] += 1
    return codes


def _feedback_once(client: httpx.Client, decision_id: str) -> tuple[int, str | None]:
    """(status, Retry-After header) of one thumbs-up for ``decision_id``."""
    answer = client.post("/uniroute/feedback", json={"decision_id": decision_id, "score": True})
    return answer.status_code, answer.headers.get("retry-after")


def _feedback_until_accepted(client: httpx.Client, decision_id: str) -> tuple[int, str | None]:
    """Send one thumbs-up again while it is a 503 (the store fails lookups at once for 1 s after a
    failed one), at most 50 times, 0.1 s apart; the last (status, Retry-After)."""
    for _ in range(50):
        answer = _feedback_once(client, decision_id)
        if answer[0] != 503:
            return answer
        time.sleep(0.1)
    return answer


def _load(
    cluster: dict, ids: list[list[str]], events: int, clients: int, cross: bool = True
) -> tuple[int, float, Counter]:
    """``events`` feedback events from ``clients`` threads, client c on replica c % 2.

    With ``cross``, client c names decisions made by replica (c // 2) % 2: half the clients
    send feedback to the replica that did not route (it finds the decision through Redis);
    else each client names decisions of the replica it sends to.
    Returns (events accepted, seconds, status codes of the others).
    """
    per_client = events // clients
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [
            pool.submit(
                _send_feedback, cluster["urls"][c % 2], ids[(c // 2 if cross else c) % 2], per_client, c
            )
            for c in range(clients)
        ]
        codes = sum((f.result() for f in futures), Counter())
    accepted = codes.pop(200, 0)
    return accepted, time.perf_counter() - started, codes


def test_feedback_at_replica_a_changes_the_decision_at_replica_b(cluster: dict) -> None:
    """Three flips: a thumbs-down at A on the current choice moves B to the other model within 2 s.

    Equal errors, duo-a cheaper: down on duo-a -> duo-b; then down on duo-b -> equal again -> duo-a...
    """
    a, b = cluster["clients"]
    current = "duo-a"
    assert _route(b, "duo", MATH_PROMPT)[0] == current  # B agrees with the state before any feedback
    latencies = []
    for _ in range(3):
        deadline = time.monotonic() + PROPAGATION_LIMIT  # A sees its own last feedback through Redis too
        chosen, decision_id = _route(a, "duo", MATH_PROMPT)
        while chosen != current and time.monotonic() < deadline:
            chosen, decision_id = _route(a, "duo", MATH_PROMPT)
        assert chosen == current
        answer = a.post("/uniroute/feedback", json={"decision_id": decision_id, "score": False})
        assert answer.status_code == 200 and answer.json()["profile"] == current
        acknowledged = time.monotonic()
        seen = _route(b, "duo", MATH_PROMPT)[0]
        while seen == current and time.monotonic() - acknowledged < PROPAGATION_LIMIT:
            seen = _route(b, "duo", MATH_PROMPT)[0]
        latencies.append(time.monotonic() - acknowledged)
        assert seen != current, f"B still routes to {current} {PROPAGATION_LIMIT} s after the feedback at A"
        current = seen
    print(f"\nfeedback at A changed B's decision after {', '.join(f'{t:.3f}' for t in latencies)} s")


def test_10000_events_from_16_clients_lose_none(cluster: dict) -> None:
    ids = _decision_ids(cluster)
    rounds = int(os.environ.get("UNIROUTE_REPLICA_ROUNDS", "1"))
    rates = []
    for _ in range(rounds):
        before = _events_in_redis(cluster)
        accepted, seconds, failures = _load(cluster, ids, EVENTS, CLIENTS)
        assert accepted == EVENTS and not failures, failures
        assert _wait_for_events(cluster, before + EVENTS) == before + EVENTS
        rates.append(EVENTS / 2 / seconds)
        print(f"\n{EVENTS} events, {CLIENTS} clients: {seconds:.2f} s, {rates[-1]:.0f} events/s per replica")
    print(f"events/s per replica over {rounds} round(s): min {min(rates):.0f} / median "
          f"{statistics.median(rates):.0f} / max {max(rates):.0f}")  # fmt: skip
    for client in cluster["clients"]:
        stats = _drained_stats(client)
        assert stats["dropped"] == 0 and stats["buffered"] == 0 and stats["connected"]
    assert _events_in_redis(cluster) == before + EVENTS  # drained: nothing more arrived


def _send_batches(url: str, ids: list[str], batches: int, size: int) -> int:
    """``batches`` requests of ``size`` events each on one connection; returns the events accepted."""
    accepted = 0
    with _client(url) as client:
        for b in range(batches):
            events = [{"decision_id": ids[(b + i) % len(ids)], "score": (b + i) % 2} for i in range(size)]
            answer = client.post("/uniroute/feedback", json={"events": events})
            accepted += answer.json()["accepted"] if answer.status_code == 200 else 0
    return accepted


def test_batched_feedback_loses_none(cluster: dict) -> None:
    """48,000 events from 16 clients, 30 batches of 100 each (ids of the replica the client sends to)."""
    ids = _decision_ids(cluster)
    rounds = int(os.environ.get("UNIROUTE_REPLICA_ROUNDS", "1"))
    size, batches = 100, 30
    events = CLIENTS * batches * size
    rates = []
    for _ in range(rounds):
        before = _events_in_redis(cluster)
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(_send_batches, cluster["urls"][c % 2], ids[c % 2], batches, size)
                for c in range(CLIENTS)
            ]
            accepted = sum(f.result() for f in futures)
        seconds = time.perf_counter() - started
        assert accepted == events
        assert _wait_for_events(cluster, before + events) == before + events
        rates.append(events / 2 / seconds)
        print(
            f"\n{events} events in batches of {size}: {seconds:.2f} s, {rates[-1]:.0f} events/s per replica"
        )
    print(f"batched events/s per replica over {rounds} round(s): min {min(rates):.0f} / median "
          f"{statistics.median(rates):.0f} / max {max(rates):.0f}")  # fmt: skip


def test_redis_killed_and_restarted_mid_run(cluster: dict) -> None:
    server, (a, b) = cluster["server"], cluster["clients"]
    ids = _decision_ids(cluster)
    before = _events_in_redis(cluster)
    delayed_before = sum(_stats(c)["store_stats"]["delayed"] for c in (a, b))
    outcomes: list[list[str]] = [[], []]  # per routing thread: "ok" or the error's name
    stop = threading.Event()

    def keep_routing(client: httpx.Client, seen: list[str]) -> None:
        while not stop.is_set():
            try:
                _route(client, "load", MATH_PROMPT)
                seen.append("ok")
            except httpx.HTTPError as exc:
                seen.append(type(exc).__name__)

    routers = [threading.Thread(target=keep_routing, args=(c, seen)) for c, seen in zip((a, b), outcomes)]
    for thread in routers:
        thread.start()
    try:
        sent, _, failures = _load(cluster, ids, 1_000, 4, cross=False)  # Redis up
        server.kill()
        killed = time.monotonic()
        # Redis down: buffered. Each replica gets feedback for its own decisions; one routed by the
        # other replica needs Redis to be found, so it is a 503 to send again later.
        sent_down, _, failures_down = _load(cluster, ids, 1_000, 4, cross=False)
        cross_down = [_feedback_once(a, decision_id) for decision_id in ids[1]]
        batch_down = a.post(
            "/uniroute/feedback", json={"events": [{"decision_id": i, "score": 1} for i in ids[1]]}
        )
        down_stats = [_stats(c)["store_stats"] for c in (a, b)]
        # the outage lasts longer than the store's delay_threshold (1 s), whatever the machine's speed
        time.sleep(max(0.0, 1.5 - (time.monotonic() - killed)))
        server.start(server.port)
        sent_after, _, failures_after = _load(cluster, ids, 1_000, 4, cross=False)
        cross_after = [_feedback_until_accepted(a, decision_id) for decision_id in ids[1]]
    finally:
        stop.set()
        for thread in routers:
            thread.join(timeout=60)
    assert cross_down == [(503, "5")] * len(ids[1])  # never a 404: the ids are valid
    assert batch_down.status_code == 200 and batch_down.headers["retry-after"] == "5"
    assert [r["status"] for r in batch_down.json()["results"]] == [503] * len(ids[1])
    assert cross_after == [(200, None)] * len(ids[1])  # the same feedback, sent again, is recorded
    total = sent + sent_down + sent_after + len(ids[1])
    assert total == 3_000 + len(ids[1]) and not (failures + failures_down + failures_after)
    routed = Counter(outcome for seen in outcomes for outcome in seen)
    assert routed["ok"] > 0 and set(routed) == {"ok"}, routed
    assert any(not s["connected"] or s["buffered"] > 0 for s in down_stats)  # the outage was seen
    assert _wait_for_events(cluster, before + total) == before + total
    stats = [_drained_stats(c) for c in (a, b)]
    assert _events_in_redis(cluster) == before + total  # drained: nothing more arrived
    delayed = sum(s["delayed"] for s in stats) - delayed_before
    print(f"\nRedis outage: {routed['ok']} routes, 0 failed; {total} events, all in Redis; "
          f"{delayed} delayed (max delay {max(s['max_delay_s'] for s in stats):.2f} s), "
          f"{sum(s['dropped'] for s in stats)} dropped")  # fmt: skip
    assert delayed > 0 and all(s["dropped"] == 0 and s["buffered"] == 0 for s in stats)


def test_a_lookup_stuck_on_redis_does_not_hold_up_the_proxy(tmp_path: Path) -> None:
    """While one feedback request waits on Redis for an id another replica routed (up to the 1 s
    socket timeout), the same replica answers other requests: the lookup runs off the event loop."""
    mget_seen = threading.Event()

    def stuck_on_lookups(command: bytes) -> bytes | None:
        """redis-py's handshake works, other commands fail, and a lookup (MGET) never gets an answer."""
        if command == b"MGET":
            mget_seen.set()
            return None
        return HELLO_REPLY if command == b"HELLO" else b"-ERR a stuck test server\r\n"

    with ExitStack() as stack:
        url = stack.enter_context(fake_redis(stuck_on_lookups)).url
        (proxy,) = stack.enter_context(_replicas(_config(tmp_path, _state(tmp_path)), tmp_path, url, n=1))
        slow, fast = stack.enter_context(_client(proxy)), stack.enter_context(_client(proxy))
        pool = stack.enter_context(ThreadPoolExecutor(1))
        stuck = pool.submit(_feedback_once, slow, "f" * 32)
        assert mget_seen.wait(timeout=60), "the proxy never looked the id up in Redis"
        assert fast.get("/uniroute/feedback/stats").status_code == 200
        assert not stuck.done()  # the stats came back while the lookup was still waiting on Redis
        assert stuck.result(timeout=60) == (503, "5")
