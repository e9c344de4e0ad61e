"""``uniroute onboard``, ``uniroute make-validation`` and ``uniroute replay-server``.

Top-level imports stay light: the handlers import what they use.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from .._cli import add_registry_option, positive_int
from .._optional import require
from ..exceptions import InputError


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true, lists), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _quiet_litellm() -> None:
    """The CLI owns the process: keep LiteLLM's per-error help banner out of the progress bar."""
    litellm: Any = require("litellm", "litellm")  # a module: mypy cannot see its attributes
    litellm.suppress_debug_info = True


def _command_line(args: argparse.Namespace, **changes: Any) -> str:
    """The ``uniroute`` command line that parses to ``args`` (with ``changes``), shell-quoted."""
    parser: argparse.ArgumentParser = args._parser
    values = vars(args) | changes
    words = ["uniroute", args._command]
    for action in parser._actions:
        value = values.get(action.dest)
        if action.dest in ("help", "func", "_parser", "_command") or value is None or value is False:
            continue
        if action.default is not None and value == action.default:
            continue
        if not action.option_strings:
            words.append(str(value))
        elif isinstance(action, argparse._StoreTrueAction):
            words.append(action.option_strings[-1])
        elif isinstance(action, argparse._AppendAction):
            for one in value:
                words += [action.option_strings[-1], _unparse(one)]
        else:
            words += [action.option_strings[-1], _unparse(value)]
    return shlex.join(words)


def _unparse(value: Any) -> str:
    """The command-line text of a parsed value (``KEY=VALUE`` pairs back to ``KEY=JSON``)."""
    if isinstance(value, tuple):
        key, inner = value
        return f"{key}={inner if isinstance(inner, str) else json.dumps(inner)}"
    return str(value)


