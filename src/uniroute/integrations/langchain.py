"""LangChain front door: a chat model that sends each request to the model the engine picks.

:class:`UniRouteChatModel` is a ``BaseChatModel`` over a mapping of profile name
to child chat model. Each call is routed by a :class:`uniroute.Router` (the
engine's one routing rule, :meth:`uniroute.Router.route`) and then answered by
the chosen child, so it drops into LCEL chains and agents wherever a
``ChatOpenAI`` would go. LangChain messages are converted to OpenAI-style dicts
here; the engine extracts the routing text from them. This is the only uniroute
module that imports ``langchain_core``.
"""

# ruff: noqa: E402
# (langchain_core is imported after require() names the extra that installs it)
from __future__ import annotations

import difflib
import inspect
import logging
import re
import threading
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

from .._optional import require
from ..exceptions import InputError, UniRouteError, UnknownModelError

require("langchain_core", extra="langchain")

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import (
    ConfigurableField,
    Runnable,
    RunnableBinding,
    RunnableConfig,
    RunnableSerializable,
    ensure_config,
)
from langchain_core.runnables.base import RunnableBindingBase
from langchain_core.runnables.config import run_in_executor, var_child_runnable_config
from langchain_core.runnables.configurable import DynamicRunnable
from langchain_core.runnables.fallbacks import RunnableWithFallbacks
from langchain_core.runnables.utils import AnyConfigurableField
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from typing_extensions import Self

from ..engine.decision import Decision, check_number, short_repr
from ..engine.feedback import RecentItems
from ..engine.router import Router

__all__ = ["UniRouteChatModel"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Call kwargs that steer routing; consumed by the router, never sent to a child.
CALL_OPTIONS = ("lam", "operating_point", "candidates", "conservative", "max_fallbacks", "model")
#: Fields that ``configurable_fields`` can set per call even after ``bind_tools``,
#: ``with_structured_output`` or inside an agent (read from ``config["configurable"]``).
PER_CALL_FIELDS = (
    "lam",
    "operating_point",
    "candidates",
    "conservative",
    "max_fallbacks",
    "temperature",
    "max_tokens",
)
#: Internal call kwarg carrying a routing plan made before the run started.
ROUTE_KWARG = "uniroute_route"
#: Internal call kwarg carrying the call's ``config["configurable"]`` to Runnable children.
CONFIGURABLE_KWARG = "uniroute_configurable"
#: Internal call kwarg carrying the extra ``bind_tools`` arguments for the child.
TOOL_KWARGS = "uniroute_bind_tools_kwargs"
#: Settings of a provider client; they belong on the children.
_CLIENT_SETTINGS = (
    "api_key",
    "base_url",
    "timeout",
    "max_retries",
    "organization",
    "default_headers",
    "http_client",
)
#: What each init argument must be, for the message of a bad value.
_EXPECTED = {
    "models": "a dict of profile name -> chat model, chat-model Runnable or 'provider:model' string",
    "state": "a fitted uniroute.Router or the path of a saved router state",
    "lam": "a number >= 0 (λ, error points per $ per request), e.g. lam=20.0",
    "operating_points": "a dict of name -> λ >= 0, e.g. {'cheap': 200.0, 'best': 0.0}",
    "operating_point": "the name of one of operating_points",
    "candidates": "a list of child profile names",
    "conservative": "a quantile in (0, 1), e.g. 0.9",
    "max_fallbacks": "an int >= 0",
    "fallback_on": "a tuple of exception classes, e.g. (openai.APIError,)",
    "stop": "a list of strings",
    "temperature": "a number",
    "max_tokens": "an int",
    "streaming": "True or False",
}
#: Routed runs remembered for :meth:`UniRouteChatModel.record_feedback` (oldest out), and for how long (s).
MAX_RUNS = 10_000
RUN_TTL = 3600.0
_AMBIGUOUS = "ambiguous"
#: The routed run starting in this context, ``(run id, its config)``: langchain-core calls
#: ``_stream`` / ``_astream`` without the run manager (``stream()``, a streaming ``invoke``), so
#: a Runnable child's run is nested under this run from its config.
_STARTING: ContextVar[tuple[str, RunnableConfig] | None] = ContextVar("uniroute_starting", default=None)
_INDEXED = re.compile(r"(?P<run>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-\d+")


def _run_key(run_id: Any) -> str:
    """A run id as remembered: the UUID's str, from a message id too (``"lc_run--<run id>"``, with
    the ``"-<generation index>"`` langchain-core adds to an invoked answer, or ``"run-<run id>"``)."""
    if isinstance(run_id, UUID):
        return str(run_id)
    if not isinstance(run_id, str) or not run_id:
        raise InputError(
            "run_id must be the run's UUID or its str (the run_id LangChain callbacks receive), "
            f"got {run_id!r}"
        )
    for prefix in ("lc_run--", "run-"):
        if run_id.startswith(prefix):
            key = run_id[len(prefix) :]
            indexed = _INDEXED.fullmatch(key)
            return indexed["run"] if indexed else key
    return run_id


class _RunLog:
    """Routed runs by run id, bounded in number (oldest out) and age, for feedback by run id.

    A routing decision waits under its ``decision_id`` until its run ends (then the
    answering child is known); a run's parent maps to it too, unless the parent made
    several routed calls. Copies and pickles start empty (it holds locks).
    """

    def __init__(self, max_size: int = MAX_RUNS, ttl: float = RUN_TTL):
        self.pending: RecentItems[tuple[Decision, Any]] = RecentItems(max_size, ttl)  # decision, parent run
        self.runs: RecentItems[Any] = RecentItems(max_size, ttl)  # (decision | None, answered) or _AMBIGUOUS
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.runs.max_size, self.runs.ttl)

    def planned(self, decision: Decision) -> None:
        self.pending.put(decision.decision_id, (decision, None))

    def started(self, decision_id: str, parent_run_id: Any) -> None:
        """The run of ``decision_id`` starts under ``parent_run_id`` (known before a stream starts)."""
        item = self.pending.get(decision_id)
        if item is not None:
            self.pending.put(decision_id, (item[0], parent_run_id))

    def finished(self, run_id: Any, parent_run_id: Any, decision_id: str | None, answered: str) -> None:
        item = None if decision_id is None else self.pending.pop(decision_id)
        if run_id is None or (decision_id is not None and item is None):
            return  # planned by a copy of this model, or pushed out
        decision, parent = item or (None, None)
        self.runs.put(str(run_id), (decision, answered))
        parent = parent_run_id or parent
        if parent is not None:
            with self._lock:  # two runs under one parent may end at once (RunnableParallel)
                known = self.runs.get(str(parent)) is not None
                self.runs.put(str(parent), _AMBIGUOUS if known else (decision, answered))


