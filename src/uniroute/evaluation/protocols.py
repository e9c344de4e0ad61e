"""Evaluation protocols: how data is split, which pool is routed over, what is averaged.

* :func:`run_static` — one train/test split, every model known to the router;
  profiles (Ψ) and neighbours come from the training prompts.
* :func:`run_unseen` — UniRoute's dynamic pool: in each trial the models are split
  into training LLMs (≈2/3, used to fit Φ) and unseen test LLMs (≈1/3, profiled
  on a small validation set and routed over); mean ± std over trials.
* :func:`run_pool_sizes` — RouterEval: λ = 0 routing over random candidate pools of
  3, 5, 10 and all models, and model-level scaling curves (quality against the
  number of candidates) for every router and for r_o(p) at several p.

Protocols return plain dicts (JSON-ready); :mod:`.plots` and :mod:`.report` draw them.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..datasets import RoutingDataset, split_by_task
from ..engine.cache import CachedEmbedder
from ..engine.embedders import Embedder, get_embedder
from ..engine.text import routing_text
from ..exceptions import InputError
from . import metrics
from .baselines import DEFAULT_ROUTERS, BaselineRouter, Routing, Split, router_factory
from .bootstrap import N_RESAMPLES

R_O_PS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
POOL_SIZES: tuple[int | str, ...] = (3, 5, 10, "all")


# ---- input checks -------------------------------------------------------------


def check_data(data: RoutingDataset, name: str = "data") -> None:
    """Reject scores outside [0, 1], infinite costs and models with no result at all."""
    observed = data.scores[~np.isnan(data.scores)]
    if observed.size and (((observed < 0) | (observed > 1)).any() or not np.isfinite(observed).all()):
        bad = observed[(observed < 0) | (observed > 1) | ~np.isfinite(observed)][0]
        raise InputError(f"{name}: scores must lie in [0, 1] (empty/NaN = missing); found {bad}")
    if np.isinf(data.costs).any() or (data.costs[np.isfinite(data.costs)] < 0).any():
        raise InputError(
            f"{name}: costs must be finite $ >= 0 (empty = unknown); found an infinite or negative cost"
        )
    empty = [m for j, m in enumerate(data.models) if np.isnan(data.scores[:, j]).all()]
    if empty:
        raise InputError(
            f"{name}: model(s) {empty} have no result at all; drop them from the data or add their results"
        )
    known = ~np.isnan(data.costs).all(axis=0)
    if known.any() and not known.all():
        missing = [m for j, m in enumerate(data.models) if not known[j]]
        raise InputError(
            f"{name}: model(s) {missing} have no cost while others do; give every model's cost "
            "(or none, for a quality-only evaluation)"
        )


def check_pair(train: RoutingDataset, test: RoutingDataset) -> tuple[RoutingDataset, RoutingDataset]:
    """Keep the models both halves share; reject pairs that cannot be evaluated."""
    shared = [m for m in train.models if m in test.models]
    if not shared:
        raise InputError(
            f"train and test share no model (train: {list(train.models)[:5]}..., test: "
            f"{list(test.models)[:5]}...); routing needs the same models on both sides"
        )
    if len(shared) < 2:
        raise InputError(f"only one model ({shared[0]!r}) in the pool: there is nothing to route between")
    train, test = train.select_models(shared), test.select_models(shared)
    check_data(train, "train")
    check_data(test, "test")
    return train, test


def has_costs(data: RoutingDataset) -> bool:
    return bool(np.isfinite(data.costs).any())


def complete_rows(data: RoutingDataset, models: Sequence[str]) -> RoutingDataset:
    """Test prompts on which every pool model has a result (costs filled with model means)."""
    sub = data.select_models(list(models))
    keep = ~np.isnan(sub.scores).any(axis=1)
    if not keep.any():
        raise InputError(f"no test prompt has results for all of {list(models)}")
    sub = sub.rows(np.flatnonzero(keep))
    if has_costs(sub):
        means = sub.mean_costs()
        costs = np.where(np.isnan(sub.costs), means[None, :], sub.costs)
        sub = RoutingDataset(sub.models, sub.scores, costs, sub.prompts, sub.tasks, sub.ids, sub.responses)
    return sub


# ---- embeddings -----------------------------------------------------------------


def embed_datasets(
    datasets: Sequence[RoutingDataset],
    embedder: Embedder | str,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
) -> list[np.ndarray] | None:
    """Embed every dataset's prompts (routing text rule), cached on disk between runs."""
    if any(d.prompts is None for d in datasets):
        return None
    model = get_embedder(embedder) if isinstance(embedder, str) else embedder
    encoder = CachedEmbedder(model, maxsize=1, directory=cache_dir)
    out = []
    for data in datasets:
        texts = [routing_text(p) for p in data.prompts or []]
        chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
        bar = tqdm(chunks, desc="embedding", unit="batch", disable=None if progress is None else not progress)
        out.append(np.concatenate([encoder.encode(c) for c in bar]) if chunks else np.zeros((0, model.dim)))
    return out


