"""``uniroute eval``: score routers on routing data and write results.json, plots and summary.md.

Importing this module (and :func:`register`) reads no numerical library: the
``--format``, ``--embedder`` and ``--map`` choices are looked up from their
registries only when ``uniroute eval`` itself parses or prints its help.
``--router`` here names a router *implementation* to evaluate (``module:factory``),
not a router state; no ``eval`` option takes a state.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from .._cli import add_registry_option, output_directory, positive_int, whole_number
from ..exceptions import InputError

DEFAULT_CACHE = "embeddings"
DEFAULT_MAPS = ("kmeans", "learned")


def register(subparsers: Any) -> None:
    """Add ``uniroute eval`` to the CLI."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate uniroute and baselines on routing data",
        description="Route held-out prompts with uniroute, baseline routers and optionally your own; write "
        "DIR/results.json (with paired-bootstrap intervals), PNG plots and summary.md.",
    )
    parser.add_argument("--data", required=True, help="a file, or a directory of *train* and *test* files")
    add_registry_option(
        parser,
        "--format",
        registry="uniroute.datasets:FORMATS",
        default=None,
        help="file format (default: guess)",
    )
    parser.add_argument("--protocol", choices=("static", "unseen"), default="static")
    parser.add_argument(
        "--trials", type=positive_int, default=20, help="random trials of the unseen-LLM protocol"
    )
    add_registry_option(
        parser,
        "--embedder",
        registry="uniroute.engine.embedders:EMBEDDERS",
        default="static",
        help="prompt embedder",
    )
    add_registry_option(
        parser,
        "--map",
        registry="uniroute.engine.cluster_maps:CLUSTER_MAPS",
        action="append",
        dest="maps",
        metavar="MAP",
        help="cluster map evaluated as uniroute-<map>, repeatable (default: kmeans and learned)",
    )
    parser.add_argument(
        "--router",
        dest="user_router",
        metavar="MODULE:FACTORY",
        default=None,
        help="also evaluate your own router (see uniroute.evaluation.custom); it becomes the primary "
        "router of the bootstrap",
    )
    parser.add_argument(
        "--reference", default=None, help="model V_R compares with (default: the most expensive)"
    )
    parser.add_argument(
        "--pools", type=positive_int, default=20, help="random candidate pools per size (RouterEval)"
    )
    parser.add_argument(
        "--bootstrap",
        type=whole_number(0),
        default=1000,
        help="paired-bootstrap resamples of the test prompts (0: none)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: the uniroute cache dir)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="allow loading pickles (runs code: trusted files only)"
    )
    parser.add_argument(
        "--skip-invalid", action="store_true", help="drop malformed rows of the data files instead of failing"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=output_directory, required=True, help="output directory")
    parser.set_defaults(func=run)


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become null (QNC null = quality never reached)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.allow_pickle:
        options["allow_pickle"] = True
    if args.skip_invalid:
        options["skip_invalid"] = True
    return options


