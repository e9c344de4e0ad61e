"""Routing behaviour of UniRouteChatModel over the toy router (mathbot / poet / big)."""

from __future__ import annotations

import copy
import pickle
import warnings
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage, trim_messages
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField
from langchain_core.tools import tool
from langchain_fakes import EchoChatModel, serve_openai
from pydantic import BaseModel, ValidationError

from uniroute import InputError, KMeansClusterMap, Router, UnknownModelError
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
    return UniRouteChatModel(models=children(), state=toy_router, lam=10.0)


def answered_by(message: AIMessage) -> str:
    return message.response_metadata["uniroute"]["answered_by"]


class Recorder(BaseCallbackHandler):
    """Records chat-model starts (metadata, tags), chain starts and streamed tokens."""

    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.chains: list[dict[str, Any]] = []
        self.tokens: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.chains.append(kwargs)

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
        state=toy_router,
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
        models=children(mathbot=mathbot), state=toy_router, lam=10.0, temperature=0.2, stop=["NEVER"]
    )
    model.invoke(MATH, lam=10.0)
    assert len(mathbot.calls) == 1
    kwargs = mathbot.calls[0]["kwargs"]
    assert kwargs == {"temperature": 0.2}, "routing options and the plan never reach the child"
    assert model.invoke("Arithmetic question: compute 1 plus 1", stop=["plus"]).content == (
        "echo-mathbot echoes: Arithmetic question: compute 1 "
    )


def test_a_cache_on_the_model_answers_a_repeated_request(toy_router: Router) -> None:
    """The cache key is the request and the child routed to, not the run's own routing ids."""
    mathbot, big = EchoChatModel(model_name="echo-mathbot"), EchoChatModel(model_name="echo-big")
    model = UniRouteChatModel(
        models=children(mathbot=mathbot, big=big), state=toy_router, lam=10.0, cache=InMemoryCache()
    )
    first, again = model.invoke(MATH), model.invoke(MATH)
    assert len(mathbot.calls) == 1
    assert again.content == first.content and answered_by(again) == "mathbot"
    assert answered_by(model.invoke(MATH, lam=0.0)) == "big", "another child, another key"
    assert len(big.calls) == 1
    model.invoke(MATH, temperature=0.5)
    assert len(mathbot.calls) == 2


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
    model = UniRouteChatModel(models=children(mathbot=no_tools), state=toy_router, lam=10.0)
    assert model.invoke(MATH).content == "plain mathbot"
    message = model.bind_tools([add]).invoke(MATH)
    assert answered_by(message) == "big"
    assert "mathbot" not in message.response_metadata["uniroute"]["order"]
    with pytest.raises(InputError, match=r"pinned child model='mathbot' does not support tool calling"):
        model.bind_tools([add]).invoke(MATH, model="mathbot")


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


# ---- per-call configuration survives bind_tools, structured output and agents ------

ROUTING_FIELDS = {
    "lam": ConfigurableField(id="uniroute_lam"),
    "operating_point": ConfigurableField(id="uniroute_point"),
    "candidates": ConfigurableField(id="uniroute_candidates"),
}
ADD = "Arithmetic question: compute 3 plus 4."


@pytest.fixture()
def configurable(toy_router: Router) -> Any:
    """λ=10 by default (mathbot wins arithmetic); λ, operating point and candidates configurable."""
    model = UniRouteChatModel(models=children(), state=toy_router, lam=10.0, operating_points={"best": 0.0})
    return model.configurable_fields(**ROUTING_FIELDS)


def settings(**configurable: Any) -> dict[str, Any]:
    return {"configurable": configurable}


