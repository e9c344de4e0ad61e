import copy
import pickle
import re
import threading
import warnings

import numpy as np
import pytest

from uniroute import (
    HashingEmbedder,
    KMeansClusterMap,
    LearnedClusterMap,
    ModelProfile,
    PrecomputedEmbedder,
    Router,
)
from uniroute.engine import router as router_module
from uniroute.engine.profiles import profile_from_scores
from uniroute.engine.router import NO_TEXT_NOTE
from uniroute.exceptions import InputError, NotFittedError, UnknownModelError

MATH = "Arithmetic question: compute 12 plus 30 and answer with the number only."
POEM = "Poetry request: write a short haiku poem about snow, with vivid imagery."


def test_quality_first_picks_the_specialist_at_equal_error(toy_router):
    decision = toy_router.route(MATH, lam=0.0)
    assert decision.ranking[-1] == "poet"
    assert decision.expected_error["mathbot"] < decision.expected_error["poet"]


def test_lambda_trades_quality_for_cost(toy_router):
    assert toy_router.route(MATH, lam=1000.0).model == "mathbot"
    assert toy_router.route(POEM, lam=1000.0).model == "poet"
    # with a tiny λ, 'big' (never wrong) wins on expected error
    assert toy_router.route(MATH, lam=0.0).expected_error["big"] < 0.05


def test_decision_is_consistent_and_explains_itself(toy_router):
    d = toy_router.route(POEM, lam=5.0)
    for m in d.candidates:
        assert d.score[m] == pytest.approx(d.expected_error[m] + 5.0 * d.cost[m])
    assert d.ranking[0] == d.model
    assert [d.score[m] for m in d.ranking] == sorted(d.score.values())
    payload = d.to_dict(top=2)
    assert payload["model"] == d.model and len(payload["ranking"]) == 2
    assert sum(payload["cluster_probs"]) == pytest.approx(1.0)


def test_batch_routes_each_prompt_on_its_own(toy_router):
    decisions = toy_router.route_batch([MATH, POEM, MATH], lam=1000.0)
    assert [d.model for d in decisions] == ["mathbot", "poet", "mathbot"]


def test_candidates_subset_and_unknown_candidates(toy_router):
    assert toy_router.route(MATH, candidates=["poet", "big"]).model == "big"
    with pytest.warns(UserWarning, match="no profile"):
        d = toy_router.route(MATH, lam=1000.0, candidates=["ghost", "mathbot"])
    assert d.model == "mathbot" and d.skipped == ("ghost",)
    with pytest.raises(UnknownModelError, match="no candidate has a profile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            toy_router.route(MATH, candidates=["ghost"])
    with pytest.raises(InputError, match="not one string"):
        toy_router.route(MATH, candidates="big")


def test_unknown_candidates_raise_when_asked(toy_data):
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2), unknown_models="error")
    router.fit(toy_data["prompts"]).add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    with pytest.raises(UnknownModelError, match="ghost"):
        router.route(MATH, candidates=["ghost", "big"])


@pytest.mark.parametrize(
    "prompt",
    ["", "   \n ", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], []],
)
def test_requests_without_text_route_on_the_cluster_prior(toy_router, prompt):
    d = toy_router.route(prompt)
    assert d.note == NO_TEXT_NOTE
    np.testing.assert_allclose(d.cluster_probs, toy_router.cluster_map_.cluster_weights_)
    assert d.model == "big"


def test_huge_and_non_utf8_prompts_route(toy_router):
    huge = "Poetry request: write a poem. " * 40_000 + " ".join([MATH] * 20)
    assert len(huge) > 1_000_000
    assert toy_router.route(huge, lam=1000.0).model == "mathbot"
    assert toy_router.route(MATH.encode() + b"\xff\xfe", lam=1000.0).model == "mathbot"


def test_negative_or_nan_lambda_is_refused(toy_router):
    for lam in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="lam"):
            toy_router.route(MATH, lam=lam)


def test_unfitted_router_says_what_to_do():
    with pytest.raises(NotFittedError, match=r"router\.fit"):
        Router(HashingEmbedder()).route("hi")


