"""Onboard a model: call it on a validation set through LiteLLM, grade, add its Ψ.

Nothing in the router is refitted: the new model's per-cluster error Ψ is
measured from its graded answers and written into the saved state beside the
others (``Router.load -> add_model -> save``, atomic).

How a run behaves:

* calls go through ``litellm.acompletion`` (any LiteLLM model string, an
  ``api_base``, or a deployment of a LiteLLM ``config.yaml``) with at most
  ``concurrency`` in flight and a per-call ``timeout``;
* 429, 408, 5xx, timeouts and connection errors are retried with exponential
  backoff and jitter (``Retry-After`` honoured, capped); other 4xx fail the
  prompt at once; 401/403 stop the run; so does a streak of
  ``max_consecutive_failures`` failed prompts (a dead endpoint);
* a prompt that still fails is *missing* data (NaN, left out of Ψ), never a
  wrong answer; an empty or non-text answer *is* an answer, and is graded;
* every answer is appended to a JSONL cache keyed by model, messages and call
  parameters, so an interrupted run resumes without paying twice and a changed
  prompt is called again; a line cut short by a crash is dropped on reopening;
* Ctrl-C (or any error) before the end leaves the router state untouched and
  the cache kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import re
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..engine.embedders import cache_dir as uniroute_cache_dir
from ..engine.profiles import ModelProfile
from ..engine.router import Router
from ..exceptions import InputError, OnboardingError, UniRouteError
from .graders import Grader, GradingError, make_grader
from .validation import ValidationItem

DEFAULT_OUTPUT_TOKENS = 256


@dataclass
class CallSettings:
    """How to call the model being onboarded.

    Parameters
    ----------
    model : str
        LiteLLM model string, e.g. ``"openai/gpt-4o-mini"`` or
        ``"openai/mistralai/mixtral-8x7b-chat"`` with an ``api_base``.
    api_base, api_key : str, optional
    params : dict
        Other ``litellm.acompletion`` arguments (``temperature``, ``max_tokens``...);
        they are part of the cache key.
    timeout : float, default=60
        Seconds per call.
    max_retries : int, default=4
        Retries of a call after a retryable error (429, 5xx, timeout...).
    backoff, backoff_max : float, default=1, 30
        First retry delay and its cap, in seconds; doubles per retry, with jitter.
    concurrency : int, default=8
        Calls in flight at once.
    max_consecutive_failures : int, default=20
        Stop the run after this many failed prompts in a row.
    """

    model: str
    api_base: str | None = None
    api_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 30.0
    concurrency: int = 8
    max_consecutive_failures: int = 20

    def check(self) -> None:
        """Raise :class:`~uniroute.InputError` on a setting that cannot work."""
        if not isinstance(self.model, str) or not self.model:
            raise InputError(f"model must be a LiteLLM model string, got {self.model!r}")
        if self.concurrency < 1 or self.max_retries < 0 or self.max_consecutive_failures < 1:
            raise InputError("concurrency and max_consecutive_failures must be >= 1, max_retries >= 0")
        if not (self.timeout > 0 and self.backoff >= 0 and self.backoff_max >= 0):
            raise InputError(f"timeout must be > 0 and backoff >= 0, got {self.timeout!r}, {self.backoff!r}")

    def cache_key(self, item: ValidationItem) -> str:
        """Hash of what determines the answer: model, messages and call parameters."""
        payload = {"model": self.model, "messages": item.messages(), "params": self.params}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _env_refs(value: Any) -> Any:
    """Resolve LiteLLM's ``os.environ/NAME`` references in config values."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value[len("os.environ/") :]
        if name not in os.environ:
            raise InputError(f"the config refers to environment variable {name}, which is not set")
        return os.environ[name]
    return value


