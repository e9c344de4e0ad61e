"""The LiteLLM SDK strategy, the shared ranker and the proxy callback (in process, offline)."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import random
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import litellm
import numpy as np
import pytest
from litellm.types.router import RouterRateLimitError
from litellm_fakes import (
    MATH_PROMPT,
    ODD_REQUESTS,
    POETRY_PROMPT,
    demo_engine,
    deployment,
    fake_openai_server,
    sdk_example,
    tiny_engine,
)

from uniroute import InputError, Router, StateError
from uniroute.engine.router import NO_TEXT_NOTE
from uniroute.integrations import litellm as ul

LAM = 30.0
IDS = {"mathbot": "mathbot", "poet": "poet", "big": "big-eu"}  # profile -> deployment id


@pytest.fixture(scope="module")
def engine() -> Router:
    return demo_engine()


def demo_deployments(fail: tuple[str, ...] = ()) -> list[dict]:
    return [deployment(dep, profile, fail=dep in fail) for profile, dep in IDS.items()]


def make_router(model_list: list[dict], engine: Router, **install_kwargs) -> litellm.Router:
    router = litellm.Router(model_list=model_list, num_retries=2, retry_after=0)
    install_kwargs.setdefault("lam", LAM)
    ul.install(router, engine, **install_kwargs)
    return router


def expected_id(engine: Router, prompt, lam: float = LAM, rank: int = 0) -> str:
    return IDS[engine.route(prompt, lam=lam, candidates=list(IDS)).ranking[rank]]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---- routing to the engine's first choice -----------------------------------------------


@pytest.mark.parametrize("prompt", [MATH_PROMPT, POETRY_PROMPT])
async def test_async_completion_goes_to_engine_first_choice(engine: Router, prompt: str) -> None:
    router = make_router(demo_deployments(), engine)
    metadata: dict = {}
    response = await router.acompletion(model="demo", messages=user(prompt), metadata=metadata)
    want = expected_id(engine, user(prompt))
    assert response._hidden_params["model_id"] == want
    decision = response._hidden_params["uniroute"]
    assert decision["deployment"] == want and decision["rank"] == 1 and decision["lambda"] == LAM
    assert decision["chosen"] == decision["answered"] == want and decision["failed"] == []
    assert metadata[ul.DECISION_KEY]["deployment"] == want
    assert decision["cluster"] == engine.route(user(prompt)).cluster


def test_sync_completion_goes_to_engine_first_choice(engine: Router) -> None:
    router = make_router(demo_deployments(), engine)
    for prompt in (MATH_PROMPT, POETRY_PROMPT):
        response = router.completion(model="demo", messages=user(prompt))
        assert response._hidden_params["model_id"] == expected_id(engine, user(prompt))
        assert response.choices[0].message.content == f"[{expected_id(engine, user(prompt))}]"


def test_demo_router_sends_topics_to_specialists(engine: Router) -> None:
    assert expected_id(engine, user(MATH_PROMPT)) == "mathbot"
    assert expected_id(engine, user(POETRY_PROMPT)) == "poet"
    assert expected_id(engine, user(MATH_PROMPT), lam=0.0) == "big-eu"


async def test_embedding_calls_route_on_their_input(engine: Router) -> None:
    router = make_router(demo_deployments(), engine)
    for text in (MATH_PROMPT, POETRY_PROMPT):
        response = await router.aembedding(model="demo", input=[text], mock_response=[0.1, 0.2])
        assert response._hidden_params["uniroute"]["deployment"] == expected_id(engine, text)
        sync = router.embedding(model="demo", input=text, mock_response=[0.1, 0.2])
        assert sync._hidden_params["uniroute"]["deployment"] == expected_id(engine, text)


async def test_a_request_naming_a_deployment_id_gets_it(engine: Router) -> None:
    router = make_router(demo_deployments(), engine, lam=0.0)
    response = await router.acompletion(model="poet", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] == "poet"
    assert "did not rank" in response._hidden_params["uniroute"]["note"]
    assert (
        router.completion(model="mathbot", messages=user(POETRY_PROMPT))._hidden_params["model_id"]
        == "mathbot"
    )


# ---- per-request control --------------------------------------------------------------------


async def test_lambda_operating_point_and_candidates_per_request(engine: Router) -> None:
    router = make_router(demo_deployments(), engine, lam=0.0, operating_points={"cheap": LAM})
    cases = [
        ({}, expected_id(engine, user(MATH_PROMPT), lam=0.0)),
        ({"lambda": LAM}, "mathbot"),
        ({"operating_point": "cheap"}, "mathbot"),
        ({"lambda": 1000.0, "candidates": ["poet", "big"]}, "poet"),
        ({"candidates": ["big-eu"]}, "big-eu"),
    ]
    for control, want in cases:
        response = await router.acompletion(
            model="demo", messages=user(MATH_PROMPT), metadata={"uniroute": control}
        )
        assert response._hidden_params["model_id"] == want, control


@pytest.mark.parametrize(
    ("control", "message"),
    [
        ({"lamda": 0.1}, "unknown key(s) ['lamda']"),
        ({"lambda": -0.5}, "must be a finite number >= 0, got -0.5"),
        ({"lambda": math.nan}, "finite number >= 0"),
        ({"lambda": "high"}, "must be a number >= 0, got 'high'"),
        ({"lambda": 1.0, "operating_point": "cheap"}, "not both"),
        ({"operating_point": "turbo"}, "unknown operating point 'turbo'"),
        ({"candidates": "poet"}, "non-empty list"),
        ({"candidates": ["nobody"]}, "none of the candidates ['nobody']"),
        ("fast", "must be an object"),
    ],
)
async def test_bad_control_is_a_clear_bad_request(engine: Router, control, message: str) -> None:
    router = make_router(demo_deployments(), engine, operating_points={"cheap": LAM})
    with pytest.raises(litellm.BadRequestError, match="uniroute") as info:
        await router.acompletion(model="demo", messages=user(MATH_PROMPT), metadata={"uniroute": control})
    assert message in str(info.value)
    with pytest.raises(litellm.BadRequestError, match="uniroute"):
        router.completion(model="demo", messages=user(MATH_PROMPT), metadata={"uniroute": control})


def test_bad_settings_are_rejected_up_front(engine: Router) -> None:
    router = litellm.Router(model_list=demo_deployments())
    with pytest.raises(InputError, match="finite number >= 0"):
        ul.install(router, engine, lam=-1.0)
    with pytest.raises(InputError, match="unknown operating point 'fast'"):
        ul.install(router, engine, lam="fast", operating_points={"slow": 0.0})
    with pytest.raises(InputError, match="prices must be one of"):
        ul.install(router, engine, prices="cheapest")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not both"), pytest.warns(DeprecationWarning, match="'cost'"):
        ul.install(router, engine, prices="auto", cost="profile")
    with pytest.raises(StateError, match="no router state at"):
        ul.install(router, "/nonexistent/uniroute-state")
    # before, an AttributeError ('list' object has no attribute 'items'), at install and proxy start
    with pytest.raises(InputError, match=r"operating_points must map names to λ, got \['best'\]"):
        ul.install(router, engine, operating_points=["best"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("litellm_params", "input_cost_per_token", -1.0), ("model_info", "output_cost_per_token", float("nan"))],
)
def test_a_bad_declared_price_is_refused_at_install(engine: Router, section, key, value) -> None:
    # before: install took it, and every request of the group then failed with a 400 (BadRequestError)
    model_list = demo_deployments()
    model_list[0].setdefault(section, {})[key] = value
    try:
        router = litellm.Router(model_list=model_list)
    except ValueError as exc:  # LiteLLM 1.110 refuses a NaN price itself
        pytest.skip(f"this LiteLLM refuses the deployment itself: {exc}")
    # LiteLLM copies a price in litellm_params into model_info, which is then what the message names
    with pytest.raises(
        InputError, match=rf"(model_info|litellm_params)\.{key} of deployment 'mathbot' \(demo\)"
    ):
        ul.install(router, engine)
    ul.install(litellm.Router(model_list=model_list), engine, prices="profile")  # prices it does not read


def test_a_bad_declared_price_in_the_proxy_config_stops_startup(engine, tmp_path, monkeypatch) -> None:
    state = str(engine.save(tmp_path / "state"))
    config = {"model_list": demo_deployments()}
    config["model_list"][1]["litellm_params"]["output_cost_per_token"] = -2e-6
    monkeypatch.setattr(ul._compat, "proxy_config", lambda: config)
    with pytest.raises(InputError, match=r"litellm_params\.output_cost_per_token of deployment 'poet'"):
        ul.UniRouteProxyRouter.from_settings({"state": state})


# ---- failure, cooldowns ---------------------------------------------------------------------


async def test_failing_first_choice_falls_back_to_next_best(engine: Router) -> None:
    router = make_router(demo_deployments(fail=("mathbot",)), engine)
    first, second = expected_id(engine, user(MATH_PROMPT)), expected_id(engine, user(MATH_PROMPT), rank=1)
    assert first == "mathbot"
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] == second
    decision = response._hidden_params["uniroute"]
    assert decision["rank"] == 2
    assert (decision["chosen"], decision["failed"], decision["answered"]) == ("mathbot", ["mathbot"], second)
    assert {"deployment": "mathbot", "healthy": False}.items() <= decision["ranking"][0].items()
    assert "mathbot" in ul._compat.cooling_down(router)
    again = router.completion(model="demo", messages=user(MATH_PROMPT))
    assert again._hidden_params["model_id"] == second


@pytest.mark.integration
async def test_local_500_server_falls_back_after_cooldown(engine: Router) -> None:
    with fake_openai_server(chat_status=500) as server:
        model_list = demo_deployments()
        model_list[0]["litellm_params"].pop("mock_response")
        model_list[0]["litellm_params"]["api_base"] = server.base_url
        router = litellm.Router(model_list=model_list, num_retries=2, retry_after=0, allowed_fails=0)
        ul.install(router, engine, lam=LAM)
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        assert any(path.endswith("/chat/completions") for path, _ in server.requests)
    assert response._hidden_params["model_id"] == expected_id(engine, user(MATH_PROMPT), rank=1)
    assert response._hidden_params["uniroute"]["rank"] == 2


async def test_all_deployments_cooled_down_is_litellms_own_error(engine: Router) -> None:
    router = make_router(demo_deployments(fail=tuple(IDS.values())), engine)
    with pytest.raises(litellm.RateLimitError):
        await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    with pytest.raises((RouterRateLimitError, litellm.RateLimitError)) as info:
        await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert "uniroute" not in str(info.value)
    with pytest.raises((RouterRateLimitError, litellm.RateLimitError)):
        router.completion(model="demo", messages=user(POETRY_PROMPT))


# ---- odd requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ODD_REQUESTS))
async def test_odd_requests_route_by_the_engine_rule(engine: Router, name: str) -> None:
    messages = ODD_REQUESTS[name]
    router = make_router(demo_deployments(), engine)
    response = await router.acompletion(model="demo", messages=messages)
    decision = response._hidden_params["uniroute"]
    assert response._hidden_params["model_id"] == decision["deployment"] == expected_id(engine, messages)
    assert (decision["note"] == NO_TEXT_NOTE) == (name in {"empty", "image_only"})
    sync = router.completion(model="demo", messages=messages)
    assert sync._hidden_params["model_id"] == decision["deployment"]


async def test_group_without_profiles_is_left_to_litellm(engine: Router, tmp_path) -> None:
    model_list = [deployment("plain-1", group="plain"), deployment("plain-2", group="plain")]
    router = make_router(model_list, engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await router.acompletion(model="plain", messages=user(MATH_PROMPT))
    assert not [w for w in caught if "uniroute" in str(w.message)]
    assert response._hidden_params["model_id"] in {"plain-1", "plain-2"}
    assert "LiteLLM chose" in response._hidden_params["uniroute"]["note"]
    strict = Router.load(engine.save(tmp_path / "state.npz"))
    strict.unknown_models = "error"
    router = make_router([*model_list, *demo_deployments(), deployment("stranger")], strict)
    response = await router.acompletion(model="plain", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] in {"plain-1", "plain-2"}
    with pytest.raises(litellm.BadRequestError, match=r"'stranger'.*has no uniroute profile"):
        await router.acompletion(model="demo", messages=user(MATH_PROMPT))


async def test_unprofiled_deployment_is_only_a_last_resort(engine: Router) -> None:
    model_list = [deployment("mathbot", fail=True), deployment("stranger")]
    router = make_router(model_list, engine)
    with pytest.warns(UserWarning, match="'stranger'.*has no profile"):
        response = await router.acompletion(model="demo", messages=user(POETRY_PROMPT))
    assert response._hidden_params["model_id"] == "stranger"
    assert "fell back" in response._hidden_params["uniroute"]["note"]


# ---- costs ----------------------------------------------------------------------------------


async def test_model_info_prices_beat_the_profile_cost(engine: Router) -> None:
    """LiteLLM PR #31573: cost routing must read model_info prices."""
    dear = deployment(
        "big-dear", "big", model_info={"input_cost_per_token": 1e-4, "output_cost_per_token": 1e-4}
    )
    cheap = deployment("big-cheap", "big", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    router = make_router([dear, cheap], engine)
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    decision = response._hidden_params["uniroute"]
    assert response._hidden_params["model_id"] == "big-cheap"
    n_in = len(MATH_PROMPT) / ul.CHARS_PER_TOKEN
    assert decision["cost"] == pytest.approx(1e-7 * n_in + 1e-7 * ul.DEFAULT_OUTPUT_TOKENS)
    assert decision["ranking"][1]["cost"] == pytest.approx(1e-4 * (n_in + ul.DEFAULT_OUTPUT_TOKENS))
    router = make_router([dear, cheap], engine, prices="profile")
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["uniroute"]["cost"] == engine.profile("big").cost


async def test_a_request_s_max_tokens_caps_the_output_it_is_priced_for(engine: Router) -> None:
    # Before: every request was priced at expected_output_tokens (256), even one capped at 4 tokens.
    wordy = deployment("big-wordy", "big", input_cost_per_token=1e-7, output_cost_per_token=1e-4)
    terse = deployment("big-terse", "big", input_cost_per_token=1e-4, output_cost_per_token=1e-7)
    router = make_router([wordy, terse], engine)
    n_in = len(MATH_PROMPT) / ul.CHARS_PER_TOKEN
    for cap, key, chosen in (
        (None, None, "big-terse"),
        (4, "max_tokens", "big-wordy"),
        (4, "max_completion_tokens", "big-wordy"),
        (1000, "max_tokens", "big-terse"),
    ):
        extra = {} if key is None else {key: cap}
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT), **extra)
        decision = response._hidden_params["uniroute"]
        out = min(ul.DEFAULT_OUTPUT_TOKENS, cap or ul.DEFAULT_OUTPUT_TOKENS)
        assert response._hidden_params["model_id"] == chosen, (key, cap)
        price = {"big-wordy": 1e-7 * n_in + 1e-4 * out, "big-terse": 1e-4 * n_in + 1e-7 * out}
        assert decision["cost"] == pytest.approx(price[chosen])


