"""``uniroute.build.build`` against a pool of fake models on 127.0.0.1, through LiteLLM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from build_fakes import (
    ABSOLUTE_TEMPLATE,
    PAIRWISE_TEMPLATE,
    FakePool,
    make_log_rows,
    pool_with_judge,
    right_answer,
    skill_answer,
    write_config,
    write_log,
)

from uniroute import HashingEmbedder, InputError, Router
from uniroute.build import BuildResult, build
from uniroute.build.judges import judge_settings
from uniroute.build.pipeline import traffic_cost
from uniroute.cli import main
from uniroute.datasets import load_dataset
from uniroute.engine.cluster_maps import KMeansClusterMap
from uniroute.engine.profiles import fit_price
from uniroute.onboarding import CallSettings, load_validation, onboard
from uniroute.onboarding.cache import ResponseCache, cache_file

pytestmark = pytest.mark.integration  # every test starts a local HTTP server

FAST = {"max_retries": 0, "concurrency": 2, "backoff": 0.01, "timeout": 10.0}


@pytest.fixture()
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePool]:
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    with FakePool() as server:
        yield server


def run(log: Path, config: Path, out: Path, **options: Any) -> BuildResult:
    settings = {
        "config": config,
        "group": "team",
        "per_cluster": 8,
        "clusters": 2,
        "embedder": HashingEmbedder(),
        "progress": False,
        "call": FAST,
    }
    return build(log, out, **(settings | options))


def pairs(result_items: int, models: int) -> int:
    return result_items * models


def test_build_profiles_every_deployment_and_writes_state_validation_results_and_report(
    pool: FakePool, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    result = run(log, config, tmp_path / "out")
    assert result.complete and result.n_items == 16 and result.sampled == [10, 6]  # by the log's 60/40 split
    assert result.calls == 48 and result.cached == 0 and result.failed == 0 and pool.total == 48
    assert set(pool.per_model()) == {"mathy", "geo", "big"}
    router = Router.load(tmp_path / "out" / "state")
    assert set(router.models) == {"mathy", "geo", "big"}
    math_prompt, geo_prompt = make_log_rows()[0]["prompt"], make_log_rows()[-1]["prompt"]
    assert router.route(math_prompt, lam=5000.0).model == "mathy"  # right there, and ten times cheaper
    assert router.route(geo_prompt, lam=5000.0).model == "geo"
    assert router.route(geo_prompt, lam=0.0, candidates=["mathy", "big"]).model == "big"
    # $ measured from usage at the config's prices, and the router's cost is the mean per answer
    spent = sum(
        (len(p.split()) * (1e-5 if m == "big" else 1e-6) + len(a.split()) * (2e-5 if m == "big" else 2e-6))
        for (m, p) in pool.calls
        for a in [
            right_answer(p)
            if m == "big" or (m == "mathy") == p.startswith("Arithmetic")
            else "I am not sure."
        ]
    )
    assert result.spent == pytest.approx(spent)
    items = load_validation(result.paths["validation"])
    assert len(items) == 16 and {i.grader for i in items} == {"exact"} and all(i.reference for i in items)
    results = load_dataset(result.paths["results"])
    assert results.models == ("mathy", "geo", "big") and np.nanmean(results.scores[:, 2]) == 1.0
    meta = json.loads(result.paths["build"].read_text())
    clusters = np.array([int(task.split("-")[1]) for task in results.tasks])
    assert meta["cluster_shares"] == [0.6, 0.4]  # 24 arithmetic and 16 geography prompts in the log
    shares = np.array(meta["cluster_shares"])
    big = traffic_cost(results.costs[:, 2], clusters, shares)
    assert router.profile("big").cost == pytest.approx(big) == pytest.approx(meta["cost_per_request"]["big"])
    # ... at the traffic's mean prompt length, moving with the prompt's length as the answers' $ did
    chars = np.array([len(p) for p in results.prompts], dtype=float)
    slope = fit_price(chars, results.costs[:, 2]).per_char
    assert slope > 0 and router.profile("big").cost_per_char == pytest.approx(slope)
    assert meta["cost_per_char"]["big"] == pytest.approx(slope)
    assert router.profile("big").mean_chars == pytest.approx(traffic_cost(chars, clusters, shares))
    html = result.paths["report"].read_text(encoding="utf-8")
    assert "mathy" in html and "<script" not in html and result.paths["summary"].is_file()
    assert meta["grading"] == "reference:exact" and set(meta["models"]) == {"mathy", "geo", "big"}
    assert "48 call(s) made" in result.summary()
    with pytest.raises(InputError, match="pass --update"):
        run(log, config, tmp_path / "out")


def test_dry_run_calls_nothing_and_writes_nothing(pool: FakePool, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    result = run(log, config, tmp_path / "out", dry_run=True)
    assert pool.total == 0 and not (tmp_path / "out").exists()
    assert result.dry_run and not result.complete
    text = "\n".join(result.estimates)
    assert "mathy: 16 prompts, 0 already cached, 16 to call" in text and "total: ≤ 48 call(s)" in text
    equal = run(log, config, tmp_path / "out", dry_run=True, allocation="per-cluster")
    assert equal.sampled == [8, 8] and equal.n_items == 16  # the same 16, split evenly


def test_a_deployment_that_fails_every_call_is_left_out_and_reported(pool: FakePool, tmp_path: Path) -> None:
    pool.failing.add("geo")
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    result = run(log, config, tmp_path / "out")
    assert result.complete and result.models == ["big", "mathy"]
    assert "geo" in result.left_out and "500" in result.left_out["geo"] and result.failed == 16
    assert set(Router.load(tmp_path / "out" / "state").models) == {"mathy", "big"}
    assert "left out geo: every call failed" in result.summary()


def test_a_deployment_whose_run_stops_midway_is_left_out_and_a_rerun_resumes_it(
    pool: FakePool, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    script = pool.script

    def dies(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        if body["model"] == "geo" and pool.per_model()["geo"] >= 3:
            return 500, None, 0.0  # the endpoint dies after 3 answers
        return script(prompt, attempt, body)

    pool.server.script = dies
    serial = FAST | {"concurrency": 1, "max_consecutive_failures": 3}
    first = run(log, config, tmp_path / "first", call=serial)
    # before, geo was profiled on its 3 answers and the summary did not say its run had stopped
    assert first.complete and first.models == ["big", "mathy"]
    assert first.left_out["geo"].startswith("its run stopped after 3 answer(s): 3 prompts failed in a row")
    assert set(Router.load(tmp_path / "first" / "state").models) == {"mathy", "big"}
    pool.server.script = script
    again = run(log, config, tmp_path / "again", call=serial, cache_dir=tmp_path / "first" / "cache")
    assert again.complete and again.models == ["big", "geo", "mathy"] and again.cached == 16 + 16 + 3


def test_an_exhausted_budget_stops_before_it_and_a_rerun_pays_only_the_rest(
    pool: FakePool, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    whole = run(log, config, tmp_path / "whole").spent  # what the build costs, in its own cache
    pool.calls.clear()
    budget = whole / 2
    first = run(log, config, tmp_path / "out", budget=budget)
    assert first.stopped and "larger --budget" in first.stopped and not first.complete
    assert 0 < first.spent <= budget and first.unpaid > 0 and first.calls + first.unpaid == 48
    assert not (tmp_path / "out" / "state").exists() and (tmp_path / "out" / "validation.jsonl").is_file()
    assert pool.total == first.calls
    assert f"≈ ${first.remaining:.4f}" in first.stopped
    second = run(log, config, tmp_path / "out", budget=first.remaining)  # what the message says is left
    assert second.complete and second.cached == first.calls and second.calls == 48 - first.calls
    assert pool.total == 48 and max(pool.calls.values()) == 1  # no answer paid twice
    assert first.spent + second.spent == pytest.approx(whole)


def test_update_tops_up_new_prompts_adds_new_models_and_removes_dropped_ones(
    pool: FakePool, tmp_path: Path
) -> None:
    rows = make_log_rows(n_math=10, n_geo=8)
    log = write_log(tmp_path / "log.jsonl", rows)
    config = write_config(tmp_path / "config.yaml", pool.url, models=("mathy", "geo"))
    first = run(log, config, tmp_path / "out", per_cluster=12, allocation="per-cluster")
    assert first.n_items == 18 and pool.total == 36
    centres = Router.load(tmp_path / "out" / "state").cluster_map_.cluster_centers_.copy()
    more = make_log_rows(n_math=16, n_geo=8, seed=5)[:16]  # six... new arithmetic prompts
    write_log(log, rows + more)
    write_config(tmp_path / "config.yaml", pool.url, models=("mathy", "big"))
    before = pool.per_model()
    second = run(log, config, tmp_path / "out", per_cluster=12, allocation="per-cluster", update=True)
    after = pool.per_model()
    router = Router.load(tmp_path / "out" / "state")
    assert set(router.models) == {"mathy", "big"} and second.removed == ["geo"]
    np.testing.assert_array_equal(router.cluster_map_.cluster_centers_, centres)  # the map is kept
    new_items = second.n_items - first.n_items
    assert new_items > 0 and all(s <= 12 or s == a for s, a in zip(second.sampled, second.available))
    assert after["mathy"] - before["mathy"] == new_items  # only the new prompts
    assert after["big"] == second.n_items and after["geo"] == before["geo"]
    assert second.cached == first.n_items and max(pool.calls.values()) == 1


def test_update_sample_reads_the_logs_prompts_once_not_once_per_earlier_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--update looks each earlier item up among the logged prompts in one set; building that set per
    item made the sample O(items x prompts): 80 s at 160,000 prompts and 7,750 earlier items."""
    from uniroute.build import pipeline
    from uniroute.build.prompts import read_prompt_log

    log = read_prompt_log(write_log(tmp_path / "log.jsonl", make_log_rows(n_math=30, n_geo=16)))
    router = Router(HashingEmbedder(), KMeansClusterMap(2, random_state=0))
    sample = ("per-cluster", 0, "exact", {}, False)
    first = pipeline._sample(router, True, log, log.prompts, [], 8, *sample)
    gone = replace(first.items[0], prompt="Arithmetic: a prompt no longer in the log.", id="old")
    sizes: list[int] = []

    def counting_set(*args: Any) -> set[Any]:
        built = set(*args)
        sizes.append(len(built))
        return built

    monkeypatch.setattr(pipeline, "set", counting_set, raising=False)
    earlier = [*first.items, gone]
    again = pipeline._sample(router, False, log, log.prompts, earlier, 8, *sample)
    assert again.items == earlier  # the earlier sample kept, the item no longer logged too
    assert sizes.count(len(log.prompts)) == 1


