"""``uniroute report STATE``: the HTML report and markdown summary of a router.

Top-level imports stay light (``uniroute --help`` builds this parser): the
handler imports what it uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._cli import output_directory


def _cmd_report(args: argparse.Namespace) -> int:
    from . import _format as fmt
    from ._content import build_report, read_prompts
    from ._write import write_report

    prompts = read_prompts(args.prompts) if args.prompts else None
    data = build_report(args.state, prompts, args.validation, args.budget, allow_network=args.allow_network)
    paths = write_report(data, args.out, title=args.title)
    for p in data.points:
        print(
            f"{p.name:<16} λ={fmt.lam(p.lam):<10} {fmt.per_1k(p.cost):>10} per 1k requests, "
            f"expected quality {fmt.quality(p.expected_quality)}, saves {fmt.percent(p.saved_fraction)}"
        )
    for note in data.notes:
        print(f"note: {note}")
    print(f"wrote {paths['html']} and {paths['summary']}")
    return 0


def _budget(text: str) -> float:
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected $ per request, e.g. 0.002; got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"the budget must be a finite $ per request >= 0, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    """Add ``uniroute report`` to the CLI."""
    p = subparsers.add_parser(
        "report",
        help="write an HTML report and markdown summary of a router (clusters, Ψ, quality/cost)",
        description="Describe a router for people: what each cluster is, each model's error per cluster, "
        "and the quality/cost frontier with its operating points. Writes DIR/report.html (one "
        "self-contained file) and DIR/summary.md.",
    )
    p.add_argument("state", type=Path, metavar="STATE", help="router state (directory or .npz)")
    p.add_argument(
        "--validation",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="validation set(s) (JSONL) or routing data with scores (e.g. RouterBench's *_test.csv, joined): "
        "the traffic sample when --prompts is not given; scores add measured quality",
    )
    p.add_argument(
        "--prompts",
        type=Path,
        metavar="FILE",
        help="a sample of traffic: JSONL of prompt/messages, or one prompt a line",
    )
    p.add_argument(
        "--budget", type=_budget, metavar="$", help="add the operating point for this $ per request"
    )
    p.add_argument(
        "--out", type=output_directory, required=True, metavar="DIR", help="directory to write into"
    )
    p.add_argument("--title", default="uniroute report", help="page title")
    p.add_argument(
        "--allow-network",
        action="store_true",
        help="load a state whose embedder calls the network (e.g. an embedding API); off by default",
    )
    p.set_defaults(func=_cmd_report)
