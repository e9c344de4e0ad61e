"""Onboard a model: call it on a validation set, grade, add its Ψ to a saved state.

Nothing in the router is refitted: the new model's per-cluster error Ψ is
measured from its graded answers and written into the saved state beside the
others. The parts live in their own modules: :mod:`.settings` (how to call),
:mod:`.client` (one call with retries), :mod:`.cache` (answers on disk),
:mod:`.pricing` ($), :mod:`.graders` (scores), :mod:`.report` (rendering).

How a run behaves:

* at most ``concurrency`` calls in flight; retries as in :mod:`.client`; a streak
  of ``max_consecutive_failures`` failed prompts stops the run (a dead endpoint);
* a prompt that still fails is *missing* data (NaN, left out of Ψ), never a
  wrong answer; an empty or non-text answer *is* an answer, and is graded;
* every answer is appended to the cache, so an interrupted run resumes without
  paying twice;
* with a :class:`~.pricing.Budget`, each call first reserves a conservative bound
  of its $ and is not made if that could exceed the limit (status ``"unpaid"``);
  several runs (one per deployment, ``uniroute build``) can share one budget and
  one progress bar, and :func:`collect_answers` runs them without grading;
* the model's $ in the state is priced as ``uniroute build`` prices its models
  (:func:`~.pricing.traffic_price`): each graded answer's $, the mean per cluster
  weighted by the cluster's share of the prompts the state's map was fitted on
  (a validation set samples every cluster alike, so a plain mean would not be the
  traffic's), moving with the prompt's length; a fixed ``cost`` is taken as it is;
* the state is written once, at the end, under a lock file beside it
  (``.<state name>.lock``) and after re-reading it, so two runs on one state
  both land; Ctrl-C or any error before that leaves the state untouched;
* :func:`onboard` works in a plain script and inside a running event loop
  (Jupyter); async code can ``await`` :func:`aonboard`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
import warnings
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..exceptions import InputError, OnboardingError
from .cache import ResponseCache, cache_file
from .client import _FatalCallError, complete, response_text
from .graders import GraderSet, JudgeSettings
from .pricing import (
    Budget,
    Prices,
    call_cost,
    litellm_price,
    output_tokens_bound,
    price_tokens,
    prompt_tokens,
    traffic_price,
    usage_of,
)
from .report import psi_table, summary
from .settings import CallSettings
from .validation import ValidationItem, fetched_parts

if TYPE_CHECKING:
    from ..engine.profiles import ModelProfile, Price
    from ..engine.router import Router

LOCK_TIMEOUT = 600.0
T = TypeVar("T")


@dataclass
class Outcome:
    """The result of one validation item."""

    status: str  # "answered", "cached", "failed" or "unpaid" (the budget did not allow the call)
    score: float = math.nan
    cost: float | None = None
    empty: bool = False
    error: str | None = None
    text: str | None = None
    usage: tuple[int, int] | None = None


class _Run:
    """One pass over the items: cached answers taken, the rest called; graded unless ``grade=False``.

    ``prices`` ($ per input and output token) price each call from its usage, and
    re-price cached answers that recorded their usage; ``budget`` is checked before
    each call (see module doc).
    """

    def __init__(
        self,
        items: Sequence[ValidationItem],
        settings: CallSettings,
        cache: ResponseCache,
        cost: float | None,
        bar: Any,
        *,
        grade: bool = True,
        prices: Prices | None = None,
        budget: Budget | None = None,
        graders: GraderSet | None = None,
    ):
        self.items = items
        self.settings = settings
        self.cache = cache
        self.cost = cost
        self.bar = bar
        self.grade = grade
        self.prices = prices
        self.budget = budget
        self.graders = graders or GraderSet()
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.spent = 0.0
        self.largest = 0.0
        self.streak = self.failed = self.graded = 0
        self.correct = 0.0

    def bound(self, item: ValidationItem) -> float:
        """A conservative $ of one call: its prompt tokens and ``max_tokens`` (or 256) at the prices,
        and never less than the dearest call of this run so far."""
        if self.cost is not None:
            return self.cost
        out = output_tokens_bound(self.settings)
        tokens = price_tokens(
            self.settings.model, prompt_tokens(self.settings, item.messages()), out, self.prices
        )
        return max(tokens or 0.0, self.largest)

    async def process(
        self, key: str, indices: list[int], semaphore: asyncio.Semaphore
    ) -> list[tuple[int, Outcome]]:
        """Call the model once for items that share a cache key, grade each of them."""
        first = self.items[indices[0]]
        async with semaphore:
            bound = 0.0
            if self.budget is not None:
                bound = self.bound(first)
                if not self.budget.reserve(bound):
                    return [(i, Outcome("unpaid")) for i in indices]
            try:
                response, error = await complete(self.settings, first.messages())
            except _FatalCallError:  # refused (401/403, no key): not billed
                if self.budget is not None:
                    self.budget.settle(bound, 0.0)
                raise
            except BaseException:  # cancelled in flight (another call stopped the run, Ctrl-C): it may
                if self.budget is not None:  # be billed, so it counts its bound, as an unpriced call does
                    self.budget.settle(bound, None)
                raise
            cost = (
                None if response is None else call_cost(response, self.settings.model, self.cost, self.prices)
            )
            if self.budget is not None:
                self.budget.settle(bound, 0.0 if response is None else cost)
        if response is None:
            return [(i, Outcome("failed", error=error)) for i in indices]
        text = response_text(response)
        usage = usage_of(response)
        self.spent += cost or 0.0
        self.largest = max(self.largest, cost or 0.0)
        self.cache.put(
            {
                "key": key,
                "model": self.settings.model,
                "api_base": self.settings.api_base,
                "id": first.id,
                "response": text,
                "cost": cost,
                "usage": usage,
                "at": round(time.time(), 3),
            }
        )
        return [(i, await self.answered(i, text, cost, "answered", usage)) for i in indices]

    def cached_cost(self, record: dict[str, Any]) -> float | None:
        """A cached answer's $ at today's prices when its usage was recorded, else as recorded."""
        usage = record.get("usage")
        if self.cost is None and self.prices is not None and isinstance(usage, list) and len(usage) == 2:
            return price_tokens(self.settings.model, int(usage[0]), int(usage[1]), self.prices)
        return self.cost if self.cost is not None else record.get("cost")

    async def answered(
        self, index: int, text: str, cost: float | None, status: str, usage: Any = None
    ) -> Outcome:
        if not self.grade:
            return Outcome(status, math.nan, cost, not text.strip(), None, text, usage)
        score, grade_error = await self.graders.grade(text, self.items[index])
        return Outcome(status, score, cost, not text.strip(), grade_error, text, usage)

    def record(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        if outcome.status in ("answered", "failed"):  # only calls say whether the endpoint works
            self.streak = self.streak + 1 if outcome.status == "failed" else 0
        self.failed += outcome.status == "failed"
        if not math.isnan(outcome.score):
            self.graded += 1
            self.correct += outcome.score
        spent = self.budget.spent if self.budget is not None else self.spent
        postfix: dict[str, Any] = {"spent": f"${spent:.4f}", "failed": self.failed}
        if self.grade:
            postfix = {"acc": f"{self.correct / self.graded:.3f}" if self.graded else "-"} | postfix
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)
        if self.streak >= self.settings.max_consecutive_failures:
            raise _FatalCallError(f"{self.streak} prompts failed in a row, the last with {outcome.error}")

    async def from_cache(self, index: int, cached: dict[str, Any]) -> list[tuple[int, Outcome]]:
        """Grade a cached answer (no call to the model; a judge grader may still call the judge)."""
        text, usage = cached.get("response") or "", cached.get("usage")
        return [(index, await self.answered(index, text, self.cached_cost(cached), "cached", usage))]

    async def run(self) -> list[Outcome]:
        """Grade cached answers, call the model for the rest; outcomes in item order.

        Cached answers are graded concurrently with the calls: a judge grader bounds
        its own calls (its ``concurrency``), so a rerun does not judge one at a time.
        """
        pending: dict[str, list[int]] = {}
        cached: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(self.items):
            key = self.settings.cache_key(item)
            hit = self.cache.get(key)
            if hit is None:
                pending.setdefault(key, []).append(index)
            else:
                cached.append((index, hit))
        semaphore = asyncio.Semaphore(self.settings.concurrency)
        tasks = [asyncio.ensure_future(self.from_cache(index, hit)) for index, hit in cached]
        tasks += [asyncio.ensure_future(self.process(k, ix, semaphore)) for k, ix in pending.items()]
        try:
            for future in asyncio.as_completed(tasks):
                for index, outcome in await future:
                    self.record(index, outcome)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return [o for o in self.outcomes if o is not None]


@dataclass
class AnswerJob:
    """One model to collect answers from (:func:`collect_answers`): its name, how to call it, its prices."""

    name: str
    settings: CallSettings
    prices: Prices | None = None
    cost: float | None = None


@dataclass
class Answers:
    """What :func:`collect_answers` got from one model: an outcome per item, in item order.

    ``stopped`` says why the model's run stopped early (401/403, a streak of
    failures); its remaining items are then ``"failed"`` with that reason.
    """

    name: str
    outcomes: list[Outcome]
    stopped: str | None
    cache_path: Path

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


async def collect_answers(
    jobs: Sequence[AnswerJob],
    items: Sequence[ValidationItem],
    *,
    cache_dir: str | Path | None = None,
    budget: Budget | None = None,
    progress: bool | None = None,
    desc: str = "answers",
) -> list[Answers]:
    """Answers of several models on the same items, ungraded; the models are called concurrently.

    Each model keeps its own ``concurrency`` and retry policy; all share one
    ``budget`` and one progress bar (with the running $). A model whose run stops
    (a bad key, a dead endpoint) does not stop the others. Answers are cached as
    in :func:`onboard`, so a second call pays only for what is missing.
    """
    from contextlib import ExitStack

    from tqdm.auto import tqdm

    for job in jobs:
        job.settings.check()
    with ExitStack() as stack:
        caches: dict[Path, ResponseCache] = {}
        for job in jobs:
            path = cache_file(job.settings.model, cache_dir)
            if path not in caches:
                caches[path] = stack.enter_context(ResponseCache(path))
        bar = stack.enter_context(
            tqdm(
                total=len(items) * len(jobs),
                desc=desc,
                unit="call",
                disable=None if progress is None else not progress,
            )
        )
        runs = [
            _Run(
                items,
                job.settings,
                caches[cache_file(job.settings.model, cache_dir)],
                job.cost,
                bar,
                grade=False,
                prices=job.prices,
                budget=budget,
            )
            for job in jobs
        ]

        async def one(run: _Run) -> str | None:
            try:
                await run.run()
            except _FatalCallError as exc:
                return str(exc)
            return None

        stops = await asyncio.gather(*(one(run) for run in runs))
    results = []
    for job, run, stopped in zip(jobs, runs, stops, strict=True):
        outcomes = [o or Outcome("failed", error=f"stopped: {stopped}") for o in run.outcomes]
        results.append(Answers(job.name, outcomes, stopped, cache_file(job.settings.model, cache_dir)))
    return results


@dataclass
class OnboardResult:
    """What an onboarding run did (returned by :func:`onboard`; rendered by :mod:`.report`).

    ``scores`` holds one score per validation item (NaN: failed or not graded);
    ``n_failed`` items got no answer (their errors counted in ``failures``), ``n_empty``
    answers were empty or not text, ``n_ungraded`` answers could not be graded.
    ``spent`` is the $ the calls of this run cost, ``cost`` the new profile's $ per
    request. ``profiles`` are every model's profiles in the state as written, the new one
    included.
    """

    name: str
    scores: np.ndarray
    n_cached: int
    n_failed: int
    n_empty: int
    n_ungraded: int
    failures: Counter[str]
    spent: float
    cost: float
    profile: ModelProfile
    state_path: Path
    profiles: dict[str, ModelProfile]
    n_maps: int = 1
    """The maps the state's cluster map averages (``KMeansClusterMap.n_maps_``)."""

    @property
    def n_graded(self) -> int:
        """Items with a score (not NaN)."""
        return int(np.isfinite(self.scores).sum())

    @property
    def accuracy(self) -> float:
        """Mean score over the graded items (NaN when none was graded)."""
        return float(np.nanmean(self.scores)) if self.n_graded else math.nan

    @property
    def table(self) -> str:
        """The per-cluster Ψ table (:func:`.report.psi_table`)."""
        return psi_table(self.profiles, self.name, self.n_maps)

    def summary(self, rerun: str | None = None) -> str:
        """A few lines on what the run did (:func:`.report.summary`)."""
        return summary(self, rerun)