def _routers(args: argparse.Namespace, has_text: bool) -> tuple[str, ...]:
    from .baselines import DEFAULT_ROUTERS, map_router_name

    maps = [map_router_name(m) for m in (args.maps or DEFAULT_MAPS)]
    others = [r for r in DEFAULT_ROUTERS if not r.startswith("uniroute-")]
    return (*dict.fromkeys(maps), *others, *(() if has_text else ("uniroute-tasks",)))


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen protocol (and RouterEval's pool study) and return results.json's content."""
    from ..datasets import has_own_split, load_dataset, load_pair, split_by_task
    from ..datasets._dataset import shared_prompts
    from ..datasets._registry import data_format
    from ..engine.embedders import Embedder, cache_dir, get_embedder
    from .custom import UserRouter, load_factory
    from .protocols import check_data, check_pair, embed_datasets, run_pool_sizes, run_static, run_unseen

    progress = False if args.no_progress else None
    options = _load_options(args)
    cache = Path(args.cache_dir) if args.cache_dir else cache_dir() / DEFAULT_CACHE
    extra = {}
    if args.user_router:
        extra[args.user_router] = UserRouter(load_factory(args.user_router), args.user_router)
    whole = None
    if args.protocol == "unseen" and Path(args.data).is_file():
        whole = load_dataset(args.data, args.format, **options)
        if has_own_split(whole):
            whole = None
    if whole is not None:  # one file, unseen protocol: every trial holds out its own test prompts
        check_data(whole)
        train, test = check_pair(*split_by_task(whole, random_state=args.seed))  # for the pool study
    else:
        train, test = check_pair(*load_pair(args.data, args.format, random_state=args.seed, **options))
    # built once here so results.json can name its vectors (the static embedder's differ by machine)
    has_text = train.prompts is not None and test.prompts is not None
    embedder: Embedder | str = get_embedder(args.embedder) if has_text else args.embedder
    embeddings = embed_datasets([train, test], embedder, cache, progress)
    if args.user_router and embeddings is None:
        raise InputError(
            f"--router {args.user_router} routes prompts, and {args.data} has no prompt text; "
            "evaluate it on data with prompts"
        )
    routers = _routers(args, embeddings is not None)
    # the first uniroute router that runs: without text the map routers are skipped
    primary = args.user_router or (routers[0] if embeddings is not None else "uniroute-tasks")
    common: dict[str, Any] = dict(routers=routers, progress=progress, extra_routers=extra, primary=primary)
    if args.protocol == "static":
        result = run_static(
            train,
            test,
            reference=args.reference,
            bootstrap=args.bootstrap,
            random_state=args.seed,
            embeddings=embeddings,
            **common,
        )
    elif whole is not None:
        result = run_unseen(
            whole, None, embedder, trials=args.trials, random_state=args.seed, cache_dir=cache, **common
        )
        result.update(n_prompts=len(whole))
    else:
        result = run_unseen(
            train, test, trials=args.trials, random_state=args.seed, embeddings=embeddings, **common
        )
        result.update(n_train=len(train), n_test=len(test))
    pools = run_pool_sizes(
        train,
        test,
        routers=routers,
        n_pools=args.pools,
        random_state=args.seed,
        embeddings=embeddings,
        progress=progress,
    )
    overlap = shared_prompts(train, test)
    if overlap:
        result.setdefault("warnings", []).append(
            f"{overlap} test prompt(s) also appear in the training data; their results flatter every router "
            "that learns from text"
        )
    result.update(
        data=str(args.data),
        format=data_format(args.data, args.format),  # the guessed one when no --format was given
        embedder=args.embedder,
        embedder_id=None if isinstance(embedder, str) else embedder.id,
        has_text=embeddings is not None,
        primary=primary,
        test_prompts_in_train=overlap,
        pool_sizes=pools,
        scaling=pools["scaling"],
    )
    result.pop("routings", None)
    return _clean(result)


def run(args: argparse.Namespace) -> int:
    """Handler of ``uniroute eval``."""
    from .._optional import require
    from ..engine.files import atomic_write_bytes
    from .plots import deferral_plot, scaling_plot
    from .report import summary_markdown

    require("matplotlib", "eval")  # every run plots: say so before the evaluation, not after it
    out = Path(args.out)
    results = evaluate(args)
    for message in results.get("warnings", []):
        print(f"uniroute eval: warning: {message}", file=sys.stderr)
    plots = []
    if results.get("curves"):
        deferral_plot(results, out / "deferral.png", f"Deferral curves ({results['protocol']} protocol)")
        plots.append("deferral.png")
    scaling_plot(results["pool_sizes"], out / "scaling.png")
    plots.append("scaling.png")
    results["plots"] = plots
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1).encode())
    atomic_write_bytes(out / "summary.md", summary_markdown(results).encode())
    print(f"wrote {out / 'results.json'}, {out / 'summary.md'} and {', '.join(plots)}")
    return 0
