"""``uniroute build``: a router and its report from a prompt log and a LiteLLM model list.

Top-level imports stay light: the handler imports what it uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._cli import add_registry_option, output_directory
from ..exceptions import InputError

#: Exit status when the budget stopped the run (the cache is kept; rerun to resume).
EXIT_BUDGET = 3


def _budget(text: str) -> float:
    try:
        return float(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected $ such as 20 or $20, got {text!r}") from None


def _cmd_build(args: argparse.Namespace) -> int:
    from ..onboarding.cli import _quiet_litellm, call_arguments
    from .pipeline import build

    params, api_key = call_arguments(args)
    if args.config and (args.api_base or api_key or params):
        raise InputError(
            "--api-base, --api-key-env and call parameters apply to --model; with --config, set them in "
            "each deployment's litellm_params"
        )
    call = {
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "api_base": args.api_base,
        "api_key": api_key,
        "params": params or None,
    }
    _quiet_litellm()
    try:
        result = build(
            args.prompts,
            args.out,
            config=args.config,
            group=args.group,
            models=args.model or (),
            per_cluster=args.per_cluster,
            allocation=args.allocation,
            clusters=args.clusters,
            embedder=args.embedder,
            grader=args.grader,
            grader_options=dict(args.grader_option or []),
            judge=args.judge,
            judge_mode=args.judge_mode,
            anchor=args.anchor,
            judge_prompt=args.judge_prompt,
            budget=args.budget,
            dry_run=args.dry_run,
            update=args.update,
            cache_dir=args.cache_dir,
            skip_invalid=args.skip_invalid,
            seed=args.seed,
            progress=None if not args.no_progress else False,
            call={k: v for k, v in call.items() if v is not None},
            report=not args.no_report,
        )
    except KeyboardInterrupt:
        cache = args.cache_dir or args.out / "cache"
        print(
            f"\ninterrupted: nothing was written to the state; answers so far are kept in {cache} and the "
            "same command resumes from them (no answer is paid twice)",
            file=sys.stderr,
        )
        return 130
    print(result.summary())
    return EXIT_BUDGET if result.stopped else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build`` subcommand to the ``uniroute`` parser."""
    from ..onboarding.cli import _option

    p = subparsers.add_parser(
        "build",
        help="build a router and its report from a prompt log and a LiteLLM model list",
        description="Fit the cluster map on a prompt log, sample a validation set per cluster, call every "
        "model (a LiteLLM model group, or --model), grade the answers (references in the log, or a judge "
        "model), write the router state and its report. Resumable (answers are cached) and budgeted.",
    )
    p.add_argument("--prompts", type=Path, required=True, metavar="LOG", help="prompt log (JSONL or text)")
    p.add_argument(
        "--out",
        type=output_directory,
        required=True,
        metavar="DIR",
        help="build directory (state, report...)",
    )
    models = p.add_argument_group("models")
    models.add_argument("--config", type=Path, help="LiteLLM config.yaml")
    models.add_argument(
        "--group", metavar="G", help="the model group (model_name) whose deployments to profile"
    )
    models.add_argument(
        "--model",
        action="append",
        metavar="M",
        help="LiteLLM model string or NAME=MODEL (repeat; no --config)",
    )
    models.add_argument("--api-base", help="with --model: base URL of an OpenAI-compatible server")
    models.add_argument(
        "--api-key-env", metavar="VAR", help="with --model: environment variable of the API key"
    )
    models.add_argument(
        "--param",
        action="append",
        type=_option,
        metavar="KEY=VALUE",
        help="with --model: another litellm.acompletion argument (repeat; VALUE is JSON if it parses)",
    )
    models.add_argument("--temperature", type=float)
    models.add_argument("--max-tokens", type=int)
    sample = p.add_argument_group("validation set")
    sample.add_argument("--per-cluster", type=int, default=30, help="prompts per cluster (default: 30)")
    sample.add_argument(
        "--allocation",
        choices=("per-cluster", "share"),
        default="share",
        help="per-cluster: --per-cluster from every cluster; share: the same total split by each "
        "cluster's share of the log, at least a third of --per-cluster each (default: share)",
    )
    sample.add_argument("--clusters", type=int, help="number of clusters K (default: the map's own, 8)")
    add_registry_option(
        sample,
        "--embedder",
        registry="uniroute.engine.embedders:EMBEDDERS",
        default="static",
        help="embedder",
    )
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--skip-invalid", action="store_true", help="drop malformed log lines (counted)")
    grading = p.add_argument_group("grading")
    add_registry_option(
        grading,
        "--grader",
        registry="uniroute.onboarding.graders:GRADERS",
        default="exact",
        help="grader of answers against the log's references",
    )
    grading.add_argument("--grader-option", action="append", type=_option, metavar="KEY=VALUE")
    grading.add_argument(
        "--judge", metavar="MODEL", help="judge model (LiteLLM string, or a deployment of --config)"
    )
    add_registry_option(
        grading, "--judge-mode", registry="uniroute.build.judges:JUDGES", default="absolute", help="judge"
    )
    grading.add_argument("--anchor", metavar="PROFILE", help="pairwise: the model answers are compared with")
    grading.add_argument("--judge-prompt", type=Path, metavar="FILE", help="your own judge template")
    money = p.add_argument_group("cost and runs")
    money.add_argument("--budget", type=_budget, metavar="USD", help="stop before this run spends more")
    money.add_argument("--dry-run", action="store_true", help="print calls, tokens and $; call nothing")
    money.add_argument(
        "--update", action="store_true", help="top up the build in --out (new prompts, models)"
    )
    money.add_argument("--concurrency", type=int, help="calls in flight per model (default: 8)")
    money.add_argument("--timeout", type=float, help="seconds per call (default: 60)")
    money.add_argument("--max-retries", type=int, help="retries of a failed call (default: 4)")
    money.add_argument("--cache-dir", type=Path, metavar="D", help="answer cache (default: DIR/cache)")
    p.add_argument("--no-report", action="store_true", help="skip the report")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_build)
