"""The ``uniroute`` command line: fit a router, add and remove models, route, inspect.

Front doors add their own subcommands through ``SUBCOMMAND_MODULES``: each module
there has ``register(subparsers)``. Choices come from the registries
(:func:`uniroute._cli.add_registry_option`), and nothing heavier than the standard
library is imported until a command runs, so ``uniroute --help`` answers at once.

The router state is named the same way in every command: the first positional
``STATE`` where a command needs one, ``--state PATH`` where it is optional. The
old ``--router PATH`` still works (with a warning): :func:`main` rewrites it.
"""

from __future__ import annotations

import argparse
import codecs
import importlib
import io
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cli import add_registry_option, positive_int
from .exceptions import InputError, UniRouteError

if TYPE_CHECKING:
    from .datasets import RoutingDataset
    from .engine.router import Router

SUBCOMMAND_MODULES: list[str] = [
    "uniroute.onboarding.cli",
    "uniroute.evaluation.cli",
    "uniroute.report.cli",
    "uniroute.build.cli",
    "uniroute.stores.cli",
]


def _load_data(args: argparse.Namespace) -> RoutingDataset:
    from .datasets import load_dataset

    options = {name: True for name in ("skip_invalid", "allow_pickle") if getattr(args, name)}
    data = load_dataset(args.data, args.format, **options)
    if data.prompts is None:
        raise InputError(f"{args.data} has no prompt text; uniroute needs prompts to fit or profile")
    return data


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="routing results: JSONL records, a RouterBench CSV, ...")
    add_registry_option(
        parser, "--format", registry="uniroute.datasets:FORMATS", help="file format (default: from the name)"
    )
    parser.add_argument(
        "--skip-invalid", action="store_true", help="drop malformed JSONL lines instead of failing"
    )
    parser.add_argument(
        "--allow-pickle", action="store_true", help="let --format routereval unpickle (trusted files only)"
    )


def _profile_all(
    router: Router, data: RoutingDataset, names: Sequence[str] | None, cost: float | None, replace: bool
) -> list:
    names = list(names or data.models)
    missing = [n for n in names if n not in data.models]
    if missing:
        raise InputError(f"model(s) {missing} not in {list(data.models)}")
    if cost is not None and len(names) != 1:
        raise InputError("--cost applies to one model; name it with --model")
    columns = [data.models.index(n) for n in names]
    return router.add_models(
        data.prompts,
        {n: data.scores[:, j] for n, j in zip(names, columns)},
        {n: cost if cost is not None else data.costs[:, j] for n, j in zip(names, columns)},
        replace=replace,
    )


def _cmd_fit(args: argparse.Namespace) -> int:
    from .engine.cluster_maps import CLUSTER_MAPS
    from .engine.router import Router

    data = _load_data(args)
    settings = {"random_state": args.seed} | ({"n_clusters": args.clusters} if args.clusters else {})
    cmap = _construct(CLUSTER_MAPS[args.map], **settings)  # the map's own default K unless --clusters
    router = Router(args.embedder, cmap)
    router.fit(data.prompts, scores=data.scores)  # the scores, for maps that learn from them
    if args.profile:
        _profile_all(router, data, None, None, replace=False)
    path = router.save(args.out)
    print(
        f"fitted {args.map} map, {_map_shape(router)}, on {len(data)} prompts; "
        f"{len(router.models)} models -> {path}"
    )
    return 0


def _map_shape(router: Any) -> str:
    """The fitted map's cluster count and, for maps that have one, its assignment ("K=16, soft"),
    or the maps it averages ("K=56: the mean of 16 soft, 8 soft, 32 hard")."""
    from .engine.cluster_maps import averaged_maps

    cmap = router.cluster_map_
    if averaged := averaged_maps(cmap):
        return f"K={len(cmap.cluster_weights_)}: the mean of {averaged}"
    assignment = getattr(cmap, "assignment_", None)
    return f"K={len(cmap.cluster_weights_)}" + (f", {assignment}" if assignment else "")


