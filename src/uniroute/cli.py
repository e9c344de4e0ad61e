"""The ``uniroute`` command line: fit a router, add and remove models, route, inspect.

Front doors add their own subcommands through ``SUBCOMMAND_MODULES``: each module
there has ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .exceptions import InputError, UniRouteError

SUBCOMMAND_MODULES: list[str] = ["uniroute.onboarding.cli", "uniroute.evaluation.cli"]
_FORMATS = ["routerbench", "jsonl"]


def _load_data(args: argparse.Namespace):
    from .datasets import load_dataset

    data = load_dataset(args.data, args.format, **({"skip_invalid": True} if args.skip_invalid else {}))
    if data.prompts is None:
        raise InputError(f"{args.data} has no prompt text; uniroute needs prompts to fit or profile")
    return data


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="JSONL routing records or a RouterBench CSV")
    parser.add_argument("--format", choices=_FORMATS, help="file format (default: from the suffix)")
    parser.add_argument(
        "--skip-invalid", action="store_true", help="drop malformed JSONL lines instead of failing"
    )


def _profile_all(router, data, names: Sequence[str] | None, cost: float | None, replace: bool) -> list:
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
    from . import KMeansClusterMap, LearnedClusterMap, Router

    data = _load_data(args)
    cmap = (
        LearnedClusterMap(n_clusters=args.clusters, random_state=args.seed)
        if args.map == "learned"
        else KMeansClusterMap(n_clusters=args.clusters, random_state=args.seed)
    )
    router = Router(args.embedder, cmap)
    router.fit(data.prompts, scores=data.scores if args.map == "learned" else None)
    if args.profile:
        _profile_all(router, data, None, None, replace=False)
    path = router.save(args.out)
    print(
        f"fitted {args.map} map, K={args.clusters}, on {len(data)} prompts; "
        f"{len(router.models)} models -> {path}"
    )
    return 0


def _cmd_add_model(args: argparse.Namespace) -> int:
    from . import Router

    router = Router.load(args.state)
    data = _load_data(args)
    profiles = _profile_all(router, data, args.model, args.cost, args.replace)
    router.save(args.state)
    for p in profiles:
        print(f"added {p.name}: {p.n_results:.0f} results, error {p.global_error:.3f}, ${p.cost:.6g}/request")
    return 0


def _cmd_remove_model(args: argparse.Namespace) -> int:
    from . import Router

    router = Router.load(args.state)
    for name in args.model:
        router.remove_model(name)
    router.save(args.state)
    print(f"removed {', '.join(args.model)}; {len(router.models)} models left")
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from . import Router

    router = Router.load(args.state)
    candidates = args.candidates.split(",") if args.candidates else None
    decision = router.route(args.prompt, lam=args.lam, candidates=candidates)
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


def _cmd_inspect(args: argparse.Namespace) -> int:
    from . import Router

    router = Router.load(args.state)
    weights = router.cluster_map.cluster_weights_
    profiles = router.profiles
    if args.json:
        print(
            json.dumps(
                {
                    "embedder": router.encoder.id,
                    "cluster_map": type(router.cluster_map).__name__,
                    "cluster_weights": [float(w) for w in weights],
                    "models": {
                        name: {
                            "cost": p.cost,
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
    print(f"embedder: {router.encoder.id}   map: {type(router.cluster_map).__name__}, K={len(weights)}")
    header = "".join(f"{'c' + str(k):>7}" for k in range(len(weights)))
    print(f"{'model':<36} {'$/request':>10} {'error':>6} {'n':>6}{header}")
    print(f"{'(share of training prompts)':<61}" + "".join(f"{w:>7.2f}" for w in weights))
    for name, p in sorted(profiles.items(), key=lambda kv: kv[1].global_error):
        cells = "".join(f"{e:>7.3f}" for e in p.errors)
        print(f"{name[:36]:<36} {p.cost:>10.6f} {p.global_error:>6.3f} {p.n_results:>6.0f}{cells}")
    print(
        f"{'(results per cluster, min)':<61}"
        + "".join(
            f"{c:>7.0f}"
            for c in (np.min([p.counts for p in profiles.values()], axis=0) if profiles else weights * 0)
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .engine.embedders import EMBEDDERS

    parser = argparse.ArgumentParser(
        prog="uniroute", description="Route each LLM request to the model that answers best for its price."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = subparsers.add_parser("fit", help="fit the cluster map on a file of prompts")
    _add_data_arguments(fit)
    fit.add_argument("--out", type=Path, required=True, help="router state to write (dir, or file.npz)")
    fit.add_argument("--embedder", default="static", choices=sorted(EMBEDDERS))
    fit.add_argument("--map", default="kmeans", choices=["kmeans", "learned"])
    fit.add_argument("--clusters", type=int, default=8, help="number of clusters K")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--profile", action="store_true", help="also add every model in the file")
    fit.set_defaults(func=_cmd_fit)

    add = subparsers.add_parser("add-model", help="profile model(s) from a results file")
    add.add_argument("state", type=Path)
    _add_data_arguments(add)
    add.add_argument("--model", action="append", help="model to add (repeat; default: all in the file)")
    add.add_argument("--cost", type=float, help="$ per request (default: mean of the file's costs)")
    add.add_argument("--replace", action="store_true", help="overwrite a model already in the state")
    add.set_defaults(func=_cmd_add_model)

    remove = subparsers.add_parser("remove-model", help="drop model(s) from the router")
    remove.add_argument("state", type=Path)
    remove.add_argument("model", nargs="+")
    remove.set_defaults(func=_cmd_remove_model)

    route = subparsers.add_parser("route", help="route one prompt and explain the choice")
    route.add_argument("state", type=Path)
    route.add_argument("prompt")
    route.add_argument("--lambda", dest="lam", type=float, default=0.0, help="λ: error traded per $")
    route.add_argument("--candidates", help="comma-separated model names (default: all)")
    route.add_argument("--top", type=int, default=None, help="show only the best N candidates")
    route.add_argument("--json", action="store_true")
    route.set_defaults(func=_cmd_route)

    inspect = subparsers.add_parser("inspect", help="models × clusters error table, costs, counts")
    inspect.add_argument("state", type=Path)
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(func=_cmd_inspect)

    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UniRouteError as exc:
        print(f"uniroute: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