class UniRouteChatModel(BaseChatModel):
    """Chat model that routes each request to the best child model for its price (UniRoute).

    Every call embeds the request's routing text (the engine's rule, see
    :func:`uniroute.routing_text`), ranks the children by expected error + λ·cost
    with a fitted :class:`uniroute.Router`, and lets the best child answer. It
    behaves like any LangChain chat model: invoke, batch, stream, async, callbacks,
    ``bind_tools`` and ``with_structured_output``.

    Setup:
        Install uniroute with its LangChain dependency and fit or load a router
        whose profiles are named like your children::

            pip install 'uniroute[langchain]'   # brings langchain-core
            uniroute fit ... / uniroute add-model ...   # or Router(...).fit(...)

    Key init args — routing:
        models: dict[str, BaseChatModel | Runnable | str]
            Profile name -> child. A child is any LangChain chat model, any
            chat-model Runnable (``model.with_retry()``, ``model.bind(...)``,
            ``model.with_fallbacks([...])``, a configurable model), or a
            ``"provider:model"`` string made with ``langchain``'s ``init_chat_model``
            (needs ``pip install langchain`` and the provider's package and
            credentials). Every child needs a profile in the router, and every
            routing candidate needs a child.
        state: Router | str | Path
            The uniroute engine: a fitted :class:`uniroute.Router`, or the path of a
            saved router state (loaded with ``Router.load``). The loaded router is
            ``model.router``. ``router=`` is the deprecated old name of this argument.
        lam: float
            λ, error points traded per $ of cost per request (0 = best quality).
        operating_points: dict[str, float]
            Named λ values (e.g. ``{"cheap": 200.0, "best": 0.0}``), chosen with
            ``operating_point``; compute λ with ``router.calibrate(prompts, max_cost=...)``.
        operating_point: str | None
            The default named operating point (overrides ``lam``).
        candidates: list[str] | None
            Route among these profiles only (default: every child). Needed when the
            router has profiles that have no child here.
        conservative: float | None
            Route on the q-quantile of each model's error posterior.
        max_fallbacks: int
            How many next-ranked children to try when the chosen one raises.
        fallback_on: tuple[type[BaseException], ...]
            Which errors trigger a fallback (default: any ``Exception``).

    Key init args — forwarded to every child call:
        stop: list[str] | None
            Default stop sequences.
        temperature: float | None, max_tokens: int | None
            Sent as call kwargs to the chosen child when set. Client settings
            (``api_key``, ``base_url``, ``timeout``, ``max_retries``) belong on each
            child and are refused here.

    Per-call options (invoke kwargs, ``.bind(...)``, or ``configurable_fields``):
        ``lam``, ``operating_point``, ``candidates``, ``conservative``,
        ``max_fallbacks``, and ``model="<profile>"`` to pin a child (no routing).
        Fields made configurable with ``configurable_fields`` (those and
        ``temperature``, ``max_tokens``) are read from ``config["configurable"]`` at
        each call, so they keep working after ``bind_tools``,
        ``with_structured_output`` and inside agents (``create_agent``,
        ``create_react_agent``), which bind tools to the model itself::

            model = UniRouteChatModel(...).configurable_fields(
                lam=ConfigurableField(id="uniroute_lam"),
                candidates=ConfigurableField(id="uniroute_candidates"),
            )
            agent = create_agent(model, tools)
            agent.invoke(inputs, config={"configurable": {"uniroute_lam": 0.0}})

        Precedence: call kwargs and ``.bind(...)``, then ``config["configurable"]``,
        then the init arguments.

    Instantiate:
        .. code-block:: python

            from langchain_openai import ChatOpenAI
            from uniroute import Router
            from uniroute.integrations.langchain import UniRouteChatModel

            model = UniRouteChatModel(
                models={
                    "gpt-4o-mini": ChatOpenAI(model="gpt-4o-mini"),
                    "gpt-4o": ChatOpenAI(model="gpt-4o"),
                },
                state="router-state/",   # or a fitted uniroute.Router
                lam=50.0,
            )

    Invoke:
        .. code-block:: python

            msg = model.invoke("Compute 12 times 7 and answer with the number only.")
            msg.response_metadata["uniroute"]["answered_by"]

        .. code-block:: python

            'gpt-4o-mini'

        ``model.batch([...])`` routes every prompt on its own.

    Stream:
        .. code-block:: python

            for chunk in model.stream("Write a haiku about snow."):
                print(chunk.text, end="")

        Chunks come from the chosen child's own ``_stream`` as it produces them
        (a child without streaming answers in one chunk). The routing summary rides
        on the first chunk.

    Async:
        .. code-block:: python

            await model.ainvoke("Write a haiku about snow.")
            async for chunk in model.astream("Write a haiku about snow."):
                ...
            await model.abatch(["Compute 3 plus 4.", "Write a sonnet about rivers."])

    Tool calling:
        .. code-block:: python

            from langchain_core.tools import tool

            @tool
            def add(a: int, b: int) -> int:
                \"\"\"Add two integers.\"\"\"
                return a + b

            model_with_tools = model.bind_tools([add], tool_choice="any")
            ai_msg = model_with_tools.invoke("What is 3 plus 4?")
            ai_msg.tool_calls

        .. code-block:: python

            [{'name': 'add', 'args': {'a': 3, 'b': 4}, 'id': 'call_0', 'type': 'tool_call'}]

        Tools are bound to the chosen child with that child's own ``bind_tools``,
        and only children that support tool calling are candidates. A turn whose
        last message is a ``ToolMessage`` goes back to the child that issued the
        tool call (``reason == "tool_loop"``), read from that ``AIMessage``'s
        ``response_metadata["uniroute"]["answered_by"]``, unless that child is not a
        candidate of this call (then the turn is routed again).

    Structured output:
        .. code-block:: python

            from pydantic import BaseModel

            class Joke(BaseModel):
                setup: str
                punchline: str

            model.with_structured_output(Joke).invoke("Tell me a joke about cats.")

        Structured output uses tool calling on the chosen child (the
        ``function_calling`` method; ``method=`` is accepted and ignored, as in
        ``BaseChatModel``).

    Response metadata:
        .. code-block:: python

            msg.response_metadata["uniroute"]

        .. code-block:: python

            {'profile': 'gpt-4o-mini', 'reason': 'routed', 'order': ['gpt-4o-mini', 'gpt-4o'],
             'lambda': 50.0, 'decision_id': '3427f3be17a44a3abe5af49f9cb80557',
             'decision': {'model': 'gpt-4o-mini', 'lambda': 50.0, 'cluster': 3,
             'ranking': [{'model': 'gpt-4o-mini', 'expected_error': 0.21, 'cost': 0.0004,
             'score': 0.23}, {'model': 'gpt-4o', ...}], 'skipped': [], 'note': None, ...},
             'run_id': '9060d1a2-627d-44e6-bc9b-d28b25f71545',
             'answered_by': 'gpt-4o-mini', 'fallbacks': []}

        ``reason`` is ``"routed"``, ``"tool_loop"`` or ``"pinned"``; ``fallbacks``
        lists each child that raised before ``answered_by`` answered. The run
        itself carries ``metadata["uniroute_profile"]``, ``metadata["uniroute_reason"]``
        and the tag ``"uniroute:<profile>"`` (for invoke, batch, stream and their
        async forms; runs started through ``generate`` or ``stream_events(version="v3")``
        carry the decision in the response metadata only), and ``_get_ls_params``
        reports the chosen child's provider and model name.

    Feedback:
        .. code-block:: python

            model.record_feedback(msg.response_metadata["uniroute"]["run_id"], 1.0)

        :meth:`record_feedback` takes the run id LangChain callbacks give (or the id
        of a chain run with one routed call) and a score in [0, 1]; the child that
        answered is credited, and routing learns from it (see docs/feedback.md).
        ``generation_info["uniroute_decision_id"]`` carries the engine's decision id.

    Fallback:
        When the chosen child raises one of ``fallback_on``, the next child in the
        engine's ranking answers, up to ``max_fallbacks`` extra children; the last
        error is re-raised with a note listing the others. A stream falls back only
        before its first chunk; a child stream that ends without one is a failure
        (``ValueError``).

    Delegation and what it bypasses:
        The chosen child is called at the ``_generate`` / ``_agenerate`` /
        ``_stream`` / ``_astream`` level with this model's run manager, so one call
        is one run (``child.invoke`` would start a second chat-model run). This
        bypasses the child's own cache, callbacks, tags, metadata and
        ``output_version`` (this model's apply instead; a ``cache`` here is keyed
        on the request and the child it is routed to). The child's
        ``rate_limiter`` and ``disable_streaming`` are honoured. A child that is
        a Runnable but not a chat model (retry, binding, fallbacks, configurable
        model) is called through its own ``invoke`` / ``stream`` (and async
        forms), as a nested run of this one, so its retries and bound arguments
        apply; tools reach it through the chat model inside it.

    Token counting:
        ``get_num_tokens``, ``get_num_tokens_from_messages`` and ``get_token_ids``
        ask the children (the ``candidates``, else all) and return the largest
        count, so ``trim_messages(..., token_counter=model)`` keeps a request that
        fits whichever child answers.

    Copying:
        ``copy.deepcopy`` and ``pickle`` work when the children do (the router is
        picklable), e.g. to send the model to worker processes.

    Bad input:
        An empty message list and a request with only system messages raise
        :class:`uniroute.InputError`. A request with no text (e.g. image-only) is
        routed on the cluster prior — the model best on average — and
        ``decision["note"]`` says so. Every bad init argument raises
        :class:`uniroute.InputError` (never pydantic's ``ValidationError``) naming
        the argument and what it must be: a child with no profile, a profile with
        no child (outside ``candidates``), an unfitted router, an unknown operating
        point, a misspelt argument, or a client setting given here instead of on a
        child.
    """

    models: dict[str, Any]
    state: Router
    lam: float = 0.0
    operating_points: dict[str, float] = Field(default_factory=dict)
    operating_point: str | None = None
    candidates: list[str] | None = None
    conservative: float | None = None
    max_fallbacks: int = 2
    fallback_on: tuple[type[BaseException], ...] = (Exception,)
    stop: list[str] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    streaming: bool = False

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: ``ConfigurableField`` id -> field name, for fields read from ``config["configurable"]``.
    _configurable: dict[str, str] = PrivateAttr(default_factory=dict)
    #: Routed runs by run id, for :meth:`record_feedback` (shared by ``model_copy``; copies start empty).
    _runs: _RunLog = PrivateAttr(default_factory=lambda: _RunLog())

    # ---- construction --------------------------------------------------------

    def __init__(self, **kwargs: Any) -> None:
        if "router" in kwargs:
            if "state" in kwargs:
                raise InputError("give state= only; router= is its deprecated old name")
            warnings.warn(
                "UniRouteChatModel(router=...) is deprecated; pass state=... (a fitted uniroute.Router "
                "or the path of a saved state). The loaded router stays available as model.router.",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs["state"] = kwargs.pop("router")
        try:
            super().__init__(**kwargs)
        except ValidationError as error:
            raise _input_error(error) from None

    @property
    def router(self) -> Router:
        """The uniroute engine that ranks the children (loaded from ``state``)."""
        return self.state

    @model_validator(mode="before")
    @classmethod
    def _refuse_client_settings(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            given = [key for key in _CLIENT_SETTINGS if key in data]
            if given:
                raise InputError(
                    f"{given} are settings of each child chat model, not of UniRouteChatModel; "
                    f"set them on the children, e.g. ChatOpenAI({given[0]}=...)"
                )
            for key in ("model", "model_name"):
                if key in data:
                    raise InputError(
                        f"UniRouteChatModel picks the model per request, so {key}= is not an init "
                        "argument; pass the children as models={profile: chat_model}, and pin one "
                        "per call with invoke(..., model='<profile>')"
                    )
        return data

    @field_validator("models", mode="before")
    @classmethod
    def _resolve_children(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise InputError(f"models must be {_EXPECTED['models']}, got {type(value).__name__}")
        return {_child_name(name): _resolve_child(name, child) for name, child in value.items()}

    @field_validator("state", mode="before")
    @classmethod
    def _load_state(cls, value: Any) -> Any:
        if isinstance(value, (str, Path)):
            return Router.load(value)
        if not isinstance(value, Router):
            raise InputError(f"state must be {_EXPECTED['state']}, got {type(value).__name__}")
        return value

    @field_validator("lam", mode="before")
    @classmethod
    def _check_lam(cls, value: Any) -> float:
        return check_number(value, "lam", hint="; λ is error points traded per $ per request")

    @field_validator("operating_points", mode="before")
    @classmethod
    def _check_operating_points(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise InputError(f"operating_points must be {_EXPECTED['operating_points']}, got {value!r}")
        return {name: check_number(lam, f"operating_points[{name!r}]") for name, lam in value.items()}

    @field_validator("fallback_on", mode="before")
    @classmethod
    def _check_fallback_on(cls, value: Any) -> Any:
        errors = (value,) if isinstance(value, type) else value
        if not isinstance(errors, (tuple, list)) or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in errors
        ):
            raise InputError(f"fallback_on must be {_EXPECTED['fallback_on']}, got {value!r}")
        return tuple(errors)

    @model_validator(mode="after")
    def _check_routing(self) -> Self:
        if not self.models:
            raise InputError("models is empty; pass models={profile_name: chat_model, ...}")
        if not self.router.is_fitted:
            raise InputError("the router is not fitted; call router.fit(prompts) or load a saved state")
        profiles = set(self.router.models)
        orphans = [name for name in self.models if name not in profiles]
        if orphans:
            raise InputError(
                f"child model(s) {orphans} have no profile in the router (profiles: "
                f"{sorted(profiles)}); profile them with router.add_model(...) or remove them"
            )
        if self.candidates is None:
            childless = sorted(profiles - set(self.models))
            if childless:
                raise InputError(
                    f"the router has profile(s) {childless} with no child model; add children for "
                    f"them or pass candidates={sorted(self.models)} to route among the children only"
                )
        else:
            self._check_candidates(self.candidates, InputError)
        if self.operating_point is not None:
            self._operating_point_lam(self.operating_point)
        if self.max_fallbacks < 0:
            raise InputError(f"max_fallbacks must be >= 0, got {self.max_fallbacks}")
        if self.conservative is not None and not 0 < self.conservative < 1:
            raise InputError(f"conservative must be a quantile in (0, 1), got {self.conservative}")
        return self

    def _check_candidates(
        self, names: Sequence[str], error: type[Exception] = UnknownModelError
    ) -> list[str]:
        """Names that have both a child and a profile; ``error`` otherwise (InputError at init)."""
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise InputError(f"candidates must be {_EXPECTED['candidates']}, got {names!r}")
        names = list(names)
        if not names:
            raise InputError(f"candidates is empty; name some of {sorted(self.models)}")
        childless = [n for n in names if n not in self.models]
        if childless:
            raise error(f"candidate(s) {childless} have no child model; children: {sorted(self.models)}")
        unprofiled = [n for n in names if n not in self.router.models]
        if unprofiled:
            raise error(
                f"candidate(s) {unprofiled} have no profile in the router; "
                f"profiles: {sorted(self.router.models)}"
            )
        return names

    def _operating_point_lam(self, name: str) -> float:
        try:
            return self.operating_points[name]
        except KeyError:
            raise InputError(
                f"unknown operating point {name!r}; known: {sorted(self.operating_points)} "
                "(set operating_points={name: λ})"
            ) from None

    # ---- per-call configuration ---------------------------------------------------

    def configurable_fields(self, **kwargs: AnyConfigurableField) -> RunnableSerializable[Any, Any]:
        """Make fields configurable per call, as for any Runnable.

        The fields in :data:`PER_CALL_FIELDS` are also read from
        ``config["configurable"]`` at each call of this model itself, so they keep
        working on the model that ``bind_tools`` / ``with_structured_output`` / an
        agent binds (LangChain's generic configurable wrapper binds the default
        model, whose fields are fixed).
        """
        ids = {
            spec.id: name
            for name, spec in kwargs.items()
            if name in PER_CALL_FIELDS and isinstance(spec, ConfigurableField)
        }
        aware = self.model_copy()
        aware._configurable = {**self._configurable, **ids}
        return super(UniRouteChatModel, aware).configurable_fields(**kwargs)

    def _configured(self, config: RunnableConfig | None) -> dict[str, Any]:
        """Per-call field values found in ``config["configurable"]`` (or the run's context)."""
        if not self._configurable:
            return {}
        configurable = ensure_config(config).get("configurable") or {}
        return {field: configurable[key] for key, field in self._configurable.items() if key in configurable}

    # ---- identity and tracing --------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "uniroute-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "profiles": sorted(self.models),
            "lam": self.lam,
            "operating_point": self.operating_point,
            "candidates": self.candidates,
            "max_fallbacks": self.max_fallbacks,
        }

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        """The cache key of a call: its parameters and the child routed to, not this run's decision.

        The routing plan in the call kwargs is new for every run (its ids), so keyed on
        it, ``cache=`` on this model would never hit.
        """
        route = kwargs.pop(ROUTE_KWARG, None)
        kwargs.pop(CONFIGURABLE_KWARG, None)
        if isinstance(route, Mapping):
            kwargs["uniroute_profile"] = route.get("profile")
        return super()._get_llm_string(stop=stop, **kwargs)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Tracing params: the chosen child's provider and model once a route is known."""
        params = LangSmithParams(ls_provider="uniroute", ls_model_name="uniroute", ls_model_type="chat")
        route = kwargs.get(ROUTE_KWARG)
        if isinstance(route, Mapping) and route.get("profile") in self.models:
            inner = _chat_model_of(self.models[route["profile"]])
            child = inner._get_ls_params() if inner is not None else {}
            params["ls_provider"] = child.get("ls_provider") or "uniroute"
            params["ls_model_name"] = child.get("ls_model_name") or route["profile"]
        elif isinstance(kwargs.get("model"), str):
            params["ls_model_name"] = kwargs["model"]
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ---- token counting: delegated to the children ------------------------------------

    def _token_counters(self) -> list[Any]:
        """One token counter per distinct child among the default candidates."""
        counters: dict[int, Any] = {}
        for name in self.candidates or list(self.models):
            child = self.models[name]
            counter = _chat_model_of(child) or child
            counters.setdefault(id(counter), counter)
        return list(counters.values())

    def get_token_ids(self, text: str) -> list[int]:
        """The token ids of ``text`` by the child whose tokenizer gives the most tokens."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return max((counter.get_token_ids(text) for counter in self._token_counters()), key=len)

    def get_num_tokens(self, text: str) -> int:
        """The largest token count of ``text`` among the children."""
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return max(counter.get_num_tokens(text) for counter in self._token_counters())

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The largest token count of ``messages`` (and ``tools``) among the children."""
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens_from_messages(messages, tools=tools)
        return max(
            counter.get_num_tokens_from_messages(messages, tools=tools) for counter in self._token_counters()
        )

    # ---- tools -------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each call binds them to the chosen child with its own ``bind_tools``.

        Tools are kept in OpenAI format, which every LangChain chat model accepts.
        ``tool_choice`` and any other keyword (``strict``, ``parallel_tool_calls``,
        ...) are passed to the child's ``bind_tools`` unchanged.
        """
        structured = kwargs.pop("ls_structured_output_format", None)
        formatted = [convert_to_openai_tool(t, strict=kwargs.get("strict")) for t in tools]
        bound: dict[str, Any] = {"tools": formatted}
        if tool_choice is not None:
            bound["tool_choice"] = tool_choice
        if kwargs:
            bound[TOOL_KWARGS] = kwargs
        if structured is not None:
            bound["ls_structured_output_format"] = structured
        return self.bind(**bound)

    # ---- routing -------------------------------------------------------------------

    def _plan(
        self, messages: Sequence[BaseMessage], kwargs: dict[str, Any], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        """Decide who answers; pops the routing options out of ``kwargs``.

        Options come from ``kwargs`` first, then ``config["configurable"]`` (fields
        made configurable), then this model's fields.
        """
        for key, value in self._configured(config).items():
            kwargs.setdefault(key, value)
        options = {key: kwargs.pop(key) for key in CALL_OPTIONS if key in kwargs}
        prompt = _openai_messages(messages)
        max_fallbacks = options.get("max_fallbacks", self.max_fallbacks)
        if isinstance(max_fallbacks, bool) or not isinstance(max_fallbacks, int) or max_fallbacks < 0:
            raise InputError(f"max_fallbacks must be an int >= 0, got {max_fallbacks!r}")
        tools = bool(kwargs.get("tools"))
        pinned = options.get("model")
        if pinned is not None:
            if pinned not in self.models:
                raise UnknownModelError(
                    f"model={pinned!r} is not a child profile; children: {sorted(self.models)}"
                )
            if tools and not _supports_tools(self.models[pinned]):
                capable = sorted(n for n in self.models if _supports_tools(self.models[n]))
                raise InputError(
                    f"tools are bound but the pinned child model={pinned!r} does not support tool "
                    f"calling; pin one that does ({capable}) or leave model= out to route"
                )
            return {
                "profile": pinned,
                "reason": "pinned",
                "order": [pinned],
                "lambda": None,
                "decision_id": None,
                "decision": None,
            }
        names = self._check_candidates(options.get("candidates", self.candidates or list(self.models)))
        if tools:
            capable = [n for n in names if _supports_tools(self.models[n])]
            if not capable:
                raise InputError(f"tools are bound but no candidate in {names} supports tool calling")
            names = capable
        decision = self.router.route(
            prompt,
            lam=self._call_lam(options),
            candidates=names,
            conservative=options.get("conservative", self.conservative),
        )
        order, reason = list(decision.ranking), "routed"
        sticky = _tool_loop_profile(messages)
        if sticky in names:
            order, reason = [sticky, *(n for n in order if n != sticky)], "tool_loop"
        summary = decision.to_dict(top=3)
        summary.pop("cluster_probs")
        order = order[: 1 + max_fallbacks]
        self._runs.planned(decision)
        return {
            "profile": order[0],
            "reason": reason,
            "order": order,
            "lambda": decision.lam,
            "decision_id": decision.decision_id,
            "decision": summary,
        }

    def _call_lam(self, options: Mapping[str, Any]) -> Any:
        """λ for this call (the engine checks it is a number >= 0)."""
        if "lam" in options and "operating_point" in options:
            raise InputError("give lam= or operating_point= for a call, not both")
        if "lam" in options:
            return options["lam"]
        if "operating_point" in options:
            return self._operating_point_lam(options["operating_point"])
        if self.operating_point is not None:
            return self._operating_point_lam(self.operating_point)
        return self.lam

    def _take_route(
        self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """``(route, child call kwargs, configurable for Runnable children)`` of a call."""
        call_kwargs = dict(kwargs)
        route = call_kwargs.pop(ROUTE_KWARG, None)
        configurable = call_kwargs.pop(CONFIGURABLE_KWARG, None)
        if route is None:
            route = self._plan(messages, call_kwargs)
            configurable = ensure_config().get("configurable")
        else:
            for key in CALL_OPTIONS:
                call_kwargs.pop(key, None)
        return route, call_kwargs, configurable

    async def _atake_route(
        self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        if ROUTE_KWARG in kwargs:
            return self._take_route(messages, kwargs)
        return await run_in_executor(None, self._take_route, messages, kwargs)

    def _routed_call(
        self, route: dict[str, Any], config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> tuple[RunnableConfig, dict[str, Any]]:
        """Put the plan in the call kwargs and the run's metadata and tags."""
        config = ensure_config(config)
        run_id = config.get("run_id") or uuid4()  # known before the run starts, for record_feedback
        route = {**route, "run_id": str(run_id)}
        if route.get("decision_id") is not None:
            self._runs.started(route["decision_id"], getattr(config.get("callbacks"), "parent_run_id", None))
        profile = route["profile"]
        metadata = {
            **config.get("metadata", {}),
            "uniroute_profile": profile,
            "uniroute_reason": route["reason"],
        }
        tags = [*config.get("tags", []), f"uniroute:{profile}"]
        call = {**kwargs, ROUTE_KWARG: route}
        if config.get("configurable"):
            call[CONFIGURABLE_KWARG] = config["configurable"]
        return RunnableConfig(**{**config, "metadata": metadata, "tags": tags, "run_id": run_id}), call

    def _preroute(
        self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> tuple[RunnableConfig | None, dict[str, Any]]:
        if ROUTE_KWARG in kwargs:
            return config, kwargs
        kwargs = dict(kwargs)
        route = self._plan(self._convert_input(input).to_messages(), kwargs, config)
        return self._routed_call(route, config, kwargs)

    async def _apreroute(
        self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> tuple[RunnableConfig | None, dict[str, Any]]:
        if ROUTE_KWARG in kwargs:
            return config, kwargs
        kwargs = dict(kwargs)
        messages = self._convert_input(input).to_messages()
        route = await run_in_executor(None, self._plan, messages, kwargs, config)
        return self._routed_call(route, config, kwargs)

    # ---- feedback -------------------------------------------------------------------

    def record_feedback(self, run_id: Any, score: Any, *, weight: float = 1.0) -> str:
        """Record how well a routed run went; returns the profile credited.

        ``run_id`` is the id LangChain gives this chat model's run (the ``run_id``
        of ``on_chat_model_start`` / ``on_llm_end`` callbacks, a ``UUID`` or its
        str, as ``collect_runs`` and LangSmith show it), or the id of the run that
        directly contains it (e.g. a ``prompt | model`` chain) if that run made one
        routed call. The child that answered is credited (after a fallback, the
        fallback). ``score``: a number in [0, 1] (1 = right) or a bool. The last
        :data:`MAX_RUNS` routed runs are remembered for :data:`RUN_TTL` seconds;
        an unknown or expired run raises :class:`uniroute.InputError`.
        """
        key = _run_key(run_id)
        found = self._runs.runs.get(key)
        if found is None:
            kept = self._runs.runs
            raise InputError(
                f"run {key!r} is unknown or expired: UniRouteChatModel remembers its last {kept.max_size} "
                f"routed runs for {kept.ttl:g} s. Pass the run id of this chat model's run (the run_id "
                "callbacks receive in on_chat_model_start), or record by prompt with "
                "model.router.record_feedback(prompt, score, model=<profile that answered>)"
            )
        if found == _AMBIGUOUS:
            raise InputError(
                f"run {key!r} contains several UniRouteChatModel calls; pass the run id of the chat model "
                "run to credit (the run_id callbacks receive in on_chat_model_start)"
            )
        decision, answered = found
        if decision is None:
            raise InputError(
                f"run {key!r} was pinned to model={answered!r}, not routed; record it by prompt with "
                f"model.router.record_feedback(prompt, score, model={answered!r})"
            )
        return self.router.record_feedback(decision, score, weight=weight, model=answered)

    def _finish(
        self,
        generation: ChatGeneration,
        route: Mapping[str, Any],
        name: str,
        failures: list[dict[str, str]],
        run_manager: Any,
    ) -> None:
        """Stamp the outcome on the answer and remember the run for :meth:`record_feedback`."""
        if run_manager is not None:
            run_id, parent = run_manager.run_id, run_manager.parent_run_id
        else:  # stream() gives no run manager; the run id was set before the run started
            run_id, parent = route.get("run_id"), None
        _stamp(generation, {**route, "run_id": None if run_id is None else str(run_id)}, name, failures)
        self._runs.finished(run_id, parent, route.get("decision_id"), name)

    # ---- entry points: route before the run starts, so the run carries the decision ----

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config, kwargs = self._preroute(input, config, kwargs)
        with _starting(config):
            return super().invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config, kwargs = await self._apreroute(input, config, kwargs)
        with _starting(config):
            return await super().ainvoke(input, config, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config, kwargs = self._preroute(input, config, kwargs)
        chunks = cast(
            Generator[AIMessageChunk, None, None], super().stream(input, config, stop=stop, **kwargs)
        )
        try:
            with _starting(config):  # the run starts and the child is called at the first chunk
                first = next(chunks, None)
            if first is not None:
                yield first
                yield from chunks
        finally:
            chunks.close()

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config, kwargs = await self._apreroute(input, config, kwargs)
        chunks = cast(
            AsyncGenerator[AIMessageChunk, None], super().astream(input, config, stop=stop, **kwargs)
        )
        try:
            with _starting(config):  # the run starts and the child is called at the first chunk
                first = await anext(chunks, None)
            if first is not None:
                yield first
                async for chunk in chunks:
                    yield chunk
        finally:
            await chunks.aclose()

    # ---- delegation to the chosen child ---------------------------------------------

    def _target(self, child: Any, call_kwargs: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """What to call for ``child`` and its call kwargs: forwarded defaults, tools bound its way."""
        kwargs = dict(call_kwargs)
        for key in ("temperature", "max_tokens"):
            if getattr(self, key) is not None:
                kwargs.setdefault(key, getattr(self, key))
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        extra = kwargs.pop(TOOL_KWARGS, None) or {}
        if tools is None:
            return child, kwargs
        if tool_choice is not None:
            extra = {**extra, "tool_choice": tool_choice}
        target, tool_kwargs = _bind_tools(child, tools, extra)
        return target, {**kwargs, **tool_kwargs}

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else self.stop

    def _fell_back(
        self, route: Mapping[str, Any], name: str, error: BaseException, failures: list[dict[str, str]]
    ) -> None:
        """Record a failed child; re-raise when no child is left to try."""
        failures.append({"profile": name, "error": f"{type(error).__name__}: {error}"})
        if name == route["order"][-1]:
            if len(failures) > 1 and hasattr(error, "add_note"):
                others = ", ".join(f"{f['profile']} ({f['error']})" for f in failures[:-1])
                error.add_note(f"uniroute: every child tried failed; before {name}: {others}")
            raise error
        logger.warning("uniroute: child %r failed (%s); falling back", name, failures[-1]["error"])

    def _with_fallback(
        self,
        route: Mapping[str, Any],
        call_kwargs: Mapping[str, Any],
        attempt: Callable[[str, Any, dict[str, Any]], T],
    ) -> tuple[str, T, list[dict[str, str]]]:
        """Run ``attempt(name, target, kwargs)`` down the route's order until one succeeds."""
        failures: list[dict[str, str]] = []
        for name in route["order"]:
            try:
                target, kwargs = self._target(self.models[name], call_kwargs)
                if isinstance(target, BaseChatModel) and target.rate_limiter:
                    target.rate_limiter.acquire(blocking=True)
                return name, attempt(name, target, kwargs), failures
            except self.fallback_on as error:
                self._fell_back(route, name, error, failures)
        raise AssertionError("unreachable: the last failure re-raises")

    async def _awith_fallback(
        self,
        route: Mapping[str, Any],
        call_kwargs: Mapping[str, Any],
        attempt: Callable[[str, Any, dict[str, Any]], Awaitable[T]],
    ) -> tuple[str, T, list[dict[str, str]]]:
        """Async :meth:`_with_fallback`."""
        failures: list[dict[str, str]] = []
        for name in route["order"]:
            try:
                target, kwargs = self._target(self.models[name], call_kwargs)
                if isinstance(target, BaseChatModel) and target.rate_limiter:
                    await target.rate_limiter.aacquire(blocking=True)
                return name, await attempt(name, target, kwargs), failures
            except self.fallback_on as error:
                self._fell_back(route, name, error, failures)
        raise AssertionError("unreachable: the last failure re-raises")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route, call_kwargs, configurable = self._take_route(messages, kwargs)
        stop = self._stop(stop)

        def attempt(name: str, target: Any, child_kwargs: dict[str, Any]) -> ChatResult:
            if isinstance(target, BaseChatModel):
                return _call(target._generate, messages, stop, run_manager, child_kwargs)
            config = _child_config(run_manager, configurable, route.get("run_id"))
            with _parent_config(config):
                return _as_result(name, target.invoke(messages, config, **_with_stop(stop, child_kwargs)))

        name, result, failures = self._with_fallback(route, call_kwargs, attempt)
        for generation in result.generations:
            self._finish(generation, route, name, failures, run_manager)
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route, call_kwargs, configurable = await self._atake_route(messages, kwargs)
        stop = self._stop(stop)

        async def attempt(name: str, target: Any, child_kwargs: dict[str, Any]) -> ChatResult:
            if isinstance(target, BaseChatModel):
                return await _call(target._agenerate, messages, stop, run_manager, child_kwargs)
            config = _child_config(run_manager, configurable, route.get("run_id"))
            with _parent_config(config):
                message = await target.ainvoke(messages, config, **_with_stop(stop, child_kwargs))
            return _as_result(name, message)

        name, result, failures = await self._awith_fallback(route, call_kwargs, attempt)
        for generation in result.generations:
            self._finish(generation, route, name, failures, run_manager)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        route, call_kwargs, configurable = self._take_route(messages, kwargs)
        stop = self._stop(stop)

        def start(name: str, target: Any, child_kwargs: dict[str, Any]) -> tuple[Iterator[Any], Any]:
            """Open the child's stream and take its first chunk (a fallback is possible until then)."""
            if not isinstance(target, BaseChatModel):
                config = _child_config(run_manager, configurable, route.get("run_id"))
                messages_out = target.stream(messages, config, **_with_stop(stop, child_kwargs))
                chunks: Iterator[Any] = (_as_generation_chunk(name, m) for m in messages_out)
                with _parent_config(config):  # the child's run starts at its first chunk
                    return chunks, _first(name, next(chunks, None))
            elif _streams(target, child_kwargs):
                chunks = iter(_call(target._stream, messages, stop, run_manager, child_kwargs))
            else:
                chunks = iter([_as_chunk(_call(target._generate, messages, stop, run_manager, child_kwargs))])
            return chunks, _first(name, next(chunks, None))

        name, (chunks, first), failures = self._with_fallback(route, call_kwargs, start)
        self._finish(first, route, name, failures, run_manager)
        yield first
        yield from chunks

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        route, call_kwargs, configurable = await self._atake_route(messages, kwargs)
        stop = self._stop(stop)

        async def start(
            name: str, target: Any, child_kwargs: dict[str, Any]
        ) -> tuple[AsyncIterator[Any], Any]:
            """Async ``start`` of :meth:`_stream`."""
            if not isinstance(target, BaseChatModel):
                config = _child_config(run_manager, configurable, route.get("run_id"))
                messages_out = target.astream(messages, config, **_with_stop(stop, child_kwargs))
                chunks: AsyncIterator[Any] = (_as_generation_chunk(name, m) async for m in messages_out)
                with _parent_config(config):  # the child's run starts at its first chunk
                    return chunks, _first(name, await anext(chunks, None))
            elif _streams(target, child_kwargs):
                chunks = _call(target._astream, messages, stop, run_manager, child_kwargs)
            else:
                result = await _call(target._agenerate, messages, stop, run_manager, child_kwargs)
                chunks = _aiter([_as_chunk(result)])
            return chunks, _first(name, await anext(chunks, None))

        name, (chunks, first), failures = await self._awith_fallback(route, call_kwargs, start)
        self._finish(first, route, name, failures, run_manager)
        yield first
        async for chunk in chunks:
            yield chunk


# ---- helpers ----------------------------------------------------------------------


def _first(name: str, chunk: Any) -> Any:
    """A child stream's first chunk; a stream that ends before it is a failure (the next child is tried)."""
    if chunk is None:
        raise ValueError(f"child {name!r} ended its stream without a chunk")
    return chunk


def _input_error(error: ValidationError) -> UniRouteError:
    """One uniroute error for a failed construction, naming each bad argument and the fix."""
    problems = error.errors()
    messages = []
    for problem in problems:
        original = (problem.get("ctx") or {}).get("error")
        if isinstance(original, UniRouteError):
            if len(problems) == 1:
                return original
            messages.append(str(original))
            continue
        field = str(problem["loc"][0]) if problem["loc"] else "arguments"
        if problem["type"] == "extra_forbidden":
            known = sorted(UniRouteChatModel.model_fields)
            close = difflib.get_close_matches(field, known, n=1)
            hint = f"did you mean {close[0]}=? " if close else ""
            messages.append(f"unknown argument {field}=; {hint}UniRouteChatModel takes {', '.join(known)}")
        elif problem["type"] == "missing":
            messages.append(f"{field}= is required: {field} must be {_EXPECTED.get(field, 'given')}")
        else:
            expected = _EXPECTED.get(field, problem["msg"].lower())
            messages.append(
                f"{field}={short_repr(problem['input'])} is not valid: {field} must be {expected}"
            )
    return InputError("UniRouteChatModel: " + "; ".join(messages))


def _child_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InputError(f"models keys must be profile names (non-empty strings), got {name!r}")
    return name


def _resolve_child(name: str, child: Any) -> Any:
    """A child as given (any Runnable), or the chat model a ``"provider:model"`` string names."""
    if isinstance(child, Runnable):
        return child
    if not isinstance(child, str):
        raise InputError(
            f"child {name!r} is a {type(child).__name__}; give a LangChain chat model "
            "(e.g. ChatOpenAI(model=...)), a chat-model Runnable (model.with_retry(), model.bind(...)) "
            "or a 'provider:model' string such as 'openai:gpt-4o-mini'"
        )
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise InputError(
            f"child {name!r} is the string {child!r}; strings are resolved with langchain's "
            "init_chat_model: pip install langchain (or pass a chat model instance)"
        ) from None
    try:
        return init_chat_model(child)
    except Exception as error:
        raise InputError(
            f"cannot make child {name!r} from {child!r} with init_chat_model ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}); use 'provider:model' (e.g. 'openai:gpt-4o-mini') with "
            "the provider's package installed and its credentials set, or pass a chat model instance"
        ) from error


def _chat_model_of(child: Any) -> BaseChatModel | None:
    """The chat model inside a child: itself, or under bind / retry / fallbacks / configurable fields."""
    while not isinstance(child, BaseChatModel):
        if isinstance(child, RunnableBindingBase):
            child = child.bound
        elif isinstance(child, RunnableWithFallbacks):
            child = child.runnable
        elif isinstance(child, DynamicRunnable):
            child = child.default
        else:
            return None
    return child


def _supports_tools(child: Any) -> bool:
    inner = _chat_model_of(child)
    if inner is None:
        return callable(getattr(child, "bind_tools", None))
    return type(inner).bind_tools is not BaseChatModel.bind_tools


def _bind_tools(
    child: Any, tools: list[dict[str, Any]], extra: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """``(target, kwargs)``: calling ``target`` with ``kwargs`` calls ``child`` with the tools bound.

    A chat model's ``bind_tools`` gives a binding of itself, so its kwargs are
    passed through the wrappers around it (a retry, a binding, configurable
    fields), which then keep working. Anything else is called as its own
    ``bind_tools`` returned it.
    """
    inner = None
    if isinstance(child, RunnableBindingBase):
        inner = child.bound
    elif isinstance(child, DynamicRunnable):
        inner = child.default
    if inner is not None:
        target, kwargs = _bind_tools(inner, tools, extra)
        if target is inner:
            return child, kwargs
    bound = child.bind_tools(tools, **extra)
    if isinstance(bound, RunnableBinding) and bound.bound is child:
        return child, dict(bound.kwargs)
    return bound, {}


def _streams(child: BaseChatModel, child_kwargs: Mapping[str, Any]) -> bool:
    """Whether ``child`` streams natively for this call (honours its ``disable_streaming``)."""
    cls = type(child)
    if cls._stream is BaseChatModel._stream and cls._astream is BaseChatModel._astream:
        return False
    if child.disable_streaming is True:
        return False
    return not (child.disable_streaming == "tool_calling" and child_kwargs.get("tools"))


def _call(
    method: Callable[..., Any],
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Any,
) -> Any:
    """Call a child's ``_generate``-level method, with ``run_manager=`` if it takes one."""
    if "run_manager" in inspect.signature(method).parameters:
        return method(messages, stop=stop, run_manager=run_manager, **kwargs)
    return method(messages, stop=stop, **kwargs)


@contextmanager
def _starting(config: RunnableConfig | None) -> Iterator[None]:
    """Mark the routed run of ``config`` (its ``run_id`` set by the entry point) as starting here."""
    run_id = (config or {}).get("run_id")
    token = _STARTING.set(None if run_id is None else (str(run_id), cast(RunnableConfig, config)))
    try:
        yield
    finally:
        _STARTING.reset(token)


@contextmanager
def _parent_config(config: RunnableConfig) -> Iterator[None]:
    """Make ``config`` the context's Runnable config while a Runnable child starts.

    Bindings and retries merge their call's config into the context's, keeping the
    context's parent run: without this, inside a chain the child's run would nest
    under the chain instead of under the routed run.
    """
    token = var_child_runnable_config.set(config)
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def _child_config(run_manager: Any, configurable: dict[str, Any] | None, run_id: Any) -> RunnableConfig:
    """Config for a Runnable child: the call's ``configurable``; its run nests under this one.

    Without the run manager (langchain-core streams without it), the run's callbacks,
    tags and metadata come from the config its entry point started run ``run_id`` with.
    """
    config = RunnableConfig(configurable=dict(configurable or {}))
    starting = _STARTING.get()
    if run_manager is not None:
        parent, inherited = run_manager.run_id, run_manager
    elif starting is not None and starting[0] == run_id:
        started = starting[1]
        parent = UUID(run_id)
        inherited = CallbackManager.configure(
            inheritable_callbacks=started.get("callbacks"),
            inheritable_tags=started.get("tags"),
            inheritable_metadata=started.get("metadata"),
        )
    else:
        return config
    callbacks = CallbackManager(handlers=[], parent_run_id=parent)
    callbacks.set_handlers(inherited.inheritable_handlers)
    callbacks.add_tags(inherited.inheritable_tags)
    callbacks.add_metadata(inherited.inheritable_metadata)
    config["callbacks"] = callbacks
    return config


def _with_stop(stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs if stop is None else {**kwargs, "stop": stop}


def _as_result(name: str, message: Any) -> ChatResult:
    if not isinstance(message, BaseMessage):
        raise InputError(
            f"child {name!r} returned a {type(message).__name__}, not a chat message; children must be "
            "chat models or Runnables that return one (not a chain ending in an output parser)"
        )
    return ChatResult(generations=[ChatGeneration(message=_without_run_id(message))])


def _as_generation_chunk(name: str, message: Any) -> ChatGenerationChunk:
    if isinstance(message, BaseMessageChunk):
        return ChatGenerationChunk(message=_without_run_id(message))
    return _as_chunk(_as_result(name, message))


def _without_run_id(message: T) -> T:
    """A Runnable child's message without the id langchain-core named after the child's nested run,
    so it is named after this run (``"lc_run--<run id>"``, accepted by ``record_feedback``)."""
    if isinstance(message, BaseMessage) and isinstance(message.id, str) and message.id.startswith("lc_run-"):
        return cast(T, message.model_copy(update={"id": None}))
    return message


def _openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The request as OpenAI-style dicts for :func:`uniroute.routing_text`; checks bad input."""
    if not messages:
        raise InputError("UniRouteChatModel got an empty message list; pass a string or at least one message")
    if all(message.type == "system" for message in messages):
        raise InputError(
            "the request has only system messages; add a HumanMessage with the user's request "
            "(e.g. ChatPromptTemplate.from_messages([('system', ...), ('human', '{question}')]))"
        )
    try:
        return convert_to_openai_messages(list(messages))
    except (ValueError, TypeError, KeyError):
        # Content blocks the converter does not know still have their text.
        return [{"role": message.type, "content": message.text} for message in messages]


def _tool_loop_profile(messages: Sequence[BaseMessage]) -> str | None:
    """The child that issued the tool call a trailing ``ToolMessage`` answers, if recorded."""
    last = messages[-1] if messages else None
    if not isinstance(last, ToolMessage):
        return None
    for message in reversed(messages[:-1]):
        if isinstance(message, AIMessage) and any(
            call.get("id") == last.tool_call_id for call in message.tool_calls
        ):
            meta = message.response_metadata.get("uniroute")
            return meta.get("answered_by") if isinstance(meta, Mapping) else None
    return None


def _stamp(
    generation: ChatGeneration, route: Mapping[str, Any], name: str, failures: list[dict[str, str]]
) -> None:
    """Put the routing outcome in a copy of the generation's message (children may reuse theirs).

    The decision id also goes into ``generation_info`` (``"uniroute_decision_id"``).
    """
    outcome = {**route, "answered_by": name, "fallbacks": list(failures)}
    message = generation.message
    generation.message = message.model_copy(
        update={"response_metadata": {**message.response_metadata, "uniroute": outcome}}
    )
    if route.get("decision_id") is not None:
        generation.generation_info = {
            **(generation.generation_info or {}),
            "uniroute_decision_id": route["decision_id"],
        }


def _as_chunk(result: ChatResult) -> ChatGenerationChunk:
    """One chunk holding a whole answer, for a child that does not stream."""
    generation = result.generations[0]
    message = cast(AIMessage, generation.message)
    chunk = AIMessageChunk(
        content=message.content,
        additional_kwargs=message.additional_kwargs,
        response_metadata={**(result.llm_output or {}), **message.response_metadata},
        tool_calls=message.tool_calls,
        invalid_tool_calls=message.invalid_tool_calls,
        usage_metadata=message.usage_metadata,
        id=message.id,
        chunk_position="last",
    )
    return ChatGenerationChunk(message=chunk, generation_info=generation.generation_info)


async def _aiter(items: list[ChatGenerationChunk]) -> AsyncIterator[ChatGenerationChunk]:
    for item in items:
        yield item