def call_arguments(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """The LiteLLM call parameters (``--param``, ``--temperature``, ``--max-tokens``) and the API key
    (read from the variable ``--api-key-env`` names) of a command that calls models."""
    params = dict(args.param or [])
    for key in ("temperature", "max_tokens"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if api_key is None:
            raise InputError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    return params, api_key


def _judge_estimates(items: list[Any], config: Path | None) -> list[str]:
    """One dry-run line per judge the validation items name (their ``llm_judge`` graders),
    priced like ``uniroute build --judge``: the config deployment's prices, else LiteLLM's."""
    from ..build.judges import estimate_line, judge_resolver, judge_settings
    from .graders import GraderSet, LLMJudgeGrader

    graders = GraderSet(judge_resolver(config))
    judged: dict[int, tuple[Any, list[Any]]] = {}
    for item in items:
        grader = graders.for_item(item)
        if isinstance(grader, LLMJudgeGrader):
            judged.setdefault(id(grader), (grader, []))[1].append(item.messages())
    return [
        estimate_line(grader.judge, messages, len(messages), judge_settings(grader.model, config)[1])[0]
        for grader, messages in judged.values()
    ]


def _cmd_onboard(args: argparse.Namespace) -> int:
    from ..build.judges import judge_resolver
    from ..build.models import config_deployment
    from .cache import cache_file
    from .graders import GraderSet
    from .pricing import estimate
    from .runner import _check_arguments, onboard
    from .settings import CallSettings
    from .validation import load_validation

    params, api_key = call_arguments(args)
    given = {
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "concurrency": args.concurrency,
        "backoff": args.backoff,
    }
    overrides = {key: value for key, value in given.items() if value is not None}
    prices = None
    if args.config:  # priced as `uniroute build` prices the deployment (its own $ per token, if given)
        settings, prices = config_deployment(args.config, args.model, **overrides)
        settings.params.update(params)
        settings.api_base = args.api_base or settings.api_base
        settings.api_key = api_key or settings.api_key
    else:
        settings = CallSettings(args.model, args.api_base, api_key, params, **overrides)
    settings.check()
    _quiet_litellm()
    items = load_validation(args.validation, skip_invalid=args.skip_invalid)
    judge_config = args.judge_config or args.config
    judge = judge_resolver(judge_config)
    if args.dry_run:  # what the run checks before calling, so a dry run fails where the run would
        name = args.name or settings.model
        graders = GraderSet(judge)
        _check_arguments(items, args.state, settings, name, args.cost, args.replace, graders, False, prices)
    guess = estimate(items, settings, args.cost, args.cache, args.output_tokens, prices)
    print(f"estimate: {guess.summary()}")
    for line in _judge_estimates(items, judge_config):
        print(f"estimate: {line}")
    if args.dry_run:
        print(f"dry run: nothing called; answers would be cached in {cache_file(settings.model, args.cache)}")
        return 0
    try:
        result = onboard(
            items,
            args.state,
            settings,
            name=args.name,
            cost=args.cost,
            replace=args.replace,
            cache_dir=args.cache,
            progress=None if not args.no_progress else False,
            judge=judge,
            prices=prices,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the router state is unchanged; answers so far are kept in "
            f"{cache_file(settings.model, args.cache)} and a new run resumes from them",
            file=sys.stderr,
        )
        return 130
    print(result.summary(rerun=_command_line(args, replace=True)))
    print("\nper-cluster error Ψ (* = the new model)")
    print(result.table)
    return 0


def _port(text: str) -> int:
    """The argparse type of ``--port``: a TCP port number (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def _cmd_make_validation(args: argparse.Namespace) -> int:
    from ..datasets import concat, load_dataset
    from ..engine.router import Router
    from .validation import build_validation, save_validation

    files: list[Path] = []
    for path in args.data:
        files.extend(sorted(p for p in path.iterdir() if p.suffix == ".csv") if path.is_dir() else [path])
    if args.split:
        files = [f for f in files if args.split in f.name]
    if not files:
        raise InputError(f"no data file in {[str(p) for p in args.data]} (split {args.split!r})")
    data = concat([load_dataset(f) for f in files])
    router = Router.load(args.state) if args.state else None
    items, report = build_validation(
        data,
        args.grader,
        dict(args.grader_option or []),
        router=router,
        per_cluster=args.per_cluster,
        tasks=args.task,
        exclude_models=args.exclude_model or (),
        random_state=args.seed,
    )
    if not items:
        raise InputError("no prompt has a reference; nothing to write")
    save_validation(items, args.out)
    print(report.summary())
    print(f"wrote {len(items)} items from {len(files)} file(s) -> {args.out}")
    return 0


def _cmd_replay_server(args: argparse.Namespace) -> int:
    from .replay_server import ReplayData, ReplayHTTPServer, _address

    data = ReplayData.from_paths(args.data)
    try:
        server = ReplayHTTPServer(data, args.host, args.port, verbose=args.verbose)
    except OSError as exc:  # the port is taken, or the host is not this machine's
        raise InputError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}; choose another --port "
            "(0: any free port) or --host"
        ) from exc
    print(
        f"replaying {data.n_prompts} recorded prompts of {len(data.models)} models on "
        f"http://{_address(server)}/v1 (Ctrl-C stops)\nmodels: {', '.join(data.models)}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the onboarding subcommands to the ``uniroute`` parser."""
    p = subparsers.add_parser(
        "onboard",
        help="run a new model on a validation set through LiteLLM and add its Ψ to a router",
        description="Call MODEL on every validation prompt, grade the answers and write the model's "
        "per-cluster error into the router state. Nothing is refitted.",
    )
    p.add_argument("state", metavar="STATE", type=Path, help="router state to update")
    p.add_argument("model", metavar="MODEL", help="LiteLLM model string, or a deployment name with --config")
    p.add_argument("--validation", type=Path, required=True, help="validation set (JSONL)")
    p.add_argument("--name", help="the model's name in the router (default: MODEL)")
    p.add_argument(
        "--cost",
        type=float,
        help="$ per request (default: the calls' $ at the --config deployment's input_cost_per_token / "
        "output_cost_per_token, else LiteLLM's prices, weighed by cluster as `uniroute build` does)",
    )
    p.add_argument(
        "--api-base", help="base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
    )
    p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    p.add_argument("--config", type=Path, help="LiteLLM config.yaml; MODEL names a model_list deployment")
    p.add_argument(
        "--judge-config",
        type=Path,
        metavar="CONFIG",
        help="LiteLLM config.yaml whose deployment named like the validation file's llm_judge model gives "
        "the judge's endpoint, key and parameters, as for `uniroute build --judge` (default: --config; "
        "a validation file never chooses them)",
    )
    p.add_argument(
        "--param", action="append", type=_option, metavar="KEY=VALUE", help="extra LiteLLM argument"
    )
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--concurrency", type=int, help="calls in flight (default 8)")
    p.add_argument("--timeout", type=float, help="seconds per call (default 60, or the config's)")
    p.add_argument("--max-retries", type=int, help="retries on 429/5xx/timeouts (default 4)")
    p.add_argument("--backoff", type=float, help="first retry delay in seconds (default 1)")
    p.add_argument(
        "--cache", type=Path, help="answer cache directory (default: ~/.cache/uniroute/onboarding)"
    )
    p.add_argument("--dry-run", action="store_true", help="estimate tokens and $ only; call nothing")
    p.add_argument(
        "--output-tokens", type=positive_int, default=256, help="completion tokens a call, for --dry-run"
    )
    p.add_argument("--replace", action="store_true", help="re-onboard a model already in the router")
    p.add_argument("--skip-invalid", action="store_true", help="skip malformed validation lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_onboard, _parser=p, _command="onboard")

    m = subparsers.add_parser(
        "make-validation",
        help="build a validation set from recorded results, sampled per cluster of a router",
    )
    m.add_argument("--data", type=Path, nargs="+", required=True, help="RouterBench CSV files or directories")
    m.add_argument("--out", type=Path, required=True, help="validation JSONL to write")
    m.add_argument("--split", help="only files whose name contains this, e.g. test")
    m.add_argument("--state", type=Path, help="router state whose clusters to sample from")
    m.add_argument("--per-cluster", type=int, help="prompts per cluster (needs --state)")
    m.add_argument("--task", action="append", help="keep only this task tag (repeat)")
    add_registry_option(
        m, "--grader", registry="uniroute.onboarding.graders:GRADERS", default="multiple_choice"
    )
    m.add_argument("--grader-option", action="append", type=_option, metavar="KEY=VALUE")
    m.add_argument("--exclude-model", action="append", help="model whose answers must not make references")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_cmd_make_validation)

    r = subparsers.add_parser(
        "replay-server", help="OpenAI-compatible server answering with recorded RouterBench responses"
    )
    r.add_argument("--data", type=Path, nargs="+", required=True, help="RouterBench CSV files or directories")
    r.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    r.add_argument(
        "--port", type=_port, default=8000, help="port to listen on (default 8000; 0: any free port)"
    )
    r.add_argument("--verbose", action="store_true", help="log every request")
    r.set_defaults(func=_cmd_replay_server)