def _scores_or_fail(outcomes: Sequence[Outcome], name: str) -> np.ndarray:
    scores = np.array([o.score for o in outcomes], dtype=np.float64)
    if not np.isfinite(scores).any():
        kinds = Counter(o.error for o in outcomes if o.error)
        raise OnboardingError(
            f"no answer of {name!r} could be graded ({dict(kinds.most_common(3))}); "
            "the router state is unchanged"
        )
    return scores


def _lock_path(state_path: Path) -> Path:
    """``.<name>.lock`` beside the state (not inside: a ``.npz`` state is one file)."""
    resolved = state_path.resolve()
    return resolved.parent / f".{resolved.name}.lock"


def _write_profile(
    state_path: Path,
    name: str,
    items: Sequence[ValidationItem],
    scores: np.ndarray,
    cost: float | np.ndarray,
    replace: bool,
) -> tuple[ModelProfile, Router]:
    """Add the model to the state *as it is now* (re-read under the lock), and save it atomically.

    ``cost``: one $ per request, or each item's $ (NaN: none), priced by :func:`_traffic_price`.
    """
    from filelock import FileLock, Timeout

    from ..engine.router import Router

    lock = FileLock(_lock_path(state_path), timeout=LOCK_TIMEOUT)
    try:
        with lock:
            router = Router.load(state_path)
            if name in router.models and not replace:
                raise InputError(
                    f"model {name!r} was added to {state_path} while this run was calling it; pass "
                    "replace=True (CLI: --replace) to overwrite it (the answers are cached)"
                )
            prompts = [item.prompt for item in items]
            price = cost if np.ndim(cost) == 0 else _traffic_price(router, prompts, np.asarray(cost))
            (profile,) = router.add_models(prompts, {name: scores}, {name: price}, replace, progress=False)
            router.save(state_path)
    except Timeout as exc:
        raise OnboardingError(
            f"another process has held {lock.lock_file} for {LOCK_TIMEOUT:.0f} s; the state is unchanged "
            "and the answers are cached: run again when it is done"
        ) from exc
    return profile, router