async def test_a_profile_priced_by_length_routes_long_prompts_to_the_flat_price() -> None:
    # Before: a profile held one mean $, so with equal quality both prompts went to the same deployment.
    engine = tiny_engine(())
    prompts = [MATH_PROMPT, POETRY_PROMPT] * 4
    chars = np.array([len(p) for p in prompts], dtype=float)
    billed = engine.add_model("billed", prompts, np.ones(len(prompts)), 1e-5 * chars)
    engine.add_model("flat", prompts, np.ones(len(prompts)), billed.cost)
    router = make_router([deployment("billed"), deployment("flat")], engine, lam=1.0)
    short, long = "2+2?", MATH_PROMPT * 10
    routed = {}
    for text in (short, long):
        response = await router.acompletion(model="demo", messages=user(text))
        routed[text] = response._hidden_params["model_id"]
        cost = response._hidden_params["uniroute"]["cost"]
        assert cost == pytest.approx(min(1e-5 * len(text), billed.cost))
    assert routed == {short: "billed", long: "flat"}


async def test_price_map_prices_when_asked(engine: Router) -> None:
    mini = deployment("big-mini", "big")
    mini["litellm_params"]["model"] = "gpt-4o-mini"
    large = deployment("big-large", "big")
    large["litellm_params"]["model"] = "gpt-4o"
    router = make_router([large, mini], engine, prices="deployment", expected_output_tokens=100)
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] == "big-mini"
    n_in = len(MATH_PROMPT) / ul.CHARS_PER_TOKEN
    assert response._hidden_params["uniroute"]["cost"] == pytest.approx(
        ul.cost_per_request("gpt-4o-mini", n_in, 100)
    )