def test_add_remove_and_replace(toy_router, toy_data):
    removed = toy_router.remove_model("big")
    assert "big" not in toy_router.models and removed.name == "big"
    with pytest.raises(UnknownModelError, match="cannot remove"):
        toy_router.remove_model("big")
    toy_router.add_profile(removed)
    with pytest.raises(InputError, match="replace=True"):
        toy_router.add_profile(removed)
    toy_router.add_profile(removed, replace=True)
    with pytest.raises(InputError, match="2"):
        toy_router.add_profile(ModelProfile("odd", [0.0], [1.0], cost=0.0))


def test_new_model_joins_without_refitting(toy_router, toy_data):
    centres = toy_router.cluster_map_.cluster_centers_.copy()
    is_math = np.array([t == "math" for t in toy_data["topics"]])
    toy_router.add_model("cheap-math", toy_data["prompts"], is_math.astype(float), cost=0.0001)
    np.testing.assert_array_equal(centres, toy_router.cluster_map_.cluster_centers_)
    assert toy_router.route(MATH, lam=100.0).model == "cheap-math"
    assert toy_router.route(POEM, lam=100.0).model == "poet"


def test_costs_per_prompt_are_averaged_over_observed_results(toy_router, toy_data):
    n = len(toy_data["prompts"])
    scores = np.full(n, np.nan)
    scores[:2] = 1.0
    costs = np.full(n, 100.0)
    costs[:2] = [0.1, 0.3]
    assert toy_router.add_model("sparse", toy_data["prompts"], scores, costs).cost == pytest.approx(0.2)
    with pytest.raises(InputError, match="no cost given"):
        toy_router.add_models(toy_data["prompts"], {"x": scores}, {})


def test_conservative_routing_penalises_models_with_few_results(toy_router, toy_data):
    n = len(toy_data["prompts"])
    lucky = np.full(n, np.nan)
    lucky[[0, 30]] = 1.0
    toy_router.add_model("lucky", toy_data["prompts"], lucky, cost=0.01)
    mean = toy_router.route(MATH, candidates=["lucky", "big"])
    cautious = toy_router.route(MATH, candidates=["lucky", "big"], conservative=0.9)
    assert cautious.expected_error["lucky"] > mean.expected_error["lucky"]
    assert cautious.model == "big"


def test_calibrate_meets_a_cost_budget_and_a_quality_floor(toy_router, toy_data):
    prompts = toy_data["prompts"]
    lam = toy_router.calibrate(prompts, max_cost=0.002)
    chosen = [d.model for d in toy_router.route_batch(prompts, lam=lam)]
    costs = toy_data["costs"]
    assert np.mean([costs[m] for m in chosen]) <= 0.002
    lam_q = toy_router.calibrate(prompts, min_quality=0.5)
    assert lam_q > 0
    with pytest.raises(InputError, match="cheapest routing costs"):
        toy_router.calibrate(prompts, max_cost=0.0001)
    with pytest.raises(InputError, match="exactly one"):
        toy_router.calibrate(prompts)


def test_calibrate_takes_requests_without_text_as_routing_does():
    # route_batch gives a request with no text the cluster prior (0.5, 0.5) and never embeds it;
    # calibrate embedded "" instead (here: no vector for it, so it raised)
    router = Router(
        PrecomputedEmbedder({"math": [1.0, 0.0], "poem": [0.0, 1.0]}), KMeansClusterMap(n_clusters=2)
    )
    router.fit(["math", "poem"]).add_models(
        ["math", "poem"], {"big": [1.0, 1.0], "small": [1.0, 0.0]}, {"big": 0.01, "small": 0.001}
    )
    image_only = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    traffic = ["math", "", image_only]
    lam = router.calibrate(traffic, max_cost=0.005)
    # Ψ(big) = 52/150 in both clusters, Ψ(small) = (0.4, 0.6): on the prior (0.5, 0.5)
    # small wins past λ = (0.5 - 52/150) / (0.01 - 0.001)
    assert lam == pytest.approx(23 / 150 / 0.009, rel=1e-6)
    assert np.mean([d.cost[d.model] for d in router.route_batch(traffic, lam=lam)]) <= 0.005