def _add_state_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("state", type=Path, metavar="STATE", help="router state (directory or .npz)")
    parser.add_argument(
        "--allow-network",
        action="store_true",
        help="load a state whose embedder calls the network (e.g. an embedding API); off by default",
    )


def _construct(cls: Any, **settings: Any) -> Any:
    """``cls(**settings)``, leaving out settings a third-party class's ``__init__`` does not take."""
    import inspect

    accepted = inspect.signature(cls).parameters
    return cls(**{key: value for key, value in settings.items() if key in accepted})


def _cmd_add_model(args: argparse.Namespace) -> int:
    from .engine.router import Router

    router = Router.load(args.state, allow_network=args.allow_network)
    data = _load_data(args)
    profiles = _profile_all(router, data, args.model, args.cost, args.replace)
    router.save(args.state)
    for p in profiles:
        by_length = f" ({p.cost_per_char * 1000:+.3g} $ per 1,000 more characters)" if p.cost_per_char else ""
        summary = f"{p.n_results:.0f} results, error {p.global_error:.3f}, ${p.cost:.6g}/request{by_length}"
        print(f"added {p.name}: {summary}")
    return 0


def _cmd_remove_model(args: argparse.Namespace) -> int:
    from .engine.router import Router

    router = Router.load(args.state, allow_network=args.allow_network)
    for name in args.model:
        router.remove_model(name)
    router.save(args.state)
    print(f"removed {', '.join(args.model)}; {len(router.models)} models left")
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from .engine.router import Router

    prompt = _read_stdin() if args.prompt == "-" else args.prompt
    router = Router.load(args.state, allow_network=args.allow_network)
    candidates = args.candidates.split(",") if args.candidates else None
    decision = router.route(prompt, lam=args.lam, candidates=candidates)
    if args.json:
        print(json.dumps(decision.to_dict(top=args.top)))
        return 0
    print(f"model: {decision.model}   (λ={decision.lam:g}, cluster {decision.cluster})")
    if decision.note:
        print(f"note: {decision.note}")
    print(f"{'rank':>4}  {'model':<40} {'exp. error':>10} {'$/request':>11} {'score':>9}")
    for rank, row in enumerate(decision.to_dict(top=args.top)["ranking"], start=1):
        print(
            f"{rank:>4}  {row['model']:<40} {row['expected_error']:>10.4f} "
            f"{row['cost']:>11.6f} {row['score']:>9.4f}"
        )
    return 0


def _read_stdin() -> str:
    """The whole of standard input as text (``route STATE -``): prompts too long for argv."""
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if not text.strip():
        raise InputError("route STATE -: standard input is empty; pipe the prompt in, e.g. `cat p.txt |`")
    return text


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .engine.router import Router

    router = Router.load(args.state, allow_network=args.allow_network)
    weights = router.cluster_map_.cluster_weights_
    profiles = router.profiles
    if args.json:
        print(
            json.dumps(
                {
                    "embedder": router.encoder.id,
                    "cluster_map": type(router.cluster_map_).__name__,
                    "n_clusters": len(weights),
                    "assignment": getattr(router.cluster_map_, "assignment_", None),
                    "maps": [
                        {"n_clusters": k, "assignment": a}
                        for k, a, _ in getattr(router.cluster_map_, "maps_", ())
                    ],
                    "cluster_weights": [float(w) for w in weights],
                    "models": {
                        name: {
                            "cost": p.cost,
                            "cost_per_char": p.cost_per_char,
                            "mean_chars": p.mean_chars,
                            "global_error": p.global_error,
                            "errors": p.errors.round(6).tolist(),
                            "counts": p.counts.round(3).tolist(),
                        }
                        for name, p in profiles.items()
                    },
                }
            )
        )
        return 0
    print(f"embedder: {router.encoder.id}   map: {type(router.cluster_map_).__name__}, {_map_shape(router)}")
    print(_inspect_table(router))
    return 0


