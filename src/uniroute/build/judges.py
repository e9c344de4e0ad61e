"""LLM judges: grading answers when the log has no labels (``uniroute build --judge``).

Two judges, registered in :data:`JUDGES` (the CLI's choices):

``absolute`` (:class:`AbsoluteJudge`)
    The judge rates one answer on a 1-10 rubric (correctness, then completeness,
    then clarity; a reference answer is shown when there is one) and ends its
    reply with ``SCORE: <1-10>``; the score is mapped to [0, 1] as
    ``(score - 1) / 9``.
``pairwise`` (:class:`PairwiseJudge`)
    The judge compares the answer with an anchor model's answer to the same
    prompt and ends with ``VERDICT: A``, ``B`` or ``TIE``. It is asked in both
    orders (the answer shown first, then second) to cancel position bias; each
    order scores the answer 1 (win), 0.5 (tie) or 0 (loss) and the verdict is
    their mean. The score is therefore relative to the anchor: an answer equal
    to the anchor's (the anchor model itself, or a model that answered the
    same text) scores 0.5 without a call, so the anchor's own Ψ is 0.5 in every
    cluster and a model better than the anchor on a cluster scores above it.

What a judge does not decide is *missing*, never wrong: a failed call (after the
retries of :func:`uniroute.onboarding.client.complete`), a reply without a
readable verdict line, or, for the pairwise judge, either order missing gives
``Verdict(score=None, detail=<why>)``. Only a call no other call would escape
(401/403, no API key) raises, as in onboarding.

The templates are package data (``judge_prompts/absolute-v1.txt``,
``pairwise-v1.txt``); a user file replaces them (``template=``, CLI
``--judge-prompt FILE``) and is checked for its placeholders. Verdicts are cached
on disk like answers (:class:`~uniroute.onboarding.cache.ResponseCache`, one
file per judge model under ``<uniroute cache>/judges`` unless ``cache_dir``),
one record per judge call, keyed by the judge kind, the template's name and
digest, and :meth:`~uniroute.onboarding.CallSettings.cache_key` of the judge's
messages (model, endpoint, parameters, the prompt and the answers): an edited
template or another judge model never reuses old verdicts, and the raw reply is
kept so it is re-read by the current parser. Judges are called with
``temperature=0`` unless the settings say otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import string
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.text import prompt_text
from ..exceptions import InputError
from ..onboarding.cache import ResponseCache, cache_file
from ..onboarding.client import complete, response_text
from ..onboarding.pricing import Prices, call_cost, output_tokens_bound, price_tokens, prompt_tokens
from ..onboarding.settings import CallSettings, read_model_list
from .models import config_deployment

if TYPE_CHECKING:
    from ..onboarding.graders import JudgeSettings

__all__ = [
    "JUDGES",
    "AbsoluteJudge",
    "CorrectnessJudge",
    "JudgeTemplate",
    "PairwiseJudge",
    "Verdict",
    "estimate_line",
    "judge_resolver",
    "judge_settings",
    "read_correct",
    "read_preference",
    "read_score",
]


@dataclass(frozen=True)
class Verdict:
    """What a judge said about one answer.

    Attributes
    ----------
    score : float or None
        In [0, 1]; None when the judge gave no usable verdict (missing, not wrong).
    calls : int
        Judge calls made for this verdict (0 when it came from the cache or
        needed no call); a call retried after an error counts once.
    cost : float
        $ spent on those calls (NaN if LiteLLM cannot price the judge: pass ``cost=``).
    cached : bool
        Every judge reply came from the cache.
    detail : str
        The verdict as read (``"SCORE 7 of 1-10"``) or why there is none.
    """

    score: float | None
    calls: int
    cost: float
    cached: bool
    detail: str


@dataclass(frozen=True)
class JudgeTemplate:
    """A judge prompt: its name (version) and text, with ``{placeholder}`` fields."""

    name: str
    text: str

    @property
    def digest(self) -> str:
        """Hash of the text; part of the verdict cache key."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @classmethod
    def packaged(cls, name: str) -> JudgeTemplate:
        """A template shipped in ``uniroute/build/judge_prompts/`` (``name`` without ``.txt``)."""
        text = resources.files(__package__).joinpath(f"judge_prompts/{name}.txt").read_text("utf-8")
        return cls(name, text)

    @classmethod
    def from_file(cls, path: str | Path) -> JudgeTemplate:
        """A user's template file (UTF-8 text)."""
        path = Path(path)
        try:
            return cls(path.name, path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read judge prompt {path}: {exc}") from exc

    def check(self, allowed: Sequence[str], required: Sequence[str]) -> None:
        """Raise :class:`~uniroute.InputError` on an unknown, formatted or missing required placeholder."""
        hint = (
            f"a judge prompt may use {', '.join('{' + f + '}' for f in allowed)} "
            f"(required: {', '.join('{' + f + '}' for f in required)}); write literal braces as {{{{ and }}}}"
        )
        try:
            parsed = [
                (f, spec, conv) for _, f, spec, conv in string.Formatter().parse(self.text) if f is not None
            ]
        except ValueError as exc:
            raise InputError(f"judge prompt {self.name}: {exc}; {hint}") from exc
        fields = {f for f, _, _ in parsed}
        unknown = sorted(fields - set(allowed))
        if unknown:
            shown = ", ".join("{" + f + "}" for f in unknown)
            raise InputError(f"judge prompt {self.name}: unknown placeholder(s) {shown}; {hint}")
        # "{response:>999999999}" or "{response:{reference.__class__}}" would pass a names-only check:
        # a template (which a validation file may give) has plain placeholders, nothing else.
        dressed = [
            "{" + f + ("!" + conv if conv else "") + (":" + spec if spec else "") + "}"
            for f, spec, conv in parsed
            if spec or conv
        ]
        if dressed:
            raise InputError(
                f"judge prompt {self.name}: placeholder(s) {', '.join(dressed)} carry a conversion or "
                f"format spec; write each as a bare name; {hint}"
            )
        missing = [f for f in required if f not in fields]
        if missing:
            shown = ", ".join("{" + f + "}" for f in missing)
            raise InputError(f"judge prompt {self.name}: missing placeholder(s) {shown}; {hint}")

    def render(self, **fields: str) -> str:
        return self.text.format(**fields)


_SCORE = re.compile(r"SCORE[*_`\s]*[:=][*_`\s]*(\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?", re.IGNORECASE)
_PREFERENCE = re.compile(r"VERDICT[*_`\s]*[:=][*_`\s\[(]*(?:answer\s+)?(TIE|A|B)(?![A-Za-z])", re.IGNORECASE)
_CORRECT = re.compile(r"\b(INCORRECT|CORRECT)\b")


def _tail(reply: str) -> str:
    return repr(reply.strip()[-100:])


def read_score(reply: str, low: int = 1, high: int = 10) -> tuple[float | None, str]:
    """The last ``SCORE: n`` of a reply mapped to [0, 1], or None; and what was read."""
    found = _SCORE.findall(reply)
    if not found:
        return None, f"no 'SCORE: <{low}-{high}>' line in the judge's reply (ends {_tail(reply)})"
    value, scale = found[-1]
    number = float(value)
    if scale and int(scale) != high:
        return None, f"the judge scored {value}/{scale}, not on the {low}-{high} scale asked for"
    if not low <= number <= high:
        return None, f"the judge's score {value} is outside {low}-{high}"
    return (number - low) / (high - low), f"SCORE {value} of {low}-{high}"


def read_preference(reply: str) -> str | None:
    """``"A"``, ``"B"`` or ``"TIE"`` from the last ``VERDICT:`` line of a reply, or None."""
    found = _PREFERENCE.findall(reply)
    return found[-1].upper() if found else None


def read_correct(reply: str) -> tuple[float | None, str]:
    """1.0 for CORRECT, 0.0 for INCORRECT (the first one said), or None."""
    found = _CORRECT.search(reply.upper())
    if found is None:
        return None, f"the judge said neither CORRECT nor INCORRECT (ends {_tail(reply)})"
    return float(found.group(1) == "CORRECT"), found.group(1)


@dataclass(frozen=True)
class _Reply:
    """One judge call's outcome: the reply text (None if the call failed)."""

    text: str | None
    calls: int
    cost: float
    cached: bool
    error: str | None = None


class _Judge:
    """Template, cache and calling shared by the judges."""

    kind: ClassVar[str]
    default_template: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]
    required: ClassVar[tuple[str, ...]]
    calls_per_answer: ClassVar[int] = 1
    answers_per_call: ClassVar[int] = 1

    def __init__(
        self,
        settings: CallSettings,
        template: str | Path | JudgeTemplate | None = None,
        cache_dir: str | Path | None = None,
        *,
        cost: float | None = None,
        prices: Prices | None = None,
    ):
        settings.check()
        if cost is not None and not cost >= 0:
            raise InputError(f"cost must be $ per judge call >= 0, got {cost!r}")
        if prices is not None and not (len(prices) == 2 and all(p >= 0 for p in prices)):
            raise InputError(f"prices must be ($ per input token, $ per output token) >= 0, got {prices!r}")
        self.settings = replace(settings, params={"temperature": 0, **settings.params})
        if isinstance(template, JudgeTemplate):
            self.template = template
        elif template is None:
            self.template = JudgeTemplate.packaged(self.default_template)
        else:
            self.template = JudgeTemplate.from_file(template)
        self.template.check(self.fields, self.required)
        self.cache_dir = cache_dir
        self.cost = cost
        self.prices = prices
        self._cache: ResponseCache | None = None
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def cache_path(self) -> Path:
        """The verdict cache file of this judge model."""
        if self.cache_dir is None:
            from ..engine.embedders import cache_dir

            return cache_file(f"judge:{self.settings.model}", cache_dir() / "judges")
        return cache_file(f"judge:{self.settings.model}", self.cache_dir)

    def close(self) -> None:
        """Close the cache file (reopened on the next verdict)."""
        if self._cache is not None:
            self._cache.__exit__()
            self._cache = None

    def __enter__(self) -> _Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, content: str) -> str:
        messages = [{"role": "user", "content": content}]
        payload = [self.kind, self.template.name, self.template.digest, self.settings.cache_key(messages)]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()

    def _open(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(self.cache_path).__enter__()
        return self._cache

    def _contents(self, prompt_messages: Any, response: str, other: Any) -> list[str]:
        """The judge prompts :meth:`agrade` sends for this answer (``other``: reference or anchor answer)."""
        raise NotImplementedError

    def is_cached(
        self, prompt_messages: Sequence[Mapping[str, Any]] | str, response: str, other: Any = None
    ) -> bool:
        """Whether :meth:`agrade` would make no call (every reply cached, or none needed).

        ``other`` is the reference (absolute) or the anchor's answer (pairwise).
        """
        cache = self._open()
        return all(
            cache.get(self._key(c)) is not None for c in self._contents(prompt_messages, response, other)
        )

    def _limit(self) -> asyncio.Semaphore:
        """``settings.concurrency`` judge calls in flight, per event loop."""
        loop = asyncio.get_running_loop()
        if loop not in self._limits:
            self._limits[loop] = asyncio.Semaphore(self.settings.concurrency)
        return self._limits[loop]

    async def _ask(self, content: str) -> _Reply:
        """The judge's reply to ``content``, from the cache or from one call (with retries)."""
        key = self._key(content)
        cache = self._open()
        hit = cache.get(key)
        if hit is not None:
            return _Reply(hit.get("response") or "", 0, 0.0, True)
        async with self._limit():
            response, error = await complete(self.settings, [{"role": "user", "content": content}])
        if response is None:
            return _Reply(None, 1, 0.0, False, error)
        text = response_text(response)
        cost = call_cost(response, self.settings.model, self.cost, self.prices)
        cache.put(
            {
                "key": key,
                "judge": self.kind,
                "template": f"{self.template.name}@{self.template.digest}",
                "model": self.settings.model,
                "response": text,
                "cost": cost,
                "at": round(time.time(), 3),
            }
        )
        return _Reply(text, 1, math.nan if cost is None else cost, False)

    def estimate(
        self,
        n: int,
        mean_prompt_tokens: float,
        mean_response_tokens: float,
        mean_reference_tokens: float = 0.0,
        prices: Prices | None = None,
    ) -> tuple[int, int, float]:
        """``(calls, tokens, $)`` of judging ``n`` answers, none cached (what a dry run prints).

        Tokens are the template's, the prompt's, the answers' (and the
        reference's) plus ``max_tokens`` (else 256) of reply a call; $ from
        ``cost=``, ``prices`` (else the judge's ``prices=``) or LiteLLM's prices,
        NaN if none knows the judge.
        """
        empty = self.template.render(**dict.fromkeys(self.fields, ""))
        fixed = prompt_tokens(self.settings, [{"role": "user", "content": empty}])
        calls = int(n) * self.calls_per_answer
        per_call = (
            fixed + mean_prompt_tokens + self.answers_per_call * mean_response_tokens + mean_reference_tokens
        )
        tokens_in = round(calls * per_call)
        tokens_out = calls * output_tokens_bound(self.settings)
        if self.cost is not None:
            dollars: float | None = self.cost * calls
        else:
            dollars = price_tokens(self.settings.model, tokens_in, tokens_out, prices or self.prices)
        return calls, tokens_in + tokens_out, math.nan if dollars is None else dollars


def estimate_line(
    judge: _Judge, messages: Sequence[Any], n_answers: int, prices: Prices | None = None
) -> tuple[str, int, float]:
    """A dry run's line for judging ``n_answers`` answers to prompts like ``messages``; also (calls, $).

    Answers are assumed as long as the judge's ``max_tokens`` (else 256); cached
    verdicts are not subtracted; ``prices`` as in :meth:`_Judge.estimate`.
    ``uniroute build`` and ``uniroute onboard`` print it.
    """
    sizes = [prompt_tokens(judge.settings, m) for m in messages]
    mean_prompt = sum(sizes) / len(sizes) if sizes else 0.0
    response = int(judge.settings.params.get("max_tokens") or 256)
    calls, tokens, dollars = judge.estimate(n_answers, mean_prompt, response, prices=prices)
    line = (
        f"judge {judge.settings.model} ({judge.kind}): ≤ {calls} call(s), ≈ {tokens:,} tokens, "
        + (f"≈ ${dollars:.4f}" if math.isfinite(dollars) else "$ unknown")
        + " (cached verdicts are free; answers assumed as long as max_tokens)"
    )
    return line, calls, dollars


def _reference_text(reference: Any) -> str:
    if reference is None:
        return "(none given: judge the answer on its own)"
    if isinstance(reference, list):
        return "any of: " + "; ".join(map(str, reference))
    return reference if isinstance(reference, str) else json.dumps(reference, ensure_ascii=False)


class AbsoluteJudge(_Judge):
    """Rates one answer on the template's rubric; the score mapped to [0, 1] (see module doc).

    Parameters
    ----------
    settings : CallSettings
        How to call the judge model (retries, timeout, concurrency as in onboarding).
    template : str or Path, optional
        A judge prompt file with ``{prompt}``, ``{response}`` and optionally
        ``{reference}``, asking for a final ``SCORE: <1-10>`` line. Default: the
        packaged ``absolute-v1``.
    cache_dir : str or Path, optional
        Where verdicts are cached. Default ``<uniroute cache>/judges``.
    cost : float, optional
        $ per judge call.
    prices : (float, float), optional
        $ per input and per output token (a config deployment's
        ``input_cost_per_token`` / ``output_cost_per_token``), applied to each
        call's usage. Default (neither given): LiteLLM's price of each call.

    Examples
    --------
    >>> judge = AbsoluteJudge(CallSettings("openai/gpt-4o-mini"))  # doctest: +SKIP
    >>> await judge.agrade([{"role": "user", "content": "2+2?"}], "4", reference="4")  # doctest: +SKIP
    Verdict(score=1.0, calls=1, cost=2.1e-05, cached=False, detail='SCORE 10 of 1-10')
    """

    kind = "absolute"
    default_template = "absolute-v1"
    fields = ("prompt", "response", "reference")
    required = ("prompt", "response")

    def read(self, reply: str) -> tuple[float | None, str]:
        """The score in a judge's reply, and what was read."""
        return read_score(reply)

    def _contents(self, prompt_messages: Any, response: str, other: Any) -> list[str]:
        text = prompt_text(prompt_messages)
        return [self.template.render(prompt=text, response=response, reference=_reference_text(other))]

    async def agrade(
        self, prompt_messages: Sequence[Mapping[str, Any]] | str, response: str, reference: Any = None
    ) -> Verdict:
        """The judge's verdict on ``response`` to the prompt (against ``reference`` when given)."""
        reply = await self._ask(self._contents(prompt_messages, response, reference)[0])
        if reply.text is None:
            return Verdict(None, reply.calls, reply.cost, False, f"judge call failed: {reply.error}")
        score, detail = self.read(reply.text)
        return Verdict(score, reply.calls, reply.cost, reply.cached, detail)


class CorrectnessJudge(AbsoluteJudge):
    """An absolute judge whose template asks for CORRECT or INCORRECT (1 or 0).

    The ``llm_judge`` grader of :mod:`uniroute.onboarding.graders` is this judge.
    """

    kind = "correct"
    default_template = "correct-v1"

    def read(self, reply: str) -> tuple[float | None, str]:
        return read_correct(reply)


_WIN = {"A": 1.0, "TIE": 0.5, "B": 0.0}


class PairwiseJudge(_Judge):
    """Compares an answer with an anchor model's, in both orders; ties 0.5 (see module doc).

    Parameters
    ----------
    settings : CallSettings
    template : str or Path, optional
        A judge prompt file with ``{prompt}``, ``{answer_a}`` and ``{answer_b}``,
        asking for a final ``VERDICT: A|B|TIE`` line. Default: ``pairwise-v1``.
    cache_dir : str or Path, optional
    cost, prices : optional
        As for :class:`AbsoluteJudge`.
    """

    kind = "pairwise"
    default_template = "pairwise-v1"
    fields = ("prompt", "answer_a", "answer_b")
    required = fields
    calls_per_answer = 2
    answers_per_call = 2

    def _contents(self, prompt_messages: Any, response: str, other: Any) -> list[str]:
        """The answer shown first, then the anchor's first; none when they are the same text."""
        if response.strip() == str(other).strip():
            return []
        text = prompt_text(prompt_messages)
        return [
            self.template.render(prompt=text, answer_a=response, answer_b=other),
            self.template.render(prompt=text, answer_a=other, answer_b=response),
        ]

    async def agrade(
        self, prompt_messages: Sequence[Mapping[str, Any]] | str, response: str, anchor_response: str
    ) -> Verdict:
        """Mean of the two orders' scores of ``response`` against ``anchor_response``."""
        contents = self._contents(prompt_messages, response, anchor_response)
        if not contents:
            return Verdict(0.5, 0, 0.0, False, "the anchor's answer itself: a tie by definition, no call")
        first, second = await asyncio.gather(*map(self._ask, contents))
        calls = first.calls + second.calls
        cost = first.cost + second.cost
        cached = first.cached and second.cached
        scores: list[float] = []
        notes: list[str] = []
        for order, reply, shown_first in (("answer first", first, True), ("anchor first", second, False)):
            if reply.text is None:
                notes.append(f"{order}: judge call failed: {reply.error}")
                continue
            said = read_preference(reply.text)
            if said is None:
                notes.append(f"{order}: no 'VERDICT: A|B|TIE' line (ends {_tail(reply.text)})")
                continue
            scores.append(_WIN[said] if shown_first else 1.0 - _WIN[said])
            notes.append(f"{order}: {said}")
        if len(scores) < 2:
            return Verdict(None, calls, cost, cached, "; ".join(notes) + " (both orders are needed)")
        return Verdict(sum(scores) / 2, calls, cost, cached, "; ".join(notes))


JUDGES: dict[str, type[_Judge]] = {"absolute": AbsoluteJudge, "pairwise": PairwiseJudge}


def judge_settings(
    model: str, config: str | Path | None = None, **overrides: Any
) -> tuple[CallSettings, Prices | None]:
    """How to call the judge ``model``, and its prices when the config gives them.

    ``model`` is a ``model_name`` of the LiteLLM ``config`` (its deployment's
    endpoint, key, parameters and prices, else LiteLLM's prices of its ``base_model``,
    as for the models; the LiteLLM Router's own keys dropped), else a LiteLLM model string. ``overrides`` set
    :class:`~uniroute.onboarding.CallSettings` fields. ``uniroute build --judge``
    and the ``llm_judge`` grader of ``uniroute onboard --judge-config`` resolve the
    judge the same way, so a model onboarded later is graded by the build's judge.
    """
    if config is None or not any(d.get("model_name") == model for d in read_model_list(config)):
        return CallSettings(model, **overrides), None
    return config_deployment(config, model, **overrides)


def judge_resolver(config: str | Path | None) -> JudgeSettings | None:
    """``judge(model)`` for the graders: the judge a validation file names, resolved by
    :func:`judge_settings` in ``config`` (None without a config: the model string as it is)."""
    if config is None:
        return None
    return lambda model: judge_settings(model, config)[0]