def test_configured_routing_survives_bind_tools(configurable: Any) -> None:
    with_tools = configurable.bind_tools([add])
    assert answered_by(with_tools.invoke(ADD)) == "mathbot"
    assert answered_by(with_tools.invoke(ADD, config=settings(uniroute_lam=0.0))) == "big"
    assert answered_by(with_tools.invoke(ADD, config=settings(uniroute_point="best"))) == "big"
    only_poet = with_tools.with_config(settings(uniroute_candidates=["poet"]))
    message = only_poet.invoke(ADD)
    assert answered_by(message) == "poet"
    assert message.response_metadata["uniroute"]["order"] == ["poet"]
    # Called directly, the configurable model works as LangChain's generic wrapper does.
    assert answered_by(configurable.invoke(MATH, config=settings(uniroute_lam=0.0))) == "big"


async def test_configured_routing_survives_with_structured_output(configurable: Any) -> None:
    class Sum(BaseModel):
        a: int
        b: int

    structured = configurable.with_structured_output(Sum, include_raw=True)
    question = "Arithmetic question: compute 5 plus 6."
    default = structured.invoke(question)
    assert default["parsed"] == Sum(a=5, b=6)
    assert answered_by(default["raw"]) == "mathbot"
    best = await structured.ainvoke(question, config=settings(uniroute_lam=0.0))
    assert best["parsed"] == Sum(a=5, b=6)
    assert answered_by(best["raw"]) == "big"


def agent_answers(agent: Any, config: dict[str, Any]) -> list[str]:
    """Who answered each model turn of one agent run (tool call, then the final answer)."""
    result = agent.invoke({"messages": [HumanMessage(ADD)]}, config=config)
    turns = [m for m in result["messages"] if isinstance(m, AIMessage)]
    assert (
        turns[0].tool_calls and turns[-1].content == f"echo-{answered_by(turns[-1])} read the tool result: 7"
    )
    return [answered_by(m) for m in turns]


def test_configured_routing_inside_langgraph_create_react_agent(configurable: Any) -> None:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # LangGraph 1.x points to create_agent
        agent = create_react_agent(configurable, [add])
    assert agent_answers(agent, {}) == ["mathbot", "mathbot"]
    assert agent_answers(agent, settings(uniroute_lam=0.0)) == ["big", "big"]
    assert agent_answers(agent, settings(uniroute_candidates=["poet", "big"])) == ["big", "big"]


def test_configured_routing_inside_langchain_create_agent(configurable: Any) -> None:
    from langchain.agents import create_agent

    agent = create_agent(configurable, [add])
    assert agent_answers(agent, {}) == ["mathbot", "mathbot"]
    assert agent_answers(agent, settings(uniroute_point="best")) == ["big", "big"]


def test_per_call_candidates_reroute_a_tool_loop_whose_child_is_not_a_candidate(
    model: UniRouteChatModel,
) -> None:
    with_tools = model.bind_tools([add])
    question = HumanMessage(ADD)
    call = with_tools.invoke([question], model="big")
    turn = [question, call, add.invoke(call.tool_calls[0])]
    answer = with_tools.invoke(turn, candidates=["mathbot", "poet"])
    assert answer.response_metadata["uniroute"]["reason"] == "routed"
    assert answered_by(answer) == "mathbot"
    assert "big" not in answer.response_metadata["uniroute"]["order"]
    sticky = with_tools.invoke(turn, candidates=["poet", "big"])
    assert (answered_by(sticky), sticky.response_metadata["uniroute"]["reason"]) == ("big", "tool_loop")


# ---- children: any chat-model Runnable, or a "provider:model" string -----------------


