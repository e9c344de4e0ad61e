"""langchain_litellm.ChatLiteLLMRouter on a litellm.Router routed by uniroute.

Each deployment's ``mock_response`` is its own id, so the answer names the
deployment that served it (``response_metadata["model_id"]`` exists only from
langchain-litellm 0.8 on).
"""

from __future__ import annotations

import litellm
import pytest
from langchain_core.messages import HumanMessage
from langchain_litellm import ChatLiteLLMRouter
from litellm_fakes import MATH_PROMPT, POETRY_PROMPT, demo_engine

from uniroute import Router
from uniroute.integrations.litellm import install

IDS = {"mathbot": "mathbot", "poet": "poet", "big": "big-eu"}
LAM = 30.0


@pytest.fixture(scope="module")
def engine() -> Router:
    return demo_engine()


@pytest.fixture()
def chat(engine: Router) -> ChatLiteLLMRouter:
    model_list = [
        {
            "model_name": "demo",
            "litellm_params": {"model": f"openai/{dep}", "api_key": "unused", "mock_response": f"[{dep}]"},
            "model_info": {"id": dep, "uniroute_profile": profile},
        }
        for profile, dep in IDS.items()
    ]
    router = litellm.Router(model_list=model_list)
    install(router, engine, lam=LAM)
    return ChatLiteLLMRouter(router=router, model="demo")


def expected(engine: Router, text: str) -> str:
    return IDS[engine.route([{"role": "user", "content": text}], lam=LAM, candidates=list(IDS)).model]


@pytest.mark.parametrize("text", [MATH_PROMPT, POETRY_PROMPT])
def test_invoke_and_stream_go_to_engine_first_choice(
    chat: ChatLiteLLMRouter, engine: Router, text: str
) -> None:
    want = expected(engine, text)
    assert chat.invoke([HumanMessage(text)]).content == f"[{want}]"
    streamed = "".join(str(chunk.content) for chunk in chat.stream([HumanMessage(text)]))
    assert streamed == f"[{want}]"


async def test_ainvoke_goes_to_engine_first_choice(chat: ChatLiteLLMRouter, engine: Router) -> None:
    answers = [(await chat.ainvoke([HumanMessage(t)])).content for t in (MATH_PROMPT, POETRY_PROMPT)]
    assert answers == [f"[{expected(engine, t)}]" for t in (MATH_PROMPT, POETRY_PROMPT)]
    assert answers[0] != answers[1], "the two prompts go to different deployments"
