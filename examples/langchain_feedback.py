"""Forward LangSmith-style feedback to uniroute, offline: the router learns who answers math badly.

    python examples/langchain_feedback.py

LangSmith records feedback as ``client.create_feedback(run_id, key, score=...)`` on a
run id. ``UniRouteChatModel.record_feedback(run_id, score)`` takes the same run id, so
a thin wrapper forwards every score to the router too. Here the chain is
``prompt | model | parser``; ``collect_runs`` gives the chain's run id (the id a
LangSmith user gives feedback on), and a chain run with one routed call can be named
directly. No LangSmith account, network or API key is needed: pass your
``langsmith.Client()`` as ``client=`` to send the same feedback there too.

The children and the router come from ``langchain_chain.py`` (fake children that
sign their answers; a router fitted on synthetic validation results).
"""

from __future__ import annotations

from typing import Any

from langchain_chain import COSTS, SignedEcho, fitted_router
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers.context import collect_runs

from uniroute.integrations.langchain import UniRouteChatModel


class FeedbackForwarder:
    """``create_feedback(run_id, key, score=...)`` as LangSmith's client has it, also sent to uniroute.

    ``score`` must be in [0, 1] (or a bool) for uniroute; rescale other scales first
    (e.g. stars 1-5 -> (stars - 1) / 4). Feedback without a score (comments only) is
    not a quality signal and is not forwarded.
    """

    def __init__(self, model: UniRouteChatModel, client: Any = None):
        self.model = model
        self.client = client

    def create_feedback(self, run_id: Any, key: str, *, score: Any = None, **kwargs: Any) -> None:
        if self.client is not None:
            self.client.create_feedback(run_id, key, score=score, **kwargs)
        if score is not None:
            self.model.record_feedback(run_id, score)


def main() -> None:
    router = fitted_router()
    router.feedback_refresh = (
        0  # see each score at the next route (default: rebuilt every 1 s in the background)
    )
    model = UniRouteChatModel(models={name: SignedEcho(name=name) for name in COSTS}, state=router, lam=20.0)
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | model | StrOutputParser()
    feedback = FeedbackForwarder(model)  # FeedbackForwarder(model, client=langsmith.Client()) for real

    question = "Arithmetic question: compute {a} plus {b} and answer with the number only."
    print(f"before feedback: {chain.invoke({'question': question.format(a=2, b=3)})}")
    for a in range(8):
        with collect_runs() as runs:
            answer = chain.invoke({"question": question.format(a=a, b=11)})
        run_id = runs.traced_runs[0].id  # the chain's run: the id LangSmith shows
        feedback.create_feedback(run_id, "correct", score=0.0 if answer.startswith("[mathbot]") else 1.0)
        print(
            f"  run {run_id}: {answer[:40]!r} -> thumbs-{'down' if answer.startswith('[mathbot]') else 'up'}"
        )
    print(f"after feedback:  {chain.invoke({'question': question.format(a=2, b=3)})}")
    print(f"feedback counted: {router.feedback.stats()['events']} events on {list(router.feedback.models)}")

    # Without a chain, the run id is on the message itself.
    message = model.invoke(question.format(a=4, b=4))
    meta = message.response_metadata["uniroute"]
    print(f"message: run_id={meta['run_id']} decision_id={meta['decision_id']}")
    model.record_feedback(meta["run_id"], True)


if __name__ == "__main__":
    main()
