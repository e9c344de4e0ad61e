"""Learning curves of online feedback on recorded data (issue 12, proof 2).

    nice -n 10 .venv/bin/python benchmarks/online.py --out benchmarks/results/online.json \
        --plots docs/img

For RouterBench and RouteLLM (``../shared/data``, read with ``uniroute.datasets.load_split``,
embedded with the ``static`` embedder through the harness's on-disk cache):

1. The cluster map is fitted on the train prompts at the package defaults
   (``KMeansClusterMap()``, K chosen by CV on the train scores, as ``uniroute eval``
   does), once per data set; every router below shares it, so only Ψ differs.
2. Per order (seed): 5 validation prompts per cluster (hard assignment, drawn at
   random among train prompts with every model's result; an averaged map's clusters
   map by map, as ``uniroute make-validation`` draws) give each model's starting Ψ;
   the other complete train prompts are shuffled into the stream.
3. Feedback flows through ``Router.record_feedback``; an **event** is one streamed
   prompt. Full information: the event gives every model's label (m feedback
   calls). Bandit: the router routes the prompt (``explore="thompson"`` at
   ``--lam`` × 1 / c_max, c_max = the most expensive model's mean train $) and only
   the chosen model's label comes back (one call).
4. After 0, 100, 500, 1,000 and 2,000 events the test deferral area is computed by
   the harness (``uniroute.evaluation.run_static`` with the router as an extra router:
   the same curve, anchor and normalisation as ``uniroute eval``).
5. Reference: the same cluster map with every model profiled on all train labels.
6. Cold start: every model but one is profiled on all train labels; the newcomer (the
   model the reference router uses most on the test prompts, averaged over the
   harness's λ grid) joins through ``Router.add_model_prior`` with zero validation prompts (a stated
   accuracy, or ``like=`` the model nearest in price) and learns only from its own
   feedback (full information: its label on every streamed prompt; bandit: its label
   when it is chosen). Target: within 0.01 of the reference area.

Decision costs are each model's mean train $ (prices are known up front; only
quality is learned). JSON is written only with ``--out``, plots only with ``--plots``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uniroute import Router
from uniroute.engine.cluster_maps import ClusterMap, KMeansClusterMap, hard_clusters, sample_per_cluster
from uniroute.engine.embedders import PrecomputedEmbedder
from uniroute.evaluation import Routing, run_static

DATASETS = ("routerbench", "routellm")
CHECKPOINTS = (0, 100, 500, 1000, 2000)
N_VALID = 5


@dataclass
class Data:
    """One data set ready for streaming: datasets, embeddings, fitted Φ, prices."""

    name: str
    train: Any
    test: Any
    X_train: np.ndarray
    X_test: np.ndarray
    cmap: ClusterMap
    costs: dict[str, float]
    complete: np.ndarray  # indices of train prompts with every model's result

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.train.models)

    @property
    def c_max(self) -> float:
        return max(self.costs.values())

    def router(self, **params: Any) -> Router:
        """An empty router on the shared Φ; prompts are named ``t<i>`` (train row i)."""
        table = {f"t{i}": x for i, x in enumerate(self.X_train)}
        return Router(PrecomputedEmbedder(table), self.cmap, feedback_refresh=0.0, **params)

    def profile(self, router: Router, rows: np.ndarray, models: Sequence[str]) -> None:
        idx = [self.models.index(m) for m in models]
        router.add_models(
            [f"t{i}" for i in rows],
            {m: self.train.scores[rows, j] for m, j in zip(models, idx)},
            {m: self.costs[m] for m in models},
            embeddings=self.X_train[rows],
        )


def load(root: Path, name: str) -> Data:
    from uniroute.datasets import load_split
    from uniroute.evaluation.protocols import embed_datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, test = load_split(root / name)
    X_train, X_test = embed_datasets([train, test], "static", progress=False) or []
    cmap = KMeansClusterMap().fit(X_train, train.scores)
    mean = train.mean_costs()
    return Data(
        name,
        train,
        test,
        X_train,
        X_test,
        cmap,
        {m: float(mean[j]) for j, m in enumerate(train.models)},
        np.flatnonzero(~np.isnan(train.scores).any(axis=1)),
    )


class Snapshot:
    """The router as it is now, seen by the harness: Φ·Ψ on the test prompts."""

    needs_text = True

    def __init__(self, router: Router):
        self.router = router

    def route(self, split: Any) -> Routing:
        errors, costs, _ = self.router.expected_errors(split.X_test, split.pool)
        return Routing(errors=errors, costs=costs)


def static_result(data: Data, **options: Any) -> dict[str, Any]:
    """``uniroute.evaluation.run_static`` on the data set's split and cached embeddings, no bootstrap."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_static(
            data.train, data.test, embeddings=[data.X_train, data.X_test], bootstrap=0, **options
        )


def area(data: Data, router: Router) -> float:
    """Test deferral area exactly as ``uniroute eval`` computes it (static protocol)."""
    result = static_result(data, routers=(), extra_routers={"online": Snapshot(router)})
    return float(result["routers"]["online"]["area"])