def _inspect_table(router: Router) -> str:
    """The models × clusters error table of ``inspect``.

    A cluster's share of the training prompts and its *n* (the fewest results any model
    holds there) count within the cluster's own map: a map that averages several gives
    each of its clusters 1/``n_maps_`` of a prompt, so both are scaled back by ``n_maps_``.
    Up to ``MAX_CLUSTER_COLUMNS`` (16) clusters, one row per model; beyond, one row per cluster and a
    column per model.
    """
    import numpy as np

    from .engine.cluster_maps import map_blocks
    from .onboarding.report import MAX_CLUSTER_COLUMNS

    cmap = router.cluster_map_
    n_maps = getattr(cmap, "n_maps_", 1)
    share = cmap.cluster_weights_ * n_maps
    models = sorted(router.profiles.items(), key=lambda kv: kv[1].global_error)
    fewest = np.min([p.counts for _, p in models], axis=0) * n_maps if models else share * 0
    blocks = map_blocks(cmap)
    lines = []
    if len(share) > MAX_CLUSTER_COLUMNS:
        lines.append(f"{'':<6}{'model':<36} {'$/request':>10} {'error':>6} {'n':>6}")
        for j, (name, p) in enumerate(models):
            lines.append(
                f"{f'm{j}':<6}{name[:36]:<36} {p.cost:>10.6f} {p.global_error:>6.3f} {p.n_results:>6.0f}"
            )
        lines.append("")
        head = f"{'cluster':<8}{'map':>4}{'share':>7}{'n':>6}" + "".join(
            f"{f'm{j}':>7}" for j in range(len(models))
        )
        lines.append(head)
        for m, block in enumerate(blocks, start=1):
            for k in range(block.start, block.stop):
                errors = "".join(f"{p.errors[k]:>7.3f}" for _, p in models)
                lines.append(f"{'c' + str(k):<8}{m:>4}{share[k]:>7.2f}{fewest[k]:>6.0f}{errors}")
    else:
        header = "".join(f"{'c' + str(k):>7}" for k in range(len(share)))
        lines.append(f"{'model':<36} {'$/request':>10} {'error':>6} {'n':>6}{header}")
        lines.append(f"{'(share of training prompts)':<61}" + "".join(f"{w:>7.2f}" for w in share))
        for name, p in models:
            cells = "".join(f"{e:>7.3f}" for e in p.errors)
            lines.append(f"{name[:36]:<36} {p.cost:>10.6f} {p.global_error:>6.3f} {p.n_results:>6.0f}{cells}")
        lines.append(f"{'(results per cluster, min)':<61}" + "".join(f"{c:>7.0f}" for c in fewest))
    if len(blocks) > 1:
        described = "; ".join(
            f"map {m}, {k} {a}: c{b.start}-c{b.stop - 1}"
            for m, ((k, a, _), b) in enumerate(zip(getattr(cmap, "maps_", ()), blocks, strict=True), start=1)
        )
        lines.append(f"Φ averages {len(blocks)} maps ({described}); share and n count within each map")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uniroute", description="Route each LLM request to the model that answers best for its price."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = subparsers.add_parser("fit", help="fit the cluster map on a file of prompts")
    _add_data_arguments(fit)
    fit.add_argument(
        "--out", type=Path, required=True, metavar="STATE", help="router state to write (dir, or file.npz)"
    )
    add_registry_option(
        fit, "--embedder", registry="uniroute.engine.embedders:EMBEDDERS", default="static", help="embedder"
    )
    add_registry_option(
        fit,
        "--map",
        registry="uniroute.engine.cluster_maps:CLUSTER_MAPS",
        default="kmeans",
        help="cluster map",
    )
    fit.add_argument("--clusters", type=positive_int, help="number of clusters K (default: the map's own)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--profile", action="store_true", help="also add every model in the file")
    fit.set_defaults(func=_cmd_fit)

    add = subparsers.add_parser("add-model", help="profile model(s) from a results file")
    _add_state_argument(add)
    _add_data_arguments(add)
    add.add_argument("--model", action="append", help="model to add (repeat; default: all in the file)")
    add.add_argument(
        "--cost",
        type=float,
        help="$ per request, every prompt alike (default: the file's $ per prompt; the price follows length)",
    )
    add.add_argument("--replace", action="store_true", help="overwrite a model already in the state")
    add.set_defaults(func=_cmd_add_model)

    remove = subparsers.add_parser("remove-model", help="drop model(s) from the router")
    _add_state_argument(remove)
    remove.add_argument("model", nargs="+")
    remove.set_defaults(func=_cmd_remove_model)

    route = subparsers.add_parser("route", help="route one prompt and explain the choice")
    _add_state_argument(route)
    route.add_argument("prompt", help="the prompt, or - to read it from standard input")
    route.add_argument("--lambda", dest="lam", type=float, default=0.0, help="λ: error traded per $")
    route.add_argument("--candidates", help="comma-separated model names (default: all)")
    route.add_argument("--top", type=positive_int, default=None, help="show only the best N candidates")
    route.add_argument("--json", action="store_true")
    route.set_defaults(func=_cmd_route)

    inspect = subparsers.add_parser("inspect", help="models × clusters error table, costs, counts")
    _add_state_argument(inspect)
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(func=_cmd_inspect)

    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _state_is_positional(subparser: argparse.ArgumentParser) -> bool | None:
    """True if the subcommand takes ``STATE`` positionally, False for ``--state``, None if neither
    (or if ``--router`` is the subcommand's own option, e.g. ``eval --router`` naming a router to test)."""
    if any("--router" in action.option_strings for action in subparser._actions):
        return None
    for action in subparser._actions:
        if action.dest == "state":
            return not action.option_strings
    return None