def test_cost_per_request_uses_litellms_price_map() -> None:
    info = litellm.get_model_info("gpt-4o-mini")
    want = 1000 * info["input_cost_per_token"] + 200 * info["output_cost_per_token"]
    assert ul.cost_per_request("gpt-4o-mini", 1000, 200) == pytest.approx(want)
    assert ul.cost_per_request("gpt-4o", 10, 0) > ul.cost_per_request("gpt-4o-mini", 10, 0)
    with pytest.raises(InputError, match="no prices for 'no-such-model-xyz'"):
        ul.cost_per_request("no-such-model-xyz", 1, 1)
    with pytest.raises(InputError, match="token counts must be >= 0"):
        ul.cost_per_request("gpt-4o-mini", -1, 1)


# ---- the proxy callback, in process ------------------------------------------------------


async def test_proxy_callback_narrows_to_the_first_choice_and_sets_headers(engine: Router) -> None:
    callback = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM))
    healthy = demo_deployments()
    request: dict = {"metadata": {}}
    kept = await callback.async_filter_deployments("demo", healthy, user(POETRY_PROMPT), request)
    assert [d["model_info"]["id"] for d in kept] == ["poet"]
    headers = await callback.async_post_call_response_headers_hook(request, None, None)
    assert headers[ul.HEADER_PROFILE] == "poet" and headers[ul.HEADER_RANK] == "1"
    assert '"deployment":"poet"' in headers[ul.HEADER_DECISION]
    embedding_request = {"proxy_server_request": {"body": {"input": [MATH_PROMPT]}}}
    kept = await callback.async_filter_deployments("demo", healthy, None, embedding_request)
    assert [d["model_info"]["id"] for d in kept] == ["mathbot"]
    assert await callback.async_filter_deployments("demo", [], None, {}) == []


