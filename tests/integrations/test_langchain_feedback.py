"""Feedback by LangChain run id: UniRouteChatModel.record_feedback credits the child that answered."""

from __future__ import annotations

import copy
import pickle
import runpy
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel
from langchain_core.tracers.context import collect_runs
from langchain_fakes import EchoChatModel

from uniroute import InputError, KMeansClusterMap, Router
from uniroute.integrations.langchain import UniRouteChatModel

MATH = "Arithmetic question: compute 12 times 7 and answer with the number only."
POEM = "Poetry request: write a short sonnet about lanterns, with vivid imagery."
PROFILES = ("mathbot", "poet", "big")


class RunIds(BaseCallbackHandler):
    """Captures each chat-model run: its id, and who answered (from the response metadata)."""

    def __init__(self) -> None:
        self.started: list[uuid.UUID] = []
        self.answered: dict[uuid.UUID, str] = {}
        self.decision_ids: dict[uuid.UUID, str | None] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        with self._lock:
            self.started.append(run_id)

    def on_llm_end(self, response: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        generation = response.generations[0][0]
        with self._lock:
            self.answered[run_id] = generation.message.response_metadata["uniroute"]["answered_by"]
            self.decision_ids[run_id] = (generation.generation_info or {}).get("uniroute_decision_id")


def chat_model(router: Router, **children: Any) -> UniRouteChatModel:
    models = {name: children.get(name) or EchoChatModel(model_name=f"echo-{name}") for name in PROFILES}
    return UniRouteChatModel(models=models, state=router, lam=10.0)


@pytest.fixture()
def router(toy_router: Router) -> Router:
    toy_router.feedback_refresh = 0  # feedback seen at the next route
    return toy_router


def math_prompts(toy_data: dict) -> list[str]:
    return [p for p, t in zip(toy_data["prompts"], toy_data["topics"]) if t == "math"]


def test_feedback_by_run_id_moves_routing(router, toy_data):
    model = chat_model(router)
    runs = RunIds()
    assert model.invoke(MATH).response_metadata["uniroute"]["answered_by"] == "mathbot"
    for prompt in math_prompts(toy_data)[:20]:
        model.invoke(prompt, config={"callbacks": [runs]})
    assert set(runs.answered.values()) == {"mathbot"}
    for run_id in runs.started:
        assert model.record_feedback(run_id, False) == "mathbot"
    assert router.feedback.stats()["events"] == 20
    assert model.invoke(MATH).response_metadata["uniroute"]["answered_by"] != "mathbot"


def test_a_fallback_is_credited_not_the_pick(router):
    model = chat_model(router, mathbot=EchoChatModel(fail=True))
    runs = RunIds()
    message = model.invoke(MATH, config={"callbacks": [runs]})
    meta = message.response_metadata["uniroute"]
    assert meta["profile"] == "mathbot" and meta["answered_by"] == "big"
    (run_id,) = runs.started
    assert model.record_feedback(str(run_id), 0.25, weight=2.0) == "big"
    assert router.feedback.models == ("big",)
    error_sums, counts = router.feedback.counts("big")
    assert counts.sum() == pytest.approx(2.0) and error_sums.sum() == pytest.approx(1.5)


def test_the_decision_id_is_in_the_metadata_and_the_generation_info(router):
    model = chat_model(router)
    runs = RunIds()
    message = model.invoke(POEM, config={"callbacks": [runs]})
    meta = message.response_metadata["uniroute"]
    assert meta["decision_id"] == meta["decision"]["decision_id"]
    assert len(meta["decision_id"]) == 32
    assert list(runs.decision_ids.values()) == [meta["decision_id"]]
    assert meta["run_id"] == str(runs.started[0])  # the id record_feedback takes, on the message itself
    generated = model.generate([[HumanMessage(POEM)]], callbacks=[runs])  # routed inside the run
    assert generated.generations[0][0].message.response_metadata["uniroute"]["run_id"] == str(runs.started[1])
    assert model.record_feedback(runs.started[1], 1.0) == "poet"
    pinned = model.invoke(POEM, model="poet").response_metadata["uniroute"]
    assert pinned["decision_id"] is None


def test_unknown_pinned_and_bad_run_ids_say_what_to_do(router):
    model = chat_model(router)
    with pytest.raises(InputError, match=r"unknown or expired.*on_chat_model_start"):
        model.record_feedback(uuid.uuid4(), 1.0)
    with pytest.raises(InputError, match="run_id must be the run's UUID"):
        model.record_feedback(42, 1.0)
    runs = RunIds()
    model.invoke(POEM, model="poet", config={"callbacks": [runs]})
    with pytest.raises(InputError, match=r"pinned to model=.poet.*router.record_feedback"):
        model.record_feedback(runs.started[0], 1.0)
    model.invoke(POEM, config={"callbacks": [runs]})
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        model.record_feedback(runs.started[1], 7)
    assert router.feedback.stats()["events"] == 0


def test_runs_expire_and_are_bounded(router, monkeypatch):
    model = chat_model(router)
    runs = RunIds()
    model.invoke(POEM, config={"callbacks": [runs]})
    model._runs.runs.ttl = -1.0
    with pytest.raises(InputError, match="unknown or expired"):
        model.record_feedback(runs.started[0], 1.0)
    model._runs = type(model._runs)(max_size=3)
    model.batch([POEM] * 5, config={"callbacks": [runs]})
    first, *_, last = runs.started[1:]
    assert model.record_feedback(last, 1.0) == "poet"
    with pytest.raises(InputError, match="last 3 routed runs"):
        model.record_feedback(first, 1.0)


def test_the_run_id_of_a_chain_or_of_the_message_works(router):
    model = chat_model(router)
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | model
    with collect_runs() as collected:
        message = chain.invoke({"question": POEM})
    root = collected.traced_runs[0]
    assert model.record_feedback(root.id, 1.0) == "poet"  # the chain's run made one routed call
    (child,) = [run for run in root.child_runs if run.run_type == "llm"]
    assert model.record_feedback(child.id, 1.0) == "poet"
    if message.id and message.id.endswith(str(child.id)):  # langchain-core names the message after its run
        assert model.record_feedback(message.id, 1.0) == "poet"
    # a run with several routed calls: the chat-model run must be named
    with collect_runs() as collected:
        RunnableParallel(first=model, second=model).invoke(POEM)
    with pytest.raises(InputError, match="several UniRouteChatModel calls"):
        model.record_feedback(collected.traced_runs[0].id, 1.0)


def test_the_message_id_of_an_invoke_or_a_stream_works(router):
    # langchain-core names an invoked answer "lc_run--<run id>-<generation index>", a streamed one
    # "lc_run--<run id>"; both were documented as accepted, but the indexed form was "unknown"
    model = chat_model(router)
    message = model.invoke(POEM)
    assert message.id == f"lc_run--{message.response_metadata['uniroute']['run_id']}-0"
    assert model.record_feedback(message.id, 1.0) == "poet"
    streamed, *_ = model.stream(POEM)
    assert model.record_feedback(streamed.id, 1.0) == "poet"
    with pytest.raises(InputError, match="unknown or expired"):
        model.record_feedback(f"lc_run--{uuid.uuid4()}-0", 1.0)


def test_the_message_id_names_the_routed_run_with_a_runnable_child(router):
    # a Runnable child runs nested under ours; its answer was named after the child's run, so
    # record_feedback(message.id) said "unknown or expired"
    model = chat_model(router, poet=EchoChatModel(model_name="echo-poet").bind(temperature=0.1))
    message = model.invoke(POEM)
    assert message.id == f"lc_run--{message.response_metadata['uniroute']['run_id']}-0"
    assert model.record_feedback(message.id, 1.0) == "poet"
    chunks = list(model.stream(POEM))
    assert {chunk.id for chunk in chunks} == {f"lc_run--{chunks[0].response_metadata['uniroute']['run_id']}"}
    assert model.record_feedback(chunks[0].id, 1.0) == "poet"


async def test_async_and_streamed_runs_are_remembered(router):
    model = chat_model(router, mathbot=EchoChatModel(fail=True))
    runs = RunIds()
    await model.ainvoke(MATH, config={"callbacks": [runs]})
    [c async for c in model.astream(POEM, config={"callbacks": [runs]})]
    list(model.stream(MATH, config={"callbacks": [runs]}))
    assert [model.record_feedback(r, 1.0) for r in runs.started] == ["big", "poet", "big"]


def test_copies_start_with_no_runs_and_keep_working(router):
    model = chat_model(router)
    runs = RunIds()
    model.invoke(POEM, config={"callbacks": [runs]})
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        with pytest.raises(InputError, match="unknown or expired"):
            clone.record_feedback(runs.started[0], 1.0)
        clone_runs = RunIds()
        clone.invoke(POEM, config={"callbacks": [clone_runs]})
        assert clone.record_feedback(clone_runs.started[0], 1.0) == "poet"
    assert model.record_feedback(runs.started[0], 1.0) == "poet"


def test_8_threads_every_run_credits_the_child_that_answered(router, toy_data):
    """A batch on 8 threads with fallbacks; then the feedback, on 8 threads too."""
    model = chat_model(router, mathbot=EchoChatModel(model_name="flaky", fail_times=10))
    prompts = toy_data["prompts"] * 2  # 120 runs, half math
    runs = RunIds()
    model.batch(prompts, config={"callbacks": [runs], "max_concurrency": 8})
    assert len(runs.answered) == len(prompts)
    answered = list(runs.answered.items())
    assert {name for _, name in answered} == {"mathbot", "poet", "big"}  # 'big' took the failed math runs
    score = {"mathbot": 1.0, "poet": 0.5, "big": 0.0}
    credited: list[str] = []
    barrier = threading.Barrier(8)

    def send(part: list[tuple[uuid.UUID, str]]) -> None:
        barrier.wait(timeout=30)
        credited.extend(model.record_feedback(run_id, score[name]) for run_id, name in part)

    threads = [threading.Thread(target=send, args=(answered[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(credited) == sorted(name for _, name in answered)
    for name in PROFILES:
        n = sum(1 for _, who in answered if who == name)
        error_sums, counts = router.feedback.counts(name)
        assert counts.sum() == pytest.approx(n)
        assert error_sums.sum() == pytest.approx(n * (1.0 - score[name]))
    assert router.feedback.stats()["events"] == len(prompts)


@pytest.mark.integration
def test_feedback_with_the_default_embedder(toy_data):
    """The real default embedder ('static'): thumbs-down on the math specialist moves math away."""
    router = Router(cluster_map=KMeansClusterMap(n_clusters=2, random_state=0), feedback_refresh=0)
    router.fit(toy_data["prompts"])
    router.add_models(toy_data["prompts"], toy_data["scores"], toy_data["costs"])
    model = chat_model(router)
    runs = RunIds()
    model.batch(math_prompts(toy_data)[:20], config={"callbacks": [runs]})
    assert set(runs.answered.values()) == {"mathbot"}
    before = router.route(MATH, lam=10.0)
    for run_id in runs.started:
        model.record_feedback(run_id, 0)
    after = router.route(MATH, lam=10.0)
    mathbot = before.candidates.index("mathbot")
    assert after.errors[mathbot] > before.errors[mathbot] + 0.1
    assert model.invoke(MATH).response_metadata["uniroute"]["answered_by"] != "mathbot"
    assert np.isclose(router.feedback.counts("mathbot")[1].sum(), 20)


def test_the_feedback_example_runs_offline(capsys, monkeypatch):
    examples = Path(__file__).resolve().parents[2] / "examples"
    monkeypatch.syspath_prepend(str(examples))
    runpy.run_path(str(examples / "langchain_feedback.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "before feedback: [mathbot]" in out and "after feedback:  [big]" in out
    assert "thumbs-down" in out and "8 events" in out