def test_children_may_be_retries_bindings_and_fallbacks(toy_router: Router) -> None:
    flaky = EchoChatModel(model_name="echo-mathbot", fail_times=1)
    poet = EchoChatModel(model_name="echo-poet")
    broken, backup = EchoChatModel(model_name="echo-big", fail=True), EchoChatModel(model_name="backup")
    model = UniRouteChatModel(
        models={
            "mathbot": flaky.with_retry(stop_after_attempt=2, wait_exponential_jitter=False),
            "poet": poet.bind(temperature=0.3),
            "big": broken.with_fallbacks([backup]),
        },
        state=toy_router,
        lam=10.0,
    )
    recorder = Recorder()
    message = model.invoke(MATH, config={"callbacks": [recorder]})
    assert answered_by(message) == "mathbot"
    assert message.response_metadata["uniroute"]["fallbacks"] == []
    assert len(flaky.calls) == 2, "the child's own retry ran"
    ours, *attempts = recorder.starts
    retry = recorder.chains[0]
    assert (ours["parent_run_id"], retry["parent_run_id"]) == (None, ours["run_id"]), "one nested run"
    assert [a["parent_run_id"] for a in attempts] == [retry["run_id"]] * 2
    assert model.invoke(POEM).content == f"echo-poet echoes: {POEM}"
    assert poet.calls[-1]["kwargs"] == {"temperature": 0.3}
    assert model.invoke(MATH, model="big").content == f"backup echoes: {MATH}"
    chunks = list(model.stream(POEM))
    assert len(chunks) > 5, "the binding streams the child's own chunks"
    assert chunks[0].response_metadata["uniroute"]["answered_by"] == "poet"
    tool_call = model.bind_tools([add], tool_choice="add").invoke(ADD)
    assert tool_call.tool_calls[0]["args"] == {"a": 3, "b": 4}
    assert flaky.calls[-1]["kwargs"]["tools"][0]["function"]["name"] == "add"


async def test_runnable_children_async(toy_router: Router) -> None:
    poet = EchoChatModel(model_name="echo-poet")
    model = UniRouteChatModel(models=children(poet=poet.bind(max_tokens=9)), state=toy_router, lam=10.0)
    assert answered_by(await model.ainvoke(POEM)) == "poet"
    chunks = [chunk async for chunk in model.astream(POEM)]
    assert "".join(c.text for c in chunks) == f"echo-poet echoes: {POEM}"
    assert [c["kwargs"] for c in poet.calls] == [{"max_tokens": 9}] * 2


def nested_child_runs(recorder: Recorder) -> list[tuple[bool, bool]]:
    """For each chat-model run after the router's (the Runnable child's): (nested under ours, tagged)."""
    parents = {run["run_id"]: run["parent_run_id"] for run in recorder.starts + recorder.chains}
    ours, *child = recorder.starts

    def ancestors(run_id: Any) -> set[Any]:
        found = set()
        while run_id in parents:
            run_id = parents[run_id]
            found.add(run_id)
        return found

    return [(ours["run_id"] in ancestors(c["run_id"]), "uniroute:poet" in c["tags"]) for c in child]


async def test_streamed_runnable_children_nest_their_run_under_the_routed_run(toy_router: Router) -> None:
    """stream(), astream(), a streaming invoke and astream_events: langchain-core streams without the run
    manager, and the child's run (with the call's callbacks, tags, metadata) still nests under ours."""
    poet = EchoChatModel(model_name="echo-poet").bind(temperature=0.1)
    model = UniRouteChatModel(models=children(poet=poet), state=toy_router, lam=10.0)
    streaming = UniRouteChatModel(models=children(poet=poet), state=toy_router, lam=10.0, streaming=True)
    calls = {
        "stream": lambda config: list(model.stream(POEM, config)),
        "streaming invoke": lambda config: streaming.invoke(POEM, config),
    }
    for how, call in calls.items():
        recorder = Recorder()
        call({"callbacks": [recorder], "metadata": {"user": "u1"}})
        assert nested_child_runs(recorder) == [(True, True)], how
        assert recorder.starts[1]["metadata"]["user"] == "u1"
    recorder = Recorder()
    chunks = [chunk async for chunk in model.astream(POEM, {"callbacks": [recorder]})]
    assert "".join(c.text for c in chunks) == f"echo-poet echoes: {POEM}"
    assert nested_child_runs(recorder) == [(True, True)]
    events = [event async for event in model.astream_events(POEM, version="v2")]
    starts = [e for e in events if e["event"] == "on_chat_model_start"]
    assert [e["name"] for e in starts] == ["UniRouteChatModel", "EchoChatModel"]
    assert starts[1]["parent_ids"] == [starts[0]["run_id"]]