def harness_area(data: Data) -> float:
    """``uniroute-kmeans`` of the harness itself (fits its own Φ): a cross-check of the reference."""
    result = static_result(data, routers=("uniroute-kmeans",))
    return float(result["routers"]["uniroute-kmeans"]["area"])


def split_stream(data: Data, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows: ``N_VALID`` per cluster, stream rows: the rest, shuffled).

    An averaged map's clusters are filled map by map, counting rows already drawn for
    another map's cluster, as ``uniroute make-validation`` samples.
    """
    phi = data.cmap.predict_proba(data.X_train[data.complete])
    valid = data.complete[sample_per_cluster(hard_clusters(data.cmap, phi), N_VALID, rng)]
    return valid, rng.permutation(np.setdiff1d(data.complete, valid))


Feed = Callable[[Router, int, np.random.Generator], "str | None"]


def full_information(models: Sequence[str], data: Data) -> Feed:
    """Every listed model's label on the streamed prompt (one event, len(models) calls)."""
    idx = [data.models.index(m) for m in models]

    def feed(router: Router, row: int, rng: np.random.Generator) -> None:
        for m, j in zip(models, idx):
            router.record_feedback(f"t{row}", float(data.train.scores[row, j]), model=m)

    return feed


def bandit(
    data: Data, lam: float, learners: Sequence[str] | None = None, explore: str | None = "thompson"
) -> Feed:
    """Route at ``lam`` (Thompson sampling by default); only the chosen model's label comes back.

    The feed returns the chosen model.

    ``learners``: record feedback only for these models (cold start: the others are
    already profiled on these very prompts).
    """

    def feed(router: Router, row: int, rng: np.random.Generator) -> str:
        decision = router.route(f"t{row}", lam=lam, explore=explore, rng=rng)
        if learners is None or decision.model in learners:
            score = float(data.train.scores[row, data.models.index(decision.model)])
            router.record_feedback(decision, score)
        return decision.model

    return feed


def curve(
    data: Data, router: Router, stream: np.ndarray, feed: Feed, rng: np.random.Generator
) -> list[float]:
    """Test areas after each checkpoint's number of events."""
    out, done = [], 0
    for target in CHECKPOINTS:
        for row in stream[done:target]:
            feed(router, int(row), rng)
        done = target
        out.append(area(data, router))
    return out


def nearest_in_price(data: Data, model: str) -> str:
    others = [m for m in data.models if m != model]
    return min(others, key=lambda m: abs(np.log(data.costs[m] / data.costs[model])))


def newcomers(data: Data, full: Router, n: int) -> tuple[list[str], dict[str, float]]:
    """The ``n`` models the fully-profiled router uses most on the test prompts (share over the
    harness's λ grid), leaving out the cheapest model, which every router falls back to at large λ."""
    from uniroute.evaluation.custom import lambda_grid

    errors, costs, names = full.expected_errors(data.X_test, data.models)
    grid = lambda_grid(np.array(list(data.costs.values())))
    choices = np.concatenate([(errors + lam * costs).argmin(axis=1) for lam in grid])
    share = np.bincount(choices, minlength=len(names)) / len(choices)
    cheapest = min(names, key=lambda m: data.costs[m])
    ranked = [names[j] for j in np.argsort(-share, kind="stable") if names[j] != cheapest]
    return ranked[:n], {m: round(float(s), 4) for m, s in zip(names, share)}


def stats(curves: list[list[float]]) -> dict[str, list[float]]:
    a = np.array(curves)
    return {"mean": a.mean(axis=0).round(4).tolist(), "sd": a.std(axis=0, ddof=1).round(4).tolist()}


def regimes(
    data: Data, models: Sequence[str], lams: Sequence[float], learners: Sequence[str] | None
) -> dict[str, Feed]:
    """Full information plus one bandit per λ (× 1 / c_max)."""
    feeds = {"full_information": full_information(models, data)}
    for lam in lams:
        feeds[f"bandit_lam{lam}"] = bandit(data, lam / data.c_max, learners)
    return feeds