def test_proxy_settings_errors_name_the_path(engine: Router, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ul.STATE_ENV, raising=False)
    with pytest.raises(StateError, match="UNIROUTE_STATE"):
        ul.UniRouteProxyRouter.from_settings({})
    missing = tmp_path / "missing-state"
    with pytest.raises(StateError, match=str(missing)):
        ul.UniRouteProxyRouter.from_settings({"state": str(missing)})
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    monkeypatch.setenv(ul.STATE_ENV, str(corrupt))
    with pytest.raises(StateError, match=str(corrupt)):
        ul.UniRouteProxyRouter.from_settings({})
    with pytest.raises(InputError, match=r"unknown key\(s\) \['lamda'\]"):
        ul.UniRouteProxyRouter.from_settings({"lamda": 1})
    good = engine.save(tmp_path / "good")
    callback = ul.UniRouteProxyRouter.from_settings(
        {"state": str(good), "lambda": "x", "operating_points": {"x": 2}}
    )
    assert callback.ranker.lam == 2.0


def test_install_twice_keeps_one_recorder(engine: Router, recwarn: pytest.WarningsRecorder) -> None:
    router = make_router(demo_deployments(), engine)
    ul.install(router, engine, lam=0.0)
    assert not [w for w in recwarn if "custom strategy" in str(w.message)]  # its own is not "another"
    response = router.completion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["uniroute"]["lambda"] == 0.0
    assert response._hidden_params["model_id"] == expected_id(engine, user(MATH_PROMPT), lam=0.0)


