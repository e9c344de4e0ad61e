"""Cache the routing data sets of ``../shared/data`` as arrays, embedded once.

Each data set becomes ``~/.cache/uniroute/quality/<name>-<embedder>.npz`` holding
``X_train``/``X_test`` (routing-text embeddings), ``S_*`` (scores, NaN = no result),
``C_*`` ($ per call), ``T_*`` (task tag per prompt), ``L_*`` (prompt length in
characters, what the engine prices requests by), ``models``, ``embedder_id`` (the id of the
embedder that made ``X_*``) and ``data_id`` (a hash of the data files read), both checked at
load. The quality
scripts (``benchmarks/quality_*.py``) read only these files, so a sweep never
re-embeds. The Open LLM Leaderboard set has no text: its "embedding" is empty and
only task-tag routers run on it.

    python benchmarks/quality_data.py --data ../shared/data --embedder static
"""

from __future__ import annotations

import argparse
import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from uniroute.datasets import RoutingDataset

CACHE = Path.home() / ".cache" / "uniroute" / "quality"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data of the checkout
SOURCES = {
    "routerbench": [
        f"routerbench/{t}_{s}.csv" for t in ("arc_challenge", "mbpp", "winograde") for s in ("train", "test")
    ],
    "routellm": ["routellm/train.jsonl", "routellm/test.jsonl"],
    "open-llm-lb-v2": ["open-llm-leaderboard-v2/correctness.npz"],
}


def cache_path(name: str, embedder: str = "static") -> Path:
    return CACHE / f"{name}-{embedder}.npz"


def load(name: str, embedder: str = "static") -> dict[str, np.ndarray]:
    """The cached arrays of one data set (build them first with this script).

    A cache of text embeddings records the id of the embedder that made it; the static embedder's
    vectors differ between machines (its id carries their fingerprint), so a cache made by another
    one is refused, and one made before ids were recorded is warned about.
    """
    with np.load(cache_path(name, embedder), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if arrays["X_train"].shape[1]:
        _check_embedder(name, embedder, str(arrays.pop("embedder_id")) if "embedder_id" in arrays else None)
    _check_data(name, embedder, str(arrays.pop("data_id")) if "data_id" in arrays else None)
    return arrays


def data_id(root: Path, name: str) -> str:
    """A hash of the files data set ``name`` is read from, to tell a cache made from other data."""
    digest = hashlib.sha256()
    for relative in SOURCES[name]:
        digest.update(relative.encode() + b"\0" + (root / relative).read_bytes())
    return digest.hexdigest()[:16]


def _check_data(name: str, embedder: str, made_from: str | None) -> None:
    """Refuse a cache made from data files that have changed since (when they are at hand to compare)."""
    if not all((DATA / relative).is_file() for relative in SOURCES[name]):
        return
    here = data_id(DATA, name)
    if made_from is None:
        warnings.warn(
            f"{cache_path(name, embedder)} does not say which data it was made from; if not {DATA} as it is "
            "now, rebuild it with quality_data.py",
            stacklevel=3,
        )
    elif made_from != here:
        raise SystemExit(
            f"{cache_path(name, embedder)} was made from other data than {DATA} holds now "
            f"({made_from} vs {here}): rebuild it with quality_data.py"
        )


def _check_embedder(name: str, embedder: str, made_by: str | None) -> None:
    from uniroute.engine.embedders import get_embedder

    here = get_embedder(embedder).id
    if made_by is None:
        warnings.warn(
            f"{cache_path(name, embedder)} does not say which embedder made it; if not {here}, "
            "its figures are another machine's: rebuild it with quality_data.py",
            stacklevel=3,
        )
    elif made_by != here:
        raise SystemExit(
            f"{cache_path(name, embedder)} was embedded by {made_by}, this machine's embedder is {here}: "
            "rebuild it with quality_data.py"
        )


def _embed(data, embedder) -> np.ndarray:
    from uniroute.engine.text import routing_text

    texts = [routing_text(p) for p in data.prompts]
    return np.concatenate([embedder.encode(texts[i : i + 256]) for i in range(0, len(texts), 256)])


def _arrays(train, test, embedder) -> dict[str, np.ndarray]:
    from uniroute.engine.text import prompt_chars

    out: dict[str, np.ndarray] = {"models": np.array(train.models)}
    for tag, data in (("train", train), ("test", test)):
        out[f"S_{tag}"] = data.scores.astype(np.float64)
        out[f"C_{tag}"] = data.costs.astype(np.float64)
        out[f"T_{tag}"] = np.array(data.tasks)
        out[f"L_{tag}"] = prompt_chars(data.prompts)
        out[f"X_{tag}"] = (
            _embed(data, embedder) if embedder is not None else np.zeros((len(data), 0), np.float32)
        )
    return out


def splits(root: Path, name: str) -> tuple[RoutingDataset, RoutingDataset]:
    """(train, test) of "routerbench" (its three tasks) or "routellm", in the cache's row order."""
    from uniroute.datasets import concat, load_dataset

    if name == "routerbench":
        tasks = ("arc_challenge", "mbpp", "winograde")
        train, test = (
            concat([load_dataset(root / name / f"{t}_{tag}.csv") for t in tasks]) for tag in ("train", "test")
        )
        return train, test
    return load_dataset(root / name / "train.jsonl"), load_dataset(root / name / "test.jsonl")


def build(root: Path, embedder_name: str) -> None:
    from uniroute.engine.embedders import get_embedder

    embedder = get_embedder(embedder_name)
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("routerbench", "routellm"):
        arrays = _arrays(*splits(root, name), embedder)
        ids = {"embedder_id": np.array(embedder.id), "data_id": np.array(data_id(root, name))}
        np.savez(cache_path(name, embedder_name), **ids, **arrays)
    # Open LLM Leaderboard v2: no text, no costs; 80/20 split within each subtask (as the harness does).
    with np.load(root / "open-llm-leaderboard-v2" / "correctness.npz", allow_pickle=False) as z:
        scores, models, bench = z["scores"].astype(np.float64), z["models"], z["benchmark"]
    rng = np.random.default_rng(0)
    is_test = np.zeros(len(scores), dtype=bool)
    for b in np.unique(bench):
        idx = np.flatnonzero(bench == b)
        is_test[rng.choice(idx, round(0.2 * len(idx)), replace=False)] = True
    out: dict[str, np.ndarray] = {"models": models}
    for tag, mask in (("train", ~is_test), ("test", is_test)):
        out[f"S_{tag}"] = scores[mask]
        out[f"C_{tag}"] = np.full(scores[mask].shape, np.nan)
        out[f"T_{tag}"] = bench[mask]
        out[f"L_{tag}"] = np.zeros(int(mask.sum()))
        out[f"X_{tag}"] = np.zeros((int(mask.sum()), 0), np.float32)
    np.savez(
        cache_path("open-llm-lb-v2", embedder_name), data_id=np.array(data_id(root, "open-llm-lb-v2")), **out
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--embedder", default="static")
    args = parser.parse_args()
    build(Path(args.data), args.embedder)
    for name in ("routerbench", "routellm", "open-llm-lb-v2"):
        z = load(name, args.embedder)
        print(name, {k: v.shape for k, v in z.items()})


if __name__ == "__main__":
    main()