def _rewrite_router_option(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Turn the deprecated ``--router PATH`` into the command's ``STATE`` or ``--state PATH``."""
    where = [i for i, arg in enumerate(argv) if arg == "--router" or arg.startswith("--router=")]
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not where or not argv or not commands or argv[0] not in commands[0].choices:
        return argv
    positional = _state_is_positional(commands[0].choices[argv[0]])
    i = where[0]
    if positional is None or (argv[i] == "--router" and i + 1 == len(argv)):
        return argv  # argparse reports the unknown or incomplete option
    path, end = (argv[i + 1], i + 2) if argv[i] == "--router" else (argv[i].partition("=")[2], i + 1)
    rest = argv[:i] + argv[end:]
    new = f"`uniroute {argv[0]} STATE ...`" if positional else "--state PATH"
    warnings.warn(f"--router is deprecated; use {new}", DeprecationWarning, stacklevel=2)
    print(f"uniroute: warning: --router is deprecated; use {new}", file=sys.stderr)
    return [rest[0], path, *rest[1:]] if positional else [*rest, "--state", path]


def _escape_what_output_cannot_encode() -> None:
    """Print λ, Ψ, Φ, × or a model's non-ASCII name escaped (``\\u03bb``) on a standard output or error
    whose encoding lacks them (a latin-1 locale, a Windows console redirected to a file), rather than
    fail with UnicodeEncodeError after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and codecs.lookup(stream.encoding).name != "utf-8":
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _escape_what_output_cannot_encode()
    parser = build_parser()
    args = parser.parse_args(_rewrite_router_option(parser, list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.func(args) or 0)
    except UniRouteError as exc:
        print(f"uniroute: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the shell's status for SIGINT, one line instead of a traceback
        print("\nuniroute: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`| head`, `| less`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error again at exit
        return 1
    except OSError as exc:  # a path the system refused (parent is a file, no permission, disk full)
        if exc.filename is None:
            raise  # no path to blame: keep the traceback, it may be a bug
        print(f"uniroute: error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