def test_add_models_takes_validation_prompts_without_text_on_the_cluster_prior():
    # a validation result with no text counts on the cluster prior, as routing takes such a
    # request; add_models weighted it by the embedding of "" (here: the "math" cluster)
    router = Router(
        PrecomputedEmbedder({"math": [1.0, 0.0], "poem": [0.0, 1.0], "": [1.0, 0.0]}),
        KMeansClusterMap(n_clusters=2),
    )
    router.fit(["math", "poem"])
    image_only = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    scores = [1.0, 0.0, 0.0]
    got = router.add_models(["math", "", image_only], {"m": scores}, {"m": 0.01})[0]
    prior = router.cluster_map_.cluster_weights_
    phi = np.vstack([router.cluster_probs(router.embed(["math"])), prior, prior])
    want = profile_from_scores("m", phi, scores, 0.01, got.prior_strength, reference=prior)
    np.testing.assert_allclose(got.counts, want.counts)
    np.testing.assert_allclose(got.error_sums, want.error_sums)
    one = router.add_model("one", ["", "poem"], [0.0, 1.0], 0.01)
    phi = np.vstack([prior, router.cluster_probs(router.embed(["poem"]))])
    want = profile_from_scores("one", phi, [0.0, 1.0], 0.01, one.prior_strength, reference=prior)
    np.testing.assert_allclose(one.error_sums, want.error_sums)


def test_fit_leaves_out_training_prompts_without_text():
    # before: a prompt with no text was fitted as the embedding of "" (here: a third point that
    # pulled a centre to [1, 1]); routing takes such a request on the cluster prior instead
    table = {"math": [1.0, 0.0], "poem": [0.0, 1.0], "": [0.7071, 0.7071]}
    image_only = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    scores = [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
    router = Router(PrecomputedEmbedder(table), KMeansClusterMap(n_clusters=2, random_state=0))
    with pytest.warns(UserWarning, match="2 of 4 training prompts have no text"):
        router.fit(["math", "poem", "", image_only], scores)
    clean = Router(PrecomputedEmbedder(table), KMeansClusterMap(n_clusters=2, random_state=0))
    clean.fit(["math", "poem"], scores[:2])
    np.testing.assert_array_equal(router.cluster_map_.cluster_centers_, clean.cluster_map_.cluster_centers_)
    with pytest.raises(InputError, match="none of the 2 training prompts has text"):
        router.fit(["", image_only])
    with pytest.raises(InputError, match="scores has 2 rows for 3 prompts"), pytest.warns(UserWarning):
        router.fit(["math", "poem", ""], scores[:2])


def test_a_route_with_vectors_of_another_width_says_which_embedder_to_give():
    router = Router(HashingEmbedder(dim=4), KMeansClusterMap(n_clusters=2, random_state=0))
    router.fit_embeddings(np.eye(2)).add_model_prior("m", 0.01, accuracy=0.5)
    with pytest.raises(InputError, match=r"has 4 columns .* fitted on 2.*Router.load\(path, embedder=...\)"):
        router.route("a prompt")


def test_learned_map_router_end_to_end(toy_data):
    names = ["mathbot", "poet"]
    y = np.column_stack([toy_data["scores"][m] for m in names])
    router = Router(HashingEmbedder(), LearnedClusterMap(n_clusters=2)).fit(toy_data["prompts"], y)
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    assert router.route(MATH, lam=1000.0).model == "mathbot"
    assert router.route(POEM, lam=1000.0).model == "poet"


def test_routing_while_models_come_and_go(toy_router, toy_data):
    stop = threading.Event()
    errors: list[BaseException] = []
    extra = toy_router.profile("big")

    def churn() -> None:
        i = 0
        while not stop.is_set() and i < 500:
            toy_router.add_profile(ModelProfile(f"m{i}", extra.error_sums, extra.counts, 0.5))
            toy_router.remove_model(f"m{i}")
            i += 1

    def route() -> None:
        try:
            for _ in range(300):
                d = toy_router.route(MATH, lam=1000.0)
                assert d.model == "mathbot"
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=churn)
    readers = [threading.Thread(target=route) for _ in range(3)]
    writer.start()
    for t in readers:
        t.start()
    for t in readers:
        t.join(timeout=60)
    stop.set()
    writer.join(timeout=60)
    assert not errors


