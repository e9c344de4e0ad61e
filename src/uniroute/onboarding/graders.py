"""Graders turn a model's answer to a validation prompt into a score in [0, 1].

One small interface, :class:`Grader`, and a registry, :data:`GRADERS`, whose keys
are the ``grader`` field of a validation line (see :mod:`.validation`) and the
CLI's ``--grader`` choices:

``multiple_choice``
    The choice letter the answer is (``B``, ``(B)``), states ("the answer is B",
    "Therefore, B.", "I think it's B"), or starts with as a label (``B) ...``),
    against the reference letter; never a capital used as a word ("A star
    is..."). Letters come from ``choices`` or else from the ``A) ...`` lines of
    the prompt; a prompt with neither is not gradable by it (MBPP-style tasks).
``exact``
    Normalised string match (case, punctuation, articles and spacing ignored),
    ``contains=True`` to accept an answer that contains the reference.
``numeric``
    GSM8K-style: the number after ``####``, after "the answer is", or else the
    last number of the answer, against a numeric reference (``rel_tol``/``abs_tol``).
``regex``
    ``pattern`` searched in the answer: with a reference, its first group (or
    the whole match) must equal the reference once normalised; without one, a
    match is correct.
``llm_judge``
    Another model, called through LiteLLM, grades the answer with one of the
    ``uniroute build`` judges (:mod:`uniroute.build.judges`, verdicts cached):
    ``mode`` ``correct`` (CORRECT or INCORRECT, the default), ``absolute`` (a
    1-10 rubric) or ``pairwise`` (against the item's ``anchor`` answer). A
    validation file names the judge model and how to grade, never its endpoint
    or keys (:attr:`LLMJudgeGrader.file_options`): the caller gives those
    (``judge=``; ``uniroute onboard --judge-config``).

Graders that read an answer (all but the judge) also ``extract`` it, which is
how a reference is derived from other models' recorded answers. Executing
generated code is deliberately not offered: it needs a sandbox this package
does not ship.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.text import prompt_text
from ..exceptions import GradingError, InputError
from .settings import CallSettings

if TYPE_CHECKING:
    from .validation import ValidationItem

#: How to call a judge model a validation file names: ``judge(model)`` -> its endpoint, key and parameters.
JudgeSettings = Callable[[str], CallSettings]


class Grader(ABC):
    """Scores one answer to one validation item.

    Subclasses set ``name`` (their registry key), take their options as keyword
    arguments (checked in ``__init__``: they come from files and the CLI) and
    implement :meth:`grade`. The runner awaits :meth:`agrade`: a grader that does
    I/O either sets ``blocking = True`` (its :meth:`grade` then runs in a worker
    thread) or overrides :meth:`agrade` (the LLM judge).
    """

    name: ClassVar[str]
    requires_reference: ClassVar[bool] = True
    blocking: ClassVar[bool] = False
    #: Options that belong to one item, read from ``item.grader_options`` when it is graded:
    #: :class:`GraderSet` builds one grader for items that differ only in them.
    item_options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_file(cls, options: Mapping[str, Any], judge: JudgeSettings | None = None) -> Grader:
        """The grader a validation line's options describe.

        The options are untrusted input: a grader whose constructor takes more than
        a file may set (the LLM judge's endpoint and keys) overrides this to refuse
        the rest. ``judge`` says how to call a judge model the file names.
        """
        return cls(**options)

    @abstractmethod
    def grade(self, response: str, item: ValidationItem) -> float:
        """Score in [0, 1] of ``response``; raise :class:`GradingError` if undecidable."""

    async def agrade(self, response: str, item: ValidationItem) -> float:
        """:meth:`grade` from async code (in a worker thread when ``blocking``)."""
        if self.blocking:
            return await asyncio.to_thread(self.grade, response, item)
        return self.grade(response, item)

    def close(self) -> None:
        """Release what the grader holds open (the LLM judge's verdict cache); nothing by default."""
        return None

    def check_reference(self, reference: Any) -> None:
        """Raise ``ValueError`` if ``reference`` cannot be graded against."""
        if self.requires_reference and reference is None:
            raise ValueError(f"grader {self.name!r} needs a 'reference'")

    def not_gradable(self, item: ValidationItem) -> str | None:
        """Why this grader cannot grade answers to ``item`` at all (None: it can).

        Used when a validation set is built, so such prompts are reported as not
        gradable rather than as prompts no model got right.
        """
        return None


class ExtractingGrader(Grader):
    """A grader that pulls the answer out of the text, then compares it."""

    @abstractmethod
    def extract(self, response: str, item: ValidationItem) -> Hashable | None:
        """The answer stated in ``response`` in canonical form, or None if there is none."""

    def matches(self, answer: Hashable, reference: Any) -> bool:
        """Whether ``answer`` equals the (or, for a list, any) reference in canonical form."""
        references = reference if isinstance(reference, list) else [reference]
        return any(answer == self.canonical(r) for r in references)

    def canonical(self, reference: Any) -> Hashable:
        """The reference in the form :meth:`extract` returns."""
        return str(reference).strip()

    def grade(self, response: str, item: ValidationItem) -> float:
        answer = self.extract(response, item)
        return float(answer is not None and self.matches(answer, item.reference))


_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])[).:]\s+\S", re.MULTILINE)
_DEFAULT_LETTERS = "ABCDEFGHIJ"
# After a stated letter: the end, punctuation or a line break ("it's D." but not "it's A good ...").
_ENDS = r"(?=\s*(?:$|[.,;:!?)\]*_\"'`\n]))"
# Ways an answer states its choice; {L} is the letter class. The last statement in the answer wins.
_STATEMENTS = (
    # "the answer is B", "Answer: (B)", "the best option is D", "correct answer would be option C"
    r"(?i:\b(?:answer|choice|option)\b(?:\s+(?:is|would\s+be|will\s+be|should\s+be|must\s+be))?\s*[:=]?"
    r"\s*(?:(?:option|choice|letter)\s+)?)[*_\"'`]*\(?(?P<letter>{L})\)?(?![A-Za-z0-9'])",
    # "B is correct", "(D) is the right answer"
    r"(?<![A-Za-z0-9])\(?(?P<letter>{L})\)?\s+is\s+(?:the\s+)?(?i:correct|right|true|best)\b",
    # "Therefore, D." "So the answer: C" (letter then the end or punctuation)
    r"(?i:\b(?:therefore|thus|hence|so)\b),?\s+\(?(?P<letter>{L})\)?" + _ENDS,
    # "I think it's D." "I'd go with B"
    r"(?i:\b(?:it's|it\s+is|go\s+with|choose|pick|select)\b)\s+\(?(?P<letter>{L})\)?" + _ENDS,
)


