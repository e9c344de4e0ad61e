"""The onboarding runner against a fake OpenAI-compatible server on 127.0.0.1, through LiteLLM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onboarding_fakes import FakeLLMServer, completion, settings_for, toy_answer

from uniroute import InputError, Router
from uniroute.onboarding import OnboardingError, ValidationItem, estimate, onboard, settings_from_config
from uniroute.onboarding.cache import ResponseCache, cache_file
from uniroute.onboarding.report import psi_table

pytestmark = pytest.mark.integration  # every test starts a local HTTP server


def good(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
    return 200, completion(toy_answer(prompt)), 0.0


def state_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def run(items: list[ValidationItem], state: Path, server: FakeLLMServer, tmp_path: Path, **kwargs: Any):
    settings = settings_for(server, **kwargs.pop("settings", {}))
    options = {"name": "newbie", "cost": 0.0005, "cache_dir": tmp_path / "cache", "progress": False}
    return onboard(items, state, settings, **(options | kwargs))


def test_onboard_writes_psi_and_routes_to_the_new_model_where_it_is_strong(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path, toy_data: dict
) -> None:
    server = fake_server(good)
    result = run(toy_items, toy_state, server, tmp_path)
    assert result.accuracy == pytest.approx(0.5)
    distinct = len({item.prompt for item in toy_items})
    assert result.n_failed == 0 and result.n_cached == 0 and result.spent == pytest.approx(0.0005 * distinct)
    router = Router.load(toy_state)
    assert set(router.models) == {"mathbot", "poet", "big", "newbie"}
    profile = router.profile("newbie")
    assert profile.n_results == pytest.approx(60) and profile.cost == pytest.approx(0.0005)
    math_prompt = toy_data["prompts"][0]
    poem_prompt = toy_data["prompts"][-1]
    assert router.route(math_prompt, lam=10.0, candidates=["newbie", "big"]).model == "newbie"
    assert router.route(poem_prompt, lam=10.0, candidates=["newbie", "big"]).model == "big"
    assert "* newbie" in result.table and "wrote" in result.summary()
    assert server.total_calls == distinct


def test_cache_resumes_and_a_changed_prompt_is_called_again(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)
    run(toy_items, toy_state, server, tmp_path)
    distinct = server.total_calls
    changed = [*toy_items[:-1], ValidationItem(toy_items[-1].prompt + " Please.", "yes", "exact")]
    again = run(changed, toy_state, server, tmp_path, replace=True)
    assert again.n_cached == 59 and server.total_calls == distinct + 1
    assert again.spent == pytest.approx(0.0005)
    other_params = run(
        toy_items[:3], toy_state, server, tmp_path, replace=True, settings={"params": {"seed": 1}}
    )
    assert other_params.n_cached == 0 and server.total_calls == distinct + 4


def test_cached_answers_are_graded_concurrently(
    fake_server,
    toy_state: Path,
    toy_items: list[ValidationItem],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rerun grades its cached answers side by side: a judge grader is not asked one answer at a time."""
    from uniroute.onboarding import graders, runner

    server = fake_server(good)
    run(toy_items, toy_state, server, tmp_path)
    grading = {"now": 0, "peak": 0}

    class Overlapping(graders.GraderSet):
        async def grade(self, response: str, item: ValidationItem) -> tuple[float, str | None]:
            grading["now"] += 1
            grading["peak"] = max(grading["peak"], grading["now"])
            await asyncio.sleep(0)  # a judge call would wait here
            grading["now"] -= 1
            return await super().grade(response, item)

    monkeypatch.setattr(runner, "GraderSet", Overlapping)
    calls = server.total_calls
    again = run(toy_items, toy_state, server, tmp_path, replace=True)
    assert again.n_cached == len(toy_items) and server.total_calls == calls
    assert again.accuracy == pytest.approx(0.5)
    assert grading["peak"] > 1


