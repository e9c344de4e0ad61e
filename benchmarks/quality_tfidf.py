"""CV trial: words next to the static embedding — a TF-IDF + SVD (LSA) of the routing text, fitted on
the task's own fit prompts, joined to the default embedding (session 12).

Session 5 traced K-NN's lead on RouteLLM to resolution inside a cluster (57 MMLU subjects that a
256-d static embedding blurs); the embedder comparison left "a TF-IDF fitted per data set" unrun.
Here each task fits ``TfidfVectorizer`` (word 1–2-grams, sublinear tf) and a ``TruncatedSVD`` to
``DIMS`` components on its fit prompts only (unsupervised: no labels), and every prompt becomes

    z = normalise([x_static, w · normalise(LSA(text))]),

so w = 0 is the default and large w is words only. The default router (``KMeansClusterMap()``,
engine profiles) and K-NN (k = 100) run on z. The cached arrays hold no text: each row's text is
found by its embedding (rows with equal embeddings share one text). Not kept: +0.0011 on RouteLLM at
best, −0.0021 / −0.0009 on RouterBench static / unseen there (docs/benchmarks.md, "Trials of session 12").

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_tfidf.py --data routerbench routellm --by-length \\
          --unseen-draws 4 --seed $s --out benchmarks/results/cv_tfidf_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_tfidf_seed*.json --reference "default"
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_data import load, splits
from quality_routers import knn, uniroute
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from uniroute import KMeansClusterMap
from uniroute.engine.embedders import normalize_rows
from uniroute.engine.text import routing_text

DATA = Path(__file__).parents[2] / "shared" / "data"
DIMS = 128
WEIGHTS = (0.5, 1.0, 2.0)


def _texts_by_row() -> dict[bytes, str]:
    """Routing text of every cached train row of both text data sets, keyed by its embedding."""
    out: dict[bytes, str] = {}
    for name in ("routerbench", "routellm"):
        train, _ = splits(DATA, name)
        X = load(name)["X_train"]
        out.update((x.tobytes(), routing_text(p)) for x, p in zip(X, train.prompts, strict=True))
    return out


TEXTS = _texts_by_row()


def texts(X: np.ndarray) -> list[str]:
    return [TEXTS[x.tobytes()] for x in X]


def with_words(task: Task, w: float, lsa: dict[str, np.ndarray]) -> Task:
    """``task`` with every embedding joined to its weighted LSA vector (rows renormalised)."""

    def z(X: np.ndarray, words: np.ndarray) -> np.ndarray:
        return normalize_rows(np.hstack([X, w * words]))

    return replace(task, **{f"X_{s}": z(getattr(task, f"X_{s}"), lsa[s]) for s in ("fit", "val", "test")})


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    routers = {"default": uniroute(KMeansClusterMap), "knn k=100": knn(100)}
    for label, router in routers.items():
        if wanted(label):
            add(label, kind, metrics(task, router(task)))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=50_000)
    svd = TruncatedSVD(DIMS, random_state=0).fit(vectorizer.fit_transform(texts(task.X_fit)))
    lsa = {
        s: normalize_rows(svd.transform(vectorizer.transform(texts(getattr(task, f"X_{s}")))))
        for s in ("fit", "val", "test")
    }
    for w in WEIGHTS:
        joined = with_words(task, w, lsa)
        for label, router in routers.items():
            if wanted(f"{label} +words w={w:g}"):
                add(f"{label} +words w={w:g}", kind, metrics(joined, router(joined)))


if __name__ == "__main__":
    sweep(__doc__, per_task)
