"""``uniroute build``: a router and its report from a prompt log and a model list.

The steps, each reusing the part that already does it:

1. read the log (:mod:`.prompts`) and the models (:mod:`.models`);
2. fit the cluster map on the log's prompts (``Router.fit``), or keep the saved
   one (``update=True``);
3. sample ``per_cluster`` × K prompts, split by the clusters' shares of the log (:mod:`.sampling`), and
   write them as a normal validation file (:mod:`uniroute.onboarding.validation`),
   so ``uniroute onboard`` can add a model later on the same set;
4. collect every model's answers (:func:`uniroute.onboarding.runner.collect_answers`:
   bounded concurrency, retries, the answer cache, one budget, one progress bar);
5. grade them against the log's references (the onboarding graders) or with a
   judge (:mod:`.judges`: absolute, or pairwise against an anchor model);
6. add every model's Ψ to the router (``Router.add_models``), drop models no
   longer listed, save the state, and write the report (:mod:`uniroute.report`).

Money: a dry run only counts; with a budget every call first reserves a
conservative bound of its $ and is not made if the budget could be exceeded,
so a run stops *before* the budget, leaving the cache to resume from.

What lands in ``out``: ``state/`` (the router), ``validation.jsonl``,
``results.jsonl`` (every model's score and $ per validation prompt, the
``jsonl`` routing-data format), ``build.json`` (how it was built), ``report/``
and, by default, ``cache/`` (answers and verdicts).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.files import atomic_write_bytes
from ..engine.text import prompt_chars
from ..exceptions import InputError, OnboardingError
from ..onboarding.pricing import Budget, estimate, litellm_price, prompt_tokens, traffic_cost, traffic_price
from ..onboarding.runner import AnswerJob, Answers, collect_answers, run_sync
from ..onboarding.validation import ValidationItem, load_validation, save_validation
from .models import Deployment, deployments_from_config, deployments_from_models
from .prompts import LoggedPrompt, PromptLog, read_prompt_log
from .sampling import ALLOCATIONS, cluster_targets, sample_per_cluster

if TYPE_CHECKING:
    from ..engine.embedders import Embedder
    from ..engine.router import Router
    from ..onboarding.graders import JudgeSettings

STATE = "state"
VALIDATION = "validation.jsonl"
RESULTS = "results.jsonl"
META = "build.json"
REPORT = "report"
CACHE = "cache"
# The build's call settings that apply to its judge as well as to its models.
_JUDGE_CALL = ("timeout", "max_retries", "backoff", "concurrency")


@dataclass
class BuildResult:
    """What a build did (returned by :func:`build`; :meth:`summary` is what the CLI prints).

    Counts are of calls to the models (``calls`` made and paid, ``cached`` answers
    reused, ``failed`` after retries, ``unpaid`` not made because of the budget) and
    of judge calls; ``spent`` is $ paid in this run (answers and judge); when the
    budget stopped the run, ``remaining`` is the dry-run estimate of the answer calls
    left (a budget that covers it finishes them).
    """

    out: Path
    log: str
    n_prompts: int
    dropped: Counter[str]
    n_items: int = 0
    available: list[int] = field(default_factory=list)
    sampled: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    calls: int = 0
    cached: int = 0
    failed: int = 0
    unpaid: int = 0
    judge_calls: int = 0
    judge_cached: int = 0
    spent: float = 0.0
    remaining: float = 0.0
    estimates: list[str] = field(default_factory=list)
    points: list[str] = field(default_factory=list)
    dry_run: bool = False
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when the state and report were written."""
        return "state" in self.paths

    def summary(self) -> str:
        lines = [self.log]
        if self.available:
            lines.append("cluster  prompts  sampled")
            lines += [f"{k:>7}  {a:>7}  {s:>7}" for k, (a, s) in enumerate(zip(self.available, self.sampled))]
        lines.append(f"{self.n_items} validation prompt(s)")
        lines += self.notes
        if self.dry_run:
            lines += ["dry run: nothing called, nothing written", *self.estimates]
            return "\n".join(lines)
        lines.append(
            f"answers: {self.calls} call(s) made, {self.cached} from the cache, {self.failed} failed"
            + (f", {self.unpaid} not made (budget)" if self.unpaid else "")
            + f"; judge: {self.judge_calls} call(s), {self.judge_cached} cached; ${self.spent:.4f} spent"
        )
        lines += [f"left out {name}: {why}" for name, why in self.left_out.items()]
        if self.removed:
            lines.append(f"removed from the state (no longer in the model list): {', '.join(self.removed)}")
        if self.stopped:
            lines.append(self.stopped)
        if self.models:
            lines.append(f"profiled {len(self.models)} model(s): {', '.join(self.models)}")
        if self.points:
            lines += ["operating points (λ for the front doors; the report has the frontier):", *self.points]
        lines += [f"wrote {what}: {path}" for what, path in self.paths.items()]
        return "\n".join(lines)