@pytest.mark.parametrize("how", ["lar1", "own"])
def test_install_warns_when_it_replaces_another_custom_strategy(engine: Router, how: str) -> None:
    """LiteLLM's lar1 is itself a custom strategy: install() replaces it on every group."""
    if how == "lar1":
        router = litellm.Router(model_list=demo_deployments(), routing_strategy="lar1")
    else:

        class Mine(litellm.router.CustomRoutingStrategyBase):
            pass

        router = litellm.Router(model_list=demo_deployments())
        ul._compat.set_strategy(router, Mine())
    previous = type(ul._compat.registered_strategy(router)).__name__
    with pytest.warns(UserWarning, match=f"custom strategy {previous}; uniroute replaces it on every group"):
        ul.install(router, engine, lam=LAM)
    assert ul._compat.registered_strategy(router) is ul._compat.installed_strategy(router)


def test_request_prompt_follows_the_engine_rule() -> None:
    responses_input = [{"role": "user", "content": [{"type": "input_text", "text": "hello"}]}]
    assert ul.request_prompt(None, responses_input) == responses_input
    assert ul.request_prompt(None, ["a", "b"]) == ["a", "b"]
    assert ul.request_prompt(None, [[1, 2, 3]]) == []
    assert ul.request_prompt(None, None) == ""


async def test_sdk_example_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    await sdk_example().main("hashing")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    assert lines[0].split("-> ")[1].startswith("mathbot") and lines[1].split("-> ")[1].startswith("poet")
    assert "cluster prior" in lines[4]


# ---- issue 9, LiteLLM items 1-7 ---------------------------------------------------------


def regions(weights: tuple[float, ...] = (1, 1, 1), group: str = "demo") -> list[dict]:
    """One profile ("big") in several regions at one price, with LiteLLM weights."""
    return [deployment(f"big-{i}", "big", group=group, weight=w) for i, w in enumerate(weights)]


async def test_ties_share_load_by_litellm_weights(engine: Router) -> None:
    """Item 1: before, 30/30 requests went to the first region."""
    random.seed(0)
    router = make_router(regions((1, 1, 0)), engine)
    hits = Counter()
    for _ in range(30):
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        hits[response._hidden_params["model_id"]] += 1
        decision = response._hidden_params["uniroute"]
        assert len(decision["tied"]) == 3 and decision["rank"] == 1
    assert hits["big-0"] >= 8 and hits["big-1"] >= 8 and hits["big-2"] == 0, hits
    sync = Counter(
        router.completion(model="demo", messages=user(MATH_PROMPT))._hidden_params["model_id"]
        for _ in range(20)
    )
    assert set(sync) == {"big-0", "big-1"}, sync


async def test_a_deployment_that_failed_in_this_request_is_ranked_last(engine: Router) -> None:
    """Item 2: a 500 under the default allowed_fails; before, 7/8 requests succeeded."""
    model_list = [deployment("mathbot", fail="litellm.InternalServerError"), deployment("poet", "poet")]
    model_list += [deployment("big-eu", "big")]
    router = litellm.Router(model_list=model_list, num_retries=1, retry_after=0)
    ul.install(router, engine, lam=LAM)
    answered, failed = Counter(), 0
    for _ in range(8):
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        decision = response._hidden_params["uniroute"]
        assert decision["failed"] in ([], ["mathbot"])  # tried at most once, then cooled down
        answered[decision["answered"]] += 1
        failed += len(decision["failed"])
    assert answered == {expected_id(engine, user(MATH_PROMPT), rank=1): 8}
    assert failed >= 1


def test_failed_ids_come_from_previous_models() -> None:
    records = [{"deployment_id": "a"}, {"deployment_id": "b"}, {"deployment_id": "a"}, {"model": "x"}]
    assert ul._compat.failed_deployment_ids({"metadata": {"previous_models": records}}) == ["a", "b"]
    assert ul._compat.failed_deployment_ids({"litellm_metadata": {"previous_models": None}}) == []


def callback_router(model_list: list[dict], engine: Router, monkeypatch, **router_kwargs) -> litellm.Router:
    """An SDK router whose requests go through the proxy callback (as on the proxy)."""
    router = litellm.Router(model_list=model_list, num_retries=0, **router_kwargs)
    callback = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM), litellm_router=router)
    monkeypatch.setattr(litellm, "callbacks", [callback])
    return router


async def test_proxy_callback_keeps_tags(engine: Router, monkeypatch) -> None:
    """Item 3: before, tags=["eu"] got an error although two eu deployments exist."""
    model_list = [
        deployment("mathbot", tags=["us"]),
        deployment("poet-eu", "poet", tags=["eu"]),
        deployment("big-eu", "big", tags=["eu"]),
    ]
    router = callback_router(model_list, engine, monkeypatch, enable_tag_filtering=True)
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT), metadata={"tags": ["eu"]})
    want = IDS[engine.route(user(MATH_PROMPT), lam=LAM, candidates=["poet", "big"]).ranking[0]]
    assert response._hidden_params["model_id"] == want.replace("poet", "poet-eu")
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT), metadata={"tags": ["us"]})
    assert response._hidden_params["model_id"] == "mathbot"


