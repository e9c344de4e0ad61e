"""Offline proof of ``uniroute build`` (issue 11) on RouterBench: a router from an unlabelled log.

1. The RouterBench train prompts of the tasks a reference can grade (ARC-Challenge
   and Winogrande; MBPP's code needs a sandbox) become a prompt log with the
   labels dropped: each line keeps the prompt and the reference ``make-validation``
   would build (the answer most of the models *labelled correct* gave,
   :func:`uniroute.onboarding.build_validation`); a prompt without one is in the log
   without it (the build clusters it but cannot grade it).
2. ``uniroute replay-server`` (a subprocess on 127.0.0.1) serves the 11 models, and a
   generated LiteLLM ``config.yaml`` lists them as the 11 deployments of one model
   group, each with its own ``input_cost_per_token`` / ``output_cost_per_token``:
   fitted (non-negative least squares) so that the server's ``usage`` reproduces
   RouterBench's recorded $ per call on the train prompts. The $ of a call is then
   what the server's usage implies, the quantity the build has to estimate.
3. ``uniroute build --per-cluster 30`` through the real CLI, once per seed
   (``--seeds``), each with an empty answer cache.
4. On the test prompts of the same tasks (those with every model's label), the
   deferral area exactly as ``uniroute eval`` computes it
   (:func:`uniroute.evaluation.metrics.prompt_paths` and ``summarize``) of the built
   router and of the router with the *same* cluster map profiled on all train
   labels with RouterBench's train $ (target: within 0.01); the calls the server
   counted (``GET /v1/usage``); per model, the build's $ per request vs the mean $
   per request the server's usage implies on the test prompts (target: within 10%).
   To tell grading from sampling apart: the area of the same map profiled with
   RouterBench's own labels of the sampled prompts, and how often the graded
   scores equal those labels.

    nice -n 10 python benchmarks/build_proof.py --data ../shared/data/routerbench --seeds 0 1 2 \
        --out benchmarks/results/build_proof.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from uniroute import Router
from uniroute.datasets import RoutingDataset, concat, load_dataset, load_routerbench
from uniroute.engine.files import atomic_write_bytes
from uniroute.engine.text import prompt_text
from uniroute.evaluation import metrics
from uniroute.evaluation.protocols import complete_rows
from uniroute.onboarding import build_validation
from uniroute.onboarding.replay_server import usage

TASK_FILES = ("arc_challenge", "winograde")
GROUP = "routerbench"
KEY_VAR = "REPLAY_KEY"
AREA_TARGET = 0.01
COST_TARGET = 0.10


def load(data: Path, split: str) -> RoutingDataset:
    return concat([load_routerbench(data / f"{task}_{split}.csv") for task in TASK_FILES])


def call_tokens(data: RoutingDataset, model: str, i: int) -> tuple[int, int] | None:
    """Prompt and completion tokens the replay server reports for ``model`` on prompt ``i``."""
    answer = data.responses[model][i]
    if answer is None:
        return None
    counted = usage(prompt_text([{"role": "user", "content": data.prompts[i]}]), answer)
    return counted["prompt_tokens"], counted["completion_tokens"]


def fit_prices(train: RoutingDataset) -> dict[str, tuple[float, float]]:
    """Per model, ($ per input token, $ per output token) best reproducing the recorded $ from the usage."""
    prices = {}
    for j, model in enumerate(train.models):
        rows, dollars = [], []
        for i in range(len(train)):
            tokens = call_tokens(train, model, i)
            if tokens is not None and np.isfinite(train.costs[i, j]):
                rows.append(tokens)
                dollars.append(train.costs[i, j])
        solution, _ = nnls(np.array(rows, dtype=np.float64), np.array(dollars))
        prices[model] = (float(solution[0]), float(solution[1]))
    return prices


def implied_cost(data: RoutingDataset, model: str, prices: tuple[float, float]) -> float:
    """Mean $ per request of ``model`` on ``data``'s prompts at ``prices``, from the server's usage."""
    dollars = [
        prices[0] * t[0] + prices[1] * t[1] for i in range(len(data)) if (t := call_tokens(data, model, i))
    ]
    return float(np.mean(dollars))


def write_log(train: RoutingDataset, path: Path) -> dict[str, Any]:
    """The unlabelled log: every prompt, with make-validation's reference where it has one; no label."""
    items, report = build_validation(train, "multiple_choice")
    references = {item.prompt: item.reference for item in items}
    lines = [
        json.dumps({"prompt": p} | ({"reference": references[p]} if p in references else {}))
        for p in train.prompts
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "train_prompts": len(train),
        "log_lines": len(lines),
        "with_reference": len(items),
        "without_reference": report.n_without_reference,
        "not_gradable": dict(report.not_gradable),
    }


