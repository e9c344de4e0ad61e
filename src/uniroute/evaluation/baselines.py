"""The routers compared on every split, behind one small interface.

A router sees a :class:`Split` (training prompts with the *training* models'
results, validation prompts with the pool models' results, test prompts) and
returns a :class:`Routing`: either estimated errors and costs to sweep λ over,
or fixed choice probabilities when λ does not change its choice.
Registry :data:`ROUTERS` maps the names used in ``results.json`` to factories.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..datasets import RoutingDataset
from ..engine.cluster_maps import CLUSTER_MAPS, ClusterMap, KMeansClusterMap, LearnedClusterMap
from ..engine.profiles import DEFAULT_PRIOR_STRENGTH, fit_price, profile_from_scores
from ..engine.router import Router
from ..engine.text import prompt_chars, routing_text
from ..exceptions import InputError


@dataclass
class Split:
    """One train / validation / test split over one pool of models.

    Attributes
    ----------
    train : RoutingDataset
        Prompts that fit the cluster map; ``train.models`` are the training LLMs
        (LearnedMap learns from their results).
    valid : RoutingDataset
        Prompts on which each pool model is profiled (its Ψ, K-NN's neighbours).
    test : RoutingDataset
        Held-out prompts; ``test.models`` is the pool routed over.
    X_train, X_valid, X_test : ndarray or None
        Prompt embeddings (None when the data has no text).
    """

    train: RoutingDataset
    valid: RoutingDataset
    test: RoutingDataset
    X_train: np.ndarray | None = None
    X_valid: np.ndarray | None = None
    X_test: np.ndarray | None = None

    @property
    def pool(self) -> tuple[str, ...]:
        return self.test.models

    def valid_scores(self) -> np.ndarray:
        return self.valid.select_models(self.pool).scores

    def valid_costs(self) -> np.ndarray:
        """Mean $ per request of each pool model on the validation prompts (0 if unknown)."""
        costs = self.valid.select_models(self.pool).mean_costs()
        return np.where(np.isfinite(costs), costs, 0.0)

    def priced_by_length(self) -> bool:
        """Whether requests can be priced by length: both splits have text and the validation $."""
        known = bool(np.isfinite(self.valid.costs).any())
        return known and self.valid.prompts is not None and self.test.prompts is not None

    def test_prices(self) -> np.ndarray:
        """$ of each pool model on each test prompt (n, m), priced by the prompt's length as the
        engine prices requests (:func:`~uniroute.engine.profiles.fit_price` on the validation
        prompts' $); the mean $ per model (m,) when :meth:`priced_by_length` is False."""
        if not self.priced_by_length():
            return self.valid_costs()
        assert self.valid.prompts is not None and self.test.prompts is not None
        costs = self.valid.select_models(self.pool).costs
        return _length_prices(prompt_chars(self.valid.prompts), costs, prompt_chars(self.test.prompts))


@dataclass
class Routing:
    """What a router decided on the test prompts.

    ``errors`` (n, m) and ``costs`` (m,) or (n, m) (a price per test prompt) for
    routers that trade quality for cost through λ; or ``choices`` (n, m)
    selection probabilities for fixed routers.
    Routers evaluated from outside (:mod:`.custom`) give ``lambda_choices``
    (L, n), the model index chosen per prompt at each of ``lambdas`` (L,).
    ``info`` holds what the router chose about itself (K-NN's k and its CV log),
    kept in results.json under ``router_info``.
    """

    errors: np.ndarray | None = None
    costs: np.ndarray | None = None
    choices: np.ndarray | None = None
    lambdas: np.ndarray | None = None
    lambda_choices: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


class BaselineRouter(Protocol):
    """Anything that routes a split."""

    needs_text: bool

    def route(self, split: Split) -> Routing: ...


def _profile_errors(phi_valid: np.ndarray, phi_test: np.ndarray, split: Split, prior: float) -> np.ndarray:
    scores = split.valid_scores()
    psi = np.stack(
        [
            profile_from_scores(name, phi_valid, scores[:, j], 0.0, prior).errors
            for j, name in enumerate(split.pool)
        ]
    )
    return phi_test @ psi.T


def _one_hot(labels: Sequence[str], categories: Sequence[str]) -> np.ndarray:
    index = {c: k for k, c in enumerate(categories)}
    phi = np.zeros((len(labels), len(categories)))
    for i, label in enumerate(labels):
        if label in index:
            phi[i, index[label]] = 1.0
        else:
            phi[i] = 1.0 / len(categories)
    return phi


def _column_means(values: np.ndarray) -> np.ndarray:
    """Mean of each column over its observed (non-NaN) entries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0)


def _require(X: np.ndarray | None, name: str) -> np.ndarray:
    if X is None:
        raise InputError(f"router {name!r} needs prompt text; this data has none")
    return X


@dataclass
class UniRouteRouter:
    """UniRoute through the engine: fit Φ on training prompts, profile the pool on validation."""

    cluster_map: Callable[[], ClusterMap]
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    needs_text: bool = True

    def route(self, split: Split) -> Routing:
        X_train = _require(split.X_train, "uniroute")
        router = Router("hashing", self.cluster_map(), prior_strength=self.prior_strength)
        router.fit_embeddings(X_train, split.train.scores)  # maps that learn from no labels ignore them
        valid = split.valid.select_models(split.pool)
        by_length = split.priced_by_length()
        costs = split.valid_costs()
        router.add_models(
            valid.prompts if by_length else [""] * len(valid),  # not embedded: the embeddings are given
            {name: valid.scores[:, j] for j, name in enumerate(split.pool)},
            {name: valid.costs[:, j] if by_length else float(costs[j]) for j, name in enumerate(split.pool)},
            embeddings=split.X_valid,
        )
        chars = prompt_chars(split.test.prompts) if by_length and split.test.prompts is not None else None
        errors, decision_costs, _ = router.expected_errors(  # priced by the engine, as Router.route prices
            _require(split.X_test, "uniroute"), split.pool, chars=chars
        )
        return Routing(errors=errors, costs=decision_costs)


@dataclass
class TagRouter:
    """UniRoute with a fixed cluster map given by a label per prompt (task tag, request type)."""

    labeller: Callable[[RoutingDataset], list[str]]
    categories: Callable[[RoutingDataset], list[str]]
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    needs_text: bool = False

    def route(self, split: Split) -> Routing:
        cats = self.categories(split.valid)
        phi_valid = _one_hot(self.labeller(split.valid), cats)
        phi_test = _one_hot(self.labeller(split.test), cats)
        return Routing(
            errors=_profile_errors(phi_valid, phi_test, split, self.prior_strength), costs=split.test_prices()
        )


def _tasks(data: RoutingDataset) -> list[str]:
    return list(data.tasks)


def _task_categories(data: RoutingDataset) -> list[str]:
    return sorted(set(data.tasks))


def _request_types(data: RoutingDataset) -> list[str]:
    from .._optional import require

    classify_prompt = require("litellm.router_strategy.adaptive_router.classifier", "eval").classify_prompt
    if data.prompts is None:
        raise InputError("router 'litellm-adaptive' needs prompt text; this data has none")
    return [str(classify_prompt(_first_user_text(p))) for p in data.prompts]


def _all_request_types(data: RoutingDataset) -> list[str]:
    from .._optional import require

    return [str(t) for t in require("litellm.types.router", "eval").RequestType]


def _first_user_text(prompt: Any) -> str:
    """LiteLLM's adaptive router classifies the first user message of a conversation."""
    if isinstance(prompt, list):
        for message in prompt:
            if isinstance(message, dict) and message.get("role") == "user":
                return routing_text([message])
    return routing_text(prompt)


K_GRID: tuple[int, ...] = (10, 25, 50, 100, 200)
"""K-NN's k is chosen from these by cross-validation on the router's own training prompts."""

_KNN_CELLS = 1 << 22
"""Similarities K-NN holds at a time (32 MB of float64): 512 prompts a block, fewer with many references."""


def _knn_errors(
    X_ref: np.ndarray, errors_ref: np.ndarray, X: np.ndarray, ks: Sequence[int]
) -> list[np.ndarray]:
    """Each model's mean error on the k most similar reference prompts, for every k in ``ks``.

    Neighbours without a result for a model are skipped; with none at all, the
    model's mean error over all reference prompts is used.
    """
    k_max = min(max(ks), len(X_ref))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fallback = np.nanmean(errors_ref, axis=0)
        out = [np.empty((len(X), errors_ref.shape[1])) for _ in ks]
        rows = min(512, max(1, _KNN_CELLS // max(1, len(X_ref))))
        for start in range(0, len(X), rows):
            sims = X[start : start + rows] @ X_ref.T
            top = np.argpartition(-sims, k_max - 1, axis=1)[:, :k_max]
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
            nearest = errors_ref[np.take_along_axis(top, order, axis=1)]
            for target, k in zip(out, ks, strict=True):
                target[start : start + rows] = np.nanmean(nearest[:, : min(k, k_max)], axis=1)
    return [np.where(np.isnan(e), fallback[None, :], e) for e in out]


def _length_prices(chars: np.ndarray, costs: np.ndarray, to_price: np.ndarray) -> np.ndarray:
    """(len(to_price), m) $ of each model on prompts of ``to_price`` characters, priced with each
    model's :func:`~uniroute.engine.profiles.fit_price` on prompts of ``chars`` that cost ``costs``."""
    out = np.zeros((len(to_price), costs.shape[1]))
    for j in range(costs.shape[1]):
        if np.isfinite(costs[:, j]).any():
            out[:, j] = fit_price(chars, costs[:, j])(to_price)
    return out


def choose_k(
    X: np.ndarray,
    data: RoutingDataset,
    grid: Sequence[int] = K_GRID,
    folds: int = 5,
    random_state: int = 0,
) -> tuple[int, dict[str, Any]]:
    """K-NN's k by ``folds``-fold cross-validation on ``data`` (the router's training prompts only).

    Each fold's prompts are routed with neighbours from the other folds and scored
    by deferral area (μ_o at λ = 0 when the data has no costs; prompts priced by
    their length, as :meth:`Split.test_prices`, when the data has text); with fewer than
    2·``folds`` prompts, fewer folds are used (logged). Returns the k with
    the best mean score (ties: the smaller k) and the log written to results.json.
    """
    from .metrics import curve_summaries, first_choice, one_hot, prompt_paths, routed_quality

    folds = min(folds, len(data) // 2)  # small profiling sets: fewer folds of at least 2 prompts
    if folds < 2:
        raise InputError(
            f"choosing k by cross-validation needs at least 4 profiling prompts, got {len(data)}"
        )
    errors = 1.0 - data.scores
    costs = data.costs
    has_costs = bool(np.isfinite(costs).any())
    chars = None if data.prompts is None else prompt_chars(data.prompts)
    parts = np.array_split(np.random.default_rng(random_state).permutation(len(data)), folds)
    scores: dict[int, list[float]] = {k: [] for k in grid}
    for held in parts:
        held = held[~np.isnan(data.scores[held]).any(axis=1)]
        rest = np.setdiff1d(np.arange(len(data)), held)
        if not len(held):
            continue
        quality = data.scores[held]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_cost = np.nanmean(costs[rest], axis=0) if has_costs else np.zeros(len(data.models))
        mean_cost = np.where(np.isfinite(mean_cost), mean_cost, 0.0)
        cost = np.where(np.isnan(costs[held]), mean_cost[None, :], costs[held])
        decision = (
            _length_prices(chars[rest], costs[rest], chars[held])
            if chars is not None and has_costs
            else mean_cost
        )
        for k, est in zip(grid, _knn_errors(X[rest], errors[rest], X[held], grid), strict=True):
            if has_costs:
                paths = prompt_paths(est, decision, quality, cost)
                scores[k].append(float(curve_summaries(paths, quality, cost)["area"][0]))
            else:
                choice = one_hot(first_choice(est, mean_cost), len(data.models))
                scores[k].append(routed_quality(quality, choice))
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    top = max(means.values())
    best = min(k for k in grid if means[k] >= top - 1e-9)  # ties (up to rounding): the smaller k
    log = {
        "criterion": "area" if has_costs else "quality_lambda0",
        "folds": folds,
        "random_state": random_state,
        "grid": list(grid),
        "mean": {str(k): v for k, v in means.items()},
        "per_fold": {str(k): v for k, v in scores.items()},
        "chosen": best,
    }
    return best, log


@dataclass
class KNNRouter:
    """K-NN: a model's error on a prompt is its mean error on the k nearest profiling prompts.

    ``k="cv"`` (default) chooses k from ``k_grid`` by :func:`choose_k` on the
    profiling prompts of each split (never the test prompts); the choice and its
    log are in ``Routing.info``.
    """

    k: int | str = "cv"
    k_grid: tuple[int, ...] = K_GRID
    folds: int = 5
    random_state: int = 0
    needs_text: bool = True

    def route(self, split: Split) -> Routing:
        X_valid, X_test = _require(split.X_valid, "knn"), _require(split.X_test, "knn")
        info: dict[str, Any] = {}
        if self.k == "cv":
            k, info["cv"] = choose_k(
                X_valid, split.valid.select_models(split.pool), self.k_grid, self.folds, self.random_state
            )
        elif isinstance(self.k, int) and not isinstance(self.k, bool) and self.k >= 1:
            k = self.k
        else:
            raise InputError(f"knn's k must be a positive int or 'cv', got {self.k!r}")
        info["k"] = k
        errors = _knn_errors(X_valid, 1.0 - split.valid_scores(), X_test, [k])[0]
        return Routing(errors=errors, costs=split.test_prices(), info=info)


@dataclass
class ZeroRouter:
    """Every prompt goes to the same model: the best of the pool's (cost, quality) trade-offs."""

    needs_text: bool = False

    def route(self, split: Split) -> Routing:
        errors = 1.0 - _column_means(split.valid_scores())
        return Routing(errors=np.tile(errors, (len(split.test), 1)), costs=split.valid_costs())


@dataclass
class BestSingleRouter:
    """The model with the best validation quality, whatever the cost."""

    needs_text: bool = False

    def route(self, split: Split) -> Routing:
        quality = _column_means(split.valid_scores())
        costs = split.valid_costs()
        best = int(np.lexsort((costs, -quality))[0])
        choices = np.zeros((len(split.test), len(split.pool)))
        choices[:, best] = 1.0
        return Routing(choices=choices)


@dataclass
class RandomRouter:
    """A uniformly random model per prompt (as expected selection probabilities)."""

    needs_text: bool = False

    def route(self, split: Split) -> Routing:
        m = len(split.pool)
        return Routing(choices=np.full((len(split.test), m), 1.0 / m))


@dataclass
class OracleRouter:
    """Clairvoyant: knows each pool model's realised quality and cost on every test prompt."""

    needs_text: bool = False

    def route(self, split: Split) -> Routing:
        return Routing(errors=1.0 - split.test.scores, costs=split.test.costs)


ROUTERS: dict[str, Callable[..., BaselineRouter]] = {
    "uniroute-kmeans": lambda prior_strength=DEFAULT_PRIOR_STRENGTH, **kw: UniRouteRouter(
        lambda: KMeansClusterMap(**kw), prior_strength
    ),
    "uniroute-learnedmap": lambda prior_strength=DEFAULT_PRIOR_STRENGTH, **kw: UniRouteRouter(
        lambda: LearnedClusterMap(**kw), prior_strength
    ),
    "uniroute-tasks": lambda prior_strength=DEFAULT_PRIOR_STRENGTH: TagRouter(
        _tasks, _task_categories, prior_strength
    ),
    "knn": KNNRouter,
    "zerorouter": ZeroRouter,
    "random": RandomRouter,
    "best-single": BestSingleRouter,
    "oracle": OracleRouter,
    "litellm-adaptive": lambda prior_strength=DEFAULT_PRIOR_STRENGTH: TagRouter(
        _request_types, _all_request_types, prior_strength, needs_text=True
    ),
}
"""Router names (as in ``results.json``) to factories; ``uniroute-<map>`` also works for any
registered cluster map (:func:`router_factory`)."""

_MAP_ROUTERS = {"learned": "uniroute-learnedmap"}


def map_router_name(cluster_map: str) -> str:
    """The router name under which uniroute with a registered cluster map is evaluated."""
    return _MAP_ROUTERS.get(cluster_map, f"uniroute-{cluster_map}")


def router_factory(name: str) -> Callable[..., BaselineRouter]:
    """The factory of a router name: :data:`ROUTERS`, or ``uniroute-<map>`` for a map in ``CLUSTER_MAPS``."""
    if name in ROUTERS:
        return ROUTERS[name]
    kind = name.removeprefix("uniroute-")
    if name.startswith("uniroute-") and kind in CLUSTER_MAPS:
        cls = CLUSTER_MAPS[kind]
        return lambda prior_strength=DEFAULT_PRIOR_STRENGTH, **kw: UniRouteRouter(
            lambda: cls(**kw), prior_strength
        )
    choices = sorted(ROUTERS) + [map_router_name(m) for m in sorted(CLUSTER_MAPS)]
    raise InputError(f"unknown router {name!r}; choose from {sorted(set(choices))}")


DEFAULT_ROUTERS: tuple[str, ...] = (
    "uniroute-kmeans",
    "uniroute-learnedmap",
    "knn",
    "zerorouter",
    "random",
    "best-single",
    "oracle",
    "litellm-adaptive",
)
