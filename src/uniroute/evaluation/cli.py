"""``uniroute eval``: score routers on routing data and write results.json, plots and summary.md."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

DEFAULT_CACHE = "embeddings"


def register(subparsers: Any) -> None:
    """Add ``uniroute eval`` to the CLI."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate uniroute and baselines on routing data",
        description="Route held-out prompts with uniroute and baseline routers; write DIR/results.json, "
        "PNG plots and summary.md.",
    )
    parser.add_argument("--data", required=True, help="a file, or a directory of *train* and *test* files")
    parser.add_argument(
        "--format", default=None, help="routerbench, jsonl, npz, embedllm or routereval (default: guess)"
    )
    parser.add_argument("--protocol", choices=("static", "unseen"), default="static")
    parser.add_argument("--trials", type=int, default=20, help="random trials of the unseen-LLM protocol")
    parser.add_argument(
        "--embedder", default="static", help="embedder registry name (static, minilm, hashing, ...)"
    )
    parser.add_argument(
        "--reference", default=None, help="model V_R compares with (default: the most expensive)"
    )
    parser.add_argument("--pools", type=int, default=20, help="random candidate pools per size (RouterEval)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: the uniroute cache dir)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="allow loading pickles (runs code: trusted files only)"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", required=True, help="output directory")
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


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen protocol (and RouterEval's pool study) and return results.json's content."""
    from ..engine.embedders import cache_dir
    from .baselines import DEFAULT_ROUTERS
    from .loaders import load_eval_data
    from .protocols import check_pair, embed_datasets, run_pool_sizes, run_static, run_unseen

    progress = False if args.no_progress else None
    train, test = check_pair(
        *load_eval_data(args.data, args.format, args.allow_pickle, random_state=args.seed)
    )
    cache = Path(args.cache_dir) if args.cache_dir else cache_dir() / DEFAULT_CACHE
    embeddings = embed_datasets([train, test], args.embedder, cache, progress)
    routers = DEFAULT_ROUTERS if embeddings is not None else (*DEFAULT_ROUTERS, "uniroute-tasks")
    if args.protocol == "static":
        result = run_static(
            train, test, routers=routers, reference=args.reference, embeddings=embeddings, progress=progress
        )
    else:
        result = run_unseen(
            train,
            test,
            routers=routers,
            trials=args.trials,
            random_state=args.seed,
            embeddings=embeddings,
            progress=progress,
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
    result.update(
        data=str(args.data),
        format=args.format,
        embedder=args.embedder,
        has_text=embeddings is not None,
        pool_sizes=pools,
        scaling=pools["scaling"],
    )
    result.pop("routings", None)
    return _clean(result)


def run(args: argparse.Namespace) -> int:
    """Handler of ``uniroute eval``."""
    from ..engine.files import atomic_write_bytes
    from .plots import deferral_plot, scaling_plot
    from .report import summary_markdown

    out = Path(args.out)
    results = evaluate(args)
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