def test_cached_answers_do_not_hide_a_dead_endpoint(toy_items: list[ValidationItem], tmp_path: Path) -> None:
    """Cached answers graded between failed calls say nothing of the endpoint: the failure streak stands."""
    from tqdm.auto import tqdm

    from uniroute.onboarding.runner import Outcome, _FatalCallError, _Run
    from uniroute.onboarding.settings import CallSettings

    settings = CallSettings("openai/newbie", max_consecutive_failures=3)
    with ResponseCache(tmp_path / "cache.jsonl") as cache, tqdm(disable=True) as bar:
        run = _Run(toy_items, settings, cache, 0.001, bar)
        run.record(0, Outcome("failed", error="500"))
        run.record(1, Outcome("cached", score=1.0))
        run.record(2, Outcome("failed", error="500"))
        run.record(3, Outcome("cached", score=1.0))
        with pytest.raises(_FatalCallError, match="3 prompts failed in a row"):
            run.record(4, Outcome("failed", error="500"))


def test_a_cache_cut_mid_line_is_recovered(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)
    run(toy_items, toy_state, server, tmp_path)
    distinct = len(server.calls)
    path = cache_file("openai/newbie", tmp_path / "cache")
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == distinct
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])
    with pytest.warns(UserWarning, match="dropped 1 damaged line"):
        result = run(toy_items, toy_state, server, tmp_path, replace=True)
    lost = json.loads(lines[-1])["id"]
    assert server.total_calls == distinct + 1
    assert result.n_cached == 60 - sum(
        i.prompt == toy_items[int(lost.split("-")[1])].prompt for i in toy_items
    )
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == distinct and len({r["key"] for r in records}) == distinct


@pytest.mark.parametrize(
    "change", [{"response": 5}, {"response": {"text": "yes"}}, {"usage": ["a", 1]}, {"cost": "x"}, {"key": 7}]
)
def test_a_cache_record_with_a_field_of_the_wrong_type_is_skipped_and_called_again(
    fake_server, toy_items: list[ValidationItem], tmp_path: Path, change: dict[str, Any]
) -> None:
    from uniroute.onboarding.runner import AnswerJob, collect_answers

    server = fake_server(good)
    job = AnswerJob("a", settings_for(server), prices=(1e-6, 1e-6))
    asyncio.run(collect_answers([job], toy_items, cache_dir=tmp_path, progress=False))
    distinct = len(server.calls)
    path = cache_file("openai/newbie", tmp_path)
    lines = path.read_text().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]) | change)
    path.write_text("\n".join(lines) + "\n")
    # before, an answer that was not text crashed the run (AttributeError: 'int' object has no attribute
    # 'strip'), a usage that was not numbers crashed re-pricing (ValueError), the rest were used as they were
    with pytest.warns(UserWarning, match="dropped 1 damaged line"):
        (again,) = asyncio.run(collect_answers([job], toy_items, cache_dir=tmp_path, progress=False))
    assert server.total_calls == distinct + 1 and again.count("answered") + again.count("cached") == 60
    assert all(isinstance(o.text, str) and o.cost is not None and o.cost > 0 for o in again.outcomes)