async def test_proxy_callback_keeps_order(engine: Router, monkeypatch) -> None:
    """Item 3: before, an `order: 2` backup that ranks best took primary traffic."""
    model_list = [
        deployment("mathbot", order=2),
        deployment("poet", order=1),
        deployment("big-eu", "big", order=1),
    ]
    router = callback_router(model_list, engine, monkeypatch)
    for _ in range(3):
        response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
        assert response._hidden_params["model_id"] != "mathbot"


@pytest.mark.parametrize("call", ["completion", "acompletion"])
async def test_sdk_keeps_order_and_pre_call_checks(engine: Router, call: str) -> None:
    """Before, the sync path (`router.completion`) ranked every deployment that was not cooling
    down: an `order: 2` backup, or one whose context window the request exceeds under
    `enable_pre_call_checks`, took the traffic whenever it ranked best."""
    best = expected_id(engine, user(MATH_PROMPT), lam=0.0)
    for backup in ({"order": 2}, {"model_info": {"max_input_tokens": 5}}):
        model_list = [deployment(d, p, **(backup if d == best else {"order": 1})) for p, d in IDS.items()]
        router = litellm.Router(model_list=model_list, enable_pre_call_checks=True)
        ul.install(router, engine, lam=0.0)
        for _ in range(3):
            response = getattr(router, call)(model="demo", messages=user(MATH_PROMPT))
            response = await response if call == "acompletion" else response
            assert response._hidden_params["model_id"] != best


async def test_decision_names_who_answered_after_a_fallback(engine: Router) -> None:
    """Item 4: before, the decision named a deployment of the failed group."""
    model_list = [deployment("flaky-mathbot", "mathbot", group="flaky", fail=True), *demo_deployments()]
    router = litellm.Router(model_list=model_list, num_retries=0, fallbacks=[{"flaky": ["demo"]}])
    ul.install(router, engine, lam=LAM)
    response = await router.acompletion(model="flaky", messages=user(MATH_PROMPT))
    decision = response._hidden_params["uniroute"]
    assert decision["answered"] == decision["deployment"] == response._hidden_params["model_id"]
    assert decision["chosen"] == "flaky-mathbot" and "flaky-mathbot" in decision["failed"]


async def test_proxy_headers_name_who_answered(engine: Router) -> None:
    engine = copy.deepcopy(engine)  # feedback below changes it
    callback = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM))
    request: dict = {"metadata": {}}
    await callback.async_filter_deployments("demo", demo_deployments(), user(MATH_PROMPT), request)
    response = litellm.ModelResponse()
    response._hidden_params["model_id"] = "poet"
    headers = await callback.async_post_call_response_headers_hook(request, None, response)
    decision = json.loads(headers[ul.HEADER_DECISION])
    assert (decision["chosen"], decision["failed"], decision["answered"]) == ("mathbot", ["mathbot"], "poet")
    assert headers[ul.HEADER_PROFILE] == "poet"
    # issue 12: the id on the wire and in the hidden params; feedback by it credits who answered
    assert decision["decision_id"] == headers[ul.HEADER_DECISION_ID]
    assert response._hidden_params["uniroute"]["decision_id"] == headers[ul.HEADER_DECISION_ID]
    assert callback.ranker.record_feedback(headers[ul.HEADER_DECISION_ID], True) == "poet"


async def test_provider_prefixed_and_base_model_names_match_profiles(engine: Router, caplog) -> None:
    """Item 5: before, `openai/<profile>` deployments were silently left to LiteLLM."""
    model_list = [
        {"model_name": "demo", "litellm_params": {"model": "openai/mathbot", "mock_response": "m"}},
        {"model_name": "demo", "litellm_params": {"model": "openai/poet", "mock_response": "p"}},
        {
            "model_name": "demo",
            "litellm_params": {"model": "azure/my-big-deployment", "mock_response": "b"},
            "model_info": {"base_model": "big"},
        },
        {"model_name": "demo", "litellm_params": {"model": "openai/stranger", "mock_response": "s"}},
        {"model_name": "other", "litellm_params": {"model": "openai/other", "mock_response": "o"}},
    ]
    router = litellm.Router(model_list=model_list)
    with caplog.at_level(logging.INFO, logger=ul._compat.logger.name):
        ul.install(router, engine, lam=LAM)
    log = caplog.text
    assert (
        "routes model groups ['demo']" in log and "left to LiteLLM (no profiled deployment): ['other']" in log
    )
    assert "demo/" in log.split("without a profile")[1]
    with pytest.warns(UserWarning, match="has no profile"):
        response = await router.acompletion(
            model="demo", messages=user(POETRY_PROMPT), metadata={"uniroute": {"lambda": 0.0}}
        )
    decision = response._hidden_params["uniroute"]
    assert decision["profile"] == expected_id(engine, user(POETRY_PROMPT), lam=0.0).replace("big-eu", "big")
    assert decision["lambda"] == 0.0
    assert {row["profile"] for row in decision["ranking"]} == {"mathbot", "poet", "big"}