async def test_runnable_children_in_a_chain_nest_their_run_under_the_routed_run(toy_router: Router) -> None:
    """Bindings and fallbacks merge their config into the chain's: the child's run still nests under ours."""
    poet = EchoChatModel(model_name="echo-poet")
    wrappers = {"binding": poet.bind(temperature=0.1), "fallbacks": poet.with_fallbacks([EchoChatModel()])}
    for how, child in wrappers.items():
        model = UniRouteChatModel(models=children(poet=child), state=toy_router, lam=10.0)
        chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | model
        for call in ("invoke", "stream", "ainvoke", "astream"):
            recorder = Recorder()
            config: Any = {"callbacks": [recorder]}
            if call == "invoke":
                chain.invoke({"q": POEM}, config)
            elif call == "stream":
                list(chain.stream({"q": POEM}, config))
            elif call == "ainvoke":
                await chain.ainvoke({"q": POEM}, config)
            else:
                [chunk async for chunk in chain.astream({"q": POEM}, config)]
            assert nested_child_runs(recorder) == [(True, True)], (how, call)


def test_a_configurable_child_gets_the_call_configuration(toy_router: Router) -> None:
    poet = EchoChatModel(model_name="echo-poet").configurable_fields(
        model_name=ConfigurableField(id="poet_model")
    )
    model = UniRouteChatModel(models=children(poet=poet), state=toy_router, lam=10.0)
    assert model.invoke(POEM).response_metadata["model_name"] == "echo-poet"
    configured = model.invoke(POEM, config=settings(poet_model="echo-poet-2"))
    assert configured.response_metadata["model_name"] == "echo-poet-2"
    assert answered_by(configured) == "poet"


def test_provider_model_strings_are_made_with_init_chat_model(
    toy_router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "not-a-real-key")
    model = UniRouteChatModel(models={**children(), "poet": "openai:gpt-4o-mini"}, state=toy_router, lam=10.0)
    assert isinstance(model.models["poet"], ChatOpenAI)
    assert model.models["poet"].model_name == "gpt-4o-mini"
    with pytest.raises(InputError, match=r"cannot make child 'poet' from 'nowhere:model-x'.*provider:model"):
        UniRouteChatModel(models={**children(), "poet": "nowhere:model-x"}, state=toy_router)


# ---- token counting --------------------------------------------------------------------


def test_token_counts_come_from_the_children(toy_router: Router) -> None:
    fine = EchoChatModel(model_name="fine", token_scale=3)
    model = UniRouteChatModel(models=children(poet=fine.with_retry()), state=toy_router)
    text = "one two three four"
    assert model.get_num_tokens(text) == 12 == fine.get_num_tokens(text)
    assert model.get_token_ids(text) == fine.get_token_ids(text)
    messages = [HumanMessage(text), AIMessage("five six")]
    assert model.get_num_tokens_from_messages(messages) == fine.get_num_tokens_from_messages(messages) > 0
    only_coarse = UniRouteChatModel(
        models=children(poet=fine), state=toy_router, candidates=["mathbot", "big"]
    )
    assert only_coarse.get_num_tokens(text) == 4, "only the candidates' tokenizers count"


def test_trim_messages_with_the_model_as_token_counter(model: UniRouteChatModel) -> None:
    history = [SystemMessage("Be brief.")]
    for i in range(6):
        history += [HumanMessage(f"question {i}: " + "word " * 10), AIMessage(f"answer {i}")]
    history.append(HumanMessage(MATH))
    trimmed = trim_messages(
        history, max_tokens=60, token_counter=model, strategy="last", include_system=True, start_on="human"
    )
    assert 2 < len(trimmed) < len(history)
    assert trimmed[0] == history[0] and trimmed[-1] == history[-1]
    assert model.get_num_tokens_from_messages(trimmed) <= 60


