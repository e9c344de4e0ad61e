"""Onboarding on real outputs: grader agreement with RouterBench's labels, and an end-to-end run.

1. For each of the 11 RouterBench models, on every ARC-Challenge and Winogrande
   prompt (train and test): derive the reference from the *other* models' answers
   labelled correct, grade the model's recorded answer with the multiple-choice
   grader, and count agreement with RouterBench's own 0/1 label.
2. Onboard Mixtral-8x7B as if new (fit and profile on train, remove it, validation
   set sampled per cluster from test) through LiteLLM against the replay server,
   timing each stage.

    python benchmarks/onboarding.py --data ../shared/data/routerbench --embedder static
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from uniroute import KMeansClusterMap, Router
from uniroute.datasets import concat, load_routerbench
from uniroute.onboarding import (
    CallSettings,
    ReplayData,
    ReplayServer,
    ValidationItem,
    build_validation,
    make_grader,
    onboard,
)
from uniroute.onboarding.validation import consensus_reference

TASKS = ["arc-challenge", "winogrande"]


def agreement(data, grader) -> dict[str, dict[str, float]]:
    """Per model: prompts with a reference and a label, and the share where grade == label."""
    out = {}
    for j, model in enumerate(data.models):
        same = total = no_reference = 0
        for i, prompt in enumerate(data.prompts):
            item = ValidationItem(prompt, None, "multiple_choice")
            reference = consensus_reference(data, i, grader, item, exclude=[model])
            label, answer = data.scores[i, j], data.responses[model][i]
            if reference is None:
                no_reference += 1
                continue
            if np.isnan(label) or answer is None:
                continue
            graded = grader.grade(answer, ValidationItem(prompt, reference, "multiple_choice"))
            same += graded == label
            total += 1
        out[model] = {"prompts": total, "no_reference": no_reference, "agreement": same / total}
    return out


def end_to_end(data_dir: Path, embedder: str, model: str, per_cluster: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    train = concat(
        [load_routerbench(data_dir / f"{t}_train.csv") for t in ("arc_challenge", "mbpp", "winograde")]
    )
    test = concat([load_routerbench(data_dir / f"{t}_test.csv") for t in ("arc_challenge", "winograde")])
    router = Router(embedder, KMeansClusterMap(n_clusters=8, random_state=0)).fit(train.prompts)
    router.add_models(
        train.prompts,
        {m: train.scores[:, j] for j, m in enumerate(train.models)},
        {m: train.costs[:, j] for j, m in enumerate(train.models)},
    )
    original = router.remove_model(model)
    timings["fit_and_profile_s"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        state = router.save(Path(tmp) / "state")
        mark = time.perf_counter()
        items, _ = build_validation(
            test, router=router, per_cluster=per_cluster, tasks=TASKS, exclude_models=[model]
        )
        timings["make_validation_s"] = time.perf_counter() - mark
        with ReplayServer(ReplayData.from_paths([data_dir])) as server:
            settings = CallSettings(f"openai/{model}", api_base=server.url, api_key="replay", concurrency=8)
            mark = time.perf_counter()
            result = onboard(
                items, state, settings, name=model, cost=original.cost, cache_dir=Path(tmp) / "cache"
            )
            timings["onboard_s"] = time.perf_counter() - mark
            mark = time.perf_counter()
            again = onboard(
                items,
                state,
                settings,
                name=model,
                cost=original.cost,
                cache_dir=Path(tmp) / "cache",
                replace=True,
            )
            timings["onboard_from_cache_s"] = time.perf_counter() - mark
    rows = {sample_id: i for i, sample_id in enumerate(test.ids)}
    labels = np.array([test.scores[rows[item.id], test.models.index(model)] for item in items])
    labelled = ~np.isnan(labels)
    return timings | {
        "validation_prompts": len(items),
        "cached_on_rerun": again.n_cached,
        "agreement": float(np.mean(result.scores[labelled] == labels[labelled])),
        "accuracy": result.accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routerbench"))
    parser.add_argument("--embedder", default="static")
    parser.add_argument("--model", default="mistralai/mixtral-8x7b-chat")
    parser.add_argument("--per-cluster", type=int, default=150)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "onboarding.json")
    args = parser.parse_args()
    files = [args.data / f"{t}_{s}.csv" for t in ("arc_challenge", "winograde") for s in ("train", "test")]
    data = concat([load_routerbench(f) for f in files])
    results = {
        "grader_agreement": agreement(data, make_grader("multiple_choice")),
        "end_to_end": end_to_end(args.data, args.embedder, args.model, args.per_cluster),
        "embedder": args.embedder,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