def test_a_strategy_that_never_calls_the_callback_is_a_startup_error(engine, tmp_path, monkeypatch) -> None:
    """Item 5: before, usage-based-routing silently switched uniroute off (LiteLLM < 1.110;
    since 1.110 every strategy calls the callback)."""
    if "usage-based-routing" in ul._compat.ASYNC_FILTER_STRATEGIES:
        pytest.skip("this LiteLLM calls the callback under every routing strategy")
    state = str(engine.save(tmp_path / "state"))
    config = {"router_settings": {"routing_strategy": "usage-based-routing"}, "model_list": []}
    monkeypatch.setattr(ul._compat, "proxy_config", lambda: config)
    with pytest.raises(InputError, match="usage-based-routing"):
        ul.UniRouteProxyRouter.from_settings({"state": state})
    config["router_settings"]["routing_strategy"] = "latency-based-routing"
    assert ul.UniRouteProxyRouter.from_settings({"state": state}).ranker.router.is_fitted


async def test_groups_without_profiles_keep_their_weights(engine: Router) -> None:
    """Item 6: before, a group uniroute does not route lost its weights (random choice)."""
    model_list = [*demo_deployments(), deployment("plain-1", group="plain", weight=1)]
    model_list.append(deployment("plain-2", group="plain", weight=0))
    router = make_router(model_list, engine)
    for _ in range(12):
        response = await router.acompletion(model="plain", messages=user(MATH_PROMPT))
        assert response._hidden_params["model_id"] == "plain-1"
        assert (
            router.completion(model="plain", messages=user(MATH_PROMPT))._hidden_params["model_id"]
            == "plain-1"
        )


async def test_a_group_litellm_pre_routes_keeps_its_pre_routing(engine: Router) -> None:
    """A complexity-router group has no callable deployment of its own: LiteLLM's pre-routing
    sends it on to a real group. Since LiteLLM 1.110 every pick reaches the strategy, which
    must run that pre-routing itself for a group it leaves to LiteLLM."""
    smart = {
        "model_name": "smart",
        "litellm_params": {
            "model": "auto_router/complexity_router",
            "complexity_router_default_model": "plain",
        },
    }
    router = make_router([*demo_deployments(), deployment("plain-1", group="plain"), smart], engine)
    response = await router.acompletion(model="smart", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] == "plain-1"
    assert (
        router.completion(model="plain", messages=user(MATH_PROMPT))._hidden_params["model_id"] == "plain-1"
    )


async def test_lambda_per_group(engine: Router) -> None:
    """Item 6: a per-group default λ (or operating point name)."""
    model_list = [*demo_deployments(), *[deployment(f"c-{d}", p, group="cheap") for p, d in IDS.items()]]
    router = make_router(
        model_list, engine, lam=0.0, operating_points={"cheap": LAM}, group_lam={"cheap": "cheap"}
    )
    quality = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    cheap = await router.acompletion(model="cheap", messages=user(MATH_PROMPT))
    assert quality._hidden_params["model_id"] == expected_id(engine, user(MATH_PROMPT), lam=0.0) == "big-eu"
    assert cheap._hidden_params["model_id"] == "c-mathbot"
    assert cheap._hidden_params["uniroute"]["lambda"] == LAM


async def test_a_group_lambda_naming_no_group_is_warned_about_and_applies_once_the_group_exists(
    engine: Router,
) -> None:
    # before: a key naming no model group (a typo) was taken silently and its λ never applied
    router = litellm.Router(
        model_list=[*demo_deployments(), deployment("any", "big", group="openai/*")],
        model_group_alias={"quality": "demo"},
    )
    with warnings.catch_warnings():  # a group, an alias and a name the wildcard group takes
        warnings.simplefilter("error")
        ul.install(router, engine, group_lam={"demo": 0.0, "quality": 1.0, "openai/gpt-4o": 2.0})
    with pytest.warns(
        UserWarning, match=r"group_lam names no model group of the router: \['cheap'\]; known "
    ):
        ul.install(router, engine, lam=0.0, group_lam={"cheap": LAM})
    # a warning, not an error: the group can be added while the router runs, and the λ then applies
    for profile, dep in IDS.items():
        router.add_deployment(
            litellm.types.router.Deployment(**deployment(f"c-{dep}", profile, group="cheap"))
        )
    cheap = await router.acompletion(model="cheap", messages=user(MATH_PROMPT))
    assert cheap._hidden_params["uniroute"]["lambda"] == LAM