def run(
    data: Data, orders: int, lams: Sequence[float], n_new: int, accuracy: float, log: Callable[[str], None]
) -> dict[str, Any]:
    everything = np.arange(len(data.train))
    full = data.router()
    data.profile(full, everything, data.models)
    reference = area(data, full)
    new, share = newcomers(data, full, n_new)
    likes = {m: nearest_in_price(data, m) for m in new}
    log(f"{data.name}: K={data.cmap.n_clusters_}, reference area {reference:.4f}, newcomers {likes}")
    runs: dict[str, list[list[float]]] = {}
    explored: dict[str, list[dict[str, Any]]] = {}
    for order in range(orders):
        start = time.perf_counter()
        valid, stream = split_stream(data, np.random.default_rng(order))
        for regime, feed in regimes(data, data.models, lams, None).items():
            router = data.router()
            data.profile(router, valid, data.models)
            runs.setdefault(regime, []).append(
                curve(data, router, stream, feed, np.random.default_rng(1000 + order))
            )
            if regime != "full_information":
                explored.setdefault(regime, []).append(router.exploration_cap.stats())
        for model in new:
            others = [m for m in data.models if m != model]
            for prior, kwargs in (("accuracy", {"accuracy": accuracy}), ("like", {"like": likes[model]})):
                for regime, feed in regimes(data, [model], lams, [model]).items():
                    router = data.router()
                    data.profile(router, everything, others)
                    router.add_model_prior(model, data.costs[model], **kwargs)
                    runs.setdefault(f"cold:{model}:{prior}:{regime}", []).append(
                        curve(data, router, stream, feed, np.random.default_rng(2000 + order))
                    )
        last = ", ".join(f"{k} {v[-1][-1]:.4f}" for k, v in runs.items())
        log(f"  order {order}: {time.perf_counter() - start:.0f} s, {last}")
    valid, stream = split_stream(data, np.random.default_rng(0))
    return {
        "n_train": len(data.train),
        "n_clusters": int(data.cmap.n_clusters_),
        "assignment": getattr(data.cmap, "assignment_", None),
        "models": list(data.models),
        "mean_costs": data.costs,
        "n_validation_prompts": len(valid),
        "stream_length": len(stream),
        "reference_area": round(reference, 4),
        "harness_uniroute_kmeans_area": round(harness_area(data), 4),
        "bandit_lambdas_times_c_max": list(lams),
        "bandit_exploration_stats": explored,
        "newcomers": likes,
        "test_share_of_each_model_over_lambda_grid": share,
        "cold_start_accuracy": accuracy,
        "checkpoints": list(CHECKPOINTS),
        "orders": orders,
        "curves": {k: stats(v) for k, v in runs.items()},
        "per_order": {k: np.round(v, 4).tolist() for k, v in runs.items()},
    }


def _label(key: str, res: dict[str, Any]) -> str:
    regime = key.split(":")[-1]
    text = (
        "full information"
        if regime == "full_information"
        else f"bandit, λ·c_max={regime[len('bandit_lam') :]}"
    )
    if key.startswith("cold:"):
        _, model, prior, _ = key.split(":")
        given = (
            f"accuracy={res['cold_start_accuracy']}"
            if prior == "accuracy"
            else f"like={res['newcomers'][model]}"
        )
        return f"{given}, {text}"
    return text


def plot(result: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    x = np.array(CHECKPOINTS)
    for name, res in result["datasets"].items():
        ref = res["reference_area"]
        panels = [
            ("Ψ from 5 validation prompts per cluster", [k for k in res["curves"] if ":" not in k], 0.005)
        ]
        for model in res["newcomers"]:
            keys = [k for k in res["curves"] if k.startswith(f"cold:{model}:")]
            panels.append((f"cold start: {model} joins with 0 prompts", keys, 0.01))
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5))
        for ax, (title, keys, tol) in zip(np.atleast_1d(axes), panels):
            for key in keys:
                mean, sd = np.array(res["curves"][key]["mean"]), np.array(res["curves"][key]["sd"])
                (line,) = ax.plot(x, mean, marker="o", ms=3, label=_label(key, res))
                ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
            ax.axhline(ref, color="black", lw=1, label=f"profiled on all train labels ({ref:.3f})")
            ax.axhspan(ref - tol, ref + tol, color="grey", alpha=0.15, label=f"target ±{tol}")
            ax.set_xlabel("feedback events (streamed prompts)")
            ax.set_ylabel("test deferral area")
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=6, loc="lower right")
        fig.suptitle(f"{name}: online learning, mean ± sd over {res['orders']} orders", fontsize=10)
        fig.tight_layout()
        path = folder / f"online-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument(
        "--lam", type=float, nargs="+", default=[0.0, 0.1], help="bandit λ × c_max (error points per c_max $)"
    )
    parser.add_argument(
        "--newcomers", type=int, default=2, help="cold start: how many models join with 0 prompts"
    )
    parser.add_argument(
        "--accuracy", type=float, default=0.7, help="cold start: the newcomer's stated accuracy"
    )
    parser.add_argument("--out", type=Path, help="write the JSON here (nothing is written without it)")
    parser.add_argument("--plots", type=Path, help="folder for online-<dataset>.png")
    args = parser.parse_args()
    started = time.time()
    result: dict[str, Any] = {
        "host": platform.node(),
        "python": platform.python_version(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "datasets": {},
    }
    for name in args.datasets:
        data = load(args.data, name)
        res = run(data, args.orders, args.lam, args.newcomers, args.accuracy, print)
        result["datasets"][name] = res
    result["seconds"] = round(time.time() - started, 1)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        json.dumps(
            {
                n: {k: r[k] for k in ("reference_area", "harness_uniroute_kmeans_area", "curves")}
                for n, r in result["datasets"].items()
            },
            indent=1,
        )
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.plots:
        for path in plot(result, args.plots):
            print("wrote", path)


if __name__ == "__main__":
    main()