# ---- one routing rule: candidates mapped to profiles, per-candidate costs ----------


def test_candidates_may_share_a_profile(toy_router):
    d = toy_router.route(MATH, lam=1000.0, candidates={"us": "mathbot", "eu": "mathbot", "verse": "poet"})
    assert d.candidates == ("us", "eu", "verse")
    assert d.profiles == ("mathbot", "mathbot", "poet")
    assert d.expected_error["us"] == d.expected_error["eu"]
    assert d.ranking[:2] == ("us", "eu") and d.model == "us"
    assert d.near_best(0.0) == ("us", "eu")


def test_costs_override_the_profile_cost_per_candidate(toy_router):
    regions = {"us": "mathbot", "eu": "mathbot"}
    d = toy_router.route(MATH, lam=1000.0, candidates=regions, costs={"eu": 0.0005})
    assert d.model == "eu" and d.cost == {"us": 0.001, "eu": 0.0005}
    assert d.score["eu"] == pytest.approx(d.expected_error["eu"] + 1000.0 * 0.0005)
    batch = toy_router.route_batch([MATH, POEM], lam=1000.0, costs={"big": 0.0})
    assert [b.model for b in batch] == ["big", "big"]


def test_scores_match_expected_errors_and_route_scores(toy_router):
    from uniroute.engine.decision import route_scores

    X = toy_router.embed([MATH, POEM])
    errors, costs, names = toy_router.expected_errors(X, ["poet", "big"], costs={"big": 0.002})
    assert names == ("poet", "big") and costs.tolist() == [0.001, 0.002]
    for row, d in zip(
        route_scores(errors, costs, 50.0),
        toy_router.route_batch([MATH, POEM], 50.0, ["poet", "big"], costs={"big": 0.002}),
    ):
        np.testing.assert_allclose(row, d.scores)


def test_bad_costs_are_refused(toy_router):
    with pytest.raises(InputError, match="not a candidate"):
        toy_router.route(MATH, candidates=["big"], costs={"bigg": 0.1})
    for bad in ("cheap", None, -1.0, float("nan"), True):
        with pytest.raises(InputError, match="cost of candidate 'big'"):
            toy_router.route(MATH, costs={"big": bad})
    with pytest.raises(InputError, match="mapping"):
        toy_router.route(MATH, costs=[0.1])


@pytest.mark.parametrize("lam", ["20", None, True, [1.0]])
def test_lambda_must_be_a_real_number(toy_router, lam):
    with pytest.raises(InputError, match="lam must be a number"):
        toy_router.route(MATH, lam=lam)


@pytest.mark.parametrize("q", ["0.9", 0.0, 1.0, True])
def test_conservative_must_be_a_quantile(toy_router, q):
    with pytest.raises(InputError, match="conservative"):
        toy_router.route(MATH, conservative=q)


@pytest.mark.parametrize(
    "candidates", [["big", ""], ["big", 3], {"us": ""}, {"": "big"}, {"us": ["big"]}, [["big"]], 7]
)
def test_candidate_names_must_be_non_empty_strings(toy_router, candidates):
    with pytest.raises(InputError, match=r"candidate|profile"):
        toy_router.route(MATH, candidates=candidates)


@pytest.mark.parametrize("prompt", ["sum \udce9 of 12 and 30", [{"role": "user", "content": "poem \ud800"}]])
def test_lone_surrogates_route_through_the_cache_and_embedder(toy_router, prompt):
    assert toy_router.route(prompt).model in toy_router.models
    assert toy_router.route_batch([prompt, prompt])[1].model in toy_router.models


