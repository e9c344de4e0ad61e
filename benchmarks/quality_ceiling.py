"""How much the embedding knows: per-LLM supervised classifiers as routers, on the test splits.

Fourteen sessions of issue-10 trials (docs/benchmarks.md) moved the default's area by less than
the CI half-widths, and each reading pointed at the embedding, not at how Φ is drawn. This script
tests that reading directly. For every model in the pool it fits a classifier of "is this model
right?" on the embedding of the prompts that model answered (the validation rows: the whole train
file in the static protocol, a seventh of it in the unseen one), and routes by the predicted
errors. Such a router is not UniRoute (a new model needs a newly trained classifier, where
UniRoute needs only Ψ), so it is a diagnostic, not a candidate default: if classifiers trained
for each model's own results do not beat K-NN beyond the CI either, no Φ·Ψ of this embedding can
be expected to.

Classifiers (scikit-learn): L2 logistic regression with C by 5-fold CV on log loss; a one-layer
MLP (128 units, early stopping); gradient-boosted trees (``HistGradientBoostingClassifier``,
early stopping). "default + logistic" averages the default's and the logistic errors. Measured
with ``quality_test.check_variants``: static areas on RouterBench and RouteLLM with paired
95% CIs to K-NN (k by train-only CV) and to the default, and the RouterBench unseen draws.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/quality_ceiling.py --out benchmarks/results/cv_ceiling.json
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from quality_cv import Task
from quality_test import check_arguments, check_variants, default_uniroute
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.neural_network import MLPClassifier


def logistic() -> ClassifierMixin:
    return LogisticRegressionCV(Cs=8, cv=5, scoring="neg_log_loss", max_iter=2000)


def mlp() -> ClassifierMixin:
    return MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-3, early_stopping=True, random_state=0)


def trees() -> ClassifierMixin:
    return HistGradientBoostingClassifier(early_stopping=True, random_state=0)


def classifier_router(make: Callable[[], ClassifierMixin]) -> Callable[[Task], np.ndarray]:
    """Per pool model: P(wrong) on the test prompts from a classifier fitted on its validation rows."""

    def route(task: Task) -> np.ndarray:
        err = np.empty((len(task.X_test), task.S_val.shape[1]))
        for j in range(task.S_val.shape[1]):
            seen = ~np.isnan(task.S_val[:, j])
            y = task.S_val[seen, j] > 0.5
            if y.all() or not y.any():
                err[:, j] = 0.0 if y.all() else 1.0
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", FutureWarning)
                clf = make().fit(task.X_val[seen], y)
            err[:, j] = clf.predict_proba(task.X_test)[:, list(clf.classes_).index(False)]
        return err

    return route


def blend(task: Task) -> np.ndarray:
    """The mean of the default's and the logistic classifiers' estimated errors."""
    return 0.5 * (default_uniroute()(task) + classifier_router(logistic)(task))


def main() -> None:
    args = check_arguments(__doc__)
    variants = {
        "logistic": classifier_router(logistic),
        "mlp": classifier_router(mlp),
        "trees": classifier_router(trees),
        "default + logistic": blend,
    }
    out = check_variants(variants, args.boot, args.trials, seed=0, embedder=args.embedder)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