class MultipleChoiceGrader(ExtractingGrader):
    """Choice-letter extraction (see module doc).

    The answer's choice is, in this order: the whole answer when it is one letter
    (``B``, ``(B)``, ``**B.**``); the last stated choice ("the answer is D",
    "D is correct", "Therefore, D.", "I think it's D."); a leading choice label
    (``B) ...``, ``(B) ...``, ``B. ...``, ``B (...``, ``B`` on a line of its own); a
    last line that is one letter. A capital letter used as a word ("A star number
    is...", "I do not know") is never taken for a choice, and choice letters are
    capitals (``a`` is an article). An answer that restates an option's text
    instead of its letter ("Rachel" for ``B) Rachel``) is not read as that choice:
    RouterBench's labels count it wrong, and an onboarded model's Ψ must be
    measured the way the other models' Ψ was.

    Parameters
    ----------
    choices : str, optional
        The valid letters, e.g. ``"ABCD"``. Default: the letters of the prompt's
        ``A) ...`` lines, or A-J when the prompt has none.
    """

    name = "multiple_choice"

    def __init__(self, choices: str | None = None):
        if choices is not None and (not isinstance(choices, str) or not choices.isalpha()):
            raise InputError(f"multiple_choice: choices must be letters like 'ABCD', got {choices!r}")
        self.choices = None if choices is None else choices.upper()

    def _prompt_letters(self, item: ValidationItem) -> str:
        return "".join(sorted(set(_CHOICE_LINE.findall(prompt_text(item.prompt)))))

    def letters(self, item: ValidationItem) -> str:
        if self.choices:
            return self.choices
        found = self._prompt_letters(item)
        return found if len(found) >= 2 else _DEFAULT_LETTERS

    def not_gradable(self, item: ValidationItem) -> str | None:
        if self.choices or len(self._prompt_letters(item)) >= 2:
            return None
        return "the prompt lists no lettered choices (A) ..., B) ...) and no 'choices' option is set"

    def extract(self, response: str, item: ValidationItem) -> str | None:
        letter = f"[{re.escape(self.letters(item))}]"
        text = response.strip()
        bare = re.fullmatch(rf"[\s*_\"'`(\[]*({letter})[\s*_\"'`)\].:]*", text)
        if bare:
            return bare.group(1)
        stated = [m for p in _STATEMENTS for m in re.finditer(p.format(L=letter), text)]
        if stated:
            return max(stated, key=lambda m: m.start("letter")).group("letter")
        lead = re.match(rf"[\s*_\"'`]*(?:\(({letter})\)|({letter})(?=[).:]|[ \t]*(?:[(\n]|$)))", text)
        if lead:
            return lead.group(1) or lead.group(2)
        last = re.search(rf"(?:^|\n)[\s*_\"'`(]*({letter})[\s*_\"'`).]*$", text)
        return last.group(1) if last else None

    def canonical(self, reference: Any) -> str:
        return str(reference).strip().strip("()").upper()

    def check_reference(self, reference: Any) -> None:
        super().check_reference(reference)
        for ref in reference if isinstance(reference, list) else [reference]:
            if not (isinstance(ref, str) and len(self.canonical(ref)) == 1 and self.canonical(ref).isalpha()):
                raise ValueError(f"multiple_choice reference must be one letter, got {ref!r}")


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style)."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