def settings_from_config(path: str | Path, model_name: str, **overrides: Any) -> CallSettings:
    """The :class:`CallSettings` of deployment ``model_name`` in a LiteLLM ``config.yaml``."""
    import yaml

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read LiteLLM config {path}: {exc}") from exc
    deployments = (config or {}).get("model_list") or []
    names = [d.get("model_name") for d in deployments if isinstance(d, dict)]
    for deployment in deployments:
        if isinstance(deployment, dict) and deployment.get("model_name") == model_name:
            params = {k: _env_refs(v) for k, v in (deployment.get("litellm_params") or {}).items()}
            if "model" not in params:
                raise InputError(f"{path}: deployment {model_name!r} has no litellm_params.model")
            settings = CallSettings(
                model=params.pop("model"),
                api_base=params.pop("api_base", None),
                api_key=params.pop("api_key", None),
            )
            if "timeout" in params:
                settings.timeout = float(params.pop("timeout"))
            settings.params = params
            for key, value in overrides.items():
                if value is not None:
                    setattr(settings, key, value)
            return settings
    raise InputError(f"{path}: no deployment named {model_name!r} in model_list; found {names}")


class ResponseCache:
    """Append-only JSONL store of answers, one ``{"key": ..., ...}`` record a line.

    Opening it reads every complete line; a last line cut short (a crash while
    writing) is cut off the file so appends start on a clean line; an unreadable
    line elsewhere is skipped with a warning.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self.recovered = 0
        self._handle: Any = None

    def __enter__(self) -> ResponseCache:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @staticmethod
    def read(path: Path) -> tuple[dict[str, dict[str, Any]], int]:
        """The records of a cache file and the number of damaged lines, without changing it."""
        records: dict[str, dict[str, Any]] = {}
        bad = 0
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    records[record["key"]] = record
                except (ValueError, KeyError, TypeError):
                    bad += 1
        return records, bad

    def _recover(self) -> None:
        cut = 0
        if self.path.exists():
            data = self.path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                cut = 1
                with self.path.open("r+b") as handle:
                    handle.truncate(end)
        self.records, damaged = self.read(self.path)
        self.recovered = cut + damaged
        if self.recovered:
            warnings.warn(
                f"{self.path}: dropped {self.recovered} damaged line(s) (cut short or unreadable); "
                "those prompts will be called again",
                stacklevel=3,
            )

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def put(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS."""
        self.records[record["key"]] = record
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()


def cache_file(model: str, directory: str | Path | None = None) -> Path:
    """Where the answers of ``model`` are cached (default ``<uniroute cache>/onboarding``)."""
    directory = Path(directory) if directory is not None else uniroute_cache_dir() / "onboarding"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:80]
    return directory / f"{slug}-{hashlib.sha1(model.encode()).hexdigest()[:8]}.jsonl"


def litellm_price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """$ LiteLLM's price list gives for a call, or None if it does not know the model."""
    import litellm

    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:
        return None
    return float(prompt_cost + completion_cost)


@dataclass
class Estimate:
    """What a run would cost (``--dry-run``)."""

    n_items: int
    n_cached: int
    prompt_tokens: int
    completion_tokens: int
    dollars: float | None
    price_source: str

    def summary(self) -> str:
        to_call = self.n_items - self.n_cached
        money = "$ unknown" if self.dollars is None else f"≈ ${self.dollars:.4f}"
        return (
            f"{self.n_items} prompts, {self.n_cached} already cached, {to_call} to call: "
            f"≈ {self.prompt_tokens:,} prompt + ≤ {self.completion_tokens:,} completion tokens, "
            f"{money} ({self.price_source})"
        )