@pytest.fixture(scope="module")
def static_router(toy_data) -> Router:
    """The toy router on the real default embedder (model files from the local cache)."""
    router = Router("static", KMeansClusterMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    return router


@pytest.mark.integration
def test_lone_surrogates_route_with_the_default_embedder(static_router):
    for prompt in ("sum \udce9 of 12 and 30", b"poem \xff\xfe", [{"role": "user", "content": "x \ud800"}]):
        assert static_router.route(prompt, lam=1000.0).model in {"mathbot", "poet"}


# ---- copies, pickles and bad arguments ----------------------------------------------


def test_router_deepcopies_and_pickles(toy_router):
    before = toy_router.route_batch([MATH, POEM], lam=5.0)
    for clone in (copy.deepcopy(toy_router), pickle.loads(pickle.dumps(toy_router))):
        assert clone.models == toy_router.models and clone._lock is not toy_router._lock
        for old, new in zip(before, clone.route_batch([MATH, POEM], lam=5.0)):
            assert new.model == old.model
            np.testing.assert_allclose(new.scores, old.scores)
        clone.remove_model("big")
        assert "big" in toy_router.models


@pytest.mark.integration
def test_router_on_the_default_embedder_pickles(static_router):
    clone = pickle.loads(pickle.dumps(static_router))
    for prompt in (MATH, POEM):
        np.testing.assert_allclose(
            clone.route(prompt, lam=5.0).scores, static_router.route(prompt, lam=5.0).scores, rtol=1e-6
        )


@pytest.mark.parametrize("cost", ["cheap", None, True, -0.01, float("inf"), ["a", "b"]])
def test_add_model_refuses_a_cost_that_is_not_dollars(toy_router, toy_data, cost):
    with pytest.raises(InputError, match="cost"):
        toy_router.add_model("new", toy_data["prompts"], toy_data["scores"]["big"], cost=cost)


def test_add_models_wants_mappings(toy_router, toy_data):
    with pytest.raises(InputError, match=r"mapping of model name.*add_model"):
        toy_router.add_models(toy_data["prompts"], [toy_data["scores"]["big"]], {"big": 0.1})
    with pytest.raises(InputError, match="costs as a mapping"):
        toy_router.add_models(toy_data["prompts"], {"x": toy_data["scores"]["big"]}, 0.1)


@pytest.mark.parametrize("name", ["", "   ", 3, None])
def test_model_names_are_non_empty_strings(toy_router, toy_data, name):
    with pytest.raises(InputError, match="model name must be a non-empty string"):
        toy_router.add_model(name, toy_data["prompts"], toy_data["scores"]["big"], cost=0.1)
    with pytest.raises(InputError, match="model name must be a non-empty string"):
        toy_router.add_profile(ModelProfile(name, [0.0, 0.0], [1.0, 1.0], cost=0.0))


def test_calibrate_needs_prompts_and_numbers(toy_router):
    with pytest.raises(InputError, match="representative prompts"):
        toy_router.calibrate([], max_cost=0.01)
    with pytest.raises(InputError, match="max_cost"):
        toy_router.calibrate([MATH], max_cost="0.01")


@pytest.mark.parametrize("prompts", [MATH, MATH.encode()])
def test_one_prompt_where_a_list_belongs_is_refused(toy_router, toy_data, prompts):
    # a str is a sequence of characters: route_batch(MATH) routed each character, fit(MATH)
    # clustered the characters, calibrate(MATH, ...) chose λ on them, all without a word
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2))
    calls = [
        lambda: toy_router.route_batch(prompts),
        lambda: toy_router.embed(prompts),
        lambda: toy_router.calibrate(prompts, max_cost=0.005),
        lambda: toy_router.add_models(prompts, {"m": [1.0] * len(prompts)}, {"m": 0.001}),
        lambda: router.fit(prompts),
    ]
    for call in calls:
        with pytest.raises(InputError, match=r"a list of prompts, not one .*: \[prompt\]"):
            call()
    assert not router.is_fitted and "m" not in toy_router.models


def test_init_stores_arguments_and_fit_checks_them(toy_data):
    router = Router(HashingEmbedder(), unknown_models="sometimes", prior_strength="4")
    assert router.unknown_models == "sometimes" and router.prior_strength == "4"
    with pytest.raises(InputError, match="unknown_models"):
        router.fit(toy_data["prompts"])
    router.unknown_models = "skip"
    with pytest.raises(InputError, match="prior_strength"):
        router.fit(toy_data["prompts"])