# ---- one split ------------------------------------------------------------------


def build_routers(
    names: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, BaselineRouter]:
    options = options or {}
    return {n: router_factory(n)(**dict(options.get(n, {}))) for n in names}


def usable(routers: Mapping[str, BaselineRouter], with_text: bool) -> dict[str, BaselineRouter]:
    return {n: r for n, r in routers.items() if with_text or not r.needs_text}


def _outcome(routing: Routing, split: Split) -> tuple[metrics.PromptPaths | None, np.ndarray]:
    """The router's routes as λ grows (None without costs) and its λ = 0 output probabilities."""
    quality = split.test.scores
    cost = split.test.costs if has_costs(split.test) else None
    if routing.choices is not None:
        choices = routing.choices
        paths = None if cost is None else metrics.paths_of_choices(choices, quality, cost)
        return paths, choices
    if routing.lambda_choices is not None and routing.lambdas is not None:
        grid = routing.lambda_choices
        paths = None if cost is None else metrics.paths_of_grid(routing.lambdas, grid, quality, cost)
        return paths, metrics.one_hot(grid[0], quality.shape[1])
    assert routing.errors is not None and routing.costs is not None
    decision = routing.costs if cost is not None else np.zeros(len(split.pool))
    one_hot = metrics.one_hot(metrics.first_choice(routing.errors, decision), quality.shape[1])
    paths = metrics.prompt_paths(routing.errors, decision, quality, cost) if cost is not None else None
    return paths, one_hot