def _traffic_price(router: Router, prompts: list[Any], costs: np.ndarray) -> Price:
    """The :class:`~uniroute.Price` of per-item $ on the traffic the state's map was fitted on: each
    item in its most likely cluster (Φ as routing takes the prompt: one with no text on the prior),
    clusters weighed by their share (as ``uniroute build`` does)."""
    from ..engine.text import prompt_chars

    clusters = router._phi_of(prompts)[0].argmax(axis=1)
    shares = np.asarray(router.cluster_map_.cluster_weights_, dtype=np.float64)
    return traffic_price(prompt_chars(prompts), costs, clusters, shares)


def _check_arguments(
    items: Sequence[ValidationItem],
    state_path: Path,
    settings: CallSettings,
    name: str,
    cost: float | None,
    replace: bool,
    graders: GraderSet,
    priced: bool = True,
    prices: Prices | None = None,
) -> None:
    """Refuse, before any call, what would stop the run; ``priced=False`` (a dry run) lets an
    unpriced model through, since the estimate itself says to pass a cost. ``prices``: the
    deployment's own $ per token (then LiteLLM need not know the model)."""
    from ..engine.router import Router

    settings.check()
    if not items:
        raise InputError("the validation set is empty")
    if cost is not None and not (math.isfinite(cost) and cost >= 0):
        raise InputError(f"cost must be a finite $ per request >= 0, got {cost!r}")
    if name in Router.load(state_path).models and not replace:
        raise InputError(
            f"model {name!r} is already in {state_path}; pass replace=True (CLI: --replace) to re-onboard it"
        )
    if priced and cost is None and prices is None and litellm_price(settings.model, 1, 1) is None:
        raise InputError(
            f"LiteLLM has no price for {settings.model!r}; pass cost= (CLI: --cost) in $ per request, "
            "or prices= (CLI: input_cost_per_token and output_cost_per_token in the --config deployment)"
        )
    for item in items:
        fetched = fetched_parts(item.messages())
        if fetched:
            raise InputError(
                f"validation item {item.id!r}: its messages hold {fetched[0]}; give text (and images as "
                "data: URLs) only, since anything else can make LiteLLM or the provider fetch a URL"
            )
    graders.prepare(items)


