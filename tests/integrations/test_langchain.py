"""Routing behaviour of UniRouteChatModel over the toy router (mathbot / poet / big)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField
from langchain_core.tools import tool
from langchain_fakes import EchoChatModel, serve_openai
from pydantic import BaseModel, ValidationError
from pytest_socket import SocketConnectBlockedError

from uniroute import InputError, Router, UnknownModelError
from uniroute.engine.router import NO_TEXT_NOTE
from uniroute.integrations.langchain import UniRouteChatModel

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

MATH = "Arithmetic question: compute 12 times 7 and answer with the number only."
POEM = "Poetry request: write a short sonnet about lanterns, with vivid imagery."
PROFILES = ("mathbot", "poet", "big")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def children(**overrides: Any) -> dict[str, Any]:
    return {name: overrides.get(name) or EchoChatModel(model_name=f"echo-{name}") for name in PROFILES}


@pytest.fixture()
def model(toy_router: Router) -> UniRouteChatModel:
    """λ=10: the cheap specialists win their topics (at λ=0 'big' wins everything)."""
    return UniRouteChatModel(models=children(), router=toy_router, lam=10.0)


def answered_by(message: AIMessage) -> str:
    return message.response_metadata["uniroute"]["answered_by"]


class Recorder(BaseCallbackHandler):
    """Records chat-model starts (metadata, tags) and streamed tokens."""

    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.tokens: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts.append(kwargs)

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


# ---- different prompts reach different children, as the engine ranks them ------------


def test_prompts_reach_the_child_the_engine_ranks_first(model: UniRouteChatModel, toy_router: Router) -> None:
    for prompt, expected in ((MATH, "mathbot"), (POEM, "poet")):
        assert toy_router.route(prompt, lam=10.0).model == expected
        message = model.invoke(prompt)
        assert answered_by(message) == expected
        assert message.response_metadata["model_name"] == f"echo-{expected}"
        assert message.content == f"echo-{expected} echoes: {prompt}"
        meta = message.response_metadata["uniroute"]
        assert meta["reason"] == "routed"
        assert meta["order"] == list(toy_router.route(prompt, lam=10.0).ranking)
        assert meta["decision"]["model"] == expected
        assert meta["fallbacks"] == []


def test_lambda_per_call_and_operating_points(toy_router: Router) -> None:
    model = UniRouteChatModel(
        models=children(),
        router=toy_router,
        operating_points={"cheap": 10.0, "best": 0.0},
        operating_point="cheap",
    )
    assert answered_by(model.invoke(MATH)) == "mathbot"
    assert answered_by(model.invoke(MATH, operating_point="best")) == "big"
    assert answered_by(model.invoke(MATH, lam=0.0)) == "big"
    assert answered_by(model.bind(lam=0.0).invoke(POEM)) == "big"
    with pytest.raises(InputError, match="not both"):
        model.invoke(MATH, lam=1.0, operating_point="best")
    with pytest.raises(InputError, match="unknown operating point 'fast'"):
        model.invoke(MATH, operating_point="fast")


def test_with_config_through_configurable_fields(model: UniRouteChatModel) -> None:
    configurable = model.configurable_fields(lam=ConfigurableField(id="uniroute_lam"))
    assert answered_by(configurable.invoke(MATH)) == "mathbot"
    assert answered_by(configurable.with_config(configurable={"uniroute_lam": 0.0}).invoke(MATH)) == "big"


def test_candidates_per_call_and_pinning(model: UniRouteChatModel) -> None:
    assert answered_by(model.invoke(MATH, candidates=["poet", "big"])) == "big"
    pinned = model.invoke(MATH, model="poet")
    assert answered_by(pinned) == "poet"
    assert pinned.response_metadata["uniroute"]["reason"] == "pinned"
    with pytest.raises(UnknownModelError, match="'gpt-9' is not a child profile"):
        model.invoke(MATH, model="gpt-9")
    with pytest.raises(UnknownModelError, match=r"\['nobody'\] have no child model"):
        model.invoke(MATH, candidates=["nobody"])


def test_batch_routes_each_prompt_on_its_own(model: UniRouteChatModel, toy_router: Router) -> None:
    prompts = [MATH, POEM, "Arithmetic question: compute 3 plus 4.", "Poetry request: a haiku about snow."]
    expected = [d.model for d in toy_router.route_batch(prompts, lam=10.0)]
    assert expected == ["mathbot", "poet", "mathbot", "poet"]
    assert [answered_by(m) for m in model.batch(prompts)] == expected


async def test_abatch_astream_and_ainvoke_route_like_sync(model: UniRouteChatModel) -> None:
    results = await model.abatch([MATH, POEM])
    assert [answered_by(m) for m in results] == ["mathbot", "poet"]
    assert answered_by(await model.ainvoke(POEM)) == "poet"
    chunks = [chunk async for chunk in model.astream(MATH)]
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert answered_by(full) == "mathbot"
    assert full.text == f"echo-mathbot echoes: {MATH}"


def test_stream_delegates_chunk_by_chunk(model: UniRouteChatModel) -> None:
    recorder = Recorder()
    chunks = list(model.stream(POEM, config={"callbacks": [recorder]}))
    assert len(chunks) > 5, "the child's own chunks, not one buffered answer"
    assert chunks[0].response_metadata["uniroute"]["answered_by"] == "poet"
    assert all("uniroute" not in c.response_metadata for c in chunks[1:])
    assert "".join(c.text for c in chunks) == f"echo-poet echoes: {POEM}"
    assert len(recorder.starts) == 1
    assert "".join(recorder.tokens) == f"echo-poet echoes: {POEM}"


def test_prompt_values_and_message_lists_use_the_engine_rule(model: UniRouteChatModel) -> None:
    # The routing text is the tail of user/assistant turns: a long math system
    # prompt does not outweigh a poetry request.
    messages = [SystemMessage(MATH * 5), HumanMessage(POEM)]
    assert answered_by(model.invoke(messages)) == "poet"
    prompt_value = ChatPromptTemplate.from_messages([("human", "{q}")]).invoke({"q": MATH})
    assert answered_by(model.invoke(prompt_value)) == "mathbot"


def test_chain_with_prompt_template_and_parser(model: UniRouteChatModel) -> None:
    chain = (
        ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
        | model
        | StrOutputParser()
    )
    assert chain.invoke({"q": POEM}) == f"echo-poet echoes: {POEM}"


# ---- tracing -----------------------------------------------------------------------


def test_run_metadata_tags_and_ls_params_carry_the_decision(model: UniRouteChatModel) -> None:
    recorder = Recorder()
    model.invoke(MATH, config={"callbacks": [recorder], "tags": ["mine"], "metadata": {"user": "u1"}})
    model.batch([POEM], config={"callbacks": [recorder]})
    assert len(recorder.starts) == 2
    first, second = recorder.starts
    assert first["metadata"]["uniroute_profile"] == "mathbot"
    assert first["metadata"]["uniroute_reason"] == "routed"
    assert first["metadata"]["user"] == "u1"
    assert first["metadata"]["ls_model_name"] == "echo-mathbot"
    assert "uniroute:mathbot" in first["tags"] and "mine" in first["tags"]
    assert second["metadata"]["uniroute_profile"] == "poet"
    assert model._get_ls_params()["ls_model_name"] == "uniroute"


def test_one_child_call_per_request_and_child_kwargs(toy_router: Router) -> None:
    mathbot = EchoChatModel(model_name="echo-mathbot")
    model = UniRouteChatModel(
        models=children(mathbot=mathbot), router=toy_router, lam=10.0, temperature=0.2, stop=["NEVER"]
    )
    model.invoke(MATH, lam=10.0)
    assert len(mathbot.calls) == 1
    kwargs = mathbot.calls[0]["kwargs"]
    assert kwargs == {"temperature": 0.2}, "routing options and the plan never reach the child"
    assert model.invoke("Arithmetic question: compute 1 plus 1", stop=["plus"]).content == (
        "echo-mathbot echoes: Arithmetic question: compute 1 "
    )


# ---- tools and structured output ---------------------------------------------------


def test_tools_are_bound_to_the_chosen_child(model: UniRouteChatModel) -> None:
    message = model.bind_tools([add], tool_choice="any").invoke("Arithmetic question: compute 3 plus 4.")
    assert answered_by(message) == "mathbot"
    assert message.tool_calls[0]["name"] == "add"
    assert message.tool_calls[0]["args"] == {"a": 3, "b": 4}
    child_kwargs = model.models["mathbot"].calls[-1]["kwargs"]
    assert child_kwargs["tool_choice"] == "any"
    assert child_kwargs["tools"][0]["function"]["name"] == "add"


def test_children_without_tool_calling_are_not_candidates_for_tool_calls(toy_router: Router) -> None:
    no_tools = GenericFakeChatModel(messages=iter([AIMessage("plain mathbot")] * 3))
    model = UniRouteChatModel(models=children(mathbot=no_tools), router=toy_router, lam=10.0)
    assert model.invoke(MATH).content == "plain mathbot"
    message = model.bind_tools([add]).invoke(MATH)
    assert answered_by(message) == "big"
    assert "mathbot" not in message.response_metadata["uniroute"]["order"]


def test_tool_loop_goes_back_to_the_model_that_called_the_tool(model: UniRouteChatModel) -> None:
    with_tools = model.bind_tools([add])
    question = HumanMessage("Arithmetic question: compute 3 plus 4.")
    call = with_tools.invoke([question], model="big")
    assert answered_by(call) == "big"
    result = add.invoke(call.tool_calls[0])
    answer = with_tools.invoke([question, call, result])
    assert answered_by(answer) == "big", "the engine alone would pick mathbot"
    assert answer.response_metadata["uniroute"]["reason"] == "tool_loop"
    assert answer.content == "echo-big read the tool result: 7"


def test_tool_loop_with_a_streamed_tool_call(model: UniRouteChatModel) -> None:
    with_tools = model.bind_tools([add])
    question = HumanMessage("Arithmetic question: compute 3 plus 4.")
    chunks = list(with_tools.stream([question], candidates=["poet"]))
    call = chunks[0]
    for chunk in chunks[1:]:
        call += chunk
    assert answered_by(call) == "poet"
    answer = with_tools.invoke([question, call, add.invoke(call.tool_calls[0])])
    assert answered_by(answer) == "poet"


def test_tool_message_without_a_recorded_child_is_routed(model: UniRouteChatModel) -> None:
    history = [
        HumanMessage(MATH),
        AIMessage(
            "", tool_calls=[{"name": "add", "args": {"a": 12, "b": 7}, "id": "c1", "type": "tool_call"}]
        ),
        ToolMessage("19", tool_call_id="c1"),
    ]
    answer = model.bind_tools([add]).invoke(history)
    assert answer.response_metadata["uniroute"]["reason"] == "routed"
    assert answered_by(answer) == "mathbot"


def test_structured_output_through_the_chosen_child(model: UniRouteChatModel) -> None:
    class Sum(BaseModel):
        a: int
        b: int

    recorder = Recorder()
    result = model.with_structured_output(Sum).invoke(
        "Arithmetic question: compute 5 plus 6.", config={"callbacks": [recorder]}
    )
    assert result == Sum(a=5, b=6)
    assert len(recorder.starts) == 1
    assert recorder.starts[0]["metadata"]["uniroute_profile"] == "mathbot"


# ---- fallback ------------------------------------------------------------------------


def test_fallback_to_the_next_ranked_child(toy_router: Router) -> None:
    model = UniRouteChatModel(models=children(mathbot=EchoChatModel(fail=True)), router=toy_router, lam=10.0)
    message = model.invoke(MATH)
    meta = message.response_metadata["uniroute"]
    assert meta["profile"] == "mathbot"
    assert meta["answered_by"] == "big" == meta["order"][1]
    assert meta["fallbacks"] == [{"profile": "mathbot", "error": "RuntimeError: echo is down"}]


async def test_fallback_async_and_streaming(toy_router: Router) -> None:
    model = UniRouteChatModel(models=children(mathbot=EchoChatModel(fail=True)), router=toy_router, lam=10.0)
    assert answered_by(await model.ainvoke(MATH)) == "big"
    first = next(iter(model.stream(MATH)))
    assert first.response_metadata["uniroute"]["answered_by"] == "big"
    chunks = [c async for c in model.astream(MATH)]
    first = chunks[0]
    assert first.response_metadata["uniroute"]["fallbacks"][0]["profile"] == "mathbot"


def test_fallback_is_bounded_and_reports_every_failure(toy_router: Router) -> None:
    broken = {name: EchoChatModel(model_name=name, fail=True) for name in PROFILES}
    model = UniRouteChatModel(models=broken, router=toy_router, lam=10.0, max_fallbacks=1)
    with pytest.raises(RuntimeError, match="big is down") as info:
        model.invoke(MATH)
    assert any("before big: mathbot" in note for note in info.value.__notes__)
    assert len(broken["mathbot"].calls) == len(broken["big"].calls) == 1
    assert broken["poet"].calls == [], "max_fallbacks=1 tries two children"
    with pytest.raises(RuntimeError, match="mathbot is down"):
        model.invoke(MATH, max_fallbacks=0)


def test_no_fallback_once_a_stream_has_started(toy_router: Router) -> None:
    model = UniRouteChatModel(
        models=children(mathbot=EchoChatModel(fail_mid_stream=True)), router=toy_router, lam=10.0
    )
    with pytest.raises(RuntimeError, match="dropped the stream"):
        list(model.stream(MATH))
    assert model.models["big"].calls == []


def test_fallback_on_is_configurable(toy_router: Router) -> None:
    model = UniRouteChatModel(
        models=children(mathbot=EchoChatModel(fail=True)),
        router=toy_router,
        lam=10.0,
        fallback_on=(KeyError,),
    )
    with pytest.raises(RuntimeError, match="echo is down"):
        model.invoke(MATH)


# ---- bad input -----------------------------------------------------------------------


def test_bad_requests(model: UniRouteChatModel) -> None:
    with pytest.raises(InputError, match="empty message list"):
        model.invoke([])
    with pytest.raises(InputError, match="only system messages"):
        model.invoke([SystemMessage("You are terse.")])


def test_image_only_request_routes_on_the_cluster_prior(model: UniRouteChatModel, toy_router: Router) -> None:
    image = HumanMessage([{"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}])
    message = model.invoke([image])
    decision = message.response_metadata["uniroute"]["decision"]
    assert decision["note"] == NO_TEXT_NOTE
    assert answered_by(message) == toy_router.route("", lam=10.0).model


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models": {}}, "models is empty"),
        ({"models": {**children(), "gpt-9": EchoChatModel()}}, r"\['gpt-9'\] have no profile"),
        ({"models": {"poet": EchoChatModel()}}, r"profile\(s\) \['big', 'mathbot'\] with no child"),
        ({"candidates": ["poet", "nobody"]}, r"\['nobody'\] have no child model"),
        ({"operating_point": "cheap"}, "unknown operating point 'cheap'"),
        ({"lam": -1.0}, "lam must be a finite number >= 0"),
        ({"max_fallbacks": -1}, "max_fallbacks must be >= 0"),
        ({"api_key": "sk-test"}, r"\['api_key'\] are settings of each child chat model"),
        ({"model": "poet"}, "picks the model per request"),
        ({"router": 3}, "router must be a uniroute.Router"),
        ({"tempreature": 0.1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_construction(toy_router: Router, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        UniRouteChatModel(**{"models": children(), "router": toy_router, **kwargs})


def test_candidates_allow_a_router_with_more_profiles(toy_router: Router) -> None:
    model = UniRouteChatModel(models={"poet": EchoChatModel()}, router=toy_router, candidates=["poet"])
    assert answered_by(model.invoke(MATH)) == "poet"


def test_unfitted_router_and_router_from_a_state_path(toy_router: Router, tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="router is not fitted"):
        UniRouteChatModel(models=children(), router=Router("hashing"))
    toy_router.save(tmp_path / "state")
    model = UniRouteChatModel(models=children(), router=str(tmp_path / "state"), lam=10.0)
    assert answered_by(model.invoke(POEM)) == "poet"


# ---- real HTTP and the network guard -----------------------------------------------


@pytest.mark.integration
def test_chat_openai_children_over_http(toy_router: Router) -> None:
    from langchain_openai import ChatOpenAI

    with serve_openai() as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        openai_children = {
            name: ChatOpenAI(
                model=f"{name}-1", base_url=url, api_key="not-a-real-key", max_retries=0, timeout=10
            )
            for name in PROFILES
        }
        model = UniRouteChatModel(models=openai_children, router=toy_router, lam=10.0)
        message = model.invoke(POEM)
        streamed = "".join(c.text for c in model.stream(MATH))
    assert answered_by(message) == "poet"
    assert message.response_metadata["model_name"] == "poet-1"
    assert streamed == f"mathbot-1 echoes: {MATH}"
    assert [body["model"] for body in server.requests] == ["poet-1", "mathbot-1"]


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_sockets_connect_to_127_0_0_1_only() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("203.0.113.7", 80), timeout=1)