def test_update_refuses_other_grader_options_so_gradings_do_not_mix(pool: FakePool, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    run(log, config, tmp_path / "out")
    calls = pool.total
    # before, the earlier items kept their options and the new ones took these: two gradings in one Ψ
    with pytest.raises(InputError, match=r"grader options \{\} -> \{'contains': True\}"):
        run(log, config, tmp_path / "out", update=True, grader_options={"contains": True})
    assert pool.total == calls
    assert run(log, config, tmp_path / "out", update=True).complete


@pytest.mark.parametrize("damaged", ["{not json", "[1, 2]", "[" * 100_000])
def test_update_of_a_build_whose_build_json_is_damaged_says_so(
    pool: FakePool, tmp_path: Path, damaged: str
) -> None:
    # before: a JSONDecodeError, AttributeError or RecursionError traceback
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    config = write_config(tmp_path / "config.yaml", pool.url)
    run(log, config, tmp_path / "out")
    (tmp_path / "out" / "build.json").write_text(damaged, encoding="utf-8")
    calls = pool.total
    with pytest.raises(InputError, match=r"--update: cannot read .*build\.json .*build into a new --out"):
        run(log, config, tmp_path / "out", update=True)
    assert pool.total == calls


def test_a_log_without_references_needs_a_judge(pool: FakePool, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", [{"prompt": r["prompt"]} for r in make_log_rows()])
    config = write_config(tmp_path / "config.yaml", pool.url)
    with pytest.raises(InputError, match="pass --judge MODEL"):
        run(log, config, tmp_path / "out")
    assert pool.total == 0


def test_a_reference_the_grader_cannot_read_is_left_out_so_update_and_onboard_read_the_sample(
    pool: FakePool, tmp_path: Path
) -> None:
    rows = make_log_rows(n_math=12, n_geo=0)
    rows[0]["reference"] = "about forty"  # the numeric grader reads no number in it
    log = write_log(tmp_path / "log.jsonl", rows)
    config = write_config(tmp_path / "config.yaml", pool.url)
    first = run(log, config, tmp_path / "out", grader="numeric", clusters=1, per_cluster=20)
    assert (
        first.complete
        and first.n_items == 11
        and first.dropped["reference the numeric grader cannot read"] == 1
    )
    assert any("line 1: numeric reference must be a number" in note for note in first.notes)
    assert all(
        item.id != "log-1" for item in load_validation(first.paths["validation"])
    )  # was: a malformed line
    second = run(log, config, tmp_path / "out", grader="numeric", clusters=1, per_cluster=20, update=True)
    assert second.complete and second.calls == 0 and second.cached == 33
    write_log(log, [{"prompt": "Arithmetic: what is 1 plus 1?", "reference": "two"}])
    with pytest.raises(InputError, match="numeric grader can read no reference"):
        run(log, config, tmp_path / "other", grader="numeric", clusters=1)


def test_a_model_without_any_price_is_refused_before_calling(pool: FakePool, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows())
    with pytest.raises(InputError, match=r"no price for .*input_cost_per_token"):
        build(
            log,
            tmp_path / "out",
            models=["openai/no-such-model-xyz"],
            progress=False,
            embedder=HashingEmbedder(),
        )


def test_cache_records_carry_usage_so_new_prices_reprice_cached_answers(
    pool: FakePool, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "log.jsonl", make_log_rows(n_math=4, n_geo=4))
    config = write_config(tmp_path / "config.yaml", pool.url, models=("mathy",))
    first = run(log, config, tmp_path / "out")
    records, _ = ResponseCache.read(cache_file("openai/mathy", tmp_path / "out" / "cache"))
    assert len(records) == first.calls and all(len(r["usage"]) == 2 for r in records.values())
    cost = Router.load(tmp_path / "out" / "state").profile("mathy").cost
    config.write_text(config.read_text().replace(": 1e-06\n", ": 3e-06\n"), encoding="utf-8")
    again = run(log, config, tmp_path / "out", update=True)
    assert again.calls == 0 and again.spent == 0.0
    assert Router.load(tmp_path / "out" / "state").profile("mathy").cost > cost


@pytest.fixture()
def judged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[FakePool, Path, Path]]:
    """A pool whose 'judge' grades by rule, a log without references, a config with a judge deployment."""
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    with FakePool(pool_with_judge) as server:
        log = write_log(tmp_path / "log.jsonl", [{"prompt": r["prompt"]} for r in make_log_rows()])
        yield server, log, write_config(tmp_path / "config.yaml", server.url, judge=True)


def test_an_absolute_judge_grades_a_log_without_references(judged, tmp_path: Path) -> None:
    pool, log, config = judged
    template = tmp_path / "absolute.txt"
    template.write_text(ABSOLUTE_TEMPLATE, encoding="utf-8")
    options = {"judge": "judge", "judge_prompt": template}
    dry = run(log, config, tmp_path / "out", dry_run=True, **options)
    assert pool.total == 0 and any(
        line.startswith("judge openai/judge (absolute): ≤ 48 call") for line in dry.estimates
    )
    result = run(log, config, tmp_path / "out", **options)
    # big's answers are mathy's on arithmetic and geo's on geography: each distinct answer is judged once
    assert result.complete and result.calls == 48
    assert result.judge_calls == 32 and pool.per_model()["judge"] == 32
    scores = load_dataset(result.paths["results"])
    is_math = np.array([p.startswith("Arithmetic") for p in scores.prompts])
    np.testing.assert_array_equal(scores.scores[:, 0], is_math.astype(float))  # mathy: (10 - 1) / 9 = 1 or 0
    np.testing.assert_array_equal(scores.scores[:, 2], np.ones(16))  # big
    assert {i.grader for i in load_validation(result.paths["validation"])} == {"llm_judge"}
    assert json.loads(result.paths["build"].read_text())["grading"] == "judge:absolute:judge"
    judge_spent = result.spent - sum(load_dataset(result.paths["results"]).costs.sum(axis=0))
    assert judge_spent > 0  # the judge's calls are priced at its deployment's prices
    before = pool.total
    again = run(log, config, tmp_path / "out", update=True, budget=0.0, **options)
    assert again.complete and pool.total == before and again.judge_calls == 0 and again.spent == 0.0
    assert again.judge_cached == 32  # cached verdicts (and answers) need no budget
    with pytest.raises(InputError, match="grading 'judge:absolute:judge' -> 'reference:exact'"):
        run(log, config, tmp_path / "out", update=True)


def test_a_reference_grader_llm_judge_is_looked_up_in_the_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--grader llm_judge``: the judge the options name is the config's deployment, as for ``--judge``."""
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    with FakePool(pool_with_judge) as pool:
        log = write_log(tmp_path / "log.jsonl", make_log_rows())
        config = write_config(tmp_path / "config.yaml", pool.url, judge=True)
        options = {"model": "judge", "mode": "absolute", "prompt": ABSOLUTE_TEMPLATE}
        result = run(log, config, tmp_path / "out", grader="llm_judge", grader_options=options)
        # the config's judge answered: each distinct answer once (big answers as mathy or geo)
        assert result.complete and result.n_items == 16 and pool.per_model()["judge"] == 32
    scores = load_dataset(result.paths["results"])
    is_math = np.array([p.startswith("Arithmetic") for p in scores.prompts])
    np.testing.assert_array_equal(scores.scores[:, 0], is_math.astype(float))  # mathy: 10 -> 1, 1 -> 0


def test_a_reference_grader_llm_judge_is_paid_counted_and_cached_as_judge_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    with FakePool(pool_with_judge) as pool:
        log = write_log(tmp_path / "log.jsonl", make_log_rows())
        config = write_config(tmp_path / "config.yaml", pool.url, judge=True)
        answers_only = run(log, config, tmp_path / "exact").spent
        options = {"model": "judge", "mode": "absolute", "prompt": ABSOLUTE_TEMPLATE}
        dry = run(log, config, tmp_path / "out", grader="llm_judge", grader_options=options, dry_run=True)
        result = run(log, config, tmp_path / "out", grader="llm_judge", grader_options=options)
        judge_calls = pool.per_model()["judge"]
        again = run(log, config, tmp_path / "out", grader="llm_judge", grader_options=options, update=True)
    # before, the 32 verdicts were neither counted, nor in the $ spent or the budget or the dry run, and were
    # cached in ~/.cache/uniroute/judges instead of the build's cache
    assert any(line.startswith("judge openai/judge (absolute): ≤ 48 call(s)") for line in dry.estimates)
    assert judge_calls == result.judge_calls == 32 and result.judge_cached == 0
    assert result.spent > answers_only and any((tmp_path / "out" / "cache" / "judges").iterdir())
    assert again.judge_calls == 0 and again.judge_cached == 32 and pool.per_model()["judge"] == 32


def test_a_pairwise_judge_scores_against_the_anchor_in_both_orders(judged, tmp_path: Path) -> None:
    pool, log, config = judged
    template = tmp_path / "pairwise.txt"
    template.write_text(PAIRWISE_TEMPLATE, encoding="utf-8")
    with pytest.raises(InputError, match="needs --anchor"):
        run(log, config, tmp_path / "out", judge="judge", judge_mode="pairwise", judge_prompt=template)
    result = run(
        log,
        config,
        tmp_path / "out",
        judge="judge",
        judge_mode="pairwise",
        anchor="mathy",
        judge_prompt=template,
    )
    assert result.complete
    scores = load_dataset(result.paths["results"])
    is_math = np.array([p.startswith("Arithmetic") for p in scores.prompts])
    mathy, geo, big = (scores.scores[:, j] for j in range(3))
    np.testing.assert_array_equal(mathy, np.full(16, 0.5))  # the anchor ties itself, with no call
    np.testing.assert_array_equal(geo, np.where(is_math, 0.0, 1.0))
    np.testing.assert_array_equal(
        big, np.where(is_math, 0.5, 1.0)
    )  # same answer as the anchor on math: a tie
    # geo differs from the anchor on all 16, big on the 8 geography prompts, where its answers are geo's:
    # those pairs are already cached, so 16 distinct pairs are asked, in two orders each
    assert pool.per_model()["judge"] == 2 * 16 and result.judge_calls == 32


def newbie_settings(pool: FakePool) -> CallSettings:
    """A model the build did not profile, on the pool; it answers as 'big' does."""
    return CallSettings("openai/newbie", pool.url, "sk-fake", {"max_tokens": 16}, **FAST)


def test_a_model_onboarded_on_an_absolute_build_is_graded_on_the_builds_rubric(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def answer(model: str, prompt: str) -> str:
        if model == "judge":  # rates 7 with the build's template, 2 with any other
            return "SCORE: 7" if "Rate the answer" in prompt else "SCORE: 2"
        return skill_answer("big" if model == "newbie" else model, prompt)

    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    monkeypatch.setenv("UNIROUTE_CACHE_DIR", str(tmp_path / "uniroute-cache"))
    template = tmp_path / "absolute.txt"
    template.write_text(ABSOLUTE_TEMPLATE, encoding="utf-8")
    with FakePool(answer) as pool:
        log = write_log(tmp_path / "log.jsonl", [{"prompt": r["prompt"]} for r in make_log_rows()])
        config = write_config(tmp_path / "config.yaml", pool.url, judge=True)
        result = run(log, config, tmp_path / "out", judge="judge", judge_prompt=template)
        np.testing.assert_allclose(load_dataset(result.paths["results"]).scores, 6 / 9)  # (7 - 1) / 9
        newbie = write_config(
            tmp_path / "newbie.yaml", pool.url, models=("newbie",), group="newbie", judge=True
        )
        out = tmp_path / "out"
        args = ["onboard", str(out / "state"), "newbie", "--name", "newbie", "--config", str(newbie)]
        args += ["--validation", str(out / "validation.jsonl"), "--cost", "0.001", "--no-progress"]
        assert main(args) == 0
    n = result.n_items
    assert f"newbie: {n} of {n} prompts graded, accuracy 0.667" in capsys.readouterr().out
    profile = Router.load(out / "state").profile("newbie")
    assert profile.error_sums.sum() / profile.counts.sum() == pytest.approx(1 - 6 / 9)


def test_a_model_onboarded_on_a_pairwise_build_is_judged_against_the_builds_anchor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    monkeypatch.setenv("UNIROUTE_CACHE_DIR", str(tmp_path / "uniroute-cache"))
    template = tmp_path / "pairwise.txt"
    template.write_text(PAIRWISE_TEMPLATE, encoding="utf-8")
    with FakePool(
        lambda model, prompt: pool_with_judge("big" if model == "newbie" else model, prompt)
    ) as pool:
        log = write_log(tmp_path / "log.jsonl", [{"prompt": r["prompt"]} for r in make_log_rows()])
        config = write_config(tmp_path / "config.yaml", pool.url, judge=True)
        options = {"judge": "judge", "judge_mode": "pairwise", "anchor": "mathy", "judge_prompt": template}
        result = run(log, config, tmp_path / "out", **options)
        items = load_validation(result.paths["validation"])
        assert all(i.grader_options["anchor"] == skill_answer("mathy", i.prompt) for i in items)
        assert {i.grader_options["prompt"] for i in items} == {PAIRWISE_TEMPLATE}
        again = run(log, config, tmp_path / "out", update=True, **options)
        assert (
            again.complete and again.judge_calls == 0
        )  # the anchor's answers in the file: every pair cached
        calls = pool.total
        with pytest.raises(InputError, match="pairwise anchor 'mathy' -> 'geo'"):
            run(log, config, tmp_path / "out", update=True, **(options | {"anchor": "geo"}))
        stricter = tmp_path / "stricter.txt"
        stricter.write_text(PAIRWISE_TEMPLATE + "\nBe strict.\n", encoding="utf-8")
        with pytest.raises(InputError, match="judge template"):
            run(log, config, tmp_path / "out", update=True, **(options | {"judge_prompt": stricter}))
        assert pool.total == calls  # refused before any call
        onboarded = onboard(
            items,
            tmp_path / "out" / "state",
            newbie_settings(pool),
            name="newbie",
            cost=0.001,
            cache_dir=tmp_path / "c",
            progress=False,
            judge=lambda model: judge_settings(model, config)[0],
        )
    built = load_dataset(result.paths["results"])
    np.testing.assert_array_equal(onboarded.scores, built.scores[:, built.models.index("big")])
    assert set(onboarded.scores) == {0.5, 1.0}  # ties with the anchor on arithmetic, wins on capitals