# ---- copies ----------------------------------------------------------------------------


def test_deepcopy_and_pickle(model: UniRouteChatModel, configurable: Any) -> None:
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone.router is not model.router
        assert answered_by(clone.invoke(MATH)) == "mathbot"
        assert answered_by(clone.invoke(POEM, lam=0.0)) == "big"
    with_tools = pickle.loads(pickle.dumps(configurable)).bind_tools([add])
    assert answered_by(with_tools.invoke(ADD, config=settings(uniroute_lam=0.0))) == "big"


# ---- fallback ------------------------------------------------------------------------


def test_fallback_to_the_next_ranked_child(toy_router: Router) -> None:
    model = UniRouteChatModel(models=children(mathbot=EchoChatModel(fail=True)), state=toy_router, lam=10.0)
    message = model.invoke(MATH)
    meta = message.response_metadata["uniroute"]
    assert meta["profile"] == "mathbot"
    assert meta["answered_by"] == "big" == meta["order"][1]
    assert meta["fallbacks"] == [{"profile": "mathbot", "error": "RuntimeError: echo is down"}]


async def test_fallback_async_and_streaming(toy_router: Router) -> None:
    model = UniRouteChatModel(models=children(mathbot=EchoChatModel(fail=True)), state=toy_router, lam=10.0)
    assert answered_by(await model.ainvoke(MATH)) == "big"
    first = next(iter(model.stream(MATH)))
    assert first.response_metadata["uniroute"]["answered_by"] == "big"
    chunks = [c async for c in model.astream(MATH)]
    first = chunks[0]
    assert first.response_metadata["uniroute"]["fallbacks"][0]["profile"] == "mathbot"


def test_fallback_is_bounded_and_reports_every_failure(toy_router: Router) -> None:
    broken = {name: EchoChatModel(model_name=name, fail=True) for name in PROFILES}
    model = UniRouteChatModel(models=broken, state=toy_router, lam=10.0, max_fallbacks=1)
    with pytest.raises(RuntimeError, match="big is down") as info:
        model.invoke(MATH)
    assert any("before big: mathbot" in note for note in info.value.__notes__)
    assert len(broken["mathbot"].calls) == len(broken["big"].calls) == 1
    assert broken["poet"].calls == [], "max_fallbacks=1 tries two children"
    with pytest.raises(RuntimeError, match="mathbot is down"):
        model.invoke(MATH, max_fallbacks=0)


def test_no_fallback_once_a_stream_has_started(toy_router: Router) -> None:
    model = UniRouteChatModel(
        models=children(mathbot=EchoChatModel(fail_mid_stream=True)), state=toy_router, lam=10.0
    )
    with pytest.raises(RuntimeError, match="dropped the stream"):
        list(model.stream(MATH))
    assert model.models["big"].calls == []


async def test_a_stream_that_ends_without_a_chunk_falls_back(toy_router: Router) -> None:
    # before: stream() gave nothing and langchain-core raised "No generation chunks were returned"
    model = UniRouteChatModel(
        models=children(mathbot=EchoChatModel(empty_stream=True)), state=toy_router, lam=10.0
    )
    first = next(iter(model.stream(MATH)))
    assert first.response_metadata["uniroute"]["answered_by"] == "big"
    assert first.response_metadata["uniroute"]["fallbacks"] == [
        {"profile": "mathbot", "error": "ValueError: child 'mathbot' ended its stream without a chunk"}
    ]
    chunks = [c async for c in model.astream(MATH)]
    assert chunks[0].response_metadata["uniroute"]["answered_by"] == "big"
    empty = {name: EchoChatModel(model_name=name, empty_stream=True) for name in PROFILES}
    with pytest.raises(ValueError, match="ended its stream without a chunk"):
        list(UniRouteChatModel(models=empty, state=toy_router, lam=10.0).stream(MATH))