def test_a_group_lambda_naming_no_group_of_the_proxy_config_is_warned_about(
    engine: Router, tmp_path, monkeypatch
) -> None:
    state = str(engine.save(tmp_path / "state"))
    config = {
        "model_list": [*demo_deployments(), deployment("any", "big", group="openai/*")],
        "router_settings": {"model_group_alias": {"quality": "demo"}},
    }
    monkeypatch.setattr(ul._compat, "proxy_config", lambda: config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ul.UniRouteProxyRouter.from_settings(
            {"state": state, "group_lambda": {"demo": 0, "quality": 1, "openai/gpt-4o": 2}}
        )
    with pytest.warns(UserWarning, match=r"group_lambda names no model group of the router: \['demo-x'\]"):
        ul.UniRouteProxyRouter.from_settings({"state": state, "group_lambda": {"demo-x": 1}})


async def test_client_metadata_never_reaches_the_headers(engine: Router) -> None:
    """Item 7: before, a CR/LF in metadata.uniroute_decision went into a response header."""
    callback = ul.UniRouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM))
    forged = {"metadata": {ul.DECISION_KEY: {"profile": "x\r\nset-cookie: a=b", "rank": "1\r\n"}}}
    assert await callback.async_post_call_response_headers_hook(forged, None, None) is None
    await callback.async_filter_deployments("demo", demo_deployments(), user(MATH_PROMPT), forged)
    headers = await callback.async_post_call_response_headers_hook(forged, None, None)
    assert headers[ul.HEADER_PROFILE] == "mathbot"
    assert all("\r" not in v and "\n" not in v for v in headers.values())


async def test_text_completion_carries_the_decision(engine: Router) -> None:
    """Item 7: before, atext_completion responses had no decision."""
    router = make_router(demo_deployments(), engine)
    for prompt in (MATH_PROMPT, POETRY_PROMPT):
        response = await router.atext_completion(model="demo", prompt=prompt)
        assert response._hidden_params["uniroute"]["answered"] == expected_id(engine, user(prompt))


async def test_responses_api_calls_carry_the_decision(engine: Router) -> None:
    """Before, responses/aresponses were routed but their response had no decision: LiteLLM
    carries those calls' metadata under ``litellm_metadata``, not the ``metadata`` read back."""
    router = make_router(demo_deployments(), engine)
    for prompt in (MATH_PROMPT, POETRY_PROMPT):
        want = expected_id(engine, prompt)
        response = await router.aresponses(model="demo", input=prompt)
        assert response._hidden_params["uniroute"]["answered"] == want
        assert ul.record_feedback(router, response, True) == {d: p for p, d in IDS.items()}[want]
        sync = router.responses(model="demo", input=prompt)
        assert sync._hidden_params["uniroute"]["answered"] == want


# ---- names (issue 13 item 9) ----------------------------------------------------------------


def test_old_names_and_settings_warn(engine: Router, tmp_path) -> None:
    with pytest.warns(DeprecationWarning, match="UniRouteStrategy"):
        assert ul.UnirouteStrategy is ul.UniRouteStrategy
    with pytest.warns(DeprecationWarning, match="UniRouteProxyRouter"):
        assert ul.UnirouteProxyRouter is ul.UniRouteProxyRouter
    router = litellm.Router(model_list=demo_deployments())
    with pytest.warns(DeprecationWarning, match="'cost' is deprecated"):
        strategy = ul.install(router, engine, cost="profile")
    assert strategy.ranker.prices == "profile" and strategy.router is engine
    with pytest.warns(DeprecationWarning, match="'cost' is deprecated"):
        callback = ul.UniRouteProxyRouter.from_settings(
            {"state": str(engine.save(tmp_path / "s")), "cost": "profile"}
        )
    assert callback.ranker.prices == "profile"


# ---- many requests at once ---------------------------------------------------------------


@pytest.mark.integration
async def test_concurrent_requests_on_the_default_embedder() -> None:
    """Sync calls from 8 threads while 48 async calls run, on the real default embedder:
    ranked requests go where the engine sends them alone, the group without profiles keeps
    its weights, and each response carries the decision made for it."""
    engine = sdk_example().build_demo_router("static")
    model_list = [*demo_deployments(), deployment("plain-1", group="plain", weight=1)]
    model_list.append(deployment("plain-2", group="plain", weight=0))
    router = make_router(model_list, engine)
    prompts = [MATH_PROMPT, POETRY_PROMPT]
    want = {prompt: expected_id(engine, user(prompt)) for prompt in prompts}

    def sync_call(i: int) -> tuple[str, str, str | None]:
        group, prompt = ("demo", "plain")[i % 3 == 0], prompts[i % 2]
        response = router.completion(model=group, messages=user(prompt))
        return (
            prompt,
            response._hidden_params["model_id"],
            (response._hidden_params.get("uniroute") or {}).get("deployment"),
        )

    async def async_call(i: int) -> tuple[str, str, str | None]:
        group, prompt = ("demo", "plain")[i % 3 == 0], prompts[i % 2]
        response = await router.acompletion(model=group, messages=user(prompt))
        return (
            prompt,
            response._hidden_params["model_id"],
            (response._hidden_params.get("uniroute") or {}).get("deployment"),
        )

    with ThreadPoolExecutor(8) as pool:
        threaded = pool.map(sync_call, range(48))
        awaited = await asyncio.gather(*(async_call(i) for i in range(48)))
        results = [*threaded, *awaited]
    assert len(results) == 96
    for prompt, answered, decided in results:
        assert decided == answered == ("plain-1" if answered.startswith("plain") else want[prompt])
