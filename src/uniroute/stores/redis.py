"""Feedback shared by every replica through Redis or Valkey (extra ``[redis]``, client ``redis-py``).

Layout, under one key prefix per router state (``namespace``, e.g. the state's digest;
the ``{...}`` hash tag keeps every key in one Redis Cluster slot):

* ``uniroute:{ns}:counts`` — a hash, field ``<model>\\t<k>\\tn`` = Σ w·Φ_k(x) and
  ``<model>\\t<k>\\te`` = Σ w·Φ_k(x)·(1 - score), moved by ``HINCRBYFLOAT``;
* ``uniroute:{ns}:events`` — a hash, field ``<model>`` = number of feedback events;
* ``uniroute:{ns}:meta`` — a hash: ``half_life`` (seconds, ``0`` = no decay; set by the first
  writer, every replica must use the same) and, with decay, ``epoch`` (a wall-clock time t0);
* ``uniroute:{ns}:batch:<id>`` — a short-lived marker that makes a retried batch count once;
* ``uniroute:{ns}:decision:<decision_id>`` — a remembered decision (its Φ as float16, the chosen
  model and profile), kept ``decision_ttl`` seconds, so feedback by decision id works at any replica;
* ``uniroute:{ns}:answer:<decision_id>`` — the profile of the candidate that answered after a
  fallback (``""``: a model outside the candidates), same TTL; it overrides the decision's profile.

Decay (``half_life``) is *forward*: an event of weight w at time t is stored as
w·2^((t - t0)/h), so stored counts never need rewriting as time passes and replicas add
to them without coordination; a read at time T multiplies by 2^(-(T - t0)/h), which gives
exactly the in-memory ledger's Σ w·0.5^((T - t)/h). When (t - t0)/h passes
:data:`RENORMALISE_AFTER`, the script that applies a batch rescales every stored value
by 2^(-(t - t0)/h) and moves t0 to t, atomically, so the numbers stay far from overflow.

:meth:`RedisFeedbackStore.record` never touches the network: it validates the event
and appends it to a bounded buffer. A writer thread sums the buffered events per
(model, cluster) and sends each batch as one atomic script call (the increments plus
its marker), so a batch retried after a lost reply is not counted twice. A reader
thread copies the counts into an in-memory snapshot every ``refresh_interval``
seconds; routing reads only the snapshot. With Redis down, recording goes on,
events wait in the buffer (at most ``max_buffer``; beyond it the oldest are dropped,
counted and logged) and are sent on reconnect; :meth:`stats` says how many were
sent, are buffered, arrived late (``delayed``) or were dropped.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from typing import Any

import numpy as np

from ..engine.decision import Decision, check_number
from ..engine.feedback import FeedbackLedger, RememberedDecision, check_feedback, combine, profile_of
from ..engine.profiles import ModelProfile
from ..exceptions import FeedbackUnavailableError, InputError, MissingExtraError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError as exc:  # pragma: no cover - exercised without the extra
    raise MissingExtraError(
        "redis is not installed; the shared feedback store needs it: pip install 'uniroute[redis]'",
        name="redis",
    ) from exc

logger = logging.getLogger(__name__)

__all__ = ["RedisFeedbackStore"]

RENORMALISE_AFTER = 64.0
"""Half-lives after the epoch at which the stored (forward-decayed) counts are rescaled."""

# KEYS: batch marker, counts hash, events hash, meta hash. ARGV: marker ttl, number of models,
# half-life ('0' = no decay), the batch's wall-clock time t, the renormalisation limit, then per model
# (name, its K counts, its K error sums: little-endian float64 at time t) and (model, int) pairs for
# the events. Binary vectors, not one (field, value) argument per cell: the client packs a batch with
# one numpy call per model instead of formatting ~10,000 strings while holding the GIL.
# Returns 1 (applied), 0 (a resent batch, already applied) or -1 (the namespace has another half-life).
_APPLY_BATCH = """
local h = tonumber(ARGV[3])
redis.call('HSETNX', KEYS[4], 'half_life', ARGV[3])
if tonumber(redis.call('HGET', KEYS[4], 'half_life')) ~= h then
  return -1
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return 0
end
local scale = 1
if h > 0 then
  local t = tonumber(ARGV[4])
  redis.call('HSETNX', KEYS[4], 'epoch', ARGV[4])
  local x = (t - tonumber(redis.call('HGET', KEYS[4], 'epoch'))) / h
  if x > tonumber(ARGV[5]) then
    local f = 2 ^ (-x)
    local all = redis.call('HGETALL', KEYS[2])
    for j = 1, #all, 2 do
      redis.call('HSET', KEYS[2], all[j], string.format('%.17g', tonumber(all[j + 1]) * f))
    end
    redis.call('HSET', KEYS[4], 'epoch', ARGV[4])
    x = 0
  end
  scale = 2 ^ x
