"""An LCEL chain over uniroute, offline: ChatPromptTemplate | UniRouteChatModel | StrOutputParser.

    python examples/langchain_chain.py

Three fake children stand in for real chat models (a cheap math model, a cheap
poetry model and an expensive all-rounder); each signs its answer. A router is
fitted on synthetic validation results with the hashing embedder, so nothing is
downloaded and no API key is needed. Swap the children for ``ChatOpenAI(...)``
(or ``"openai:gpt-4o-mini"`` strings) and the state for ``"your-state/"`` to use
it for real. The operating point is a configurable field, so it is chosen per
call through ``config["configurable"]`` (it would keep working after
``bind_tools`` and inside agents too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField

from uniroute import HashingEmbedder, KMeansClusterMap, Router
from uniroute.integrations.langchain import UniRouteChatModel

COSTS = {"mathbot": 0.0005, "poet": 0.0005, "big": 0.01}  # $ per request


class SignedEcho(BaseChatModel):
    """A stand-in chat model: answers ``[name] <the question>``."""

    name: str

    @property
    def _llm_type(self) -> str:
        return "signed-echo"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any) -> ChatResult:
        answer = AIMessage(f"[{self.name}] you asked: {messages[-1].text}")
        return ChatResult(generations=[ChatGeneration(message=answer)])


def fitted_router() -> Router:
    """Validation results: mathbot is right on arithmetic, poet on poems, big on both."""
    math = [f"Arithmetic question: compute {a} plus {a + 7}, answer with the number only." for a in range(20)]
    words = "snow rain cats moon".split() * 5
    poems = [f"Poetry request: write a short poem about {w}, with vivid imagery." for w in words]
    is_math = np.array([True] * len(math) + [False] * len(poems))
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0)).fit(math + poems)
    scores = {"mathbot": is_math * 1.0, "poet": ~is_math * 1.0, "big": np.ones(len(is_math))}
    router.add_models(math + poems, scores, COSTS)
    return router


class AnsweredBy(BaseCallbackHandler):
    """Collects the profile uniroute chose for each question (from the run's metadata)."""

    def __init__(self) -> None:
        self.profiles: dict[str, str] = {}

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.profiles[messages[0][-1].text] = kwargs["metadata"]["uniroute_profile"]


def main() -> None:
    children = {name: SignedEcho(name=name) for name in COSTS}
    model = UniRouteChatModel(
        # any chat-model Runnable is a child: here the big model retries once on errors
        models={**children, "big": children["big"].with_retry(stop_after_attempt=2)},
        state=fitted_router(),
        operating_points={"best": 0.0, "balanced": 20.0},
        operating_point="balanced",
    ).configurable_fields(operating_point=ConfigurableField(id="uniroute_point"))
    prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{question}")])
    chain = prompt | model | StrOutputParser()

    questions = [
        "Arithmetic question: compute 12 plus 30 and answer with the number only.",
        "Poetry request: write a short poem about rivers, with vivid imagery.",
        "Arithmetic question: compute 5 plus 9 and answer with the number only.",
    ]
    seen = AnsweredBy()
    answers = chain.batch([{"question": q} for q in questions], config={"callbacks": [seen]})
    print("operating point 'balanced' (λ = 20): cheap specialists where they are good enough")
    for question, answer in zip(questions, answers, strict=True):
        print(f"  {seen.profiles[question]:>8} <- {question[:50]:<50} | {answer[:40]}")

    best = {"configurable": {"uniroute_point": "best"}}
    print("operating point 'best' (λ = 0): the most accurate model for every prompt")
    for question in questions:
        print(f"  {chain.invoke({'question': question}, config=best)[:60]}")

    message = (prompt | model).invoke({"question": questions[1]})
    meta = message.response_metadata["uniroute"]
    print(f"poem: answered_by={meta['answered_by']}, fallback order={meta['order']}, λ={meta['lambda']}")


if __name__ == "__main__":
    main()
