"""Graders on hand-made answers."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from onboarding_fakes import completion

from uniroute import InputError
from uniroute.onboarding import GRADERS, CallSettings, GradingError, ValidationItem, make_grader
from uniroute.onboarding.graders import GraderSet, LLMJudgeGrader, normalize_text, parse_number

MC_PROMPT = "Which gas do plants take in?\nA) oxygen\nB) carbon dioxide\nC) helium\nD) argon\nAnswer:"


def judge_at(url: str) -> Callable[[str], CallSettings]:
    """Judge models called on the fake server at ``url`` (what ``--judge-config`` gives in the CLI)."""
    return lambda model: CallSettings(model, api_base=url, api_key="k")


def item(reference: object, grader: str = "exact", prompt: str = "q", **options: object) -> ValidationItem:
    return ValidationItem(prompt, reference, grader, options)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", 1.0),
        ("B\n", 1.0),
        ("(B)", 1.0),
        ("B) carbon dioxide", 1.0),
        ("b", 0.0),
        ("**B**", 1.0),
        ("The answer is B.", 1.0),
        ("Answer: (B)", 1.0),
        ("A", 0.0),
        ("I do not know", 0.0),
        ("Because plants need it", 0.0),
        ("", 0.0),
        ("E", 0.0),
    ],
)
def test_multiple_choice(response: str, expected: float) -> None:
    grader = make_grader("multiple_choice")
    assert grader.grade(response, item("B", "multiple_choice", MC_PROMPT)) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("I think it's D.", "D"),
        ("Oxygen is released, so not A. Therefore, D.", "D"),
        ("A is incorrect; the answer is D", "D"),
        ("A is wrong: plants release it. The correct answer is (D).", "D"),
        ("D is correct, argon is taken in.", "D"),
        ("Let me think step by step.\n\nD", "D"),
        ("I'd go with D", "D"),
        ("The best option is D, since argon is inert", "D"),
        ("(D) argon", "D"),
        ("D. argon", "D"),
        ("D\n\nBecause plants need it", "D"),
        ("D (argon", "D"),
        ("Argon.", None),
        ("B is wrong, C is wrong, so the answer: A", "A"),
        ("A star number is a centered figurate number.", None),
        ("A first guess would be oxygen", None),
        ("It is A good question", None),
        ("The answer is a bit unclear", None),
        ("I do not know", None),
    ],
)
def test_multiple_choice_reads_verbose_answers_and_never_takes_an_article(
    response: str, expected: str | None
) -> None:
    grader = make_grader("multiple_choice")
    mc = item("D", "multiple_choice", MC_PROMPT)
    assert grader.extract(response, mc) == expected
    assert grader.grade(response, mc) == float(expected == "D")


def test_multiple_choice_says_which_prompts_it_cannot_grade() -> None:
    grader = make_grader("multiple_choice")
    mbpp = item(None, "multiple_choice", "Write a python function to find the first repeated character.")
    assert "no lettered choices" in grader.not_gradable(mbpp)
    assert grader.not_gradable(item("B", "multiple_choice", MC_PROMPT)) is None
    assert make_grader("multiple_choice", {"choices": "AB"}).not_gradable(mbpp) is None
    assert make_grader("exact").not_gradable(mbpp) is None


def test_multiple_choice_letters_come_from_the_prompt_or_the_option() -> None:
    grader = make_grader("multiple_choice")
    two = "Pick one.\nA) Ian\nB) Dennis\nAnswer:"
    assert grader.extract("C", item("A", "multiple_choice", two)) is None
    assert grader.extract("C", item("A", "multiple_choice", MC_PROMPT)) == "C"
    assert make_grader("multiple_choice", {"choices": "ab"}).extract("C", item("A")) is None
    with pytest.raises(InputError, match="letters"):
        make_grader("multiple_choice", {"choices": "A1"})


@pytest.mark.parametrize(
    ("response", "reference", "options", "expected"),
    [
        ("Paris", "paris", {}, 1.0),
        ("  The Paris! ", "Paris", {}, 1.0),
        ("Paris", ["Lyon", "paris"], {}, 1.0),
        ("Paris, France", "Paris", {}, 0.0),
        ("It is Paris, France", "paris", {"contains": True}, 1.0),
        ("Parisian", "paris", {"contains": True}, 0.0),
        ("paris", "Paris", {"normalize": False}, 0.0),
    ],
)
def test_exact(response: str, reference: object, options: dict, expected: float) -> None:
    grader = make_grader("exact", options)
    assert grader.grade(response, item(reference, "exact", **options)) == expected


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("She has 3 + 4 = 7 apples.\n#### 7", "7", 1.0),
        ("#### 1,234", 1234, 1.0),
        ("The answer is $18.", "18", 1.0),
        ("So 5 eggs, then 12 left: 12", "12", 1.0),
        ("0.5", "0.50", 1.0),
        ("-3", "3", 0.0),
        ("#### 8\nbut maybe 7", "7", 0.0),
        ("no number here", "7", 0.0),
    ],
)
def test_numeric(response: str, reference: object, expected: float) -> None:
    assert make_grader("numeric").grade(response, item(reference, "numeric")) == expected


def test_numeric_tolerance_and_bad_reference() -> None:
    assert make_grader("numeric", {"rel_tol": 0.01}).grade("100.5", item("100", "numeric")) == 1.0
    with pytest.raises(ValueError, match="number"):
        make_grader("numeric").check_reference("seven")
    assert parse_number("50%") == 50.0 and parse_number("abc") is None


def test_regex() -> None:
    with_group = make_grader("regex", {"pattern": r"final:\s*(\w+)", "flags": "i"})
    assert with_group.grade("work... FINAL: Blue", item("blue", "regex")) == 1.0
    assert with_group.grade("final: red", item("blue", "regex")) == 0.0
    presence = make_grader("regex", {"pattern": r"^def \w+\("})
    assert presence.grade("def f(x):\n  return x", item(None, "regex")) == 1.0
    assert presence.grade("print(1)", item(None, "regex")) == 0.0
    with pytest.raises(InputError, match="bad pattern"):
        make_grader("regex", {"pattern": "("})
    with pytest.raises(InputError, match="pattern"):
        make_grader("regex")


def test_registry_and_option_errors() -> None:
    assert set(GRADERS) == {"multiple_choice", "exact", "numeric", "regex", "llm_judge"}
    with pytest.raises(InputError, match="unknown grader 'fuzzy'"):
        make_grader("fuzzy")
    with pytest.raises(InputError, match="bad options"):
        make_grader("exact", {"nope": 1})
    with pytest.raises(ValueError, match="needs a 'reference'"):
        make_grader("exact").check_reference(None)
    assert normalize_text("The  Cat, sat!") == "cat sat"


@pytest.mark.integration
def test_llm_judge_reads_the_verdict(fake_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNIROUTE_CACHE_DIR", str(tmp_path))
    seen: list[dict] = []

    def judge(prompt: str, attempt: int, body: dict) -> tuple[int, dict, float]:
        seen.append(body)
        return (
            200,
            completion("CORRECT" if "Model's answer:\n42" in prompt else "The answer is INCORRECT."),
            0,
        )

    server = fake_server(judge)
    grader = make_grader("llm_judge", {"model": "openai/judge"}, judge=judge_at(server.url))
    assert grader.grade("42", item("42", "llm_judge", "What is 6*7?")) == 1.0
    assert grader.grade("41", item("42", "llm_judge", "What is 6*7?")) == 0.0
    assert seen[0]["model"] == "judge" and seen[0]["temperature"] == 0
    assert "What is 6*7?" in seen[0]["messages"][0]["content"]
    assert grader.grade("42", item("42", "llm_judge", "What is 6*7?")) == 1.0  # a cached verdict
    assert server.total_calls == 2
    grader.close()


@pytest.mark.integration
async def test_llm_judge_failures_are_grading_errors(
    fake_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UNIROUTE_CACHE_DIR", str(tmp_path))

    def judge(prompt: str, attempt: int, body: dict) -> tuple[int, dict | None, float]:
        return (500, None, 0) if "down" in prompt else (200, completion("maybe?"), 0)

    server = fake_server(judge)
    grader = LLMJudgeGrader(
        model="openai/judge",
        prompt="Q {prompt} A {response}",
        api_base=server.url,
        api_key="k",
        num_retries=0,
    )
    graders = GraderSet(judge_at(server.url))
    for answer, reason in (("down", "judge call failed: 500"), ("x", "neither CORRECT nor INCORRECT")):
        with pytest.raises(GradingError, match=reason):
            await grader.agrade(answer, item(None, "llm_judge"))
    judged = item(None, "llm_judge", model="openai/judge", num_retries=0)
    score, error = await graders.grade("down", judged)
    assert math.isnan(score) and error is not None and "500" in error
    grader.close()
    graders.close()
    with pytest.raises(InputError, match=r"unknown placeholder\(s\) \{question\}"):
        LLMJudgeGrader(model="m", prompt="{question} {prompt} {response}")
    with pytest.raises(InputError, match="model"):
        make_grader("llm_judge")


@pytest.mark.integration
async def test_llm_judge_modes_grade_as_the_build_judges(
    fake_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UNIROUTE_CACHE_DIR", str(tmp_path))

    def judge(prompt: str, attempt: int, body: dict) -> tuple[int, dict, float]:
        if "VERDICT" in prompt:  # pairwise: the answer "Paris" wins, whichever order it is shown in
            first = prompt.split("[Answer A]", 1)[1].split("[Answer B]", 1)[0]
            return 200, completion("VERDICT: " + ("A" if "Paris" in first else "B")), 0
        return 200, completion("Sound reasoning.\nSCORE: 7"), 0

    server = fake_server(judge)
    graders = GraderSet(judge_at(server.url))
    absolute = item("Paris", "llm_judge", "Capital of France?", model="openai/judge", mode="absolute")
    assert await graders.grade("Lyon", absolute) == (pytest.approx(6 / 9), None)
    pairs = [
        item(None, "llm_judge", "Capital of France?", model="openai/judge", mode="pairwise", anchor=a)
        for a in ("Lyon", "Paris")
    ]
    assert [(await graders.grade("Paris", i))[0] for i in pairs] == [1.0, 0.5]  # wins both orders; a tie
    assert (await graders.grade("Lyon", pairs[1]))[0] == 0.0
    assert graders.for_item(pairs[0]) is graders.for_item(pairs[1])  # one grader: the anchor is per item
    no_anchor = item(None, "llm_judge", "Capital of France?", model="openai/judge", mode="pairwise")
    score, error = await graders.grade("Paris", no_anchor)
    assert math.isnan(score) and error is not None and "no anchor answer" in error
    graders.close()
    with pytest.raises(InputError, match="unknown mode 'rank'"):
        make_grader("llm_judge", {"model": "m", "mode": "rank"})