# ---- inputs ---------------------------------------------------------------------------


def _deployments(
    config: str | Path | None, group: str | None, models: Sequence[str], call: Mapping[str, Any]
) -> tuple[list[Deployment], list[str]]:
    if (config is not None and group is not None) == bool(models):
        raise InputError("give the models either as --config FILE --group GROUP, or as --model (repeat)")
    if config is not None and group is not None:
        overrides = {k: v for k, v in call.items() if k not in ("api_base", "api_key", "params")}
        return deployments_from_config(config, group, **overrides)
    if config is not None or group is not None:
        raise InputError("--config and --group go together (the deployments of one model group)")
    return deployments_from_models(models, **call), []


def _check_prices(deployments: Sequence[Deployment]) -> None:
    for d in deployments:
        if d.prices is None and litellm_price(d.settings.model, 1, 1) is None:
            raise InputError(
                f"no price for {d.label or d.name} ({d.settings.model!r}): LiteLLM's price map does not know "
                "it; give the deployment input_cost_per_token and output_cost_per_token ($ per token) in its "
                "litellm_params or model_info in the config"
            )


def _judge(
    model: str,
    mode: str,
    template: str | Path | None,
    config: str | Path | None,
    cache_dir: Path,
    call: Mapping[str, Any],
) -> Any:
    """The judge: a deployment of the config named ``model`` (its prices too), else a LiteLLM model."""
    from .judges import JUDGES, judge_settings

    if mode not in JUDGES:
        raise InputError(f"unknown judge mode {mode!r}; choose one of {sorted(JUDGES)}")
    overrides = {k: v for k, v in call.items() if k in _JUDGE_CALL}
    settings, prices = judge_settings(model, config, **overrides)
    _check_judge_price(model, settings.model, prices)
    judge_class: Any = JUDGES[mode]
    return judge_class(settings, template, cache_dir, **({} if prices is None else {"prices": prices}))


def _check_judge_price(model: str, called: str, prices: Any) -> None:
    if prices is None and litellm_price(called, 1, 1) is None:
        raise InputError(
            f"no price for the judge {model!r}: make it a deployment of the config with "
            "input_cost_per_token and output_cost_per_token, or use a model LiteLLM prices"
        )


def _grader_judge(grader: Any, config: str | Path | None, cache_dir: Path) -> tuple[Any, str]:
    """``--grader llm_judge``'s judge and mode, priced and cached as ``--judge``'s, so its verdicts
    are reserved from the budget, counted and kept in the build's cache; ``(None, "")`` for other graders."""
    from ..onboarding.graders import LLMJudgeGrader
    from .judges import judge_settings

    if not isinstance(grader, LLMJudgeGrader):
        return None, ""
    settings, template = grader.judge.settings, grader.judge.template
    prices = None if config is None else judge_settings(grader.model, config)[1]
    _check_judge_price(grader.model, settings.model, prices)
    judge = type(grader.judge)(
        settings, template, cache_dir, **({} if prices is None else {"prices": prices})
    )
    return judge, grader.mode


# ---- validation sample ------------------------------------------------------------------


def _item(logged: LoggedPrompt, cluster: int, grader: str, options: Mapping[str, Any]) -> ValidationItem:
    return ValidationItem(
        prompt=logged.text_prompt(),
        reference=logged.reference,
        grader=grader,
        grader_options=dict(options),
        task=f"cluster-{cluster}",
        id=f"log-{logged.line}",
    )