@pytest.mark.parametrize(
    "params, match",
    [  # before: fit and route took them; only the first feedback or explored route refused them, by
        # another name (half_life, max_share)
        ({"feedback_half_life": -1.0}, "feedback_half_life must be a finite number >= 0"),
        ({"feedback_half_life": 0}, "feedback_half_life must be > 0 seconds or None"),
        ({"feedback_half_life": "1h"}, "feedback_half_life must be a number"),
        ({"explore_share": 5}, "explore_share must lie in \\[0, 1\\]"),
        ({"explore_margin": "small"}, "explore_margin must be a number"),
    ],
)
def test_feedback_and_exploration_arguments_are_checked_at_fit(toy_data, params, match):
    with pytest.raises(InputError, match=match):
        Router(HashingEmbedder(), **params).fit(toy_data["prompts"])


def test_a_fitted_map_is_used_as_is(toy_router):
    fitted = toy_router.cluster_map_
    router = Router(toy_router.embedder, fitted)
    assert router.is_fitted and router.cluster_map_ is fitted
    router.add_profiles(toy_router.profiles.values())
    np.testing.assert_allclose(router.route(MATH, lam=5.0).scores, toy_router.route(MATH, lam=5.0).scores)


class RecordingMap(KMeansClusterMap):
    """A third-party map: records what fit was given."""

    def fit(self, X, y=None):
        self.seen_y = y
        return super().fit(X)