def write_config(path: Path, url: str, models: list[str], prices: dict[str, tuple[float, float]]) -> None:
    import yaml

    deployments = [
        {
            "model_name": GROUP,
            "litellm_params": {
                "model": f"openai/{model}",
                "api_base": url,
                "api_key": f"os.environ/{KEY_VAR}",
                "input_cost_per_token": prices[model][0],
                "output_cost_per_token": prices[model][1],
            },
        }
        for model in models
    ]
    path.write_text(yaml.safe_dump({"model_list": deployments}, sort_keys=False), encoding="utf-8")


class Replay:
    """``uniroute replay-server`` in a subprocess on a free port of 127.0.0.1."""

    def __init__(self, data: Path):
        files = [str(data / f"{task}_train.csv") for task in TASK_FILES]
        command = ["nice", "-n", "10", sys.executable, "-m", "uniroute.cli", "replay-server", "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--data", *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        line = self.process.stdout.readline()  # the address, printed once the data is loaded ("" if it died)
        found = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        if found is None:
            self.process.kill()
            raise RuntimeError(f"replay-server did not start: {line!r} {self.process.stderr.read()[-500:]!r}")
        self.url = found.group(1)

    def usage(self) -> dict[str, dict[str, int]]:
        with urllib.request.urlopen(self.url + "/usage", timeout=30) as response:
            return json.loads(response.read())["models"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def area(router: Router, test: RoutingDataset, X_test: np.ndarray) -> float:
    """The deferral area of ``router`` on ``test``, as ``uniroute eval`` computes it."""
    errors, decision_costs, _ = router.expected_errors(X_test, list(test.models))
    paths = metrics.prompt_paths(errors, decision_costs, test.scores, test.costs)
    choices = metrics.first_choice(errors, decision_costs)
    return float(metrics.summarize(paths, choices, test.scores, test.costs)["area"])


def train_rows(train: RoutingDataset, prompts: Any) -> np.ndarray:
    """Row of each prompt in ``train`` (the log's prompts are train prompts, text unchanged)."""
    index = {prompt: i for i, prompt in enumerate(train.prompts)}
    return np.array([index[prompt] for prompt in prompts])


def profiled_like(state: Path, prompts: Any, scores: np.ndarray, train: RoutingDataset) -> Router:
    """The saved router's cluster map, its models profiled on ``scores`` with RouterBench's train $."""
    router = Router.load(state)
    for name in router.models:
        router.remove_model(name)
    costs = train.mean_costs()
    router.add_models(
        prompts,
        {m: scores[:, j] for j, m in enumerate(train.models)},
        {m: float(costs[j]) for j, m in enumerate(train.models)},
    )
    return router


def label_sample_gaps(
    state: Path,
    train: RoutingDataset,
    test: RoutingDataset,
    X: np.ndarray,
    per_cluster: int,
    draws: int,
    seed: int,
    area_reference: float,
) -> list[float]:
    """Area gaps of the map profiled on RouterBench's labels of ``per_cluster`` train prompts a cluster.

    No call and no grading: how far sampling alone moves the area, at other sample sizes.
    """
    router = Router.load(state)
    clusters = router.cluster_probs(router.embed(train.prompts)).argmax(axis=1)
    rng = np.random.default_rng([seed, per_cluster])
    gaps = []
    for _ in range(draws):
        rows = np.concatenate(
            [rng.permutation(np.flatnonzero(clusters == k))[:per_cluster] for k in np.unique(clusters)]
        )
        profiled = profiled_like(state, [train.prompts[i] for i in rows], train.scores[rows], train)
        gaps.append(area(profiled, test, X) - area_reference)
    return gaps


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def cli(args: argparse.Namespace, command: list[str]) -> str:
    """Run a ``uniroute`` command line (under ``nice``); its standard output."""
    env = os.environ | {KEY_VAR: "none"}
    line = ["nice", "-n", "10", *shlex.split(args.uniroute), *command[1:]]
    done = subprocess.run(line, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def reported(pattern: str, text: str) -> float | None:
    """A number the build printed (None if the line is not there)."""
    found = re.search(pattern, text)
    return float(found.group(1).replace(",", "")) if found else None


def run_seed(
    args: argparse.Namespace, work: Path, replay: Replay, seed: int, context: dict[str, Any]
) -> dict[str, Any]:
    out = work / f"build-{seed}"
    command = [
        "uniroute", "build", "--prompts", str(work / "log.jsonl"), "--config", str(work / "config.yaml"),
        "--group", GROUP, "--per-cluster", str(args.per_cluster), "--seed", str(seed), "--out", str(out),
        "--grader", "multiple_choice", *shlex.split(args.build_args),
    ]  # fmt: skip
    dry = cli(args, [*command, "--dry-run"])
    before = replay.usage()
    started = time.perf_counter()
    done = cli(args, command)
    seconds = time.perf_counter() - started
    after = replay.usage()
    prices, train, test, X_test = context["prices"], context["train"], context["test"], context["X_test"]
    calls = {m: after.get(m, {}).get("requests", 0) - before.get(m, {}).get("requests", 0) for m in after}
    billed = sum(
        prices[m][0] * (after[m]["prompt_tokens"] - before.get(m, {}).get("prompt_tokens", 0))
        + prices[m][1] * (after[m]["completion_tokens"] - before.get(m, {}).get("completion_tokens", 0))
        for m in after
    )
    built = Router.load(out / "state")
    sample = load_dataset(out / "results.jsonl", "jsonl").select_models(list(train.models))
    rows = train_rows(train, sample.prompts)
    labels = train.scores[rows]
    graded = ~np.isnan(sample.scores) & ~np.isnan(labels)
    reference = profiled_like(out / "state", train.prompts, train.scores, train)
    on_sample = profiled_like(out / "state", sample.prompts, labels, train)
    X = built.embed(test.prompts) if X_test is None else X_test
    context["X_test"] = X
    area_built, area_reference = area(built, test, X), area(reference, test, X)
    area_on_sample = area(on_sample, test, X)
    label_gaps = {
        str(n): label_sample_gaps(out / "state", train, test, X, n, args.label_draws, seed, area_reference)
        for n in args.label_per_cluster
    }
    per_model = {}
    for m in test.models:
        estimate = built.profile(m).cost
        truth = context["implied_test_cost"][m]
        per_model[m] = {
            "build_cost": estimate,
            "replay_implied_test_cost": truth,
            "relative_error": estimate / truth - 1.0,
            "routerbench_test_cost": context["routerbench_test_cost"][m],
        }
    build_json = json.loads((out / "build.json").read_text()) if (out / "build.json").exists() else None
    validation = sum(1 for line in (out / "validation.jsonl").read_text().splitlines() if line.strip())
    return {
        "seed": seed,
        "command": shlex.join(command),
        "seconds": seconds,
        "validation_prompts": validation,
        "calls_counted_by_server": sum(calls.values()),
        "calls_by_model": calls,
        "calls_reported_by_build": reported(r"answers: ([\d,]+) call\(s\) made", done),
        "dollars_implied_by_server_usage": billed,
        "dollars_reported_by_build": reported(r"\$([\d.]+) spent", done),
        "dry_run_dollars": reported(r"total: .*?≈ \$([\d.]+)", dry),
        "area_built": area_built,
        "area_reference": area_reference,
        "area_gap": area_built - area_reference,
        "area_labels_on_sample": area_on_sample,
        "grading_agreement": float((sample.scores[graded] == labels[graded]).mean()),
        "graded_pairs": int(graded.sum()),
        "cost_max_abs_relative_error": max(abs(v["relative_error"]) for v in per_model.values()),
        "per_model": per_model,
        "label_sample_area_gaps": label_gaps,
        "build_stdout_tail": done[-1500:],
        "build_json": build_json,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routerbench"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-cluster", type=int, default=30)
    parser.add_argument(
        "--build-args",
        default="--concurrency 8 --no-progress --no-report",
        help="more `uniroute build` options",
    )
    parser.add_argument(
        "--uniroute", default=shlex.join([sys.executable, "-m", "uniroute.cli"]), help="how to run the CLI"
    )
    parser.add_argument(
        "--work", type=Path, help="keep the log, config and builds here (default: a temp dir)"
    )
    parser.add_argument(
        "--label-per-cluster",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="also profile each built map on RouterBench's labels of N random prompts a cluster (no calls)",
    )
    parser.add_argument("--label-draws", type=int, default=4, help="draws per --label-per-cluster size")
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    args = parser.parse_args()
    train, test = load(args.data, "train"), load(args.data, "test")
    test = complete_rows(test, list(train.models))
    with tempfile.TemporaryDirectory(prefix="build-proof-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        log = write_log(train, work / "log.jsonl")
        prices = fit_prices(train)
        context: dict[str, Any] = {
            "prices": prices,
            "train": train,
            "test": test,
            "X_test": None,
            "implied_test_cost": {m: implied_cost(test, m, prices[m]) for m in test.models},
            "routerbench_test_cost": dict(zip(test.models, map(float, test.costs.mean(axis=0)), strict=True)),
        }
        replay = Replay(args.data)
        try:
            write_config(work / "config.yaml", replay.url, list(train.models), prices)
            runs = []
            for seed in args.seeds:
                runs.append(run_seed(args, work, replay, seed, context))
                print(
                    f"seed {seed}: area {runs[-1]['area_built']:.4f} vs {runs[-1]['area_reference']:.4f} "
                    f"(gap {runs[-1]['area_gap']:+.4f}), {runs[-1]['calls_counted_by_server']} calls, "
                    f"max $ error {runs[-1]['cost_max_abs_relative_error']:.1%}, "
                    f"${runs[-1]['dollars_reported_by_build']} spent (server usage: "
                    f"${runs[-1]['dollars_implied_by_server_usage']:.4f}), {runs[-1]['seconds']:.0f} s",
                    flush=True,
                )
        finally:
            replay.stop()
    gaps = [abs(r["area_gap"]) for r in runs]
    cost_errors = [r["cost_max_abs_relative_error"] for r in runs]
    result = {
        "data": str(args.data),
        "tasks": list(TASK_FILES),
        "log": log,
        "test_prompts": len(test),
        "prices_per_token": prices,
        "seeds": args.seeds,
        "machine": "shared 2-core machine, busy (7 helpers); timings are noisy",
        "summary": {
            "area_built": spread([r["area_built"] for r in runs]),
            "area_reference": spread([r["area_reference"] for r in runs]),
            "abs_area_gap": spread(gaps),
            "area_labels_on_sample": spread([r["area_labels_on_sample"] for r in runs]),
            "grading_agreement": spread([r["grading_agreement"] for r in runs]),
            "area_target_met": all(g <= AREA_TARGET for g in gaps),
            "calls": spread([r["calls_counted_by_server"] for r in runs]),
            "cost_max_abs_relative_error": spread(cost_errors),
            "cost_target_met": all(e <= COST_TARGET for e in cost_errors),
            "dollars_reported_by_build": spread([r["dollars_reported_by_build"] for r in runs]),
            "dollars_implied_by_server_usage": spread([r["dollars_implied_by_server_usage"] for r in runs]),
            "dry_run_dollars": spread([r["dry_run_dollars"] for r in runs]),
            "label_sample_abs_area_gaps": {
                n: spread([abs(g) for r in runs for g in r["label_sample_area_gaps"][n]])
                for n in map(str, args.label_per_cluster)
            },
            "seconds": spread([r["seconds"] for r in runs]),
        },
        "runs": runs,
    }
    print(json.dumps(result["summary"], indent=2))
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(result, indent=2) + "\n").encode())
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
