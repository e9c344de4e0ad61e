"""Evaluate a router of your own against uniroute and the baselines (``uniroute eval --router``).

The router below is a TF-IDF nearest-neighbour router in 30 lines: a model's error
on a prompt is its mean error on the ``k`` most similar training prompts (word
TF-IDF, cosine), and it picks ``argmin error + λ·cost``. Any object with
``fit(train)`` and ``route(prompts, lambdas)`` can be evaluated the same way
(``uniroute.evaluation.EvaluableRouter``; docs/evaluation.md, "Evaluating your own
router").

From Python (this file)::

    python examples/custom_router.py                      # RouterBench MBPP from ../shared/data
    python examples/custom_router.py --train my_train.jsonl --test my_test.jsonl

From the command line, the same router by ``module:factory``::

    PYTHONPATH=examples uniroute eval --data DIR --router custom_router:TfidfKNNRouter --out runs/tfidf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


class TfidfKNNRouter:
    """Mean error of the ``k`` nearest training prompts (word TF-IDF, cosine) + λ · mean $ per model."""

    def __init__(self, k: int = 25):
        self.k = k

    def fit(self, train):
        """Learn from a ``uniroute.datasets.RoutingDataset`` (prompts, models, scores, costs)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.models_ = list(train.models)
        self.vectorizer_ = TfidfVectorizer(sublinear_tf=True, min_df=2).fit(train.prompts)
        self.X_ = self.vectorizer_.transform(train.prompts)
        self.errors_ = 1.0 - train.scores  # NaN = no result: left out of the means below
        self.cost_ = np.nan_to_num(np.nanmean(train.costs, axis=0))
        return self

    def route(self, prompts, lambdas):
        """For each λ, one model name per prompt."""
        sims = (self.vectorizer_.transform(prompts) @ self.X_.T).toarray()
        k = min(self.k, sims.shape[1])
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        fallback = np.nanmean(self.errors_, axis=0)
        err = np.nanmean(self.errors_[nearest], axis=1)  # (n_prompts, n_models)
        err = np.where(np.isnan(err), fallback, err)
        return [[self.models_[j] for j in np.argmin(err + lam * self.cost_, axis=1)] for lam in lambdas]


def main() -> None:
    from uniroute.datasets import load_dataset
    from uniroute.evaluation import evaluate_router

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "routerbench"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=str(data / "mbpp_train.csv"))
    parser.add_argument("--test", default=str(data / "mbpp_test.csv"))
    args = parser.parse_args()
    train, test = load_dataset(args.train), load_dataset(args.test)
    result = evaluate_router(
        TfidfKNNRouter,
        train,
        test,
        name="tfidf-knn",
        routers=("uniroute-kmeans", "knn", "zerorouter", "oracle"),
        bootstrap=200,
        progress=False,
    )
    print(f"{'router':16s} {'area':>6s} {'QNC':>6s}   tfidf-knn minus router: area [95% CI]")
    for name, row in result["routers"].items():
        qnc = "-" if row["qnc"] is None or not np.isfinite(row["qnc"]) else f"{row['qnc']:.3f}"
        vs = result["bootstrap"]["vs"].get(name)
        ci = "" if vs is None else "{:+.4f} [{:+.4f}, {:+.4f}]".format(vs["area_diff"], *vs["area_diff_ci"])
        print(f"{name:16s} {row['area']:6.3f} {qnc:>6s}   {ci}")


if __name__ == "__main__":
    main()