def _with_anchor(items: Sequence[ValidationItem], anchor: Answers) -> list[ValidationItem]:
    """The items with the anchor's answer to each in its ``anchor`` grader option (none where it failed).

    The validation file then holds everything the pairwise grading of the build
    needs, so a model onboarded on it later is graded as the build graded.
    """
    return [
        item
        if outcome.text is None
        else replace(item, grader_options={**item.grader_options, "anchor": outcome.text})
        for item, outcome in zip(items, anchor.outcomes, strict=True)
    ]


def _unreadable_references(grader: Any, prompts: Sequence[LoggedPrompt]) -> dict[int, str]:
    """``{line: why}`` of the prompts whose reference ``grader`` refuses (no validation file holds it)."""
    out = {}
    for p in prompts:
        try:
            grader.check_reference(p.reference)
        except ValueError as exc:
            out[p.line] = f"line {p.line}: {exc}"
    return out


def _check_same_grading(
    out: Path, grading: str, template: str | None, anchor: str | None, options: Any = None
) -> None:
    """Refuse an ``--update`` that would grade otherwise than the build in ``out`` did.

    Scores from two gradings do not mix in one Ψ: the grader or judge, the grader's
    options (``options``, reference grading), the judge's mode and template, and the
    pairwise anchor must all stay. (Builds written before the template or the options
    were recorded are compared on the rest.)
    """
    try:
        before = json.loads((out / META).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        before = exc
    if not isinstance(before, dict):
        why = before if isinstance(before, Exception) else f"a JSON {type(before).__name__}, not an object"
        raise InputError(
            f"--update: cannot read {out / META} ({why}); restore it from the build that wrote it, "
            "or build into a new --out"
        )
    now = {
        "grading": grading,
        "grader options": options,
        "judge template": template,
        "pairwise anchor": anchor,
    }
    then = {
        "grading": before.get("grading"),
        "grader options": before.get("grader_options", options),
        "judge template": before.get("judge_template", template),
        "pairwise anchor": before.get("anchor") if grading.startswith("judge:pairwise:") else None,
    }
    changed = [key for key in now if now[key] != then[key]]
    if changed:
        what = ", ".join(f"{key} {then[key]!r} -> {now[key]!r}" for key in changed)
        raise InputError(
            f"{out} was graded otherwise than this run would grade ({what}): scores from two gradings do "
            "not mix in one Ψ; use the same grading options, or build into a new --out"
        )


def _fit_or_load(
    state_path: Path, update: bool, embedder: str | Embedder, clusters: int | None, seed: int
) -> tuple[Router, bool]:
    from ..engine.cluster_maps import KMeansClusterMap
    from ..engine.router import Router

    if update:
        if not state_path.exists():
            raise InputError(f"--update: no state at {state_path}; run the build once without --update")
        return Router.load(state_path), False
    if state_path.exists():
        raise InputError(
            f"{state_path} exists: pass --update to top up that build (new prompts, new models), "
            "or give another --out"
        )
    cmap = (
        KMeansClusterMap(random_state=seed)
        if clusters is None
        else KMeansClusterMap(clusters, random_state=seed)
    )
    return Router(embedder, cmap), True


@dataclass
class _Sample:
    """The validation items, each one's cluster, the log's share per cluster, and the per-cluster counts."""

    items: list[ValidationItem]
    clusters: np.ndarray
    shares: np.ndarray
    available: np.ndarray
    sampled: np.ndarray


def _sample(
    router: Router,
    fit: bool,
    log: PromptLog,
    usable: list[LoggedPrompt],
    earlier: list[ValidationItem],
    per_cluster: int,
    allocation: str,
    seed: int,
    grader: str,
    options: Mapping[str, Any],
    progress: bool | None,
) -> _Sample:
    """Fit the map on every logged prompt (first build), then draw the validation sample."""
    X = router.embed([p.text_prompt() for p in log.prompts], progress=progress)
    if fit:
        router.fit_embeddings(X)
    every = router.cluster_probs(X).argmax(axis=1)
    n_clusters = len(router.cluster_map_.cluster_weights_)
    index = {id(p): i for i, p in enumerate(log.prompts)}
    clusters = every[[index[id(p)] for p in usable]]
    by_prompt = {json.dumps(item.messages(), sort_keys=True): item for item in earlier}
    keys = [json.dumps(list(p.messages), sort_keys=True) for p in usable]
    keep = [i for i, key in enumerate(keys) if key in by_prompt]
    shares = np.bincount(every, weights=log.counts, minlength=n_clusters) / sum(log.counts)
    targets = cluster_targets(per_cluster, shares, allocation)
    rows, available, sampled = sample_per_cluster(clusters, n_clusters, targets, keep, seed)
    items = [by_prompt.get(keys[i]) or _item(usable[i], int(clusters[i]), grader, options) for i in rows]
    item_clusters = [int(clusters[i]) for i in rows]
    logged = set(keys)
    gone = [item for key, item in by_prompt.items() if key not in logged]  # no longer logged: kept
    if gone:
        items += gone
        item_clusters += [
            int(k) for k in router.cluster_probs(router.embed([i.prompt for i in gone])).argmax(1)
        ]
    return _Sample(items, np.array(item_clusters, dtype=int), shares, available, sampled)


# ---- grading ------------------------------------------------------------------------------


async def _grade_references(
    items: Sequence[ValidationItem], answers: Answers, judge: JudgeSettings | None
) -> np.ndarray:
    """Every answer graded by its item's grader, side by side (a judge grader bounds its own calls)."""
    from ..onboarding.graders import GraderSet

    graders = GraderSet(judge)
    scores = np.full(len(items), np.nan)

    async def grade(i: int, item: ValidationItem, text: str) -> None:
        scores[i], _ = await graders.grade(text, item)

    try:
        await asyncio.gather(
            *(
                grade(i, item, outcome.text)
                for i, (item, outcome) in enumerate(zip(items, answers.outcomes, strict=True))
                if outcome.text is not None and outcome.status in ("answered", "cached")
            )
        )
    finally:
        graders.close()
    return scores


@dataclass
class _JudgeTally:
    calls: int = 0
    cached: int = 0
    unpaid: int = 0
    missing: Counter[str] = field(default_factory=Counter)


async def _grade_with_judge(
    judge: Any,
    mode: str,
    items: Sequence[ValidationItem],
    answers: Sequence[Answers],
    budget: Budget,
    tally: _JudgeTally,
) -> dict[str, np.ndarray]:
    """Every answer's verdict; the budget is checked before each verdict that needs a call.

    Pairwise, an answer is compared with its item's ``anchor`` option (:func:`_with_anchor`): the
    build grades with what its validation file says, as ``uniroute onboard`` will.
    """
    by_name = {a.name: a for a in answers}
    semaphore = asyncio.Semaphore(judge.settings.concurrency)

    def text(answer: Answers, i: int) -> str | None:
        outcome = answer.outcomes[i]
        return outcome.text if outcome.status in ("answered", "cached") else None

    async def ask(messages: list[dict[str, Any]], response: str, other: Any) -> Any:
        """One verdict, the budget reserved first unless it is cached; None when the budget refuses."""
        async with semaphore:
            free = bool(judge.is_cached(messages, response, other))
            bound = 0.0
            if not free:
                tokens = prompt_tokens(judge.settings, messages)
                extra = len(str(other or "")) / 3 if mode != "pairwise" else 0.0
                bound = float(judge.estimate(1, tokens, len(response) / 3 + 1, extra)[2])
                if not budget.reserve(bound):
                    tally.unpaid += 1
                    return None
            try:
                verdict = await judge.agrade(messages, response, other)
            except BaseException:
                budget.settle(bound, 0.0)
                raise
            cost = verdict.cost if math.isfinite(verdict.cost) else bound
            budget.settle(bound, cost)
        tally.calls += verdict.calls
        tally.cached += verdict.calls == 0 and verdict.cached
        return verdict

    asked: dict[str, asyncio.Future[Any]] = {}

    async def one(answer: Answers, i: int) -> float:
        response = text(answer, i)
        if response is None:
            return math.nan
        item = items[i]
        other: Any = item.reference
        if mode == "pairwise":
            other = item.grader_options.get("anchor")
            if other is None:
                tally.missing["no anchor answer"] += 1
                return math.nan
        messages = item.messages()
        key = json.dumps([messages, response, other], sort_keys=True, default=str)
        if key not in asked:  # the same answer to the same prompt (two models agree) is judged once
            asked[key] = asyncio.ensure_future(ask(messages, response, other))
        verdict = await asked[key]
        if verdict is None:
            return math.nan
        if verdict.score is None:
            tally.missing[verdict.detail.split(":")[0]] += 1
            return math.nan
        return float(verdict.score)

    names = [a.name for a in answers]
    jobs = [one(by_name[name], i) for name in names for i in range(len(items))]
    flat = await asyncio.gather(*jobs)
    n = len(items)
    return {name: np.array(flat[j * n : (j + 1) * n], dtype=np.float64) for j, name in enumerate(names)}


# ---- outputs ------------------------------------------------------------------------------


def _write_results(
    path: Path,
    items: Sequence[ValidationItem],
    scores: Mapping[str, np.ndarray],
    costs: Mapping[str, np.ndarray],
) -> Path:
    """Every model's score and $ per validation prompt, in the ``jsonl`` routing-data format."""
    lines = []
    for i, item in enumerate(items):
        record: dict[str, Any] = {"id": item.id, "task": item.task}
        if isinstance(item.prompt, str):
            record["prompt"] = item.prompt
        else:
            record["messages"] = item.messages()
        record["scores"] = {m: (None if math.isnan(s[i]) else float(s[i])) for m, s in scores.items()}
        record["costs"] = {m: (None if math.isnan(c[i]) else float(c[i])) for m, c in costs.items()}
        lines.append(json.dumps(record, ensure_ascii=False))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def _point_line(point: Any) -> str:
    """One operating point of the report as a line of the summary."""
    shares = ", ".join(
        f"{m} {v:.0%}" for m, v in sorted(point.shares.items(), key=lambda kv: -kv[1]) if v > 0
    )
    measured = "" if point.measured_quality is None else f", measured {point.measured_quality:.3f}"
    return (
        f"  {point.name:<10} λ={point.lam:<10.4g} ${point.cost * 1000:.4g} per 1k requests, expected quality "
        f"{point.expected_quality:.3f}{measured}; {shares}"
    )


def _resume_hint(budget: float | None, rest: float) -> str:
    more = f" (the calls left are estimated at ≈ ${rest:.4f})" if math.isfinite(rest) else ""
    return (
        f"stopped before the budget{'' if budget is None else f' of ${budget:g}'} would be exceeded{more}. "
        "Every answer so far is cached: run the same command again with a larger --budget "
        "(cached answers and verdicts cost nothing; only the rest is paid)"
    )


# ---- the pipeline -------------------------------------------------------------------------


async def abuild(
    prompts: str | Path,
    out: str | Path,
    *,
    config: str | Path | None = None,
    group: str | None = None,
    models: Sequence[str] = (),
    per_cluster: int = 30,
    allocation: str = "share",
    clusters: int | None = None,
    embedder: str | Embedder = "static",
    grader: str = "exact",
    grader_options: Mapping[str, Any] | None = None,
    judge: str | None = None,
    judge_mode: str = "absolute",
    anchor: str | None = None,
    judge_prompt: str | Path | None = None,
    budget: float | None = None,
    dry_run: bool = False,
    update: bool = False,
    cache_dir: str | Path | None = None,
    skip_invalid: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    call: Mapping[str, Any] | None = None,
    report: bool = True,
) -> BuildResult:
    """:func:`build` for async code."""
    from ..onboarding.graders import make_grader
    from .judges import judge_resolver

    out = Path(out)
    call = dict(call or {})
    if per_cluster < 1:
        raise InputError(f"per_cluster must be >= 1, got {per_cluster}")
    if allocation not in ALLOCATIONS:
        raise InputError(f"allocation must be one of {list(ALLOCATIONS)}, got {allocation!r}")
    if budget is not None and not (math.isfinite(budget) and budget >= 0):
        raise InputError(f"budget must be $ >= 0, got {budget!r}")
    deployments, notes = _deployments(config, group, models, call)
    for d in deployments:
        d.settings.check()
    _check_prices(deployments)
    cache = Path(cache_dir) if cache_dir is not None else out / CACHE
    options = dict(grader_options or {})
    resolve_judge = judge_resolver(config)  # --grader llm_judge: looked up in the config, as --judge is
    judge_obj = None
    reference_grader = None
    if judge is None:
        reference_grader = make_grader(grader, options, judge=resolve_judge)
        item_grader = grader
    else:
        if judge_mode == "pairwise" and anchor not in {d.name for d in deployments}:
            raise InputError(
                f"pairwise judging needs --anchor, one of the profiles {[d.name for d in deployments]}"
            )
        judge_obj = _judge(judge, judge_mode, judge_prompt, config, cache / "judges", call)
        item_grader, options = "llm_judge", {"model": judge, "mode": judge_mode}
        if judge_prompt is not None:
            options["prompt"] = judge_obj.template.text
    grading = f"judge:{judge_mode}:{judge}" if judge else f"reference:{grader}"
    template = None if judge_obj is None else judge_obj.template.digest
    recorded_options = json.loads(json.dumps(options)) if judge is None else None  # as build.json holds them
    verdicts, verdict_mode = (
        (judge_obj, judge_mode)
        if judge_obj is not None
        else _grader_judge(reference_grader, config, cache / "judges")
    )
    if update and (out / META).is_file():
        pairwise_anchor = anchor if judge_mode == "pairwise" else None
        _check_same_grading(out, grading, template, pairwise_anchor, recorded_options)
    log = read_prompt_log(prompts, skip_invalid)
    result = BuildResult(out, log.summary(), len(log.prompts), Counter(log.dropped), notes=list(notes))
    usable = log.prompts if judge is not None else [p for p in log.prompts if p.reference is not None]
    if not usable:
        raise InputError(
            f"{prompts}: no prompt has a reference ('reference' or 'answer'); pass --judge MODEL to grade "
            "the answers with a judge model instead"
        )
    if len(usable) < len(log.prompts):
        result.dropped["no reference (pass --judge to use them)"] += len(log.prompts) - len(usable)
        result.notes.append(
            f"{len(log.prompts) - len(usable)} prompt(s) without a reference are used for clustering only"
        )
    if reference_grader is not None:
        unreadable = _unreadable_references(reference_grader, usable)
        if unreadable:
            first = next(iter(unreadable.values()))
            usable = [p for p in usable if p.line not in unreadable]
            if not usable:
                raise InputError(
                    f"{prompts}: the {grader} grader can read no reference ({first}); choose another --grader"
                )
            result.dropped[f"reference the {grader} grader cannot read"] += len(unreadable)
            result.notes.append(
                f"{len(unreadable)} prompt(s) whose reference the {grader} grader cannot read are used for "
                f"clustering only (first: {first})"
            )
    state_path = out / STATE
    router, fit = await asyncio.to_thread(_fit_or_load, state_path, update, embedder, clusters, seed)
    earlier: list[ValidationItem] = []
    if update and (out / VALIDATION).is_file():
        earlier = load_validation(out / VALIDATION)
    sample = await asyncio.to_thread(
        _sample,
        router,
        fit,
        log,
        usable,
        earlier,
        per_cluster,
        allocation,
        seed,
        item_grader,
        options,
        progress,
    )
    items = sample.items
    if judge is not None:  # earlier items are graded as this run grades (the grading check above)
        items = [replace(item, grader=item_grader, grader_options=options) for item in items]
    result.n_items = len(items)
    result.available, result.sampled = [int(a) for a in sample.available], [int(s) for s in sample.sampled]
    if dry_run:
        result.dry_run = True
        result.estimates = _estimates(deployments, items, cache, verdicts, verdict_mode)
        if budget is not None:
            result.estimates.append(
                f"budget ${budget:g}: each call reserves its estimate first, so a run stops before the "
                "budget, and a rerun with a larger --budget finishes it from the cache"
            )
        return result
    out.mkdir(parents=True, exist_ok=True)
    result.paths["validation"] = save_validation(items, out / VALIDATION)
    spend = Budget(budget)
    jobs = [AnswerJob(d.name, d.settings, d.prices) for d in deployments]
    answers = await collect_answers(jobs, items, cache_dir=cache, budget=spend, progress=progress)
    for a in answers:
        result.calls += a.count("answered")
        result.cached += a.count("cached")
        result.failed += a.count("failed")
        result.unpaid += a.count("unpaid")
    result.spent = spend.spent
    if result.unpaid:
        result.remaining = sum(e.dollars or 0.0 for e in _answer_estimates(deployments, items, cache))
        result.stopped = _resume_hint(budget, result.remaining)
        return result
    usable_answers = []
    for a in answers:
        good = a.count("answered") + a.count("cached")
        if a.stopped:  # a bad key or a dead endpoint: its answers so far are cached, its Ψ would be partial
            result.left_out[a.name] = f"its run stopped after {good} answer(s): {a.stopped}"
        elif good == 0:
            errors = Counter(o.error for o in a.outcomes if o.error)
            result.left_out[a.name] = f"every call failed ({dict(errors.most_common(2))})"
        else:
            usable_answers.append(a)
    if judge_mode == "pairwise" and judge is not None:
        if anchor in result.left_out:
            raise OnboardingError(
                f"the anchor {anchor!r} is left out ({result.left_out[anchor]}): nothing to judge against"
            )
        items = _with_anchor(items, next(a for a in answers if a.name == anchor))
        save_validation(items, out / VALIDATION)
    if verdicts is None:
        scores = {a.name: await _grade_references(items, a, resolve_judge) for a in usable_answers}
    else:
        tally = _JudgeTally()
        with verdicts:
            scores = await _grade_with_judge(verdicts, verdict_mode, items, usable_answers, spend, tally)
        result.judge_calls, result.judge_cached = tally.calls, tally.cached
        result.spent = spend.spent
        if tally.missing:
            result.notes.append(f"verdicts missing (left out of Ψ, not counted wrong): {dict(tally.missing)}")
        if tally.unpaid:
            result.unpaid += tally.unpaid
            result.stopped = _resume_hint(budget, math.nan)
            return result
    for name in list(scores):
        if not np.isfinite(scores[name]).any():
            result.left_out[name] = "no answer could be graded"
            del scores[name]
    if not scores:
        raise OnboardingError(f"no model gave a gradable answer: {result.left_out}; the state is not written")
    costs = {
        a.name: np.array([np.nan if o.cost is None else o.cost for o in a.outcomes], dtype=np.float64)
        for a in usable_answers
        if a.name in scores
    }
    per_request = {}
    prices = {}
    chars = prompt_chars([item.prompt for item in items])
    for name in list(scores):
        graded = np.where(np.isfinite(scores[name]), costs[name], np.nan)
        per_request[name] = traffic_cost(graded, sample.clusters, sample.shares)
        if not math.isfinite(per_request[name]):
            result.left_out[name] = "none of its graded answers has a $ (no usage in the responses?)"
            del scores[name], costs[name], per_request[name]
            continue
        prices[name] = traffic_price(chars, graded, sample.clusters, sample.shares)
    if not scores:
        raise OnboardingError(f"no model could be priced: {result.left_out}; the state is not written")
    result.paths["results"] = _write_results(out / RESULTS, items, scores, costs)
    listed = {d.name for d in deployments}
    result.removed = [m for m in router.models if m not in listed]
    for name in result.removed:
        router.remove_model(name)
    for name in result.left_out:
        if name in router.models:
            result.notes.append(
                f"{name} keeps its earlier profile in the state (this run could not grade it)"
            )
    await asyncio.to_thread(router.add_models, [item.prompt for item in items], scores, prices, True)
    result.models = sorted(scores)
    result.paths["state"] = await asyncio.to_thread(router.save, state_path)
    meta = {
        "prompts": str(prompts),
        "per_cluster": per_cluster,
        "allocation": allocation,
        "seed": seed,
        "grading": grading,
        "anchor": anchor,
        "judge_template": template,
        "grader_options": recorded_options,
        "models": {
            d.name: {"model": d.settings.model, "api_base": d.settings.api_base, "label": d.label}
            for d in deployments
        },
        "cluster_shares": [round(float(w), 6) for w in sample.shares],
        "cost_per_request": per_request,
        "cost_per_char": {name: price.per_char for name, price in prices.items()},
        "sample_mean_cost": {
            name: float(np.nanmean(c[np.isfinite(scores[name])])) for name, c in costs.items()
        },
    }
    result.paths["build"] = out / META
    atomic_write_bytes(out / META, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    if report:
        from ..report import build_report, write_report

        data = await asyncio.to_thread(build_report, router, log.traffic(), result.paths["results"])
        result.points = [_point_line(p) for p in data.points]
        paths = await asyncio.to_thread(write_report, data, out / REPORT)
        result.paths["report"] = paths["html"]
        result.paths["summary"] = paths["summary"]
    return result


def _answer_estimates(
    deployments: Sequence[Deployment], items: Sequence[ValidationItem], cache: Path
) -> list[Any]:
    return [estimate(items, d.settings, None, cache, prices=d.prices) for d in deployments]


def _estimates(
    deployments: Sequence[Deployment], items: Sequence[ValidationItem], cache: Path, judge: Any, mode: str
) -> list[str]:
    """The dry run's lines: per model calls, tokens and $, the judge's, and the total."""
    lines = []
    total = 0.0
    n_calls = 0
    for d, guess in zip(deployments, _answer_estimates(deployments, items, cache), strict=True):
        lines.append(f"{d.name}: {guess.summary()}")
        total += guess.dollars or 0.0
        n_calls += guess.n_items - guess.n_cached
    if judge is not None:
        from .judges import estimate_line

        n_answers = len(items) * (len(deployments) - (mode == "pairwise"))
        line, calls, dollars = estimate_line(judge, [i.messages() for i in items], n_answers)
        lines.append(line)
        total += dollars if math.isfinite(dollars) else 0.0
        n_calls += calls
    lines.append(f"total: ≤ {n_calls} call(s), ≈ ${total:.4f}")
    return lines


def build(prompts: str | Path, out: str | Path, **options: Any) -> BuildResult:
    """Build a router, its validation set and its report from a prompt log and a model list.

    Parameters
    ----------
    prompts : path
        The prompt log (see :mod:`uniroute.build.prompts`).
    out : path
        Directory for the state, validation set, results, report and (by default) the cache.
    config, group : path, str
        A LiteLLM ``config.yaml`` and the model group whose deployments are profiled.
    models : sequence of str
        Instead of a config: LiteLLM model strings, or ``NAME=MODEL``.
    per_cluster : int, default=30
        Sets the sample's size: ``per_cluster`` × K prompts in all.
    allocation : {"share", "per-cluster"}, default="share"
        ``share``: that total split by each cluster's share of the log, at least a
        third of ``per_cluster`` in every cluster; ``per-cluster``: ``per_cluster``
        from every cluster. All of a smaller cluster either way (:mod:`uniroute.build.sampling`).
    clusters : int, optional
        K of the K-means map (default: the map's own, 8).
    embedder : str or Embedder, default="static"
    grader, grader_options
        How answers are scored against the log's references (default ``exact``).
    judge, judge_mode, anchor, judge_prompt
        Grade with a judge model instead (``absolute``, or ``pairwise`` against the
        answers of profile ``anchor``); ``judge`` may name a deployment of ``config``.
    budget : float, optional
        $ this run may spend; it stops before exceeding it, and a rerun resumes.
    dry_run : bool, default=False
        Print calls, tokens and $; call nothing, write nothing.
    update : bool, default=False
        Top up an earlier build in ``out``: same cluster map, new prompts sampled into
        clusters below ``per_cluster``, new models added, models no longer listed removed.
    cache_dir : path, optional
        Where answers and verdicts are cached (default ``out/cache``).
    skip_invalid : bool, default=False
        Drop malformed log lines (counted) instead of failing.
    seed : int, default=0
    progress : bool, optional
    call : mapping, optional
        :class:`~uniroute.onboarding.CallSettings` fields for every model (``concurrency``,
        ``timeout``, ``max_retries``...; with ``models`` also ``api_base``, ``api_key``,
        ``params``).
    report : bool, default=True
        Write the report into ``out/report``.

    Returns
    -------
    BuildResult

    Raises
    ------
    InputError
        Bad arguments, a bad log, an unpriced model, a missing environment variable.
    OnboardingError
        No model could be graded.
    """
    return run_sync(abuild(prompts, out, **options))