async def aonboard(
    items: Sequence[ValidationItem],
    state: str | Path,
    settings: CallSettings,
    *,
    name: str | None = None,
    cost: float | None = None,
    replace: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    judge: JudgeSettings | None = None,
    prices: Prices | None = None,
) -> OnboardResult:
    """:func:`onboard` for async code (``await aonboard(...)``); file and state work runs in threads."""
    from tqdm.auto import tqdm

    state_path = Path(state)
    name = name or settings.model
    graders = GraderSet(judge)
    await asyncio.to_thread(
        _check_arguments, items, state_path, settings, name, cost, replace, graders, True, prices
    )
    path = cache_file(settings.model, cache_dir)
    with (
        ResponseCache(path) as cache,
        tqdm(
            total=len(items),
            desc=f"onboarding {name}",
            unit="prompt",
            disable=None if progress is None else not progress,
        ) as bar,
    ):
        run = _Run(items, settings, cache, cost, bar, graders=graders, prices=prices)
        try:
            outcomes = await run.run()
        except _FatalCallError as exc:
            raise OnboardingError(
                f"stopped: {exc}. The router state is unchanged; answers so far are cached in {path}: "
                "fix the cause and run the same command again, cached answers are not called twice"
            ) from exc
        finally:
            graders.close()
    scores = _scores_or_fail(outcomes, name)
    costs = np.array([math.nan if o.cost is None else o.cost for o in outcomes], dtype=np.float64)
    graded_costs = np.where(np.isfinite(scores), costs, math.nan)  # as a build prices its models
    if cost is None and not np.isfinite(graded_costs).any():
        raise OnboardingError(
            f"none of the graded answers of {settings.model!r} could be priced; pass --cost"
        )
    profile, router = await asyncio.to_thread(
        _write_profile, state_path, name, items, scores, graded_costs if cost is None else cost, replace
    )
    return OnboardResult(
        name=name,
        scores=scores,
        n_cached=sum(o.status == "cached" for o in outcomes),
        n_failed=sum(o.status == "failed" for o in outcomes),
        n_empty=sum(o.empty for o in outcomes),
        n_ungraded=sum(o.status != "failed" and o.error is not None for o in outcomes),
        failures=Counter(o.error for o in outcomes if o.status == "failed" and o.error),
        spent=run.spent,
        cost=profile.cost,
        profile=profile,
        state_path=state_path,
        profiles=dict(router.profiles),
        n_maps=getattr(router.cluster_map_, "n_maps_", 1),
    )