def test_fit_passes_the_training_scores_to_any_map(toy_data):
    y = np.column_stack([toy_data["scores"]["mathbot"], toy_data["scores"]["poet"]])
    router = Router(HashingEmbedder(), RecordingMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"], y)
    np.testing.assert_array_equal(router.cluster_map_.seen_y, y)


def test_eight_threads_route_consistently_and_warn_once_per_unknown_name(toy_router, toy_data):
    """Shared state under concurrent routing: the candidate-layout cache churns (more lists than it
    keeps), "big" is priced by each prompt's length, and every unknown candidate is warned about
    exactly once."""
    prompts = toy_data["prompts"]
    billed = [0.0002 * len(p) for p in prompts]
    toy_router.add_model("big", prompts, toy_data["scores"]["big"], billed, replace=True)
    models = ["mathbot", "poet", "big"]
    lists = [
        [f"ghost-{i}", *models[: 1 + i % 3]] if i % 2 else {f"r{i}": models[i % 3], "big": "big"}
        for i in range(600)
    ]
    texts = [MATH if i % 3 else MATH * 8 for i in range(600)]
    reference = copy.deepcopy(toy_router)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [reference.route(t, lam=50.0, candidates=c).ranking for t, c in zip(texts, lists)]
    errors: list[BaseException] = []
    mismatches: list[int] = []

    def work(offset: int) -> None:
        try:
            for k in range(len(lists)):
                i = (k + 75 * offset) % len(lists)
                if toy_router.route(texts[i], lam=50.0, candidates=lists[i]).ranking != expected[i]:
                    mismatches.append(i)
        except BaseException as exc:
            errors.append(exc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
    assert not errors and not mismatches
    warned = [str(w.message) for w in caught if "no profile" in str(w.message)]
    named = [name for message in warned for name in re.findall(r"ghost-\d+", message)]
    assert sorted(named) == sorted(f"ghost-{i}" for i in range(1, 600, 2))


def test_warned_names_are_bounded(toy_router):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3000):
            toy_router.route(MATH, candidates=[f"client-typo-{i}", "big"])
    assert len(toy_router._warned) <= 1024


def test_skip_warnings_leave_a_bounded_warning_registry(toy_router, monkeypatch):
    """Python remembers each distinct warning text it showed in the caller's __warningregistry__
    for the life of the process: candidate names clients send must not grow it."""
    monkeypatch.setattr(router_module, "_MAX_WARNED", 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for i in range(50):
            decision = toy_router.route(MATH, candidates=[f"client-typo-{i}", "big"])
        registry = globals().get("__warningregistry__", {})
        kept = [key for key in registry if "no profile" in str(key)]
    assert decision.skipped == ("client-typo-49",)
    assert len(kept) <= 9 and len(toy_router._warned) <= 8
    assert "client-typo-0" in str(caught[0].message) and "Decision.skipped" in str(caught[-1].message)


def test_conservative_quantiles_kept_are_bounded(toy_router, monkeypatch):
    """Each request may name its own quantile (LangChain's per-call ``conservative``): the
    conservative Ψ kept per quantile must not grow with them."""
    monkeypatch.setattr(router_module, "_MAX_QUANTILES", 4, raising=False)
    first = toy_router.route(MATH, conservative=0.9)
    for i in range(20):
        toy_router.route(MATH, conservative=0.5 + i / 100)
    assert len(toy_router._routing_pool()._upper) <= 4
    again = toy_router.route(MATH, conservative=0.9)
    np.testing.assert_allclose(again.scores, first.scores)


def test_fit_leaves_the_given_map_alone(toy_data):
    given = KMeansClusterMap(n_clusters=2, random_state=0)
    router = Router(HashingEmbedder(), given).fit(toy_data["prompts"])
    assert router.cluster_map is given and not hasattr(given, "cluster_weights_")
    assert router.cluster_map_ is not given and router.cluster_map_.get_params() == given.get_params()
    default = Router(HashingEmbedder()).fit(toy_data["prompts"])
    assert default.cluster_map is None and isinstance(default.cluster_map_, KMeansClusterMap)
    weights = router.cluster_map_.cluster_weights_.copy()
    refit = Router(HashingEmbedder(), router.cluster_map_).fit(toy_data["prompts"][:40])
    assert refit.cluster_map_ is not router.cluster_map_
    np.testing.assert_array_equal(router.cluster_map_.cluster_weights_, weights)
    assert not np.array_equal(refit.cluster_map_.cluster_weights_, weights)


def test_a_model_joins_with_no_validation_results(toy_router):
    toy_router.add_model_prior("newcomer", 0.0001, accuracy=0.99, strength=100.0)
    d = toy_router.route(POEM, lam=10.0)
    assert d.model == "newcomer" and d.expected_error["newcomer"] < 0.05
    toy_router.add_model_prior("poet-2", 0.001, like="poet")
    d = toy_router.route(POEM, candidates=["poet", "poet-2", "mathbot"])
    assert d.ranking[-1] == "mathbot"
    assert d.expected_error["poet"] < d.expected_error["poet-2"] < 0.5 < d.expected_error["mathbot"]
    with pytest.raises(InputError, match="exactly one"):
        toy_router.add_model_prior("x", 0.1)
    with pytest.raises(InputError, match="cost"):
        toy_router.add_model_prior("x", "cheap", accuracy=0.5)
    with pytest.raises(UnknownModelError, match="ghost"):
        toy_router.add_model_prior("x", 0.1, like="ghost")


def test_per_prompt_costs_price_each_request_by_its_length(toy_router, toy_data, tmp_path):
    # Before: one mean $ per model, so at equal quality a short and a long prompt went to the
    # same model; now "billed" (its $ grows with the prompt) wins short prompts, "flat" long ones.
    prompts = toy_data["prompts"]
    chars = np.array([len(p) for p in prompts], dtype=float)
    right = np.ones(len(prompts))
    billed = toy_router.add_model("billed", prompts, right, 1e-5 * chars)
    toy_router.add_model("flat", prompts, right, billed.cost)
    assert billed.cost_per_char == pytest.approx(1e-5) and billed.mean_chars == pytest.approx(chars.mean())
    short, long = "2+2?", MATH * 10
    pair = ["billed", "flat"]
    assert toy_router.route(short, lam=1.0, candidates=pair).model == "billed"
    decision = toy_router.route(long, lam=1.0, candidates=pair)
    assert decision.model == "flat"
    assert decision.cost == {"billed": pytest.approx(1e-5 * len(long)), "flat": pytest.approx(billed.cost)}
    assert [d.model for d in toy_router.route_batch([short, long], lam=1.0, candidates=pair)] == pair
    toy_router.save(tmp_path / "state")
    loaded = Router.load(tmp_path / "state")
    assert loaded.route(long, lam=1.0, candidates=pair).cost == decision.cost


def test_calibrate_budgets_with_each_request_priced_by_its_length(toy_router, toy_data):
    prompts = toy_data["prompts"]
    chars = np.array([len(p) for p in prompts], dtype=float)
    toy_router.add_model("billed", prompts, np.ones(len(prompts)), 1e-4 * chars)
    traffic = ["2+2?"] * 3 + [MATH * 20]
    pair = ["billed", "mathbot"]
    lam = toy_router.calibrate(traffic, max_cost=0.005, candidates=pair)
    spent = [d.cost[d.model] for d in toy_router.route_batch(traffic, lam=lam, candidates=pair)]
    assert np.mean(spent) <= 0.005
    assert [d.model for d in toy_router.route_batch(traffic, lam=lam, candidates=pair)][:3] == ["billed"] * 3


def test_expected_errors_price_prompts_by_length_when_given_their_lengths(toy_router, toy_data):
    prompts = toy_data["prompts"]
    toy_router.add_model("billed", prompts, np.ones(len(prompts)), [1e-5 * len(p) for p in prompts])
    texts = ["2+2?", MATH * 10]
    X = toy_router.embed(texts)
    _, flat, names = toy_router.expected_errors(X)
    assert flat.shape == (len(names),)
    _, priced, names = toy_router.expected_errors(X, chars=[len(t) for t in texts])
    decisions = toy_router.route_batch(texts)
    np.testing.assert_allclose(priced, [[d.cost[n] for n in names] for d in decisions])
    with pytest.raises(InputError, match="one length >= 0 per prompt"):
        toy_router.expected_errors(X, chars=[1.0])


def test_route_embeddings_price_prompts_by_length_when_given_their_lengths(toy_router, toy_data):
    prompts = toy_data["prompts"]
    toy_router.add_model("billed", prompts, np.ones(len(prompts)), [1e-5 * len(p) for p in prompts])
    texts = ["2+2?", MATH * 10]
    X = toy_router.embed(texts)
    by_text = toy_router.route_batch(texts, lam=50.0)
    by_embedding = toy_router.route_embeddings(X, lam=50.0, chars=[len(t) for t in texts])
    assert [d.model for d in by_embedding] == [d.model for d in by_text]
    for a, b in zip(by_embedding, by_text, strict=True):
        np.testing.assert_allclose(a.costs, b.costs)
    flat = toy_router.route_embeddings(X, lam=50.0)
    np.testing.assert_allclose(flat[0].costs, flat[1].costs)
    for bad in ([1.0], ["long", "short"], [1.0, -1.0]):
        with pytest.raises(InputError, match="one length >= 0 per prompt"):
            toy_router.route_embeddings(X, chars=bad)


def test_a_router_on_averaged_maps_estimates_the_mean_of_each_maps_estimate():
    """Each cluster of a map that averages three holds a third of a prompt, so the prior per
    cluster is a third too: Φ·Ψ is then the mean of the three maps' own routers' Φ_c·Ψ_c (up to
    the global error each profile's prior centres on, pooled over the three maps here)."""
    rng = np.random.default_rng(0)
    corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    X = np.concatenate([c + 0.3 * rng.standard_normal((60, 2)) for c in corners]).astype(np.float32)
    Y = (rng.random((240, 3)) < np.repeat([[0.9, 0.5, 0.2], [0.3, 0.6, 0.9]] * 2, 60, axis=0)).astype(float)
    val, test = X[::2], X[1::2]
    scores = {"a": Y[::2, 0], "b": Y[::2, 2]}
    averaged = Router("hashing", KMeansClusterMap()).fit_embeddings(X, Y)
    averaged.add_models([""] * len(val), scores, {"a": 1.0, "b": 2.0}, embeddings=val)
    assert averaged.cluster_map_.n_maps_ == 3
    singles = []
    for k, assignment, _ in averaged.cluster_map_.maps_:
        single = Router("hashing", KMeansClusterMap(k, assignment)).fit_embeddings(X, Y)
        single.add_models([""] * len(val), scores, {"a": 1.0, "b": 2.0}, embeddings=val)
        singles.append(single.expected_errors(test)[0])
    np.testing.assert_allclose(averaged.expected_errors(test)[0], np.mean(singles, axis=0), atol=1e-3)
