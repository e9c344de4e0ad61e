"""``uniroute state sync STATE --redis URL``: the feedback counts shared in Redis, written into a state.

For a backup of what the replicas learned, or to move to a single-machine deployment
(which then keeps learning in memory and saves with the state). Top-level imports stay
light (``uniroute --help`` builds this parser): the handler imports what it uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _redacted(url: str) -> str:
    """``url`` without its user and password, for printing."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _cmd_sync(args: argparse.Namespace) -> int:
    from .._optional import require
    from ..engine.state import feedback_target, save_feedback
    from ..exceptions import InputError, StateError

    redis = require("redis", extra="redis")
    from .redis import RedisFeedbackStore

    target = feedback_target(args.state)
    namespace = args.namespace or target.namespace
    where = _redacted(args.redis)
    try:
        store = RedisFeedbackStore.from_url(
            args.redis, namespace, target.n_clusters, half_life=target.half_life, start=False
        )
    except ValueError as exc:
        raise InputError(f"--redis {where}: {exc}; give redis://host:port/db") from exc
    try:
        ledger = store.to_ledger()
    except redis.RedisError as exc:
        raise StateError(
            f"cannot read the feedback from Redis at {where}: {exc}; check --redis and that the server is up"
        ) from exc
    finally:
        store.client.close()
    stats = ledger.stats()
    if not ledger.models and not args.allow_empty:
        raise InputError(
            f"namespace {namespace!r} in Redis at {where} holds no feedback; nothing written. Check "
            "--namespace (default: the state's, `uniroute state namespace STATE`), or pass --allow-empty "
            "to clear the state's feedback"
        )
    save_feedback(args.state, ledger)
    print(
        f"wrote {stats['events']} feedback events on {stats['models']} models from namespace {namespace} "
        f"at {where} into {args.state}"
    )
    return 0


def _cmd_namespace(args: argparse.Namespace) -> int:
    from ..engine.state import feedback_target

    print(feedback_target(args.state).namespace)
    return 0


def register(subparsers: Any) -> None:
    """Add ``uniroute state sync`` and ``uniroute state namespace`` to the CLI."""
    state = subparsers.add_parser(
        "state",
        help="work on a saved router state (feedback shared through Redis)",
        description="Work on a saved router state.",
    )
    commands = state.add_subparsers(dest="state_command", metavar="COMMAND", required=True)
    sync = commands.add_parser(
        "sync",
        help="write the feedback counts shared in Redis into the state (replacing its saved feedback)",
        description="Read the feedback counts the replicas of a state share in Redis (namespace: the "
        "state's, as the replicas use by default) and write them into the state, atomically, replacing "
        "the feedback saved there; profiles and settings stay as they are. With a half-life, the counts "
        "are decayed to now.",
    )
    sync.add_argument("state", type=Path, metavar="STATE", help="router state (directory or .npz)")
    sync.add_argument("--redis", required=True, metavar="URL", help="redis://host:port/db (or rediss://)")
    sync.add_argument(
        "--namespace", help="key namespace in Redis (default: the state's, `uniroute state namespace STATE`)"
    )
    sync.add_argument(
        "--allow-empty",
        action="store_true",
        help="write even if Redis holds no feedback (clears the state's feedback)",
    )
    sync.set_defaults(func=_cmd_sync)
    namespace = commands.add_parser(
        "namespace",
        help="print the state's feedback namespace (the Redis key prefix its replicas share)",
        description="Print the feedback namespace of a state: a digest of its embedder and clusters, "
        "the default key prefix of its shared feedback in Redis.",
    )
    namespace.add_argument("state", type=Path, metavar="STATE", help="router state (directory or .npz)")
    namespace.set_defaults(func=_cmd_namespace)