def reference_index(split: Split, reference: str | None) -> int:
    """V_R's reference: the named model, else the pool's most expensive (or best on validation)."""
    if reference is not None:
        if reference not in split.pool:
            raise InputError(f"reference model {reference!r} is not in the pool {list(split.pool)}")
        return split.pool.index(reference)
    if has_costs(split.valid):
        return int(np.argmax(split.valid_costs()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return int(np.nanargmax(np.nanmean(split.valid_scores(), axis=0)))


def evaluate_split(
    split: Split,
    routers: Mapping[str, BaselineRouter],
    reference: str | None = None,
    keep_routings: bool = False,
    bootstrap: int = 0,
    primary: str | None = None,
    random_state: int = 0,
) -> dict[str, Any]:
    """Route the split with every router and summarise each one.

    With ``bootstrap`` > 0 (and costs), adds ``bootstrap``: paired-bootstrap
    intervals of area and QNC over the test prompts, ``primary`` (default: the
    first router) against every other router (see :func:`.bootstrap.paired_bootstrap`),
    and ``warnings`` when the split is too small for QNC to mean anything.
    ``keep_routings`` adds each router's :class:`Routing` (``routings``) and
    :class:`~.metrics.PromptPaths` (``paths``), for later bootstraps.
    """
    ref = reference_index(split, reference)
    cost = split.test.costs if has_costs(split.test) else None
    out: dict[str, Any] = {
        "routers": {},
        "curves": {},
        "reference": split.pool[ref],
        "routings": {},
        "router_info": {},
        "warnings": [],
    }
    all_paths = {}
    for name, router in routers.items():
        routing = router.route(split)
        paths, choices = _outcome(routing, split)
        out["routers"][name] = metrics.summarize(paths, choices, split.test.scores, cost, ref)
        if paths is not None:
            out["curves"][name] = paths.curve().to_dict()
            all_paths[name] = paths
        if routing.info:
            out["router_info"][name] = routing.info
        if keep_routings:
            out["routings"][name] = routing
            out.setdefault("paths", {})[name] = paths
    if bootstrap and cost is not None and len(all_paths) > 1:
        from .bootstrap import paired_bootstrap, qnc_warnings

        first = primary or next(iter(all_paths))
        out["bootstrap"] = paired_bootstrap(
            all_paths, split.test.scores, cost, first, bootstrap, random_state
        )
        out["warnings"] += qnc_warnings(out["bootstrap"])
    means = split.test.scores.mean(axis=0)
    out["models"] = {
        m: {
            "quality": float(means[j]),
            "cost": None if cost is None else float(cost[:, j].mean()),
        }
        for j, m in enumerate(split.pool)
    }
    return out


def _static_split(train: RoutingDataset, test: RoutingDataset, embeddings: list[np.ndarray] | None) -> Split:
    mask = ~np.isnan(test.select_models(list(train.models)).scores).any(axis=1)
    return Split(
        train=train,
        valid=train,
        test=complete_rows(test, train.models),
        X_train=None if embeddings is None else embeddings[0],
        X_valid=None if embeddings is None else embeddings[0],
        X_test=None if embeddings is None else embeddings[1][mask],
    )


def run_static(
    train: RoutingDataset,
    test: RoutingDataset,
    embedder: Embedder | str = "static",
    routers: Sequence[str] = DEFAULT_ROUTERS,
    router_options: Mapping[str, Mapping[str, Any]] | None = None,
    reference: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    embeddings: list[np.ndarray] | None = None,
    bootstrap: int = N_RESAMPLES,
    primary: str | None = None,
    random_state: int = 0,
    extra_routers: Mapping[str, BaselineRouter] | None = None,
) -> dict[str, Any]:
    """The static pool: fit and profile on ``train``, route ``test`` over all shared models.

    ``bootstrap`` resamples (0: none) give paired intervals of ``primary`` (default:
    the first router) against every other; ``extra_routers`` are routers built
    elsewhere (a user's own, see :mod:`.custom`), evaluated first.
    """
    train, test = check_pair(train, test)
    if embeddings is None:
        embeddings = embed_datasets([train, test], embedder, cache_dir, progress)
    chosen = {**(extra_routers or {}), **build_routers(routers, router_options)}
    chosen = usable(chosen, embeddings is not None)
    split = _static_split(train, test, embeddings)
    result = evaluate_split(
        split, chosen, reference, bootstrap=bootstrap, primary=primary, random_state=random_state
    )
    result.update(
        protocol="static",
        n_train=len(train),
        n_test=len(split.test),
        skipped_routers=[n for n in routers if n not in chosen],
    )
    return result


def _aggregate(trials: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names = list(trials[0]["routers"])
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        summary: dict[str, Any] = {}
        for key in trials[0]["routers"][name]:
            values = [t["routers"][name][key] for t in trials]
            if any(v is None for v in values):
                summary[key] = None
                continue
            arr = np.asarray(values, dtype=float)
            finite = arr[np.isfinite(arr)]
            summary[key] = float(finite.mean()) if len(finite) else None
            summary[f"{key}_std"] = float(finite.std()) if len(finite) else None
            if len(finite) < len(arr):
                summary[f"{key}_unreached"] = int(len(arr) - len(finite))
        out[name] = summary
    return out


def run_unseen(
    train: RoutingDataset,
    test: RoutingDataset | None = None,
    embedder: Embedder | str = "static",
    routers: Sequence[str] = DEFAULT_ROUTERS,
    router_options: Mapping[str, Mapping[str, Any]] | None = None,
    trials: int = 20,
    test_model_fraction: float = 1 / 3,
    valid_fraction: float = 1 / 7,
    random_state: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    embeddings: list[np.ndarray] | None = None,
    primary: str | None = None,
    extra_routers: Mapping[str, BaselineRouter] | None = None,
) -> dict[str, Any]:
    """UniRoute's dynamic pool: route over LLMs the cluster map never saw.

    Each trial draws ⌈m·test_model_fraction⌉ unseen test models (at least 2) and
    splits the training prompts into train and validation (``valid_fraction``).
    With no ``test`` set, 30% of the prompts are held out per trial as well.
    """
    if test is not None:
        train, test = check_pair(train, test)
    else:
        check_data(train)
    m = len(train.models)
    n_unseen = max(2, math.ceil(m * test_model_fraction))
    if m - n_unseen < 1:
        raise InputError(
            f"the unseen-LLM protocol needs at least 3 models (some to train on, 2+ unseen); got {m}"
        )
    if embeddings is None:
        embeddings = embed_datasets([train] if test is None else [train, test], embedder, cache_dir, progress)
    chosen = {**(extra_routers or {}), **build_routers(routers, router_options)}
    chosen = usable(chosen, embeddings is not None)
    rng = np.random.default_rng(random_state)
    results = []
    for _ in tqdm(
        range(trials), desc="unseen-LLM trials", disable=None if progress is None else not progress
    ):
        unseen = sorted(rng.choice(m, size=n_unseen, replace=False).tolist())
        seen = [j for j in range(m) if j not in unseen]
        order = rng.permutation(len(train))
        if test is None:
            n_test = round(0.3 * len(train))
            test_idx, rest = order[:n_test], order[n_test:]
            test_part, X_te = train.rows(test_idx), None if embeddings is None else embeddings[0][test_idx]
        else:
            rest = order
            test_part, X_te = test, None if embeddings is None else embeddings[1]
        n_valid = max(2, round(valid_fraction * len(rest)))  # of the prompts left after the test part
        valid_idx, train_idx = rest[:n_valid], rest[n_valid:]
        pool = [train.models[j] for j in unseen]
        mask = ~np.isnan(test_part.select_models(pool).scores).any(axis=1)
        split = Split(
            train=train.rows(train_idx).select_models([train.models[j] for j in seen]),
            valid=train.rows(valid_idx).select_models(pool),
            test=complete_rows(test_part, pool),
            X_train=None if embeddings is None else embeddings[0][train_idx],
            X_valid=None if embeddings is None else embeddings[0][valid_idx],
            X_test=None if X_te is None else X_te[mask],
        )
        for j, name in enumerate(pool):
            if np.isnan(split.valid.scores[:, j]).all():
                raise InputError(f"model {name!r} has no result on a validation draw; too little data")
        trial = evaluate_split(split, chosen)
        trial.update(
            pool=pool, sizes={"train": len(train_idx), "valid": len(valid_idx), "test": len(split.test)}
        )
        results.append(trial)
    return {
        "protocol": "unseen",
        "trials": trials,
        "n_unseen_models": n_unseen,
        "routers": _aggregate(results),
        "paired_trials": paired_trials(results, primary or next(iter(chosen))),
        "per_trial": [{k: t[k] for k in ("pool", "sizes", "routers", "router_info")} for t in results],
        "curves": results[0]["curves"],
        "models": results[0]["models"],
        "curves_shown": {"trial": 1, "pool": results[0]["pool"]},
        "skipped_routers": [n for n in routers if n not in chosen],
    }


def paired_trials(trials: Sequence[Mapping[str, Any]], primary: str) -> dict[str, dict[str, Any]]:
    """Trial-by-trial comparison of ``primary`` with every other router: in how many trials its
    area is larger, and the mean and range of the area difference."""
    out: dict[str, dict[str, Any]] = {}
    if trials[0]["routers"][primary].get("area") is None:
        return out
    for name in trials[0]["routers"]:
        if name == primary or trials[0]["routers"][name].get("area") is None:
            continue
        diffs = np.array([t["routers"][primary]["area"] - t["routers"][name]["area"] for t in trials])
        out[name] = {
            "ahead": int((diffs > 0).sum()),
            "trials": len(diffs),
            "mean_area_diff": float(diffs.mean()),
            "min_area_diff": float(diffs.min()),
            "max_area_diff": float(diffs.max()),
        }
    return out


def _pools(m: int, size: int, n_pools: int, rng: np.random.Generator) -> list[list[int]]:
    if math.comb(m, size) <= n_pools:
        return [list(c) for c in itertools.combinations(range(m), size)]
    return [sorted(rng.choice(m, size=size, replace=False).tolist()) for _ in range(n_pools)]


def _pool_scores(
    routing: Routing, split: Split, pool: list[int], router: BaselineRouter
) -> tuple[float, float, float, float]:
    quality = split.test.scores[:, pool]
    if routing.choices is not None:
        sub = Split(
            split.train,
            split.valid.select_models([split.pool[j] for j in pool]),
            split.test.select_models([split.pool[j] for j in pool]),
        )
        choices = router.route(sub).choices
        assert choices is not None
    else:
        assert routing.errors is not None
        known = routing.costs is not None and has_costs(split.test)
        costs = np.asarray(routing.costs)[..., pool] if known else np.zeros(len(pool))
        choices = metrics.one_hot(metrics.first_choice(routing.errors[:, pool], costs), len(pool))
    return _pool_row(quality, choices)


def _pool_row(quality: np.ndarray, choices: np.ndarray) -> tuple[float, float, float, float]:
    """μ_o, V_B (NaN when no pool model is ever right), E_p (bits, RouterEval) and share entropy
    (nats) of one router on one pool."""
    mu = metrics.routed_quality(quality, choices)
    best = quality.mean(axis=0).max()
    return (
        mu,
        mu / best if best > 0 else math.nan,
        metrics.output_entropy(choices),
        metrics.share_entropy(choices, quality.shape[1]),
    )


def _mean_defined(values: Sequence[float]) -> float | None:
    """Mean over the pools where the value is defined (None if it is nowhere)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else None


def run_pool_sizes(
    train: RoutingDataset,
    test: RoutingDataset,
    embedder: Embedder | str = "static",
    routers: Sequence[str] = DEFAULT_ROUTERS,
    router_options: Mapping[str, Mapping[str, Any]] | None = None,
    sizes: Sequence[int | str] = POOL_SIZES,
    ps: Sequence[float] = R_O_PS,
    n_pools: int = 20,
    random_state: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    embeddings: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """RouterEval's candidate pools and model-level scaling, at λ = 0 (quality only).

    Every router is fitted once on the static split; a pool restricts its choice
    to the pool's columns. Returns, per pool size, mean μ_o, V_B and E_p over
    ``n_pools`` random pools (V_B over those where some model is right), and the
    scaling curve over sizes 1..m.
    """
    train, test = check_pair(train, test)
    if embeddings is None:
        embeddings = embed_datasets([train, test], embedder, cache_dir, progress)
    chosen = usable(build_routers(routers, router_options), embeddings is not None)
    split = _static_split(train, test, embeddings)
    m = len(split.pool)
    routings = {name: r.route(split) for name, r in chosen.items()}
    rng = np.random.default_rng(random_state)
    all_sizes = sorted({m if s == "all" else int(s) for s in sizes if s == "all" or int(s) <= m})
    scaling_sizes = list(range(1, m + 1))

    def scores_at(size: int) -> dict[str, dict[str, float | None]]:
        pools = _pools(m, size, n_pools, rng)
        rows: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in chosen}
        rows.update({f"r_o({p:g})": [] for p in ps})
        for pool in pools:
            for name, routing in routings.items():
                rows[name].append(_pool_scores(routing, split, pool, chosen[name]))
            quality = split.test.scores[:, pool]
            for p in ps:
                rows[f"r_o({p:g})"].append(_pool_row(quality, metrics.r_o_probabilities(quality, p)))
        return {
            name: {
                "mu_o": float(np.mean([r[0] for r in vals])),
                "mu_o_std": float(np.std([r[0] for r in vals])),
                "v_b": _mean_defined([r[1] for r in vals]),
                "e_p": float(np.mean([r[2] for r in vals])),
                "share_entropy": float(np.mean([r[3] for r in vals])),
            }
            for name, vals in rows.items()
        }

    bar = tqdm(scaling_sizes, desc="pool sizes", disable=None if progress is None else not progress)
    scaling = {size: scores_at(size) for size in bar}
    return {
        "protocol": "pool-sizes",
        "n_models": m,
        "n_pools": n_pools,
        "pool_sizes": {("all" if s == m else str(s)): scaling[s] for s in all_sizes},
        "scaling": {str(s): scaling[s] for s in scaling_sizes},
        "skipped_routers": [n for n in routers if n not in chosen],
    }


def holdout_split(
    data: RoutingDataset, test_fraction: float = 0.2, random_state: int = 0
) -> tuple[RoutingDataset, RoutingDataset]:
    """Deprecated name of :func:`uniroute.datasets.split_by_task`."""
    warnings.warn("holdout_split is now uniroute.datasets.split_by_task", DeprecationWarning, stacklevel=2)
    return split_by_task(data, test_fraction, random_state)


__all__ = [
    "POOL_SIZES",
    "R_O_PS",
    "check_data",
    "check_pair",
    "embed_datasets",
    "evaluate_split",
    "holdout_split",
    "run_pool_sizes",
    "run_static",
    "run_unseen",
]