def test_fallback_on_is_configurable(toy_router: Router) -> None:
    model = UniRouteChatModel(
        models=children(mathbot=EchoChatModel(fail=True)),
        state=toy_router,
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
        ({"models": ["poet"]}, "models must be a dict of profile name -> chat model"),
        ({"models": {**children(), "gpt-9": EchoChatModel()}}, r"\['gpt-9'\] have no profile"),
        ({"models": {**children(), "poet": 3}}, "child 'poet' is a int; give a LangChain chat model"),
        ({"models": {**children(), "": EchoChatModel()}}, "models keys must be profile names"),
        ({"models": {"poet": EchoChatModel()}}, r"profile\(s\) \['big', 'mathbot'\] with no child"),
        ({"candidates": ["poet", "nobody"]}, r"\['nobody'\] have no child model"),
        ({"candidates": "poet"}, "candidates must be a list of child profile names"),
        ({"candidates": []}, "candidates is empty"),
        ({"operating_point": "cheap"}, "unknown operating point 'cheap'"),
        ({"operating_points": {"cheap": -5}}, r"operating_points\['cheap'\] must be a finite number >= 0"),
        ({"operating_points": [10.0]}, "operating_points must be a dict of name -> λ"),
        ({"lam": -1.0}, "lam must be a finite number >= 0"),
        ({"lam": "20"}, "lam must be a number >= 0, got '20'"),
        ({"lam": None}, "lam must be a number >= 0, got None"),
        ({"lam": True}, "lam must be a number >= 0, got True"),
        ({"max_fallbacks": -1}, "max_fallbacks must be >= 0"),
        ({"max_fallbacks": "two"}, "max_fallbacks='two' is not valid: max_fallbacks must be an int >= 0"),
        ({"conservative": 1.5}, r"conservative must be a quantile in \(0, 1\)"),
        ({"fallback_on": ("ValueError",)}, "fallback_on must be a tuple of exception classes"),
        ({"api_key": "sk-test"}, r"\['api_key'\] are settings of each child chat model"),
        ({"model": "poet"}, "picks the model per request"),
        ({"state": 3}, "state must be a fitted uniroute.Router or the path of a saved router state"),
        ({"tempreature": 0.1}, r"unknown argument tempreature=; did you mean temperature=\?"),
        ({"temperature": "hot"}, "temperature='hot' is not valid: temperature must be a number"),
    ],
)
def test_bad_construction_is_an_input_error_with_the_fix(
    toy_router: Router, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InputError, match=match) as info:
        UniRouteChatModel(**{"models": children(), "state": toy_router, **kwargs})
    assert not isinstance(info.value, ValidationError)


def test_missing_arguments_say_what_to_pass(toy_router: Router) -> None:
    with pytest.raises(InputError, match=r"state= is required: state must be a fitted uniroute\.Router"):
        UniRouteChatModel(models=children())
    with pytest.raises(InputError, match="models= is required"):
        UniRouteChatModel(state=toy_router)


def test_state_is_the_engine_argument_and_router_its_deprecated_alias(toy_router: Router) -> None:
    model = UniRouteChatModel(models=children(), state=toy_router, lam=10.0)
    assert model.router is toy_router
    with pytest.warns(DeprecationWarning, match=r"router=\.\.\.\) is deprecated; pass state="):
        old = UniRouteChatModel(models=children(), router=toy_router, lam=10.0)
    assert old.router is toy_router
    assert answered_by(old.invoke(MATH)) == "mathbot"
    with pytest.raises(InputError, match="give state= only"):
        UniRouteChatModel(models=children(), state=toy_router, router=toy_router)


def test_candidates_allow_a_router_with_more_profiles(toy_router: Router) -> None:
    model = UniRouteChatModel(models={"poet": EchoChatModel()}, state=toy_router, candidates=["poet"])
    assert answered_by(model.invoke(MATH)) == "poet"