def test_429_and_500_for_a_while_are_retried_then_counted_as_missing(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    always_down = {item.prompt for item in toy_items[:30:10]}

    def flaky(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        if prompt in always_down:
            return 500, None, 0.0
        if attempt <= 2:
            return (429 if attempt == 1 else 503), None, 0.0
        return 200, completion(toy_answer(prompt)), 0.0

    server = fake_server(flaky)
    result = run(toy_items, toy_state, server, tmp_path, settings={"max_retries": 3})
    assert result.n_failed == 3
    assert result.failures == {"500 InternalServerError after 4 attempts": 3}
    assert "3 prompt(s) failed (500 InternalServerError after 4 attempts: 3)" in result.summary()
    assert "missing, not wrong" in result.summary()
    assert np.isnan(result.scores[:30:10]).all() and np.isfinite(result.scores).sum() == 57
    assert result.accuracy == pytest.approx(27 / 57)
    onboarded = Router.load(toy_state).profile("newbie")
    answered = np.flatnonzero(np.isfinite(result.scores))
    only_answered = Router.load(toy_state).add_model(
        "check", [toy_items[i].prompt for i in answered], result.scores[answered], 0.0005
    )  # failed prompts are left out of Ψ, exactly as if they had not been asked
    np.testing.assert_allclose(onboarded.counts, only_answered.counts)
    np.testing.assert_allclose(onboarded.error_sums, only_answered.error_sums)
    assert all(server.calls[p] == 4 for p in always_down)
    assert all(server.calls[p] >= 3 for p in server.calls if p not in always_down)


def test_timeouts_fail_the_slow_prompts_only(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    slow = toy_items[0].prompt
    release = threading.Event()

    def sluggish(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        if prompt == slow:
            release.wait(timeout=60)  # never answers in time: no race with the client's timeout
        return 200, completion(toy_answer(prompt)), 0.0

    server = fake_server(sluggish)
    try:
        result = run(toy_items[:8], toy_state, server, tmp_path, settings={"timeout": 2.0, "max_retries": 1})
    finally:
        release.set()
    assert result.n_failed == 1 and server.calls[slow] == 2
    assert list(result.failures) == ["408 Timeout after 2 attempts"]
    assert np.isnan(result.scores[0]) and np.isfinite(result.scores[1:]).all()


def test_empty_and_non_text_answers_are_graded_not_failed(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    tool_call = completion(None)
    tool_call["choices"][0]["message"]["tool_calls"] = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    replies = {0: completion(""), 1: completion(None), 2: tool_call, 3: completion("   ")}
    index = {item.prompt: i for i, item in enumerate(toy_items)}

    def odd(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        return 200, replies.get(index[prompt], completion("yes")), 0.0

    server = fake_server(odd)
    result = run(toy_items[:6], toy_state, server, tmp_path)
    assert result.n_failed == 0 and result.n_empty == 4
    assert result.scores.tolist() == [0, 0, 0, 0, 1, 1]
    assert "4 answer(s) were empty" in result.summary()


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_leaves_the_state_untouched_and_keeps_the_cache(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    interrupted = []

    def interrupting(
        prompt: str, attempt: int, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None, float]:
        if sum(server.calls.values()) == 6 and not interrupted:
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        return 200, completion(toy_answer(prompt)), 0.0

    server = fake_server(interrupting)
    before = state_bytes(toy_state)
    with pytest.raises(KeyboardInterrupt):
        run(toy_items, toy_state, server, tmp_path, settings={"concurrency": 1})
    assert state_bytes(toy_state) == before
    cached, damaged = ResponseCache.read(cache_file("openai/newbie", tmp_path / "cache"))
    assert 1 <= len(cached) < 60 and damaged == 0
    calls_before = server.total_calls
    result = run(toy_items, toy_state, server, tmp_path)
    keys = [settings_for(server).cache_key(item) for item in toy_items]
    assert result.n_cached == sum(key in cached for key in keys)
    assert server.total_calls - calls_before == len(set(keys)) - len(cached)
    assert "newbie" in Router.load(toy_state).models


def test_a_model_in_the_state_is_refused_unless_replace(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)
    before = state_bytes(toy_state)
    with pytest.raises(InputError, match=r"'big' is already in .*--replace"):
        run(toy_items, toy_state, server, tmp_path, name="big")
    assert server.total_calls == 0 and state_bytes(toy_state) == before
    result = run(toy_items, toy_state, server, tmp_path, name="big", replace=True)
    assert Router.load(toy_state).profile("big").global_error == pytest.approx(result.profile.global_error)


def test_a_dead_endpoint_stops_the_run(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    before = state_bytes(toy_state)
    unauthorised = fake_server(lambda p, a, b: (401, None, 0.0))
    with pytest.raises(OnboardingError, match=r"401 AuthenticationError.*state is unchanged"):
        run(toy_items, toy_state, unauthorised, tmp_path)
    down = fake_server(lambda p, a, b: (500, None, 0.0))
    with pytest.raises(OnboardingError, match="5 prompts failed in a row"):
        run(
            toy_items,
            toy_state,
            down,
            tmp_path,
            settings={"max_consecutive_failures": 5, "max_retries": 1, "concurrency": 1},
        )
    assert down.total_calls == 10
    bad_request = fake_server(lambda p, a, b: (400, None, 0.0))
    with pytest.raises(OnboardingError, match="no answer of 'newbie' could be graded"):
        run(toy_items[:3], toy_state, bad_request, tmp_path)
    assert bad_request.total_calls == 3
    assert state_bytes(toy_state) == before
    healthy = fake_server(good)  # "fix the cause and run the same command again"
    assert run(toy_items, toy_state, healthy, tmp_path).n_graded == 60


def test_a_missing_api_key_stops_at_once_and_says_how_to_pass_one(
    fake_server,
    toy_state: Path,
    toy_items: list[ValidationItem],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = fake_server(good)
    before = state_bytes(toy_state)
    with pytest.raises(OnboardingError, match=r"no API key for 'openai/newbie'.*--api-key-env"):
        run(toy_items, toy_state, server, tmp_path, settings={"api_key": None, "backoff": 1.0})
    assert server.total_calls == 0 and state_bytes(toy_state) == before


def test_unpriced_model_needs_a_cost(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)
    with pytest.raises(InputError, match=r"no price for 'openai/newbie'.*--cost"):
        run(toy_items, toy_state, server, tmp_path, cost=None)
    with pytest.raises(InputError, match="cost must be"):
        run(toy_items, toy_state, server, tmp_path, cost=-1.0)


def test_dry_run_estimate_counts_tokens_and_skips_cached(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)
    settings = settings_for(server)
    first = estimate(toy_items, settings, cost=0.001, cache_dir=tmp_path / "cache", output_tokens=10)
    assert (first.n_items, first.n_cached, first.completion_tokens) == (60, 0, 600)
    assert first.dollars == pytest.approx(0.06) and first.prompt_tokens > 60 * 5
    assert server.total_calls == 0
    run(toy_items[:20], toy_state, server, tmp_path)
    second = estimate(toy_items, settings, cost=0.001, cache_dir=tmp_path / "cache", output_tokens=10)
    assert second.n_cached == 20 and second.dollars == pytest.approx(0.04)
    unpriced = estimate(toy_items[:2], settings, cache_dir=tmp_path)
    assert unpriced.dollars is None and "no price" in unpriced.summary()


def test_litellm_prices_are_used_when_known(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)
    settings = settings_for(server)
    settings.model = "openai/gpt-4o-mini"
    result = onboard(toy_items[:4], toy_state, settings, name="mini", cache_dir=tmp_path, progress=False)
    assert 0 < result.cost < 0.001 and result.spent == pytest.approx(4 * result.cost)
    assert "mini" in psi_table(Router.load(toy_state), "mini")


def test_psi_table_of_many_clusters_runs_them_down_and_counts_results() -> None:
    from uniroute import ModelProfile

    k = 20
    new = ModelProfile("new", np.full(k, 1.0), np.full(k, 5.0), 1.0)  # 5 thirds of a result a cluster
    old = ModelProfile("old", np.full(k, 2.0), np.full(k, 5.0), 1.0)
    lines = psi_table({"old": old, "new": new}, "new", n_maps=3).splitlines()
    assert lines[0].split() == ["cluster", "n", "m0", "m1"]
    assert [line.split()[:2] for line in lines[1 : k + 1]] == [[str(c), "15"] for c in range(k)]
    assert lines[k + 1].split()[:2] == ["all", "100"] and lines[-2:] == ["m0: * new", "m1: old"]
    few = ModelProfile("new", np.full(4, 1.0), np.full(4, 5.0), 1.0)
    narrow = psi_table({"new": few}, "new").splitlines()  # up to 16 clusters: a row per model
    assert narrow[1].split() == ["n", "(new", "model)", "5", "5", "5", "5", "20"] and len(narrow) == 3


def test_deployment_from_a_litellm_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIROUTE_TEST_KEY", "sk-from-env")
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: cheap\n"
        "    litellm_params:\n"
        "      model: openai/newbie\n"
        "      api_base: http://127.0.0.1:9/v1\n"
        "      api_key: os.environ/UNIROUTE_TEST_KEY\n"
        "      timeout: 7\n"
        "      temperature: 0\n"
    )
    settings = settings_from_config(config, "cheap", concurrency=2, max_retries=None)
    assert (settings.model, settings.api_base, settings.api_key) == (
        "openai/newbie",
        "http://127.0.0.1:9/v1",
        "sk-from-env",
    )
    assert settings.timeout == 7 and settings.params == {"temperature": 0} and settings.concurrency == 2
    assert settings.max_retries == 4
    with pytest.raises(InputError, match=r"no deployment named 'pricey'.*\['cheap'\]"):
        settings_from_config(config, "pricey")
    monkeypatch.delenv("UNIROUTE_TEST_KEY")
    with pytest.raises(InputError, match="UNIROUTE_TEST_KEY"):
        settings_from_config(config, "cheap")


def test_a_new_endpoint_or_setting_never_reuses_old_answers(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    old = fake_server(good)
    first = run(toy_items, toy_state, old, tmp_path)
    assert first.accuracy == pytest.approx(0.5)
    always_right = fake_server(lambda p, a, b: (200, completion("yes"), 0.0))
    moved = run(toy_items, toy_state, always_right, tmp_path, replace=True)
    distinct = len({item.prompt for item in toy_items})
    assert moved.n_cached == 0 and always_right.total_calls == distinct
    assert moved.accuracy == 1.0
    again = run(toy_items, toy_state, always_right, tmp_path, replace=True)
    assert again.n_cached == 60 and always_right.total_calls == distinct
    hotter = run(
        toy_items[:3], toy_state, always_right, tmp_path, replace=True, settings={"params": {"top_p": 0.5}}
    )
    assert hotter.n_cached == 0 and always_right.total_calls == distinct + 3
    key = settings_for(always_right).cache_key
    assert key(toy_items[0]) == key(toy_items[0].messages())
    assert key(toy_items[0]) != settings_for(old).cache_key(toy_items[0])


def test_two_runs_on_one_state_both_land(
    fake_server,
    toy_state: Path,
    toy_items: list[ValidationItem],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both runs reach the write together (a barrier); the lock and the re-read keep both models."""
    server = fake_server(good)
    together = threading.Barrier(2, timeout=8)
    add_model = Router.add_model

    def add_model_together(self: Router, *args: Any, **kwargs: Any) -> Any:
        try:
            together.wait()
        except threading.BrokenBarrierError:
            pass  # the other run holds the lock: it cannot get here first
        return add_model(self, *args, **kwargs)

    monkeypatch.setattr(Router, "add_model", add_model_together)
    results: dict[str, Any] = {}

    def onboard_as(name: str) -> None:
        try:
            results[name] = run(
                toy_items, toy_state, server, tmp_path, name=name, settings={"model": f"openai/{name}"}
            )
        except BaseException as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=onboard_as, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert all(not isinstance(r, BaseException) for r in results.values()), results
    assert set(Router.load(toy_state).models) == {"mathbot", "poet", "big", "first", "second"}


def test_onboard_works_inside_a_running_event_loop(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    server = fake_server(good)

    async def notebook_cell() -> Any:
        return run(toy_items[:10], toy_state, server, tmp_path)

    result = asyncio.run(notebook_cell())
    assert result.n_graded == 10 and "newbie" in Router.load(toy_state).models


def test_aonboard_can_be_awaited(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    from uniroute.onboarding import aonboard

    server = fake_server(good)
    result = asyncio.run(
        aonboard(
            toy_items[:10],
            toy_state,
            settings_for(server),
            name="awaited",
            cost=0.001,
            progress=False,
            cache_dir=tmp_path,
        )
    )
    assert result.n_graded == 10 and "awaited" in Router.load(toy_state).models


def test_a_budget_reserves_before_each_call_and_counts_what_was_spent() -> None:
    from uniroute.onboarding.pricing import Budget

    budget = Budget(1.0)
    assert budget.reserve(0.6) and not budget.reserve(0.5)  # 0.6 in flight + 0.5 could exceed 1.0
    budget.settle(0.6, 0.1)  # the call cost less than its bound
    assert budget.spent == pytest.approx(0.1) and budget.reserved == 0.0
    assert budget.reserve(0.5) and budget.reserve(0.4) and not budget.reserve(0.01)
    budget.settle(0.5, None)  # an unpriced answer counts its whole bound
    budget.settle(0.4, 0.0)  # a failed call costs nothing
    assert budget.spent == pytest.approx(0.6) and budget.refused == 2 and budget.exhausted
    unlimited = Budget()
    assert all(unlimited.reserve(1e9) for _ in range(3)) and not unlimited.exhausted


def test_collect_answers_runs_several_models_under_one_budget_and_a_dead_one_does_not_stop_the_rest(
    fake_server, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    from uniroute.onboarding.pricing import Budget
    from uniroute.onboarding.runner import AnswerJob, collect_answers

    def script(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        return (401, None, 0.0) if body["model"] == "locked" else good(prompt, attempt, body)

    server = fake_server(script)
    jobs = [
        AnswerJob("a", settings_for(server, model="openai/a"), prices=(1e-3, 1e-3)),
        AnswerJob("locked", settings_for(server, model="openai/locked"), cost=0.01),
        AnswerJob("b", settings_for(server, model="openai/b"), cost=0.001),
    ]
    budget = Budget(None)
    answers = asyncio.run(collect_answers(jobs, toy_items, cache_dir=tmp_path, budget=budget, progress=False))
    a, locked, b = answers
    distinct = len({item.prompt for item in toy_items})
    assert a.count("answered") == b.count("answered") == 60 and a.stopped is None
    assert locked.stopped and "401" in locked.stopped and locked.count("failed") == 60
    assert a.outcomes[0].text in ("yes", "no") and np.isnan(a.outcomes[0].score)  # answers only, not graded
    assert a.outcomes[0].cost == pytest.approx(1e-3 * (10 + 1))  # usage (10 in, 1 out) at its prices
    # plus the bound ($0.01) of each call of 'locked' still in flight when its first 401 stopped it
    cancelled = (budget.spent - distinct * (11e-3 + 0.001)) / 0.01
    assert cancelled == pytest.approx(round(cancelled)) and 0 <= round(cancelled) <= 4  # its concurrency
    again = asyncio.run(
        collect_answers(jobs[::2], toy_items, cache_dir=tmp_path, budget=Budget(0.0), progress=False)
    )
    assert [x.count("cached") for x in again] == [60, 60]  # cached answers need no budget


def test_collect_answers_stops_calling_when_the_budget_could_be_exceeded(
    fake_server, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    from uniroute.onboarding.pricing import Budget
    from uniroute.onboarding.runner import AnswerJob, collect_answers

    server = fake_server(good)
    budget = Budget(0.0105)
    job = AnswerJob("a", settings_for(server, model="openai/a", concurrency=1), cost=0.001)
    (answers,) = asyncio.run(
        collect_answers([job], toy_items, cache_dir=tmp_path, budget=budget, progress=False)
    )
    assert answers.count("answered") == 10 and answers.count("unpaid") == 50 and server.total_calls == 10
    assert budget.spent == pytest.approx(0.01) and budget.spent <= 0.0105


def test_the_state_records_the_traffic_price_as_a_build_does(
    fake_server, toy_state: Path, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    """A validation set sampled per cluster is not the traffic: a build weighs each cluster's mean $
    by the cluster's share of the traffic, onboarding took a plain mean (here 20 cheap math prompts
    and 5 dear poems, the traffic half and half)."""

    def by_topic(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        tokens = 10 if prompt.startswith("Arithmetic") else 1000
        usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return 200, completion(toy_answer(prompt)) | {"usage": usage}, 0.0

    from uniroute.onboarding.pricing import litellm_price

    server = fake_server(by_topic)
    items = toy_items[:20] + toy_items[-5:]
    settings = settings_for(server, model="openai/gpt-4o-mini")  # priced by LiteLLM
    result = onboard(items, toy_state, settings, name="mini", cache_dir=tmp_path / "cache", progress=False)
    cheap, dear = (litellm_price(settings.model, tokens, 0) for tokens in (10, 1000))
    traffic = 0.5 * cheap + 0.5 * dear  # the toy map's two clusters hold half the prompts each
    profile = Router.load(toy_state).profile("mini")
    assert result.cost == pytest.approx(traffic, rel=1e-3)
    assert profile.cost == pytest.approx(traffic, rel=1e-3)
    assert profile.cost_per_char > 0  # and it moves with the prompt's length, as the build's prices do


def test_a_validation_item_without_text_counts_on_the_cluster_prior(
    toy_state: Path, toy_items: list[ValidationItem]
) -> None:
    """An image-only item is routed on the cluster prior, so it is profiled there too (and priced in
    the prior's cluster); the runner had weighted it by the embedding of ""."""
    from uniroute.engine.profiles import profile_from_scores
    from uniroute.onboarding.runner import _write_profile

    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    items = [*toy_items[:3], ValidationItem([{"role": "user", "content": image}], "yes", "exact")]
    scores, costs = np.array([1.0, 1.0, 1.0, 0.0]), np.array([0.001, 0.001, 0.001, 0.002])
    profile, router = _write_profile(toy_state, "seer", items, scores, costs, False)
    prior = router.cluster_map_.cluster_weights_
    phi = np.vstack([router.cluster_probs(router.embed([i.prompt for i in items[:3]])), prior])
    want = profile_from_scores("seer", phi, scores, 0.001, profile.prior_strength, reference=prior)
    np.testing.assert_allclose(profile.error_sums, want.error_sums)
    np.testing.assert_allclose(profile.counts, want.counts)


def test_calls_cancelled_in_flight_count_their_bound_against_a_shared_budget(
    fake_server, toy_items: list[ValidationItem], tmp_path: Path
) -> None:
    """When one model's run stops (here a 401), its calls in flight are cancelled while the other
    models go on under the same budget. A cancelled call may still be billed; it was settled at $0,
    so the budget the others go on with was short by those calls and the cap could be exceeded."""
    from uniroute.onboarding.pricing import Budget
    from uniroute.onboarding.runner import AnswerJob, collect_answers

    def script(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        if prompt == toy_items[0].prompt:
            return 401, None, 0.5  # answers after the others were sent
        return 200, completion(toy_answer(prompt)), 2.0  # still in flight when the run stops

    server = fake_server(script)
    job = AnswerJob("dead", settings_for(server, model="openai/dead", concurrency=4), cost=0.01)
    budget = Budget(1.0)
    (answers,) = asyncio.run(
        collect_answers([job], toy_items[:4], cache_dir=tmp_path, budget=budget, progress=False)
    )
    assert answers.stopped and "401" in answers.stopped
    assert budget.reserved == 0.0 and budget.spent == pytest.approx(3 * 0.01)  # the 401 itself costs $0
