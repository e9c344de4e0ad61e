"""Paired bootstrap and QNC-noise warnings on data whose answer is known by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest

from uniroute.evaluation import bootstrap, metrics

# Two models: "big" (cost 1) right everywhere, "small" (cost 0.1) right on even prompts only.
N = 40
QUALITY = np.stack([np.ones(N), (np.arange(N) % 2 == 0).astype(float)], axis=1)
COST = np.tile([1.0, 0.1], (N, 1))


def _paths() -> dict[str, metrics.PromptPaths]:
    return {
        "oracle": metrics.prompt_paths(1.0 - QUALITY, COST, QUALITY, COST),
        "same-as-oracle": metrics.prompt_paths(1.0 - QUALITY, COST, QUALITY, COST),
        "random": metrics.paths_of_choices(np.full((N, 2), 0.5), QUALITY, COST),
    }


def test_resample_weights_are_counts_of_n_draws() -> None:
    w = bootstrap.resample_weights(7, 50, random_state=3)
    assert w.shape == (50, 7)
    np.testing.assert_array_equal(w.sum(axis=1), np.full(50, 7))
    np.testing.assert_array_equal(w, bootstrap.resample_weights(7, 50, random_state=3))


def test_identical_routers_differ_by_exactly_zero_and_a_dominating_router_always_wins() -> None:
    out = bootstrap.paired_bootstrap(_paths(), QUALITY, COST, "oracle", n_resamples=1000, random_state=0)
    same = out["vs"]["same-as-oracle"]
    assert same["area_diff"] == 0.0 and same["area_diff_ci"] == [0.0, 0.0] and same["area_ahead"] == 0.0
    assert same["qnc_diff_ci"] == [0.0, 0.0]
    # the oracle sends odd prompts to "big" and even ones to "small": quality 1 at cost 0.55, QNC 0.55;
    # random: quality 0.75 at cost 0.55 and never reaches quality 1
    rnd = out["vs"]["random"]
    assert out["routers"]["oracle"]["qnc"] == pytest.approx(0.55)
    assert out["routers"]["random"]["qnc_reached"] == 0.0
    assert rnd["area_ahead"] == 1.0 and rnd["area_diff_ci"][0] > 0
    # the oracle reaches, random never: the QNC difference is -inf in every resample
    assert rnd["qnc_diff"] == -np.inf and rnd["qnc_diff_ci"] == [-np.inf, -np.inf]
    assert rnd["qnc_both_reached"] == 0.0


def test_interval_of_the_oracle_area_matches_a_hand_resample() -> None:
    paths = _paths()["oracle"]
    w = bootstrap.resample_weights(N, 200, random_state=1)
    draws = bootstrap.bootstrap_summaries({"oracle": paths}, QUALITY, COST, 200, random_state=1, chunk=64)
    # resample b is scored exactly as the test set made of its drawn prompts
    for b in (0, 77, 199):
        rows = np.repeat(np.arange(N), w[b].astype(int))
        again = metrics.prompt_paths(1.0 - QUALITY[rows], COST[rows], QUALITY[rows], COST[rows])
        single = metrics.curve_summaries(again, QUALITY[rows], COST[rows])
        assert draws["oracle"]["area"][b] == pytest.approx(single["area"][0])
        assert draws["oracle"]["qnc"][b] == pytest.approx(single["qnc"][0])


def test_thousand_resamples_of_thousands_of_prompts_stay_fast() -> None:
    rng = np.random.default_rng(0)
    n, m = 3000, 6
    quality = (rng.random((n, m)) < np.linspace(0.4, 0.9, m)).astype(float)
    cost = np.tile(np.linspace(0.1, 1.0, m), (n, 1))
    errors = rng.random((n, m))
    paths = {
        "a": metrics.prompt_paths(errors, cost[0], quality, cost),
        "b": metrics.prompt_paths(1.0 - quality, cost, quality, cost),
    }
    start = time.perf_counter()
    out = bootstrap.paired_bootstrap(paths, quality, cost, "a", n_resamples=1000)
    assert time.perf_counter() - start < 20.0  # ~1 s on a quiet machine; generous for a busy one
    assert out["n_resamples"] == 1000 and out["vs"]["b"]["area_ahead"] == 0.0


def test_qnc_warning_names_the_rule_and_the_interval() -> None:
    # 6 prompts: the verdict on QNC rests on very few of them
    quality = np.array([[1, 1], [1, 0], [1, 1], [0, 1], [1, 1], [1, 0]], dtype=float)
    cost = np.tile([1.0, 0.1], (6, 1))
    errors = np.array([[0.1, 0.2], [0.1, 0.2], [0.3, 0.2], [0.1, 0.2], [0.3, 0.2], [0.1, 0.15]])
    paths = {
        "r": metrics.prompt_paths(errors, cost[0], quality, cost),
        "oracle": metrics.prompt_paths(1.0 - quality, cost, quality, cost),
    }
    out = bootstrap.paired_bootstrap(paths, quality, cost, "r", n_resamples=1000)
    (message,) = bootstrap.qnc_warnings(out)
    ci = out["routers"]["r"]["qnc_ci"]
    assert ci[1] - ci[0] > 0.5
    assert message.startswith("test split too small for QNC: with 6 test prompts")
    assert f"r (interval [{ci[0]:.2f}, {ci[1]:.2f}])" in message
    # a split of 4,000 prompts that separates cleanly gives no warning
    big_q = np.tile(quality, (700, 1))
    big_c = np.tile(cost, (700, 1))
    big = {"oracle": metrics.prompt_paths(1.0 - big_q, big_c, big_q, big_c)}
    assert bootstrap.qnc_warnings(bootstrap.paired_bootstrap(big, big_q, big_c, "oracle", 1000)) == []
