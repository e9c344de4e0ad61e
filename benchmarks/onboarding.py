"""Onboarding on real outputs: grader agreement with RouterBench's labels, and an end-to-end run.

1. For each of the 11 RouterBench models, on every ARC-Challenge and Winogrande
   prompt (train and test): derive the reference from the *other* models' answers
   labelled correct, grade the model's recorded answer with the multiple-choice
   grader, and count agreement with RouterBench's own 0/1 label.
2. What ``make-validation`` reports on the whole test split (MBPP prompts have no
   lettered choices: "not gradable by this grader").
3. Onboard Mixtral-8x7B as if new (fit and profile on train, remove it, validation
   set sampled per cluster from test) through LiteLLM against the replay server:
   ``--rounds`` runs with an empty answer cache and as many from a full one, each
   timed (min / median / max; LiteLLM's import is timed once, apart).

    nice python benchmarks/onboarding.py --data ../shared/data/routerbench --embedder static \
        --out benchmarks/results/onboarding.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from uniroute import KMeansClusterMap, Router
from uniroute.datasets import concat, load_routerbench, unique_ids
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


def spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 2),
        "median": round(statistics.median(values), 2),
        "max": round(max(values), 2),
    }


def not_gradable(data_dir: Path) -> dict[str, object]:
    """What make-validation reports on every test prompt (no task filter, no router)."""
    test = concat([load_routerbench(f) for f in sorted(data_dir.glob("*_test.csv"))])
    items, report = build_validation(test)
    return {
        "prompts": report.n_candidates,
        "not_gradable": report.n_not_gradable,
        "not_gradable_by_task": dict(report.not_gradable_tasks),
        "no_reference": report.n_without_reference,
        "items": len(items),
    }


def end_to_end(data_dir: Path, embedder: str, model: str, per_cluster: int, rounds: int) -> dict[str, object]:
    timings: dict[str, object] = {}
    start = time.perf_counter()
    import litellm  # noqa: F401  (timed apart: a one-off per process)

    timings["import_litellm_s"] = round(time.perf_counter() - start, 2)
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
    timings["fit_and_profile_s"] = round(time.perf_counter() - start, 2)
    fresh: list[float] = []
    cached: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        mark = time.perf_counter()
        items, _ = build_validation(
            test, router=router, per_cluster=per_cluster, tasks=TASKS, exclude_models=[model]
        )
        timings["make_validation_s"] = round(time.perf_counter() - mark, 2)
        with ReplayServer(ReplayData.from_paths([data_dir])) as server:
            settings = CallSettings(f"openai/{model}", api_base=server.url, api_key="replay", concurrency=8)
            for r in range(rounds):
                state = router.save(Path(tmp) / f"state-{r}")
                for times, kind in ((fresh, "fresh"), (cached, "cached")):
                    mark = time.perf_counter()
                    result = onboard(
                        items,
                        state,
                        settings,
                        name=model,
                        cost=original.cost,
                        cache_dir=Path(tmp) / f"cache-{r}",
                        replace=kind == "cached",
                        progress=False,
                    )
                    times.append(time.perf_counter() - mark)
                    if kind == "cached":
                        assert result.n_cached == len(items)
    rows = {sample_id: i for i, sample_id in enumerate(unique_ids(test.ids))}
    labels = np.array([test.scores[rows[item.id], test.models.index(model)] for item in items])
    labelled = ~np.isnan(labels)
    return timings | {
        "onboard_s": spread(fresh),
        "onboard_from_cache_s": spread(cached),
        "rounds": rounds,
        "validation_prompts": len(items),
        "prompts_with_a_label": int(labelled.sum()),
        "agreement": float(np.mean(result.scores[labelled] == labels[labelled])),
        "accuracy": result.accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routerbench"))
    parser.add_argument("--embedder", default="static")
    parser.add_argument("--model", default="mistralai/mixtral-8x7b-chat")
    parser.add_argument("--per-cluster", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, help="write the JSON here too (e.g. benchmarks/results/onboarding.json)"
    )
    args = parser.parse_args()
    files = [args.data / f"{t}_{s}.csv" for t in ("arc_challenge", "winograde") for s in ("train", "test")]
    data = concat([load_routerbench(f) for f in files])
    results = {
        "grader_agreement": agreement(data, make_grader("multiple_choice")),
        "make_validation_test_split": not_gradable(args.data),
        "end_to_end": end_to_end(args.data, args.embedder, args.model, args.per_cluster, args.rounds),
        "embedder": args.embedder,
        "note": "2-core machine shared with other jobs while measured: timings are noisy",
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