def estimate(
    items: Sequence[ValidationItem],
    settings: CallSettings,
    cost: float | None = None,
    cache_dir: str | Path | None = None,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Estimate:
    """Count the tokens and $ of the calls a run would make (cached answers are free)."""
    import litellm

    cached, _ = ResponseCache.read(cache_file(settings.model, cache_dir))
    todo = [item for item in items if settings.cache_key(item) not in cached]
    per_call_out = int(settings.params.get("max_tokens") or output_tokens)
    prompt_tokens = sum(int(litellm.token_counter(model=settings.model, messages=i.messages())) for i in todo)
    completion_tokens = per_call_out * len(todo)
    if cost is not None:
        dollars: float | None = cost * len(todo)
        source = f"--cost ${cost:g} per request"
    else:
        dollars = litellm_price(settings.model, prompt_tokens, completion_tokens)
        source = (
            f"LiteLLM prices, ≤ {per_call_out} completion tokens a call"
            if dollars is not None
            else f"LiteLLM has no price for {settings.model!r}; pass --cost"
        )
    return Estimate(len(items), len(items) - len(todo), prompt_tokens, completion_tokens, dollars, source)


@dataclass
class Outcome:
    """The result of one validation item."""

    status: str  # "answered", "cached" or "failed"
    score: float = math.nan
    cost: float | None = None
    empty: bool = False
    error: str | None = None


class _Fatal(Exception):
    """An error that no other prompt will escape (bad key, no permission)."""


def _classify(exc: BaseException) -> str:
    """ "fatal", "retry" or "fail" for an exception raised by a LiteLLM call."""
    import litellm

    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return "fatal"
    retryable = (
        asyncio.TimeoutError,
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
    )
    status = getattr(exc, "status_code", None)
    if isinstance(exc, retryable) or status in (408, 409, 429) or (isinstance(status, int) and status >= 500):
        return "retry"
    return "fail"


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None) or {}
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None


def _error_name(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    name = "Timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
    return f"{status} {name}" if isinstance(status, int) else name


def _text_of(response: Any) -> str:
    """The text of a chat completion; "" for none (tool calls only, refusals, no choices)."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _call_cost(response: Any, model: str, fixed: float | None) -> float | None:
    """$ of one call: ``fixed`` if given, else LiteLLM's price of the response or of its usage."""
    if fixed is not None:
        return fixed
    import litellm

    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:
        usage = getattr(response, "usage", None)
        if usage is None:
            return None
        return litellm_price(model, int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))


