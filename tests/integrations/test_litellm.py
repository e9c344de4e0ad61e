"""The LiteLLM SDK strategy, the shared ranker and the proxy callback (in process, offline)."""

from __future__ import annotations

import math
import warnings

import litellm
import pytest
from litellm.router_utils.cooldown_handlers import get_cooldown_deployments
from litellm.types.router import RouterRateLimitError
from litellm_fakes import (
    MATH_PROMPT,
    ODD_REQUESTS,
    POETRY_PROMPT,
    demo_engine,
    fake_openai_server,
    sdk_example,
)

from uniroute import InputError, Router, StateError
from uniroute.engine.router import NO_TEXT_NOTE
from uniroute.integrations import litellm as ul

LAM = 30.0
IDS = {"mathbot": "mathbot", "poet": "poet", "big": "big-eu"}  # profile -> deployment id


@pytest.fixture(scope="module")
def engine() -> Router:
    return demo_engine()


def deployment(
    dep_id: str, profile: str | None = None, fail: bool = False, group: str = "demo", **extra
) -> dict:
    info = {"id": dep_id}
    if profile is not None and profile != dep_id:
        info["uniroute_profile"] = profile
    info.update(extra.pop("model_info", {}))
    params = {
        "model": f"openai/{dep_id}",
        "api_key": "unused",
        "mock_response": "litellm.RateLimitError" if fail else f"[{dep_id}]",
        **extra,
    }
    return {"model_name": group, "litellm_params": params, "model_info": info}


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
    assert metadata[ul.DECISION_KEY] == decision
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
    assert "named this deployment" in response._hidden_params["uniroute"]["note"]
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
    with pytest.raises(InputError, match="cost must be one of"):
        ul.install(router, engine, cost="cheapest")  # type: ignore[arg-type]
    with pytest.raises(StateError, match="no router state at"):
        ul.install(router, "/nonexistent/uniroute-state")


# ---- failure, cooldowns ---------------------------------------------------------------------


async def test_failing_first_choice_falls_back_to_next_best(engine: Router) -> None:
    router = make_router(demo_deployments(fail=("mathbot",)), engine)
    first, second = expected_id(engine, user(MATH_PROMPT)), expected_id(engine, user(MATH_PROMPT), rank=1)
    assert first == "mathbot"
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] == second
    decision = response._hidden_params["uniroute"]
    assert decision["rank"] == 2
    assert {"deployment": "mathbot", "healthy": False}.items() <= decision["ranking"][0].items()
    assert "mathbot" in get_cooldown_deployments(router, parent_otel_span=None)
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
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = await router.acompletion(model="plain", messages=user(MATH_PROMPT))
    assert response._hidden_params["model_id"] in {"plain-1", "plain-2"}
    assert "LiteLLM chose" in response._hidden_params["uniroute"]["note"]
    strict = Router.load(engine.save(tmp_path / "state.npz"))
    strict.unknown_models = "error"
    router = make_router(model_list, strict)
    with pytest.raises(litellm.BadRequestError, match="has no uniroute profile"):
        await router.acompletion(model="plain", messages=user(MATH_PROMPT))


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
    router = make_router([dear, cheap], engine, cost="profile")
    response = await router.acompletion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["uniroute"]["cost"] == engine.profile("big").cost


async def test_price_map_prices_when_asked(engine: Router) -> None:
    mini = deployment("big-mini", "big")
    mini["litellm_params"]["model"] = "gpt-4o-mini"
    large = deployment("big-large", "big")
    large["litellm_params"]["model"] = "gpt-4o"
    router = make_router([large, mini], engine, cost="deployment", expected_output_tokens=100)
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
    callback = ul.UnirouteProxyRouter(ul.DeploymentRanker(engine, lam=LAM))
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
        ul.UnirouteProxyRouter.from_settings({})
    missing = tmp_path / "missing-state"
    with pytest.raises(StateError, match=str(missing)):
        ul.UnirouteProxyRouter.from_settings({"state": str(missing)})
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    monkeypatch.setenv(ul.STATE_ENV, str(corrupt))
    with pytest.raises(StateError, match=str(corrupt)):
        ul.UnirouteProxyRouter.from_settings({})
    with pytest.raises(InputError, match=r"unknown key\(s\) \['lamda'\]"):
        ul.UnirouteProxyRouter.from_settings({"lamda": 1})
    good = engine.save(tmp_path / "good")
    callback = ul.UnirouteProxyRouter.from_settings(
        {"state": str(good), "lambda": "x", "operating_points": {"x": 2}}
    )
    assert callback.ranker.lam == 2.0


def test_install_twice_keeps_one_recorder(engine: Router) -> None:
    router = make_router(demo_deployments(), engine)
    ul.install(router, engine, lam=0.0)
    response = router.completion(model="demo", messages=user(MATH_PROMPT))
    assert response._hidden_params["uniroute"]["lambda"] == 0.0
    assert response._hidden_params["model_id"] == expected_id(engine, user(MATH_PROMPT), lam=0.0)


def test_request_prompt_follows_the_engine_rule() -> None:
    responses_input = [{"role": "user", "content": [{"type": "input_text", "text": "hello"}]}]
    assert ul.request_prompt(None, responses_input) == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    ]
    assert ul.request_prompt(None, ["a", "b"]) == "a\nb"
    assert ul.request_prompt(None, [[1, 2, 3]]) == ""
    assert ul.request_prompt(None, None) == ""


async def test_sdk_example_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    await sdk_example().main("hashing")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    assert lines[0].split("-> ")[1].startswith("mathbot") and lines[1].split("-> ")[1].startswith("poet")
    assert "cluster prior" in lines[4]
