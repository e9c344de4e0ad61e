"""Evaluate your own router with the same protocols, metrics and bootstrap as the built-in ones.

A router under test is any object with two methods (:class:`EvaluableRouter`):

``fit(train)``
    Learn from a :class:`~uniroute.datasets.RoutingDataset`: its ``prompts``,
    ``models`` (the pool it must choose from), ``scores`` (n, m) in [0, 1] and
    ``costs`` (n, m) in $ (NaN = no result). The static protocol passes the
    training file; the unseen-LLM protocol passes the pool's validation prompts.
``route(prompts, lambdas)``
    For every λ in ``lambdas`` (ascending, first 0), the model name chosen for each
    prompt at the trade-off "error + λ·$": a sequence of ``len(lambdas)``
    sequences of ``len(prompts)`` names from ``train.models``.

The harness asks at λ = 0 and :data:`N_LAMBDAS` values t / c_max (t from 10⁻³ to
10³, c_max the mean $ of the pool's most expensive model on the training data),
and draws the deferral curve through the answers.

Command line: ``uniroute eval --router mypackage.routers:make_router`` (a
callable that returns a new router). Python::

    from uniroute.datasets import load_split
    from uniroute.evaluation import evaluate_router

    train, test = load_split("../shared/data/routellm")
    result = evaluate_router(MyRouter, train, test, embedder="static")
    result["bootstrap"]["vs"]["knn"]  # paired 95% intervals of area and QNC differences
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..datasets import RoutingDataset
from ..exceptions import InputError
from .baselines import Routing, Split

N_LAMBDAS = 60


@runtime_checkable
class EvaluableRouter(Protocol):
    """Fit on routing data, then route a test set at many λ (see module doc)."""

    def fit(self, train: RoutingDataset) -> Any: ...

    def route(self, prompts: Sequence[Any], lambdas: Sequence[float]) -> Sequence[Sequence[str]]: ...


def lambda_grid(costs: np.ndarray, n: int = N_LAMBDAS) -> np.ndarray:
    """0 and ``n`` values spread log-evenly from 10⁻³ to 10³ over the largest model's mean $."""
    top = float(np.nanmax(costs)) if np.isfinite(costs).any() else 0.0
    scale = 1.0 / top if top > 0 else 1.0
    return np.concatenate([[0.0], np.geomspace(1e-3, 1e3, n) * scale])


@dataclass
class UserRouter:
    """Adapts an :class:`EvaluableRouter` factory to the harness (a fresh router per split)."""

    factory: Callable[[], EvaluableRouter]
    name: str = "custom"
    needs_text: bool = True

    def route(self, split: Split) -> Routing:
        data = split.valid.select_models(split.pool)
        if split.test.prompts is None:
            raise InputError(f"router {self.name!r} needs prompt text; this data has none")
        router = self.factory()
        if not isinstance(router, EvaluableRouter):
            raise InputError(
                f"{self.name}: the factory returned {type(router).__name__}, which lacks fit(train) and "
                "route(prompts, lambdas); see uniroute.evaluation.custom"
            )
        router.fit(data)
        lambdas = lambda_grid(split.valid_costs())
        answers = router.route(list(split.test.prompts), lambdas.tolist())
        index = {name: j for j, name in enumerate(split.pool)}
        try:
            choices = np.array([[index[a] for a in row] for row in answers], dtype=np.intp)
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"{self.name}: route() must return, for each λ, one model name of {list(split.pool)} per "
                f"prompt; got {exc!r}"
            ) from exc
        if choices.shape != (len(lambdas), len(split.test)):
            raise InputError(
                f"{self.name}: route() returned shape {choices.shape}, expected ({len(lambdas)}, "
                f"{len(split.test)}) (one row of names per λ)"
            )
        return Routing(lambdas=lambdas, lambda_choices=choices)


def load_factory(spec: str) -> Callable[[], EvaluableRouter]:
    """``"package.module:callable"`` to the callable (``uniroute eval --router``)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise InputError(f"--router needs module:factory (e.g. mypkg.routers:make_router), got {spec!r}")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot import {spec!r}: {exc}") from exc
    if not callable(target):
        raise InputError(f"{spec!r} is not callable; give a class or a function that returns a router")
    return target


def evaluate_router(
    factory: Callable[[], EvaluableRouter],
    train: RoutingDataset,
    test: RoutingDataset,
    name: str = "custom",
    protocol: str = "static",
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a router of yours against the built-in baselines; it is the bootstrap's primary.

    ``options`` go to :func:`~uniroute.evaluation.run_static` or
    :func:`~uniroute.evaluation.run_unseen` (``protocol="unseen"``), e.g.
    ``embedder``, ``routers``, ``bootstrap``.
    """
    from .protocols import run_static, run_unseen

    if protocol not in ("static", "unseen"):
        raise InputError(f"protocol must be 'static' or 'unseen', got {protocol!r}")
    run: Callable[..., dict[str, Any]] = run_static if protocol == "static" else run_unseen
    return run(train, test, extra_routers={name: UserRouter(factory, name)}, primary=name, **options)