class _Run:
    """One pass over the validation items (the async part of :func:`onboard`)."""

    def __init__(
        self,
        items: Sequence[ValidationItem],
        settings: CallSettings,
        cache: ResponseCache,
        cost: float | None,
        bar: Any,
    ):
        self.items = items
        self.settings = settings
        self.cache = cache
        self.cost = cost
        self.bar = bar
        self.graders: dict[str, Grader] = {}
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.spent = 0.0
        self.streak = self.failed = self.graded = 0
        self.correct = 0.0

    def grader_for(self, item: ValidationItem) -> Grader:
        key = item.grader + json.dumps(item.grader_options, sort_keys=True, default=str)
        if key not in self.graders:
            self.graders[key] = make_grader(item.grader, item.grader_options)
        return self.graders[key]

    async def grade(self, item: ValidationItem, text: str) -> tuple[float, str | None]:
        grader = self.grader_for(item)
        try:
            if grader.blocking:
                return await asyncio.to_thread(grader.grade, text, item), None
            return grader.grade(text, item), None
        except GradingError as exc:
            return math.nan, f"grading: {exc}"

    async def call(self, item: ValidationItem) -> tuple[Any, str | None]:
        """The completion, or None and the error after the retries."""
        import litellm

        s = self.settings
        extra = {"api_base": s.api_base, "api_key": s.api_key}
        kwargs = {k: v for k, v in extra.items() if v is not None} | s.params
        attempt = 0
        while True:
            try:
                return await asyncio.wait_for(
                    litellm.acompletion(
                        model=s.model, messages=item.messages(), timeout=s.timeout, max_retries=0, **kwargs
                    ),
                    timeout=s.timeout * 1.5 + 5,
                ), None
            except Exception as exc:
                kind = _classify(exc)
                if kind == "fatal":
                    raise _Fatal(f"{_error_name(exc)}: {exc}") from exc
                if kind == "fail" or attempt == s.max_retries:
                    return None, _error_name(exc) + (
                        "" if kind == "fail" else f" after {attempt + 1} attempts"
                    )
                delay = min(s.backoff_max, s.backoff * 2**attempt) * (0.5 + random.random() / 2)
                wait = _retry_after(exc)
                await asyncio.sleep(min(s.backoff_max, wait) if wait is not None else delay)
                attempt += 1

    async def process(
        self, key: str, indices: list[int], semaphore: asyncio.Semaphore
    ) -> list[tuple[int, Outcome]]:
        """Call the model once for items that share a cache key, grade each of them."""
        first = self.items[indices[0]]
        async with semaphore:
            response, error = await self.call(first)
        if response is None:
            return [(i, Outcome("failed", error=error)) for i in indices]
        text = _text_of(response)
        cost = _call_cost(response, self.settings.model, self.cost)
        self.spent += cost or 0.0
        self.cache.put(
            {
                "key": key,
                "model": self.settings.model,
                "id": first.id,
                "response": text,
                "cost": cost,
                "at": round(time.time(), 3),
            }
        )
        return [(i, await self.answered(i, text, cost, "answered")) for i in indices]

    async def answered(self, index: int, text: str, cost: float | None, status: str) -> Outcome:
        score, grade_error = await self.grade(self.items[index], text)
        return Outcome(status, score, cost, not text.strip(), grade_error)

    def record(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        self.streak = self.streak + 1 if outcome.status == "failed" else 0
        self.failed += outcome.status == "failed"
        if not math.isnan(outcome.score):
            self.graded += 1
            self.correct += outcome.score
        accuracy = f"{self.correct / self.graded:.3f}" if self.graded else "-"
        self.bar.set_postfix(acc=accuracy, spent=f"${self.spent:.4f}", failed=self.failed, refresh=False)
        self.bar.update(1)
        if self.streak >= self.settings.max_consecutive_failures:
            raise _Fatal(f"{self.streak} prompts failed in a row, the last with {outcome.error}")

    async def run(self) -> list[Outcome]:
        """Grade cached answers, call the model for the rest; outcomes in item order."""
        pending: dict[str, list[int]] = {}
        for index, item in enumerate(self.items):
            key = self.settings.cache_key(item)
            cached = self.cache.get(key)
            if cached is None:
                pending.setdefault(key, []).append(index)
            else:
                self.record(
                    index,
                    await self.answered(index, cached.get("response") or "", cached.get("cost"), "cached"),
                )
        semaphore = asyncio.Semaphore(self.settings.concurrency)
        tasks = [asyncio.ensure_future(self.process(k, ix, semaphore)) for k, ix in pending.items()]
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
class OnboardResult:
    """What an onboarding run did (returned by :func:`onboard`)."""

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
    table: str

    @property
    def n_graded(self) -> int:
        return int(np.isfinite(self.scores).sum())

    @property
    def accuracy(self) -> float:
        return float(np.nanmean(self.scores)) if self.n_graded else math.nan

    def summary(self) -> str:
        lines = [
            f"{self.name}: {self.n_graded} of {len(self.scores)} prompts graded, "
            f"accuracy {self.accuracy:.3f}; "
            f"{self.n_cached} from the cache, ${self.spent:.4f} spent on calls; "
            f"cost in the router ${self.cost:.6g} per request"
        ]
        if self.n_failed:
            kinds = ", ".join(f"{k}: {n}" for k, n in self.failures.most_common())
            lines.append(
                f"{self.n_failed} prompt(s) failed ({kinds}); they are left out of Ψ (missing, not wrong). "
                "Run again to retry them: the answers so far are cached"
            )
        if self.n_empty:
            lines.append(f"{self.n_empty} answer(s) were empty or not text; graded as given (usually wrong)")
        if self.n_ungraded:
            lines.append(f"{self.n_ungraded} answer(s) could not be graded; left out of Ψ")
        lines.append(f"wrote {self.state_path}")
        return "\n".join(lines)


def psi_table(router: Router, highlight: str) -> str:
    """Per-cluster error Ψ of every model, ``highlight`` first and starred, with its counts."""
    profiles = router.profiles
    order = [highlight, *sorted(n for n in profiles if n != highlight)]
    n_clusters = len(profiles[highlight].counts)
    width = min(40, max(len(n) for n in order) + 2)
    head = f"{'cluster':<{width}}" + "".join(f"{k:>7}" for k in range(n_clusters)) + "    all"
    counts = profiles[highlight].counts
    lines = [
        head,
        f"{'n (new model)':<{width}}" + "".join(f"{c:>7.0f}" for c in counts) + f"{counts.sum():>7.0f}",
    ]
    for name in order:
        p = profiles[name]
        label = ("* " if name == highlight else "  ") + name
        lines.append(
            f"{label[:width]:<{width}}" + "".join(f"{e:>7.3f}" for e in p.errors) + f"{p.global_error:>7.3f}"
        )
    return "\n".join(lines)


def _scores_or_fail(outcomes: Sequence[Outcome], name: str) -> np.ndarray:
    scores = np.array([o.score for o in outcomes], dtype=np.float64)
    if not np.isfinite(scores).any():
        kinds = Counter(o.error for o in outcomes if o.error)
        raise OnboardingError(
            f"no answer of {name!r} could be graded ({dict(kinds.most_common(3))}); "
            "the router state is unchanged"
        )
    return scores


def onboard(
    items: Sequence[ValidationItem],
    router_path: str | Path,
    settings: CallSettings,
    *,
    name: str | None = None,
    cost: float | None = None,
    replace: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
) -> OnboardResult:
    """Run a model over a validation set, grade it and add its Ψ to a saved router.

    Parameters
    ----------
    items : sequence of ValidationItem
        See :func:`~uniroute.onboarding.load_validation`.
    router_path : path
        A state saved by ``Router.save``; rewritten atomically at the end only.
    settings : CallSettings
        How to call the model.
    name : str, optional
        The model's name in the router (default: ``settings.model``).
    cost : float, optional
        $ per request to record. Default: the mean of LiteLLM's per-call costs,
        which needs a model LiteLLM has prices for.
    replace : bool, default=False
        Overwrite the profile of a model already in the router (else refused).
    cache_dir : path, optional
        Where answers are cached (see :func:`cache_file`).
    progress : bool, optional
        Show the progress bar (default: when attached to a terminal).

    Raises
    ------
    InputError
        The name is taken and ``replace`` is False; no price and no ``cost``.
    OnboardingError
        The run stopped (401/403, a streak of failures, nothing gradable); the state is unchanged.
    """
    settings.check()
    name = name or settings.model
    if not items:
        raise InputError("the validation set is empty")
    if cost is not None and not (math.isfinite(cost) and cost >= 0):
        raise InputError(f"cost must be a finite $ per request >= 0, got {cost!r}")
    if name in Router.load(router_path).models and not replace:
        raise InputError(
            f"model {name!r} is already in {router_path}; pass replace=True (CLI: --replace) to re-onboard it"
        )
    if cost is None and litellm_price(settings.model, 1, 1) is None:
        raise InputError(
            f"LiteLLM has no price for {settings.model!r}; pass cost= (CLI: --cost) in $ per request"
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
        run = _Run(items, settings, cache, cost, bar)
        try:
            outcomes = asyncio.run(run.run())
        except _Fatal as exc:
            raise OnboardingError(
                f"stopped: {exc}. The router state is unchanged; answers so far are cached in {path}"
            ) from exc
    scores = _scores_or_fail(outcomes, name)
    call_costs = [o.cost for o in outcomes if o.status != "failed" and o.cost is not None]
    state_cost = cost if cost is not None else float(np.mean(call_costs)) if call_costs else math.nan
    if not math.isfinite(state_cost):
        raise OnboardingError(f"LiteLLM priced none of the calls to {settings.model!r}; pass --cost")
    router = Router.load(router_path)
    profile = router.add_model(name, [item.prompt for item in items], scores, state_cost, replace=replace)
    router.save(router_path)
    return OnboardResult(
        name=name,
        scores=scores,
        n_cached=sum(o.status == "cached" for o in outcomes),
        n_failed=sum(o.status == "failed" for o in outcomes),
        n_empty=sum(o.empty for o in outcomes),
        n_ungraded=sum(o.status != "failed" and o.error is not None for o in outcomes),
        failures=Counter(o.error for o in outcomes if o.status == "failed" and o.error),
        spent=run.spent,
        cost=state_cost,
        profile=profile,
        state_path=Path(router_path),
        table=psi_table(router, name),
    )