end
local i = 6
for _ = 1, tonumber(ARGV[2]) do
  local model, counts, errors = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  for k = 0, #counts / 8 - 1 do
    local n = struct.unpack('<d', counts, 8 * k + 1)
    if n ~= 0 then
      redis.call('HINCRBYFLOAT', KEYS[2], model .. '\t' .. k .. '\tn', string.format('%.17g', n * scale))
    end
    local e = struct.unpack('<d', errors, 8 * k + 1)
    if e > 0 then
      redis.call('HINCRBYFLOAT', KEYS[2], model .. '\t' .. k .. '\te', string.format('%.17g', e * scale))
    end
  end
  i = i + 3
end
while i <= #ARGV do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
"""

# KEYS: counts hash, meta hash. ARGV: K, then model names. Returns the meta hash's epoch ('' before the
# first decayed write) and, per model, its 2·K cells as little-endian float64 (e_0, n_0, e_1, n_1, ...;
# 0 where a cell is missing), read atomically. Binary, read without decoding: numpy takes a model's
# cells in microseconds, where parsing 2·K decimal strings held the GIL for milliseconds a refresh.
_READ_CELLS = """
local clusters = tonumber(ARGV[1])
local out = {redis.call('HGET', KEYS[2], 'epoch') or ''}
for i = 2, #ARGV do
  local cells = {}
  for first = 0, clusters - 1, 500 do
    local fields = {}
    for k = first, math.min(first + 499, clusters - 1) do
      fields[#fields + 1] = ARGV[i] .. '\t' .. k .. '\te'
      fields[#fields + 1] = ARGV[i] .. '\t' .. k .. '\tn'
    end
    for _, value in ipairs(redis.call('HMGET', KEYS[1], unpack(fields))) do
      cells[#cells + 1] = struct.pack('<d', tonumber(value) or 0)
    end
  end
  out[#out + 1] = table.concat(cells)
end
return out
"""

# KEYS: the keys to set. ARGV: their time to live (seconds), then one value per key. One call per
# batch of remembered decisions, where a pipeline of one SET per decision cost the writer ~20 µs of
# Python (holding the GIL) per decision.
_SET_MANY = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""

_json_string = functools.lru_cache(maxsize=4096)(json.dumps)
"""A model or profile name as JSON (names repeat: each is escaped once)."""


_Remembered = tuple[str, str, str, np.ndarray, float]
"""A decision queued for the other replicas: (decision_id, model, profile, Φ, wall-clock time)."""
_Answered = tuple[str, str]
"""Who answered a decision after a fallback: (decision_id, profile; "" = a model with no profile)."""

_LOOKUP_BACKOFF_S = 1.0
"""After a failed decision lookup, lookups fail at once for this long: in a network partition each
attempt blocks for the socket timeout, so a feedback batch of 1,000 unknown ids would otherwise
take 1,000 s."""


def _unreachable(decision_id: str, why: str) -> str:
    return (
        f"decision {decision_id!r} is not known here and Redis could not be reached to look it up "
        f"({why}); send the feedback again once Redis is back"
    )


class _Batch:
    """Buffered events summed per (model, cluster), ready to send (and to resend with the same id).

    With ``half_life`` each event is weighted 2^((t_event - t)/h) for the batch's time t (its
    latest event); the script scales the sums to the namespace's epoch.
    """

    def __init__(
        self, events: list[tuple[str, np.ndarray, float, float, float]], half_life: float | None = None
    ):
        self.at = max(wall for *_, wall in events)
        rows: dict[str, list[int]] = {}
        for i, (model, *_) in enumerate(events):
            rows.setdefault(model, []).append(i)
        phi = np.stack([event[1] for event in events]).astype(np.float64)
        if half_life is not None:
            walls = np.array([event[4] for event in events])
            phi *= (2.0 ** ((walls - self.at) / half_life))[:, None]
        errors = np.array([event[2] for event in events])
        vectors: list[Any] = []
        tallies: list[Any] = []
        for model, mine in rows.items():
            counts, error_sums = phi[mine].sum(axis=0), errors[mine] @ phi[mine]
            vectors += [model, counts.astype("<f8").tobytes(), error_sums.astype("<f8").tobytes()]
            tallies += [model, len(mine)]
        self.id = uuid.uuid4().hex
        self.half_life = half_life
        self.args = [len(rows), repr(float(half_life or 0)), repr(self.at), RENORMALISE_AFTER]
        self.args += [*vectors, *tallies]
        self.recorded_at = [mono for _, _, _, mono, _ in events]
        self.attempts = 0


class RedisFeedbackStore:
    """Feedback counts shared through Redis; reads from a local snapshot, writes in the background.

    Parameters
    ----------
    client : redis.Redis
        A redis-py client (``redis.Redis(...)``, thread-safe); see :meth:`from_url`. The caller
        closes it; :meth:`close` closes only a client the store made (:meth:`from_url`).
    namespace : str
        The key prefix of one router state (e.g. its digest): replicas serving the same
        state share it, another state gets another.
    n_clusters : int
        K of that router state.
    half_life : float, optional
        Seconds after which a feedback count weighs half (the router's ``feedback_half_life``);
        None = no decay. The first writer fixes it for the namespace; a replica with another
        half-life has its events refused (counted in ``rejected`` and ``dropped``, logged).
    refresh_interval : float, default=0.5
        Seconds between two snapshot refreshes (the staleness of reads, at most ~1 s).
    flush_interval : float, default=0.05
        Seconds the writer waits for more events before sending a batch.
    batch_size : int, default=2000
        Most events summed into one call.
    max_buffer : int, default=100000
        Most events waiting to be sent; beyond it the oldest are dropped (counted, logged).
    delay_threshold : float, default=1.0
        An event that reaches Redis later than this many seconds after it was recorded counts as delayed.
    decision_ttl : float, default=900.0
        Seconds a decision given to :meth:`remember` can be found by :meth:`decision` at any replica
        (Redis memory: about 2·K + 150 bytes per decision, for this long).
    start : bool, default=True
        Start the writer and reader threads now (else call :meth:`start`).
    """

    def __init__(
        self,
        client: Any,
        namespace: str,
        n_clusters: int,
        *,
        half_life: float | None = None,
        refresh_interval: float = 0.5,
        flush_interval: float = 0.05,
        batch_size: int = 2000,
        max_buffer: int = 100_000,
        delay_threshold: float = 1.0,
        decision_ttl: float = 900.0,
        start: bool = True,
    ):
        if not isinstance(namespace, str) or not namespace or "}" in namespace:
            raise InputError(
                f"namespace must be a non-empty string without '}}', e.g. the state digest; got {namespace!r}"
            )
        for value, name in (
            (n_clusters, "n_clusters"),
            (batch_size, "batch_size"),
            (max_buffer, "max_buffer"),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be an int >= 1, got {value!r}")
        if half_life is not None and not check_number(half_life, "half_life") > 0:
            raise InputError(f"half_life must be > 0 seconds or None (no decay), got {half_life!r}")
        self.client = client
        self.namespace = namespace
        self.n_clusters = n_clusters
        self.half_life = None if half_life is None else float(half_life)
        self.refresh_interval = refresh_interval
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.delay_threshold = delay_threshold
        self.decision_ttl = decision_ttl
        base = f"uniroute:{{{namespace}}}"
        self._keys = (f"{base}:batch:", f"{base}:counts", f"{base}:events", f"{base}:meta")
        self._decision_key = f"{base}:decision:"
        self._answer_key = f"{base}:answer:"
        self._lookup_failed_at = -math.inf  # time.monotonic() of the last failed decision lookup
        self._apply = client.register_script(_APPLY_BATCH)
        self._read_cells = client.register_script(_READ_CELLS)
        self._set_many = client.register_script(_SET_MANY)
        self._buffer: deque[tuple[str, np.ndarray, float, float, float]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._inflight: _Batch | None = None
        # remembered decisions (and who answered them after a fallback) waiting to be sent, in order
        self._shared: deque[_Remembered | _Answered] = deque()
        self._shared_inflight: list[_Remembered | _Answered] | None = None
        # (snapshot, t0 of its forward decay): replaced as one, so a reader on another thread never
        # pairs a new snapshot with the old t0 (which reads counts decayed from the wrong time)
        self._view: tuple[dict[str, tuple[np.ndarray, np.ndarray]], float] = ({}, 0.0)
        self._snapshot_at: float | None = None
        self._events: dict[str, int] | None = None  # per-model event tallies of the snapshot
        # Grows whenever the snapshot changes: a router rebuilds its profiles only when it moved.
        self.version = 0
        self._counters = dict.fromkeys(
            (
                "recorded",
                "sent",
                "remembered",
                "answers_remembered",
                "decisions_sent",
                "decisions_dropped",
                "decision_lookups",
                "decision_hits",
                "decision_errors",
                "delayed",
                "dropped",
                "rejected",
                "send_errors",
                "refresh_errors",
                "duplicates",
            ),
            0,
        )
        self._max_delay = 0.0
        self._down = False
        self._closed = False  # close() was called: record() refuses, remember() drops
        self._threads: list[threading.Thread] = []
        self._owns_client = False  # True when from_url made the client: close() then closes it
        if start:
            self.start()

    @classmethod
    def from_url(cls, url: str, namespace: str, n_clusters: int, **options: Any) -> RedisFeedbackStore:
        """A store on ``url`` (``redis://host:port/db``) with short timeouts and no client-side retry.

        The store retries failed batches itself (with backoff), so a dead server costs the
        writer thread one timeout per attempt and never blocks :meth:`record`.
        """
        client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        store = cls(client, namespace, n_clusters, **options)
        store._owns_client = True
        return store

    @classmethod
    def for_router(cls, url: str, router: Any, **options: Any) -> RedisFeedbackStore:
        """A store on ``url`` for ``router``'s state: its ``feedback_namespace``, K and half-life.

        Every replica that loads the same state gets the same namespace, so they share counts,
        and a state with other clusters never mixes with them. ``options`` go to :meth:`from_url`
        (``half_life`` defaults to ``router.feedback_half_life``).
        """
        options.setdefault("half_life", router.feedback_half_life)
        n_clusters = len(router.cluster_map_.cluster_weights_)
        return cls.from_url(url, router.feedback_namespace, n_clusters, **options)

    def start(self) -> None:
        """Start the writer and snapshot threads (idempotent)."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._write_loop, name="uniroute-feedback-writer", daemon=True),
            threading.Thread(target=self._refresh_loop, name="uniroute-feedback-reader", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- recording (no network) ---------------------------------------------------------------

    def record(
        self, model: str, cluster_probs: Any, score: Any, weight: float = 1.0, now: float | None = None
    ) -> None:
        """Queue one feedback event (see :meth:`FeedbackLedger.record`); never waits on Redis.

        ``now``: the event's wall-clock time (default: the clock), which the decay counts from.
        After :meth:`close` it raises :class:`~uniroute.FeedbackUnavailableError`: the event
        would never be sent.
        """
        if not isinstance(model, str) or not model:
            raise InputError(f"model must be a non-empty profile name, got {model!r}")
        phi, error = check_feedback(cluster_probs, score, weight, self.n_clusters)
        with self._lock:
            if self._closed:
                raise FeedbackUnavailableError(
                    f"the feedback store of namespace {self.namespace!r} is closed: the event was not "
                    "recorded. Send the feedback again to a running replica, or give the router a new "
                    "store: router.use_feedback_store(RedisFeedbackStore.for_router(url, router))"
                )
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self._counters["dropped"] += 1
                dropped = self._counters["dropped"]
                if dropped == 1 or dropped % 1000 == 0:
                    logger.error(
                        "uniroute feedback: buffer full (max_buffer=%d, Redis unreachable?); "
                        "dropped the oldest event, %d dropped so far",
                        self.max_buffer,
                        dropped,
                    )
            self._buffer.append((model, phi, error, time.monotonic(), time.time() if now is None else now))
            self._counters["recorded"] += 1
            if len(self._buffer) >= self.batch_size:
                self._wake.set()

    # -- decisions shared between replicas (feedback by decision id anywhere) -------------------

    def remember(self, decision: Decision) -> None:
        """Queue ``decision`` for every replica's :meth:`decision` (never waits on Redis).

        Only a reference is queued here (it runs on the route path); the writer thread encodes it.
        """
        item = (
            decision.decision_id,
            decision.model,
            profile_of(decision),
            decision.cluster_probs,
            time.time(),
        )
        self._share(item, "remembered")

    def remember_answer(self, decision_id: str, profile: str | None) -> None:
        """Share who answered ``decision_id`` when the decision's choice did not (after a fallback).

        Feedback by id at any replica then credits ``profile``, the candidate that answered;
        ``None``: a model outside the candidates answered, so there is nothing to credit.
        """
        self._share((decision_id, profile or ""), "answers_remembered")

    def _share(self, item: _Remembered | _Answered, counter: str) -> None:
        """Queue ``item`` for the writer; after :meth:`close` count it dropped (this runs on the route
        path, which must not fail because the store is closed)."""
        with self._lock:
            if self._closed:
                self._counters["decisions_dropped"] += 1
                return
            if len(self._shared) >= self.max_buffer:
                self._shared.popleft()
                self._counters["decisions_dropped"] += 1
            self._shared.append(item)
            self._counters[counter] += 1

    def decision(self, decision_id: str) -> RememberedDecision | None:
        """A decision some replica remembered, read from Redis; None if unknown or expired.

        Raises :class:`~uniroute.FeedbackUnavailableError` when Redis cannot be reached: the id
        may be known there, so the caller should retry, not drop the feedback as unknown.
        """
        if not isinstance(decision_id, str) or not 0 < len(decision_id) <= 128:
            return None
        with self._lock:
            self._counters["decision_lookups"] += 1
            failed_recently = time.monotonic() - self._lookup_failed_at < _LOOKUP_BACKOFF_S
            if failed_recently:
                self._counters["decision_errors"] += 1
        if failed_recently:
            raise FeedbackUnavailableError(
                _unreachable(decision_id, f"a lookup failed less than {_LOOKUP_BACKOFF_S:g} s ago")
            )
        try:
            keys = [self._decision_key + decision_id, self._answer_key + decision_id]
            raw, answered = self.client.mget(keys)
        except redis.RedisError as exc:
            with self._lock:
                self._counters["decision_errors"] += 1
                self._lookup_failed_at = time.monotonic()
            logger.debug("uniroute feedback: decision lookup failed: %s", exc)
            raise FeedbackUnavailableError(_unreachable(decision_id, type(exc).__name__)) from exc
        if raw is None:
            return None
        try:
            item = json.loads(raw)
            phi = np.frombuffer(base64.b64decode(item["phi"], validate=True), dtype="<f2").astype(np.float64)
            model, profile, at = item["model"], item["profile"], float(item["at"])
            if not isinstance(model, str) or not (profile is None or isinstance(profile, str)):
                raise TypeError("model or profile is not a string")
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            logger.warning(
                "uniroute feedback: decision %s in Redis is malformed (%s); taken as unknown",
                decision_id,
                exc,
            )
            return None
        if phi.shape != (self.n_clusters,) or not (np.isfinite(phi).all() and math.isfinite(at)):
            return None  # remembered by a state with other clusters under this namespace, or damaged
        with self._lock:
            self._counters["decision_hits"] += 1
        if answered is not None:  # a fallback answered: credit it ("" = a model with no profile)
            profile = (answered.decode() if isinstance(answered, bytes) else answered) or None
        return RememberedDecision(phi, model, profile, at)

    def _take_decisions(self) -> list[_Remembered | _Answered] | None:
        with self._lock:
            if self._shared_inflight is None and self._shared:
                n = min(len(self._shared), self.batch_size)
                self._shared_inflight = [self._shared.popleft() for _ in range(n)]
            return self._shared_inflight

    def _send_decisions(self, items: list[_Remembered | _Answered]) -> None:
        keys: list[str] = []
        values: list[str] = []
        for item in items:
            if len(item) == 2:
                keys.append(self._answer_key + item[0])
                values.append(item[1])
                continue
            decision_id, model, profile, phi, at = item
            keys.append(self._decision_key + decision_id)
            values.append(_decision_json(model, profile, at, phi))
        self._set_many(keys=keys, args=[max(1, round(self.decision_ttl)), *values])
        with self._lock:
            self._shared_inflight = None
            self._counters["decisions_sent"] += len(items)

    # -- writing ------------------------------------------------------------------------------

    def _take(self) -> _Batch | None:
        """Move up to ``batch_size`` buffered events into the in-flight batch (one step, under the lock)."""
        with self._lock:
            if self._inflight is None and self._buffer:
                n = min(len(self._buffer), self.batch_size)
                self._inflight = _Batch([self._buffer.popleft() for _ in range(n)], self.half_life)
            return self._inflight

    def _send(self, batch: _Batch) -> None:
        batch.attempts += 1
        marker, counts, events, meta = self._keys
        applied = self._apply(keys=[marker + batch.id, counts, events, meta], args=[3600, *batch.args])
        now = time.monotonic()
        late = [now - t for t in batch.recorded_at if now - t > self.delay_threshold]
        with self._lock:
            self._inflight = None
            if applied == -1:
                self._counters["rejected"] += len(batch.recorded_at)
                self._counters["dropped"] += len(batch.recorded_at)
            else:
                self._counters["sent"] += len(batch.recorded_at)
                self._counters["delayed"] += len(late)
                self._counters["duplicates"] += 0 if applied else 1
                self._max_delay = max([self._max_delay, *late])
        if applied == -1:
            logger.error(
                "uniroute feedback: namespace %r decays with another half-life than this replica's (%s s); "
                "%d events refused. Give every replica of a state the same feedback_half_life",
                self.namespace,
                self.half_life,
                len(batch.recorded_at),
            )

    def _write_loop(self) -> None:
        backoff = 0.05
        while True:
            batch, shared = self._take(), self._take_decisions()
            if batch is None and shared is None:
                if self._stop.is_set():
                    return
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                continue
            try:
                if shared is not None:
                    self._send_decisions(shared)
                if batch is not None:
                    self._send(batch)
            except redis.RedisError as exc:
                with self._lock:
                    self._counters["send_errors"] += 1
                    buffered = len(self._buffer) + (len(batch.recorded_at) if batch else 0)
                if not self._down:
                    self._down = True
                    logger.warning(
                        "uniroute feedback: Redis unreachable (%s); buffering events (%d buffered)",
                        exc,
                        buffered,
                    )
                if self._stop.wait(backoff):
                    return  # closing: close() counts what is left
                backoff = min(2 * backoff, 1.0)
                continue
            backoff = 0.05
            if self._down:
                self._down = False
                logger.warning("uniroute feedback: Redis reachable again; sending the buffered events")

    # -- reading (the snapshot) ---------------------------------------------------------------

    def refresh(self) -> bool:
        """Bring the snapshot up to date with Redis now; False if Redis could not be read.

        Reads the per-model event tallies first and then the counts of only the models whose
        tally moved (all of them after a renormalisation), so a refresh costs in proportion to
        the models with new feedback, not to every model × cluster: the reader thread holds
        the GIL briefly, and routes in other threads are not held up behind it.
        """
        try:
            changes = self._read_changes()
        except redis.RedisError as exc:
            with self._lock:
                self._counters["refresh_errors"] += 1
            logger.debug("uniroute feedback: snapshot refresh failed: %s", exc)
            return False
        if changes is not None:
            snapshot, self._events, epoch = changes
            self._view = (snapshot, epoch)
            self.version += 1
        self._snapshot_at = time.monotonic()
        return True

    def _read_changes(
        self, attempts: int = 3
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, int], float] | None:
        """(snapshot, event tallies, epoch) if Redis moved since the last read, else None."""
        for _ in range(attempts):
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._keys[2])
                pipe.hgetall(self._keys[3])
                tallies, meta = pipe.execute()
            events = {_text(model): int(n) for model, n in tallies.items()}
            epoch = _epoch(meta)
            known, (before, before_epoch) = self._events, self._view
            if events == known and epoch == before_epoch:
                return None
            if known is None or epoch != before_epoch:
                changed = list(events)  # first read, or a renormalisation rescaled every count
            else:
                changed = [model for model, n in events.items() if known.get(model) != n]
            stamp, *blobs = self._cells(changed)
            if (float(stamp) if stamp else 0.0) != epoch:
                continue  # renormalised between the two reads: read again
            cells = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(changed), self.n_clusters, 2)
            snapshot = {model: pair for model, pair in before.items() if model in events}
            for i, model in enumerate(changed):
                snapshot[model] = (cells[i, :, 0].copy(), cells[i, :, 1].copy())
            return snapshot, events, epoch
        raise redis.RedisError(f"the counts were renormalised during each of {attempts} reads")

    def _cells(self, models: list[str]) -> list[bytes]:
        """The reply of the cell-reading script for ``models``: [epoch, one blob per model], never
        decoded (so a client made with ``decode_responses=True`` reads the binary cells too)."""
        args = ("EVALSHA", self._read_cells.sha, 2, self._keys[1], self._keys[3], self.n_clusters, *models)
        try:
            return list(self.client.execute_command(*args, NEVER_DECODE=[]))
        except redis.exceptions.NoScriptError:  # a new or flushed server: load the script once
            self.client.script_load(_READ_CELLS)
            return list(self.client.execute_command(*args, NEVER_DECODE=[]))

    def _read(self) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """(counts hash, meta hash), read together so a renormalisation is never seen half-way."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys[1])
            pipe.hgetall(self._keys[3])
            counts, meta = pipe.execute()
        return counts, meta

    def _decay(self, epoch: float, now: float | None) -> float:
        """The factor that turns stored (forward-decayed) counts into counts at ``now``."""
        if self.half_life is None:
            return 1.0
        now = time.time() if now is None else now
        return float(2.0 ** (-(now - epoch) / self.half_life))

    def _parse(self, raw: dict[Any, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        snapshot: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for field, value in raw.items():
            model, k, kind = _text(field).rsplit("\t", 2)
            k_int = int(k)
            if k_int >= self.n_clusters:
                continue  # written by a state with more clusters under the same namespace
            pair = snapshot.get(model)
            if pair is None:
                pair = snapshot[model] = (np.zeros(self.n_clusters), np.zeros(self.n_clusters))
            pair[0 if kind == "e" else 1][k_int] = float(value)
        return snapshot

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.refresh_interval)

    def counts(self, model: str, now: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(error_sums, counts) of ``model`` in the last snapshot, decayed to ``now``; zeros if none."""
        snapshot, epoch = self._view
        pair = snapshot.get(model)
        if pair is None:
            return np.zeros(self.n_clusters), np.zeros(self.n_clusters)
        factor = self._decay(epoch, now)
        return pair[0] * factor, pair[1] * factor

    def profile(
        self, validation: ModelProfile, feedback_weight: float = 1.0, now: float | None = None
    ) -> ModelProfile:
        """``validation`` plus ``feedback_weight`` × the shared feedback in the last snapshot."""
        return combine(validation, *self.counts(validation.name, now), feedback_weight)

    @property
    def models(self) -> tuple[str, ...]:
        """Models with feedback in the last snapshot."""
        return tuple(self._view[0])

    def events_in_store(self) -> dict[str, int]:
        """Feedback events per model as Redis holds them now (a network read; for checks and sync)."""
        raw = self.client.hgetall(self._keys[2])
        return {_text(k): int(v) for k, v in raw.items()}

    def to_ledger(self, *, now: float | None = None) -> FeedbackLedger:
        """The shared counts, read now and decayed to ``now``, as an in-memory ledger with this
        store's half-life (to save them into a state: ``uniroute state sync``).

        Raises ``redis.RedisError`` if Redis cannot be read, :class:`~uniroute.InputError` if the
        namespace's counts were stored with another half-life (they would read as other numbers).
        """
        counts_raw, meta_raw = self._read()
        stored = meta_raw.get(b"half_life", meta_raw.get("half_life"))
        if stored is not None and float(stored) != (self.half_life or 0.0):
            raise InputError(
                f"namespace {self.namespace!r} holds counts decayed with half_life={float(stored):g} s "
                f"(0 = no decay), not {self.half_life!r}: read them with the replicas' half-life (the "
                "state's feedback_half_life)"
            )
        snapshot = self._parse(counts_raw)
        factor = self._decay(_epoch(meta_raw), now)
        events = self.events_in_store()
        names = sorted(snapshot)
        at = time.time() if now is None else now
        meta = {"half_life": self.half_life, "models": names, "events": [events.get(m, 0) for m in names]}
        shape = (len(names), self.n_clusters)
        arrays = {
            "feedback_error_sums": np.array([snapshot[m][0] * factor for m in names]).reshape(shape),
            "feedback_counts": np.array([snapshot[m][1] * factor for m in names]).reshape(shape),
            "feedback_at": np.full(len(names), at),
        }
        return FeedbackLedger.from_state(meta, arrays)

    # -- lifecycle ----------------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event is in Redis (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                idle = not (self._buffer or self._inflight or self._shared or self._shared_inflight)
            if idle:
                return True
            self._wake.set()
            time.sleep(0.005)
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Send what is buffered (up to ``timeout`` s), stop the threads; what is left is dropped, logged.

        A client made by :meth:`from_url` is closed too (its connections); one given is the caller's.
        From then on :meth:`record` raises and decisions given to :meth:`remember` are counted dropped.
        """
        with self._lock:
            self._closed = True
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=max(timeout, 1.0) + 2.0)
        with self._lock:
            left = len(self._buffer) + (len(self._inflight.recorded_at) if self._inflight else 0)
            self._buffer.clear()
            self._inflight = None
            self._counters["dropped"] += left
            self._counters["decisions_dropped"] += len(self._shared) + len(self._shared_inflight or ())
            self._shared.clear()
            self._shared_inflight = None
        if self._owns_client:
            self.client.close()
        if left:
            logger.error("uniroute feedback: closed with %d events not sent to Redis (dropped)", left)

    def __enter__(self) -> RedisFeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counters: recorded, sent, buffered, delayed (arrived > delay_threshold s late), dropped..."""
        with self._lock:
            out: dict[str, Any] = dict(self._counters)
            out["buffered"] = len(self._buffer) + (len(self._inflight.recorded_at) if self._inflight else 0)
            out["max_delay_s"] = round(self._max_delay, 3)
        out["connected"] = not self._down
        age = None if self._snapshot_at is None else time.monotonic() - self._snapshot_at
        out["snapshot_age_s"] = None if age is None else round(age, 3)
        out["snapshot_models"] = len(self._view[0])
        return out


def _decision_json(model: str, profile: str | None, at: float, phi: np.ndarray) -> str:
    """A remembered decision as :meth:`RedisFeedbackStore.decision` reads it (the JSON of
    ``{"model", "profile", "at", "phi"}``, Φ as base64 float16), written without ``json.dumps``."""
    encoded = base64.b64encode(np.asarray(phi, dtype="<f2").tobytes()).decode()
    return (
        f'{{"model": {_json_string(model)}, "profile": {_json_string(profile)}, '
        f'"at": {float(at)!r}, "phi": "{encoded}"}}'
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _epoch(meta: dict[Any, Any]) -> float:
    """The decay epoch t0 in a meta hash (0 before the first decayed write)."""
    value = meta.get(b"epoch", meta.get("epoch"))
    return 0.0 if value is None else float(value)
