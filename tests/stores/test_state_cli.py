"""``uniroute state sync`` / ``uniroute state namespace`` (uniroute.stores.cli), with a real valkey-server."""

from __future__ import annotations

import argparse
import socket
import time

import numpy as np
import pytest

pytest.importorskip("redis", reason="the [redis] extra (redis-py) is not installed")

from uniroute import Router
from uniroute.engine.feedback import FeedbackLedger
from uniroute.engine.state import feedback_target, save_feedback
from uniroute.exceptions import InputError, StateError
from uniroute.stores import cli
from uniroute.stores.redis import RedisFeedbackStore
from valkey_server import running_server

MATH = "Arithmetic question: compute 3 plus 4 and answer with the number only."


@pytest.fixture
def server(tmp_path):
    yield from running_server(tmp_path)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="uniroute")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.func(args)


def math_phis(router: Router, toy_data: dict, n: int) -> list[np.ndarray]:
    prompts = [p for p, t in zip(toy_data["prompts"], toy_data["topics"]) if t == "math"][:n]
    return [d.cluster_probs for d in router.route_batch(prompts)]


def test_the_namespace_of_a_saved_state_is_the_routers(toy_router, tmp_path, capsys):
    for path in (tmp_path / "state", tmp_path / "state.npz"):
        toy_router.save(path)
        target = feedback_target(path)
        assert target == (toy_router.feedback_namespace, 2, None)
        assert run("state", "namespace", str(path)) == 0
        assert capsys.readouterr().out.strip() == toy_router.feedback_namespace


def test_save_feedback_replaces_only_the_feedback(toy_router, toy_data, tmp_path):
    state = tmp_path / "state"
    toy_router.record_feedback(MATH, 1.0, model="poet")
    toy_router.save(state)
    ledger = FeedbackLedger(2)
    for phi in math_phis(toy_router, toy_data, 10):
        ledger.record("big", phi, 0.0)
    save_feedback(state, ledger)
    loaded = Router.load(state)
    assert loaded.feedback.models == ("big",) and loaded.feedback.stats()["events"] == 10
    for name in toy_router.models:
        np.testing.assert_array_equal(loaded.profile(name).counts, toy_router.profile(name).counts)
    assert len(list(state.glob("arrays-*.npz"))) == 1
    with pytest.raises(StateError, match="3 clusters"):
        save_feedback(state, FeedbackLedger(3))


@pytest.mark.integration
def test_sync_writes_the_shared_counts_into_the_state(toy_router, toy_data, tmp_path, server, capsys):
    state = tmp_path / "state"
    toy_router.feedback_refresh = 0
    toy_router.record_feedback(MATH, 1.0, model="poet")  # replaced by the sync
    toy_router.save(state)
    with RedisFeedbackStore.from_url(server.url, toy_router.feedback_namespace, 2) as store:
        for phi in math_phis(toy_router, toy_data, 12):
            store.record("big", phi, 0.0)
        assert store.flush(timeout=10) and store.refresh()
        shared = store.counts("big")
    assert Router.load(state).route(MATH).model == "big"
    assert run("state", "sync", str(state), "--redis", server.url) == 0
    assert "12 feedback events on 1 models" in capsys.readouterr().out
    loaded = Router.load(state)
    loaded.feedback_refresh = 0
    assert loaded.feedback.models == ("big",)
    for got, want in zip(loaded.feedback.counts("big"), shared):
        np.testing.assert_allclose(got, want)
    assert loaded.route(MATH).model == "mathbot"


@pytest.mark.integration
def test_sync_decays_with_the_states_half_life(toy_router, toy_data, tmp_path, server):
    state = tmp_path / "state"
    toy_router.feedback_half_life = 3600.0
    toy_router.save(state)
    now = time.time()
    ledger = FeedbackLedger(2, half_life=3600.0)
    with RedisFeedbackStore.from_url(server.url, toy_router.feedback_namespace, 2, half_life=3600.0) as store:
        for i, phi in enumerate(math_phis(toy_router, toy_data, 8)):
            store.record("big", phi, 0.0, now=now - 7200 + 600 * i)
            ledger.record("big", phi, 0.0, now=now - 7200 + 600 * i)
        assert store.flush(timeout=10)
    run("state", "sync", str(state), "--redis", server.url)
    loaded = Router.load(state).feedback
    assert loaded.half_life == 3600.0
    np.testing.assert_allclose(loaded.counts("big", now=now)[1], ledger.counts("big", now=now)[1], rtol=1e-3)


@pytest.mark.integration
def test_sync_refuses_counts_stored_with_another_half_life(toy_router, toy_data, tmp_path, server):
    # found by audit F: replicas decaying with 60 s stored two events as 1 and 2^10 (forward decay);
    # a state without a half-life read them undecayed and saved 1025 counts for 2 events
    state = tmp_path / "state"
    toy_router.record_feedback(MATH, 1.0, model="poet")
    toy_router.save(state)
    now = time.time()
    phi = math_phis(toy_router, toy_data, 1)[0]
    with RedisFeedbackStore.from_url(server.url, toy_router.feedback_namespace, 2, half_life=60.0) as store:
        for at in (now - 600, now):
            store.record("big", phi, 0.0, now=at)
            assert store.flush(timeout=10)
    with pytest.raises(InputError, match=r"half_life=60 s .* not None: read them with the replicas'"):
        run("state", "sync", str(state), "--redis", server.url)
    assert Router.load(state).feedback.models == ("poet",)  # the state is left as it was


@pytest.mark.integration
def test_sync_refuses_an_empty_namespace_unless_asked(toy_router, tmp_path, server):
    state = tmp_path / "state"
    toy_router.record_feedback(MATH, 1.0, model="poet")
    toy_router.save(state)
    with pytest.raises(InputError, match=r"holds no feedback.*--allow-empty"):
        run("state", "sync", str(state), "--redis", server.url, "--namespace", "elsewhere")
    assert Router.load(state).feedback.models == ("poet",)
    run("state", "sync", str(state), "--redis", server.url, "--namespace", "elsewhere", "--allow-empty")
    assert Router.load(state).feedback.models == ()


@pytest.mark.integration
def test_sync_says_when_redis_is_unreachable(toy_router, tmp_path):
    toy_router.save(tmp_path / "state")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        StateError, match=f"cannot read the feedback from Redis at redis://127.0.0.1:{port}/0"
    ):
        run("state", "sync", str(tmp_path / "state"), "--redis", f"redis://127.0.0.1:{port}/0")
    with pytest.raises(InputError, match="redis://host:port/db"):
        run("state", "sync", str(tmp_path / "state"), "--redis", "http://nowhere")


def test_a_password_in_the_url_is_never_printed():
    assert cli._redacted("redis://user:secret@cache.internal:6380/2") == "redis://cache.internal:6380/2"
    assert cli._redacted("rediss://:secret@cache") == "rediss://cache"