class ExactMatchGrader(ExtractingGrader):
    """Exact or normalised string match.

    Parameters
    ----------
    normalize : bool, default=True
        Compare :func:`normalize_text` forms instead of stripped strings.
    contains : bool, default=False
        Accept an answer that contains the reference.
    """

    name = "exact"

    def __init__(self, normalize: bool = True, contains: bool = False):
        self.normalize = bool(normalize)
        self.contains = bool(contains)

    def canonical(self, reference: Any) -> str:
        text = str(reference)
        return normalize_text(text) if self.normalize else text.strip()

    def extract(self, response: str, item: ValidationItem) -> str | None:
        return self.canonical(response) or None

    def matches(self, answer: Hashable, reference: Any) -> bool:
        if not self.contains:
            return super().matches(answer, reference)
        references = reference if isinstance(reference, list) else [reference]
        padded = f" {answer} " if self.normalize else str(answer)
        return any((f" {r} " if self.normalize else r) in padded for r in map(self.canonical, references))


_NUMBER = r"-?\$?\s?\d[\d,]*(?:\.\d+)?"


def parse_number(text: str) -> float | None:
    """A float from text like ``-1,234.5``, ``$12`` or ``50%``; None if it is not one."""
    cleaned = str(text).strip().replace(",", "").replace("$", "").replace(" ", "").rstrip("%.")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class NumericGrader(ExtractingGrader):
    """GSM8K-style numeric answers (see module doc).

    Parameters
    ----------
    rel_tol : float, default=1e-6
    abs_tol : float, default=1e-9
    """

    name = "numeric"

    def __init__(self, rel_tol: float = 1e-6, abs_tol: float = 1e-9):
        if not (rel_tol >= 0 and abs_tol >= 0):
            raise InputError(f"numeric: rel_tol and abs_tol must be >= 0, got {rel_tol!r}, {abs_tol!r}")
        self.rel_tol = float(rel_tol)
        self.abs_tol = float(abs_tol)

    def extract(self, response: str, item: ValidationItem) -> float | None:
        for pattern in (rf"####\s*({_NUMBER})", rf"answer is\s*:?\s*({_NUMBER})"):
            found = re.search(pattern, response, re.IGNORECASE)
            if found:
                return parse_number(found.group(1))
        numbers = re.findall(_NUMBER, response)
        return parse_number(numbers[-1]) if numbers else None

    def canonical(self, reference: Any) -> float | None:
        return parse_number(str(reference))

    def matches(self, answer: Hashable, reference: Any) -> bool:
        if not isinstance(answer, float):  # extract() returns floats; anything else matches nothing
            return False
        references = reference if isinstance(reference, list) else [reference]
        return any(
            ref is not None and math.isclose(answer, ref, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
            for ref in map(self.canonical, references)
        )

    def check_reference(self, reference: Any) -> None:
        super().check_reference(reference)
        for ref in reference if isinstance(reference, list) else [reference]:
            if self.canonical(ref) is None:
                raise ValueError(f"numeric reference must be a number, got {ref!r}")


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


class RegexGrader(ExtractingGrader):
    """A regular expression over the answer (see module doc).

    Parameters
    ----------
    pattern : str
        Searched in the answer (``re.search``).
    flags : str, default=""
        Any of ``i`` (ignore case), ``m`` (multiline), ``s`` (dot matches newline).
    """

    name = "regex"
    requires_reference = False

    def __init__(self, pattern: str | None = None, flags: str = ""):
        if not isinstance(pattern, str) or not pattern:
            raise InputError("regex grader needs option 'pattern' (a regular expression)")
        unknown = set(flags) - set(_FLAGS)
        if unknown:
            raise InputError(f"regex: unknown flag(s) {sorted(unknown)}; use any of {sorted(_FLAGS)}")
        try:
            self.regex = re.compile(pattern, sum(_FLAGS[f] for f in set(flags)))
        except re.error as exc:
            raise InputError(f"regex: bad pattern {pattern!r}: {exc}") from exc
        self.pattern = pattern
        self.flags = flags

    def extract(self, response: str, item: ValidationItem) -> str | None:
        found = self.regex.search(response)
        if found is None:
            return None
        return normalize_text(found.group(1) if self.regex.groups else found.group(0))

    def canonical(self, reference: Any) -> str:
        return normalize_text(str(reference))

    def grade(self, response: str, item: ValidationItem) -> float:
        if item.reference is None:
            return float(self.regex.search(response) is not None)
        return super().grade(response, item)


class LLMJudgeGrader(Grader):
    """A judge model, called through LiteLLM, grades the answer: one of the ``uniroute build`` judges.

    ``mode`` picks the judge of :mod:`uniroute.build.judges` (same calls, retries,
    templates, template checks and verdict cache as ``uniroute build``):

    ``correct`` (default)
        :class:`~uniroute.build.judges.CorrectnessJudge`: CORRECT is 1, INCORRECT 0.
    ``absolute``
        :class:`~uniroute.build.judges.AbsoluteJudge`: a 1-10 rubric, ``(n - 1) / 9``.
    ``pairwise``
        :class:`~uniroute.build.judges.PairwiseJudge`: against the anchor model's
        answer to the item (its ``anchor`` option), asked in both orders.

    A judged ``uniroute build`` writes these options into its validation file, so a
    model onboarded on it later is graded exactly as the build graded. A reply
    without a verdict, or a call that still fails after its retries, is a
    :class:`GradingError` (the answer is left out, not counted wrong).

    Options from a validation file (:meth:`from_file`) may only say how to grade
    (:attr:`file_options`), never where the judge is called or with which
    credentials: the caller gives that (``settings``; ``uniroute onboard
    --judge-config``). Code that builds the grader itself may pass anything.

    Parameters
    ----------
    model : str
        The judge: a LiteLLM model string, or the name ``settings`` was resolved from.
    prompt : str, optional
        Template text (not a path) with the mode's placeholders; default the
        packaged template of the mode (``correct-v1``, ``absolute-v1``, ``pairwise-v1``).
    mode : {"correct", "absolute", "pairwise"}, default="correct"
    anchor : str, optional
        Pairwise: the anchor's answer, for items that do not give their own
        ``anchor`` option (a validation line gives it per item).
    timeout : float, optional
        Seconds per call (default: the settings', else 60).
    num_retries : int, optional
        Retries of a failed call (default: the settings', else 2).
    settings : CallSettings, optional
        How to call the judge (endpoint, key, parameters); default ``CallSettings(model)``.
    **litellm_params
        Other ``litellm.acompletion`` arguments (``api_base``, ``api_key``,
        ``temperature``...; ``temperature`` defaults to 0), over ``settings``.
    """

    name = "llm_judge"
    requires_reference = False
    item_options = frozenset({"anchor"})
    #: What a validation file may set: how to grade, never where to call or with which credentials.
    file_options: ClassVar[frozenset[str]] = frozenset(
        {"model", "prompt", "mode", "anchor", "temperature", "max_tokens", "timeout", "num_retries"}
    )

    def __init__(
        self,
        model: str | None = None,
        prompt: str | None = None,
        mode: str = "correct",
        anchor: str | None = None,
        timeout: float | None = None,
        num_retries: int | None = None,
        *,
        settings: CallSettings | None = None,
        **litellm_params: Any,
    ):
        from ..build.judges import JUDGES, CorrectnessJudge, JudgeTemplate

        if not isinstance(model, str) or not model:
            raise InputError("llm_judge grader needs option 'model' (a LiteLLM model string)")
        if prompt is not None and not isinstance(prompt, str):
            raise InputError(f"llm_judge: 'prompt' must be template text, got {prompt!r}")
        judges: dict[str, Any] = {"correct": CorrectnessJudge, **JUDGES}
        if mode not in judges:
            raise InputError(f"llm_judge: unknown mode {mode!r}; choose one of {sorted(judges)}")
        if anchor is not None and not isinstance(anchor, str):
            raise InputError(f"llm_judge: 'anchor' must be the anchor model's answer text, got {anchor!r}")
        base = settings or CallSettings(model, timeout=60.0, max_retries=2)
        params = dict(litellm_params)
        call = replace(
            base,
            api_base=params.pop("api_base", base.api_base),
            api_key=params.pop("api_key", base.api_key),
            params={**base.params, **params},
        )
        if timeout is not None:
            call.timeout = float(timeout)
        if num_retries is not None:
            call.max_retries = int(num_retries)
        template = None if prompt is None else JudgeTemplate("llm_judge prompt", prompt)
        self.judge = judges[mode](call, template)
        self.model = model
        self.mode = mode
        self.anchor = anchor
        self.prompt = self.judge.template.text

    @classmethod
    def from_file(cls, options: Mapping[str, Any], judge: JudgeSettings | None = None) -> LLMJudgeGrader:
        """The judge a validation line describes, called as ``judge(model)`` says (see class doc).

        Raises :class:`~uniroute.InputError` on an option a file may not set, and on
        a model string that holds an endpoint (``huggingface/https://...``: LiteLLM
        sends such a call, and the provider's key, to that URL).
        """
        refused = sorted(set(options) - cls.file_options)
        if refused:
            raise InputError(
                f"llm_judge option(s) {', '.join(map(repr, refused))} may not come from a validation file: a "
                "file never chooses where the judge is called or with which credentials. Remove them and "
                "give the judge's endpoint yourself (uniroute onboard --judge-config CONFIG, a LiteLLM "
                "config with a deployment named like the judge model; in Python, judge=). A file may set "
                f"{', '.join(sorted(cls.file_options))}"
            )
        model = options.get("model")
        if isinstance(model, str) and "://" in model:
            raise InputError(
                f"llm_judge model {model!r} holds a URL: LiteLLM would call it, so a file may not name one. "
                "Name the judge (a LiteLLM model string or a deployment of --judge-config) instead"
            )
        settings = judge(model) if judge is not None and isinstance(model, str) and model else None
        return cls(**options, settings=settings)

    async def agrade(self, response: str, item: ValidationItem) -> float:
        if self.mode == "pairwise":
            anchor = item.grader_options.get("anchor", self.anchor)
            if anchor is None:
                raise GradingError("no anchor answer: pairwise judging needs the item's 'anchor' option")
            verdict = await self.judge.agrade(item.messages(), response, anchor)
        else:
            verdict = await self.judge.agrade(item.messages(), response, item.reference)
        if verdict.score is None:
            raise GradingError(f"judge {self.model!r}: {verdict.detail}")
        return verdict.score

    def grade(self, response: str, item: ValidationItem) -> float:
        """:meth:`agrade` on its own event loop (from async code, ``await agrade``)."""
        return asyncio.run(self.agrade(response, item))

    def close(self) -> None:
        self.judge.close()


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_JUDGE_PROMPT":  # the packaged template, read on first use
        from ..build.judges import JudgeTemplate

        return JudgeTemplate.packaged("correct-v1").text
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


GRADERS: dict[str, type[Grader]] = {
    cls.name: cls
    for cls in (MultipleChoiceGrader, ExactMatchGrader, NumericGrader, RegexGrader, LLMJudgeGrader)
}


def make_grader(
    name: str, options: Mapping[str, Any] | None = None, *, judge: JudgeSettings | None = None
) -> Grader:
    """Build a registered grader from its name and options, as found in a validation line.

    The options are treated as a file's (:meth:`Grader.from_file`: the LLM judge's
    may not set its endpoint or keys); ``judge(model)`` gives the call settings of
    a judge model they name (default: the model string as it is).
    """
    if name not in GRADERS:
        raise InputError(f"unknown grader {name!r}; choose one of {sorted(GRADERS)}")
    try:
        return GRADERS[name].from_file(dict(options or {}), judge)
    except TypeError as exc:
        raise InputError(f"bad options {dict(options or {})} for grader {name!r}: {exc}") from exc


class GraderSet:
    """The graders a set of items names, each built once; grades off the event loop when blocking.

    ``judge(model)`` gives the call settings (endpoint, key, parameters) of a judge
    model the items name (see :func:`make_grader`).
    """

    def __init__(self, judge: JudgeSettings | None = None) -> None:
        self.judge = judge
        self._graders: dict[str, Grader] = {}

    def for_item(self, item: ValidationItem) -> Grader:
        per_item = GRADERS[item.grader].item_options if item.grader in GRADERS else frozenset()
        options = {k: v for k, v in item.grader_options.items() if k not in per_item}
        key = item.grader + json.dumps(options, sort_keys=True, default=str)
        if key not in self._graders:
            self._graders[key] = make_grader(item.grader, options, judge=self.judge)
        return self._graders[key]

    def prepare(self, items: Sequence[ValidationItem]) -> None:
        """Build every item's grader now, so a bad option or judge fails before any call is paid."""
        for item in items:
            self.for_item(item)

    def close(self) -> None:
        """Close every grader (a judge's verdict cache reopens on its next verdict)."""
        for grader in self._graders.values():
            grader.close()

    async def grade(self, response: str, item: ValidationItem) -> tuple[float, str | None]:
        """``(score, None)``, or ``(nan, "grading: ...")`` when the grader cannot decide."""
        try:
            return await self.for_item(item).agrade(response, item), None
        except GradingError as exc:
            return math.nan, f"grading: {exc}"
