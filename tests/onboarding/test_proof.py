"""The proof on real outputs: onboard a RouterBench model as if new, through LiteLLM and the replay server.

A router is fitted on RouterBench's train prompts and profiled for all 11 models from
the train labels; Mixtral-8x7B is removed and onboarded again from its *recorded*
ARC-Challenge and Winogrande test answers, served by the replay server on 127.0.0.1
and graded with the multiple-choice grader against references derived from the
other models' answers. Checks: (a) graded labels agree with RouterBench's own 0/1
labels on >= 95% of prompts, (b) the new Ψ is within sampling error of the Ψ the
labels give, (c) the router then sends Mixtral the prompts where it is strong.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from uniroute import KMeansClusterMap, Router
from uniroute.datasets import concat, load_routerbench, unique_ids
from uniroute.engine.profiles import profile_from_scores
from uniroute.onboarding import CallSettings, ReplayData, ReplayServer, build_validation, onboard

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routerbench"
NEW = "mistralai/mixtral-8x7b-chat"
TASKS = ["arc-challenge", "winogrande"]
PER_CLUSTER = 150

if not DATA.is_dir() and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the onboarding proof, but RouterBench data is not at {DATA}")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"RouterBench data not found at {DATA}"),
]


def two_sample_bound(p1: np.ndarray, n1: np.ndarray, p2: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Three standard errors of a difference of two error rates (pooled, floored at p=0.05)."""
    pooled = np.clip((p1 * n1 + p2 * n2) / (n1 + n2), 0.05, 0.95)
    return 3.0 * np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))


def test_onboarding_mixtral_from_recorded_answers(tmp_path: Path) -> None:
    started = time.perf_counter()
    train = concat(
        [load_routerbench(DATA / f"{t}_train.csv") for t in ("arc_challenge", "mbpp", "winograde")]
    )
    test = concat([load_routerbench(DATA / f"{t}_test.csv") for t in ("arc_challenge", "winograde")])
    new_col = train.models.index(NEW)
    router = Router("static", KMeansClusterMap(n_clusters=8, random_state=0)).fit(train.prompts)
    router.add_models(
        train.prompts,
        {m: train.scores[:, j] for j, m in enumerate(train.models)},
        {m: train.costs[:, j] for j, m in enumerate(train.models)},
    )
    original = router.remove_model(NEW)
    state = router.save(tmp_path / "state")

    items, report = build_validation(
        test, router=router, per_cluster=PER_CLUSTER, tasks=TASKS, exclude_models=[NEW], random_state=0
    )
    assert report.n_without_reference < 0.02 * report.n_candidates
    with ReplayServer(ReplayData.from_paths([DATA])) as server:
        settings = CallSettings(f"openai/{NEW}", api_base=server.url, api_key="replay", concurrency=8)
        result = onboard(
            items, state, settings, name=NEW, cost=original.cost, cache_dir=tmp_path / "cache", progress=False
        )
    assert result.n_failed == 0 and result.n_graded == len(items)

    # (a) graded labels against RouterBench's own labels for the same prompts
    rows = {sample_id: i for i, sample_id in enumerate(unique_ids(test.ids))}
    labels = np.array([test.scores[rows[item.id], new_col] for item in items])
    labelled = ~np.isnan(labels)
    agreement = float(np.mean(result.scores[labelled] == labels[labelled]))
    assert labelled.sum() >= 0.95 * len(items) and agreement >= 0.95

    # (b) Ψ against the Ψ of the labels: same prompts (only disagreements can differ), and an
    # independent sample (train labels on the same tasks) within three standard errors
    onboarded = Router.load(state)
    profile = onboarded.profile(NEW)
    phi = onboarded.cluster_probs(onboarded.embed([item.prompt for item in items]))
    shares = onboarded.cluster_map_.cluster_weights_  # as Router.add_model: thin clusters count as unknown
    from_labels = profile_from_scores(
        NEW, phi, labels, original.cost, onboarded.prior_strength, reference=shares
    )
    covered = profile.counts > 0
    rate_new = profile.error_sums / np.maximum(profile.counts, 1)
    rate_labels = from_labels.error_sums / np.maximum(from_labels.counts, 1)
    disagreements = phi.T @ (result.scores != labels)
    assert np.all(
        np.abs(rate_new - rate_labels)[covered] <= disagreements[covered] / profile.counts[covered] + 1e-6
    )
    assert np.abs(profile.errors - from_labels.errors).max() <= 0.02
    same_tasks = np.isin(train.tasks, TASKS)
    train_phi = onboarded.cluster_probs(
        onboarded.embed([p for p, keep in zip(train.prompts, same_tasks, strict=True) if keep])
    )
    from_train = profile_from_scores(
        NEW, train_phi, train.scores[same_tasks, new_col], original.cost, reference=shares
    )
    both = (profile.counts >= 20) & (from_train.counts >= 20)
    rate_train = from_train.error_sums / np.maximum(from_train.counts, 1)
    bound = two_sample_bound(rate_new[both], profile.counts[both], rate_train[both], from_train.counts[both])
    assert both.sum() >= 3
    assert np.all(np.abs(rate_new - rate_train)[both] <= bound)

    # (c) routing where it is strong, judged on prompts whose Mixtral labels the onboarded router
    # never saw (the train split of the same tasks): over a λ sweep, Mixtral gets a real share of
    # the traffic, and the prompts it gets are ones it answers better than those it does not get
    held_out = Router.load(state)
    X = held_out.embed([p for p, keep in zip(train.prompts, same_tasks, strict=True) if keep])
    truth = train.scores[same_tasks, new_col]
    errors, costs, names = held_out.expected_errors(X)
    sweep = []
    for lam in (0.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0):
        to_new = np.array(names)[np.argmin(errors + lam * costs, axis=1)] == NEW
        if 0.1 <= to_new.mean() <= 0.9:
            sweep.append(
                (
                    lam,
                    float(to_new.mean()),
                    float(np.nanmean(truth[to_new])),
                    float(np.nanmean(truth[~to_new])),
                )
            )
    assert sweep, "Mixtral never got between 10% and 90% of the prompts"
    assert all(routed >= other + 0.05 for _, _, routed, other in sweep)

    measured = {
        "model": NEW,
        "embedder": onboarded.encoder.id,
        "clusters": len(profile.counts),
        "validation_prompts": len(items),
        "left_out_without_reference": report.n_without_reference,
        "agreement_with_routerbench_labels": agreement,
        "accuracy_graded": result.accuracy,
        "prompts_with_a_label": int(labelled.sum()),
        "accuracy_labels": float(labels[labelled].mean()),
        "accuracy_graded_same_prompts": float(result.scores[labelled].mean()),
        "psi_onboarded": profile.errors.round(4).tolist(),
        "psi_from_labels_same_prompts": from_labels.errors.round(4).tolist(),
        "error_rate_onboarded": rate_new.round(4).tolist(),
        "error_rate_train_labels": rate_train.round(4).tolist(),
        "counts_onboarded": profile.counts.tolist(),
        "counts_train": from_train.counts.tolist(),
        "routing_sweep_lambda_share_acc_routed_acc_other": sweep,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(measured))