def onboard(
    items: Sequence[ValidationItem],
    state: str | Path | None = None,
    settings: CallSettings | None = None,
    *,
    name: str | None = None,
    cost: float | None = None,
    replace: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    router_path: str | Path | None = None,
    judge: JudgeSettings | None = None,
    prices: Prices | None = None,
) -> OnboardResult:
    """Run a model over a validation set, grade it and add its Ψ to a saved state.

    Parameters
    ----------
    items : sequence of ValidationItem
        See :func:`~uniroute.onboarding.load_validation`.
    state : path
        A state saved by ``Router.save``; re-read and rewritten atomically at the
        end only, under a lock file beside it.
    settings : CallSettings
        How to call the model.
    name : str, optional
        The model's name in the router (default: ``settings.model``).
    cost : float, optional
        $ per request to record. Default: the graded answers' $ (at ``prices``, else
        LiteLLM's), priced on the traffic as ``uniroute build`` prices its models: the
        mean per cluster weighted by the cluster's share of the prompts the state's map
        was fitted on, moving with the prompt's length.
    replace : bool, default=False
        Overwrite the profile of a model already in the router (else refused).
    cache_dir : path, optional
        Where answers are cached (see :func:`~uniroute.onboarding.cache.cache_file`).
    progress : bool, optional
        Show the progress bar (default: when attached to a terminal).
    router_path : path, optional
        Deprecated name of ``state``.
    judge : callable, optional
        ``judge(model) -> CallSettings``: how to call the judge model an ``llm_judge``
        item names (its endpoint, key, parameters), which a validation file may not
        say. Default: the model string as it is, with LiteLLM's own endpoint and
        keys. ``uniroute onboard --judge-config`` passes
        ``lambda m: judge_settings(m, config)[0]`` (:func:`uniroute.build.judges.judge_settings`).
    prices : (float, float), optional
        The model's own $ per input and output token (a LiteLLM config's
        ``input_cost_per_token`` / ``output_cost_per_token``); default: LiteLLM's price map.
        ``uniroute onboard --config`` passes the deployment's, as ``uniroute build`` does
        (:func:`uniroute.build.models.config_deployment`).

    Raises
    ------
    InputError
        The name is taken and ``replace`` is False; no price, no ``prices`` and no ``cost``; an item's grader
        option a file may not set (an ``llm_judge`` endpoint or key).
    OnboardingError
        The run stopped (401/403, a streak of failures, nothing gradable); the state is unchanged.

    Notes
    -----
    Inside a running event loop (Jupyter) the run goes to a worker thread with
    its own loop; async code can ``await`` :func:`aonboard` instead.
    """
    if router_path is not None:
        warnings.warn("onboard(router_path=...) is deprecated; pass state=", DeprecationWarning, stacklevel=2)
        state = state if state is not None else router_path
    if state is None or settings is None:
        raise InputError("onboard needs the state path and the CallSettings of the model")
    coroutine = aonboard(
        items,
        state,
        settings,
        name=name,
        cost=cost,
        replace=replace,
        cache_dir=cache_dir,
        progress=progress,
        judge=judge,
        prices=prices,
    )
    return run_sync(coroutine)


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code; inside a running event loop (Jupyter), on a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="uniroute-run") as pool:
        return pool.submit(asyncio.run, coroutine).result()


_MOVED = {
    "settings_from_config": "settings",
    "estimate": "pricing",
    "Estimate": "pricing",
    "DEFAULT_OUTPUT_TOKENS": "pricing",
}


def __getattr__(name: str) -> Any:
    """Names that moved out of this module keep working, with a DeprecationWarning."""
    if name in _MOVED:
        import importlib

        module = f"{__package__}.{_MOVED[name]}"
        warnings.warn(
            f"uniroute.onboarding.runner.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
