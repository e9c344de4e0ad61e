"""The judges' mechanics, against a local judge server that answers by rule (nothing about judge quality)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from onboarding.onboarding_fakes import FakeLLMServer, completion
from uniroute import InputError
from uniroute.build.judges import (
    JUDGES,
    AbsoluteJudge,
    JudgeTemplate,
    PairwiseJudge,
    Verdict,
    read_preference,
    read_score,
)
from uniroute.exceptions import OnboardingError
from uniroute.onboarding import CallSettings

pytestmark = pytest.mark.integration  # every test that calls starts a server on 127.0.0.1

JUDGE_MODEL = "openai/gpt-4o-mini"  # a model LiteLLM can price, so the judge's $ is measured
PROMPT = [{"role": "user", "content": "What is 6 times 7?"}]

# A rule: judge prompt text -> (HTTP status, reply text).
Rule = Callable[[str], tuple[int, str]]


def section(text: str, title: str) -> str:
    """The text under ``[title]`` in a rendered packaged template."""
    return text.split(f"[{title}]\n", 1)[1].split("\n\n", 1)[0]


def rubric(text: str) -> tuple[int, str]:
    """Absolute judge: 10 if the answer is the reference, 1 if not, no verdict for 'mumble'."""
    answer = section(text, "Answer to grade")
    if "mumble" in answer:
        return 200, "I cannot say."
    return 200, f"Checked.\nSCORE: {10 if answer == section(text, 'Reference answer') else 1}"


def first_wins(text: str) -> tuple[int, str]:
    """A judge with pure position bias: always prefers what it sees first."""
    return 200, "The first one reads better.\nVERDICT: A"


def fair(text: str) -> tuple[int, str]:
    """Prefers the answer that says 42; a tie when both or neither do."""
    a, b = "42" in section(text, "Answer A"), "42" in section(text, "Answer B")
    return 200, "VERDICT: " + ("TIE" if a == b else "A" if a else "B")


@pytest.fixture()
def judge_server() -> Iterator[Callable[[Rule], FakeLLMServer]]:
    """Start judge servers answering by ``rule`` (``calls`` counts requests per judge prompt)."""
    servers: list[FakeLLMServer] = []

    def start(rule: Rule) -> FakeLLMServer:
        def script(text: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
            status, reply = rule(text)
            return status, completion(reply) if status == 200 else None, 0.0

        servers.append(FakeLLMServer(script).__enter__())
        return servers[-1]

    yield start
    for server in servers:
        server.__exit__()


_OPEN: list[AbsoluteJudge | PairwiseJudge] = []
J = TypeVar("J", bound="AbsoluteJudge | PairwiseJudge")


def opened(judge: J) -> J:
    """``judge``, whose verdict cache is closed when the test ends."""
    _OPEN.append(judge)
    return judge


@pytest.fixture(autouse=True)
def _close_judges() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def settings(server: FakeLLMServer, **overrides: Any) -> CallSettings:
    base = {"model": JUDGE_MODEL, "api_base": server.url, "api_key": "sk-test", "timeout": 5.0}
    return CallSettings(**(base | {"backoff": 0.01, "backoff_max": 0.02, "max_retries": 1} | overrides))


def call_price() -> float:
    import litellm

    usage = completion("")["usage"]
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=JUDGE_MODEL, prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"]
    )
    return float(prompt_cost + completion_cost)


async def test_absolute_judge_scores_on_the_rubric_and_counts_its_cost(judge_server, tmp_path: Path) -> None:
    server = judge_server(rubric)
    judge = opened(AbsoluteJudge(settings(server), cache_dir=tmp_path))
    right = await judge.agrade(PROMPT, "42", reference="42")
    wrong = await judge.agrade(PROMPT, "41", reference="42")
    assert (right.score, wrong.score) == (1.0, 0.0)
    assert right.calls == 1 and not right.cached and right.detail == "SCORE 10 of 1-10"
    assert right.cost == pytest.approx(call_price()) and right.cost > 0
    assert all("What is 6 times 7?" in text for text in server.calls)
    assert server.total_calls == 2


async def test_a_cached_verdict_makes_no_call_and_a_new_template_does(judge_server, tmp_path: Path) -> None:
    server = judge_server(rubric)
    first = await opened(AbsoluteJudge(settings(server), cache_dir=tmp_path)).agrade(
        PROMPT, "42", reference="42"
    )
    again = opened(
        AbsoluteJudge(settings(server), cache_dir=tmp_path)
    )  # a new process would read the same file
    repeated = await again.agrade(PROMPT, "42", reference="42")
    assert server.total_calls == 1
    assert repeated == Verdict(first.score, 0, 0.0, True, first.detail)
    edited = tmp_path / "absolute-v2.txt"
    edited.write_text(
        JudgeTemplate.packaged("absolute-v1").text.replace("Rate the answer", "Now rate the answer")
    )
    changed = await opened(AbsoluteJudge(settings(server), edited, cache_dir=tmp_path)).agrade(
        PROMPT, "42", reference="42"
    )
    assert changed.calls == 1 and not changed.cached and server.total_calls == 2


async def test_an_unreadable_verdict_is_missing_not_wrong(judge_server, tmp_path: Path) -> None:
    server = judge_server(rubric)
    verdict = await opened(AbsoluteJudge(settings(server), cache_dir=tmp_path)).agrade(
        PROMPT, "mumble", reference="42"
    )
    assert verdict.score is None and verdict.calls == 1
    assert "no 'SCORE: <1-10>' line" in verdict.detail and "I cannot say." in verdict.detail


async def test_a_failing_judge_gives_missing_verdicts_and_is_called_again_next_time(
    judge_server, tmp_path: Path
) -> None:
    server = judge_server(lambda text: (500, "judge down"))
    judge = opened(AbsoluteJudge(settings(server, max_retries=1), cache_dir=tmp_path))
    verdict = await judge.agrade(PROMPT, "42")
    assert verdict.score is None and verdict.cost == 0.0 and not verdict.cached
    assert verdict.detail.startswith("judge call failed: 500") and "after 2 attempts" in verdict.detail
    assert server.total_calls == 2  # the call and its one retry
    await judge.agrade(PROMPT, "42")  # nothing was cached
    assert server.total_calls == 4


async def test_a_rejected_key_stops_the_run(judge_server, tmp_path: Path) -> None:
    server = judge_server(lambda text: (401, "bad key"))
    with pytest.raises(OnboardingError, match="401"):
        await opened(AbsoluteJudge(settings(server), cache_dir=tmp_path)).agrade(PROMPT, "42")


async def test_pairwise_asks_both_orders_so_position_bias_cancels(judge_server, tmp_path: Path) -> None:
    biased = opened(PairwiseJudge(settings(judge_server(first_wins)), cache_dir=tmp_path / "biased"))
    verdict = await biased.agrade(PROMPT, "42", "41")
    assert verdict.score == 0.5 and verdict.calls == 2
    assert verdict.detail == "answer first: A; anchor first: A"
    swapped = await biased.agrade(PROMPT, "41", "42")  # the same two judge prompts: both from the cache
    assert (swapped.score, swapped.calls, swapped.cached) == (0.5, 0, True)
    server = judge_server(fair)
    judge = opened(PairwiseJudge(settings(server), cache_dir=tmp_path / "fair"))
    assert (await judge.agrade(PROMPT, "It is 42.", "It is 41.")).score == 1.0
    lost = await judge.agrade(PROMPT, "It is 40.", "It is 42.")
    assert lost.score == 0.0 and lost.cost == pytest.approx(2 * call_price())
    assert (await judge.agrade(PROMPT, "42, surely", "42")).score == 0.5  # a tie in both orders
    shown = [(section(t, "Answer A"), section(t, "Answer B")) for t in list(server.calls)[:2]]
    assert sorted(shown) == [("It is 41.", "It is 42."), ("It is 42.", "It is 41.")]


async def test_pairwise_anchor_itself_scores_half_without_a_call(judge_server, tmp_path: Path) -> None:
    server = judge_server(fair)
    verdict = await opened(PairwiseJudge(settings(server), cache_dir=tmp_path)).agrade(PROMPT, " 42\n", "42")
    assert verdict == Verdict(0.5, 0, 0.0, False, verdict.detail) and "tie by definition" in verdict.detail
    assert server.total_calls == 0


async def test_pairwise_needs_both_orders(judge_server, tmp_path: Path) -> None:
    def one_sided(text: str) -> tuple[int, str]:
        return (200, "VERDICT: A") if section(text, "Answer A") == "mine" else (200, "hmm")

    server = judge_server(one_sided)
    verdict = await opened(PairwiseJudge(settings(server), cache_dir=tmp_path)).agrade(
        PROMPT, "mine", "anchor's"
    )
    assert verdict.score is None and verdict.calls == 2
    assert "answer first: A" in verdict.detail and "anchor first: no 'VERDICT" in verdict.detail
    assert "both orders are needed" in verdict.detail


async def test_a_user_template_replaces_the_packaged_one(judge_server, tmp_path: Path) -> None:
    server = judge_server(lambda text: (200, "SCORE: 4" if text.startswith("CUSTOM") else "SCORE: 10"))
    mine = tmp_path / "strict.txt"
    mine.write_text("CUSTOM rubric for {{braces}}.\nQ: {prompt}\nA: {response}\nEnd with SCORE: <1-10>.")
    verdict = await opened(AbsoluteJudge(settings(server), mine, cache_dir=tmp_path)).agrade(PROMPT, "42")
    assert verdict.score == pytest.approx(3 / 9)
    assert list(server.calls) == [
        "CUSTOM rubric for {braces}.\nQ: What is 6 times 7?\nA: 42\nEnd with SCORE: <1-10>."
    ]


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (
            "absolute",
            "Q {question} A {response}",
            r"unknown placeholder\(s\) \{question\}; .*\{prompt\}, \{response\}, \{reference\}",
        ),
        ("absolute", "Q {prompt} only", r"missing placeholder\(s\) \{response\}"),
        (
            "absolute",
            'Q {prompt} A {response} as JSON {"score": 1}',
            r"unknown placeholder.*literal braces as \{\{",
        ),
        ("pairwise", "Q {prompt} A {response}", r"may use \{prompt\}, \{answer_a\}, \{answer_b\}"),
        ("pairwise", "Q {prompt} {answer_a} {answer_b", r"judge prompt bad.txt: .*expected '\}'"),
    ],
)
def test_a_bad_template_says_which_placeholders_are_allowed(
    tmp_path: Path, kind: str, text: str, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        JUDGES[kind](CallSettings(JUDGE_MODEL), path, cache_dir=tmp_path)
    with pytest.raises(InputError, match="cannot read judge prompt"):
        JUDGES[kind](CallSettings(JUDGE_MODEL), tmp_path / "missing.txt")


def test_packaged_templates_are_versioned_and_valid(tmp_path: Path) -> None:
    for kind, judge_class in JUDGES.items():
        judge = opened(judge_class(CallSettings(JUDGE_MODEL), cache_dir=tmp_path))
        assert judge.template.name == f"{kind}-v1" and len(judge.template.digest) == 16
        assert judge.settings.params["temperature"] == 0
    assert "SCORE: <an integer from 1 to 10>" in JudgeTemplate.packaged("absolute-v1").text
    assert "VERDICT: TIE" in JudgeTemplate.packaged("pairwise-v1").text


def test_estimate_counts_calls_tokens_and_dollars(tmp_path: Path) -> None:
    absolute = opened(AbsoluteJudge(CallSettings(JUDGE_MODEL), cache_dir=tmp_path, cost=0.002))
    pairwise = opened(
        PairwiseJudge(CallSettings(JUDGE_MODEL, params={"max_tokens": 100}), cache_dir=tmp_path)
    )
    calls, tokens, dollars = absolute.estimate(50, 200, 300)
    assert calls == 50 and dollars == pytest.approx(0.1)
    assert tokens > 50 * (200 + 300 + 256)  # the template's own tokens come on top
    calls, tokens, dollars = pairwise.estimate(50, 200, 300)
    assert calls == 100
    fixed = tokens - 100 * (200 + 2 * 300 + 100)
    assert 100 * 50 < fixed < 100 * 400  # the template, counted once a call
    assert 0 < dollars < 1 and not math.isnan(dollars)
    unpriced = opened(AbsoluteJudge(CallSettings("openai/no-such-judge"), cache_dir=tmp_path))
    assert math.isnan(unpriced.estimate(1, 10, 10)[2])
    priced = opened(
        AbsoluteJudge(CallSettings("openai/no-such-judge"), cache_dir=tmp_path, prices=(1.0, 0.0))
    )
    calls, tokens, dollars = priced.estimate(3, 10, 10)
    assert dollars == tokens - 3 * 256  # $1 an input token, output free


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("fine\nSCORE: 7", 6 / 9),
        ("**SCORE:** 10", 1.0),
        ("Score = 1", 0.0),
        ("SCORE: 3\nOn reflection... SCORE: 5", 4 / 9),
        ("SCORE: 8/10", 7 / 9),
        ("SCORE: 4/5", None),
        ("SCORE: 11", None),
        ("I would give it a 7", None),
    ],
)
def test_read_score(reply: str, expected: float | None) -> None:
    score, _ = read_score(reply)
    assert score == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("VERDICT: A", "A"),
        ("verdict: b", "B"),
        ("**Verdict:** [[TIE]]", "TIE"),
        ("VERDICT: Answer B.", "B"),
        ("A is better. VERDICT: B", "B"),
        ("VERDICT: Both", None),
        ("A is better", None),
    ],
)
def test_read_preference(reply: str, expected: str | None) -> None:
    assert read_preference(reply) == expected


async def test_is_cached_says_whether_a_verdict_would_call(judge_server, tmp_path: Path) -> None:
    server = judge_server(fair)
    judge = opened(PairwiseJudge(settings(server), cache_dir=tmp_path, prices=(1e-3, 2e-3)))
    assert judge.is_cached(PROMPT, "42", "42")  # the anchor itself needs no call
    assert not judge.is_cached(PROMPT, "It is 42.", "It is 41.")
    verdict = await judge.agrade(PROMPT, "It is 42.", "It is 41.")
    usage = completion("")["usage"]
    assert verdict.cost == pytest.approx(
        2 * (1e-3 * usage["prompt_tokens"] + 2e-3 * usage["completion_tokens"])
    )
    assert judge.is_cached(PROMPT, "It is 42.", "It is 41.") and judge.is_cached(
        PROMPT, "It is 41.", "It is 42."
    )
    absolute = opened(AbsoluteJudge(settings(server), cache_dir=tmp_path))
    assert not absolute.is_cached(PROMPT, "It is 42.", "42")
    assert server.total_calls == 2
    with pytest.raises(InputError, match="prices"):
        AbsoluteJudge(settings(server), prices=(-1.0, 0.0))


def test_a_judge_deployment_is_priced_by_its_base_model_as_the_models_are(tmp_path: Path) -> None:
    from uniroute.build.judges import judge_settings
    from uniroute.build.models import deployments_from_config

    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        + "".join(
            f"  - model_name: {name}\n"
            f"    litellm_params: {{model: azure/my-{name}-deployment, api_base: http://127.0.0.1:9}}\n"
            "    model_info: {base_model: azure/gpt-4o}\n"
            for name in ("team", "judge")
        )
    )
    (model,), _ = deployments_from_config(config, "team")
    settings, prices = judge_settings("judge", config)
    # before, the judge had none: the build refused it ("no price for the judge"), the model was priced
    assert settings.model == "azure/my-judge-deployment" and prices == model.prices is not None