def test_unfitted_router_and_router_from_a_state_path(toy_router: Router, tmp_path: Any) -> None:
    with pytest.raises(InputError, match="router is not fitted"):
        UniRouteChatModel(models=children(), state=Router("hashing"))
    toy_router.save(tmp_path / "state")
    model = UniRouteChatModel(models=children(), state=str(tmp_path / "state"), lam=10.0)
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
        model = UniRouteChatModel(models=openai_children, state=toy_router, lam=10.0)
        message = model.invoke(POEM)
        streamed = "".join(c.text for c in model.stream(MATH))
    assert answered_by(message) == "poet"
    assert message.response_metadata["model_name"] == "poet-1"
    assert streamed == f"mathbot-1 echoes: {MATH}"
    assert [body["model"] for body in server.requests] == ["poet-1", "mathbot-1"]


@pytest.mark.integration
def test_string_and_configurable_children_over_http(
    toy_router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain.chat_models import init_chat_model

    with serve_openai() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "not-a-real-key")
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
        poet = init_chat_model("openai:poet-1", configurable_fields=("model",), config_prefix="poet")
        model = UniRouteChatModel(
            models={"mathbot": "openai:mathbot-1", "poet": poet, "big": "openai:big-1"},
            state=toy_router,
            lam=10.0,
        )
        assert model.invoke(MATH).content == f"mathbot-1 echoes: {MATH}"
        assert answered_by(model.invoke(POEM, config=settings(poet_model="openai:poet-2"))) == "poet"
        tool_call = model.bind_tools([add]).invoke("Poetry request: 3 plus 4 lanterns.", candidates=["poet"])
        assert tool_call.tool_calls[0]["args"] == {"a": 3, "b": 4}
        streamed = "".join(c.text for c in model.stream(POEM))
    assert streamed == f"poet-1 echoes: {POEM}"
    assert [body["model"] for body in server.requests] == ["mathbot-1", "poet-2", "poet-1", "poet-1"]
    assert "tools" in server.requests[2]


def unseen_prompts(n: int) -> list[str]:
    """Arithmetic and poetry requests the router never saw (each one embeds anew)."""
    words = ["harbours", "glaciers", "owls", "copper", "tides", "orchards", "comets", "bells"]
    return [
        f"Arithmetic question: compute {i * 37 % 997} minus {i * 13 % 89}, number only."
        if i % 2
        else f"Poetry request: a short poem about {words[i % 8]} number {i}, with vivid imagery."
        for i in range(n)
    ]


@pytest.mark.integration
def test_batch_under_threads_with_the_default_static_embedder(toy_data: dict, tmp_path: Any) -> None:
    """issue 9: batch() on a state made with the real default embedder, 8 threads at once."""
    router = Router("static", KMeansClusterMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    router.save(tmp_path / "state")
    model = UniRouteChatModel(models=children(), state=str(tmp_path / "state"), lam=10.0)
    prompts = unseen_prompts(240)
    results = model.batch(prompts, config={"max_concurrency": 8})
    expected = [d.model for d in Router.load(tmp_path / "state").route_batch(prompts, lam=10.0)]
    assert [answered_by(m) for m in results] == expected
    assert {"mathbot", "poet"} <= set(expected)


@pytest.mark.integration
async def test_abatch_of_50_with_the_default_static_embedder(toy_data: dict) -> None:
    """abatch routes 50 requests at once on the real default embedder: one decision each, as route_batch."""
    router = Router("static", KMeansClusterMap(n_clusters=2, random_state=0)).fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    model = UniRouteChatModel(models=children(), state=router, lam=10.0)
    prompts = unseen_prompts(50)
    results = await model.abatch(prompts, config={"max_concurrency": 50})
    expected = [d.model for d in router.route_batch(prompts, lam=10.0)]
    assert [answered_by(m) for m in results] == expected
    assert [m.content for m in results] == [f"echo-{e} echoes: {p}" for e, p in zip(expected, prompts)]
    routes = [m.response_metadata["uniroute"] for m in results]
    assert len({r["decision_id"] for r in routes}) == len({r["run_id"] for r in routes}) == 50
