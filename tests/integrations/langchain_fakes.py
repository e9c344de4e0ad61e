"""Deterministic, tool-capable fake chat models for the LangChain front door tests.

One "brain" (:func:`reply`) answers OpenAI-format requests: it echoes the last
user turn, honours ``stop``, counts words as tokens, and calls a bound tool by
filling the tool's JSON schema from the prompt (integers from the numbers in it,
strings with the prompt itself). Two bodies use it: :class:`EchoChatModel`, an
in-process LangChain chat model, and :func:`serve_openai`, a minimal
OpenAI-compatible HTTP server on 127.0.0.1 for ``langchain_openai.ChatOpenAI``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from local_server import running
from pydantic import Field

_INT = re.compile(r"-?\d+")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _fill(schema: dict[str, Any], text: str, numbers: Iterator[int], defs: dict[str, Any]) -> Any:
    """A value for ``schema`` made from the prompt ``text``."""
    if "$ref" in schema:
        return _fill(defs[schema["$ref"].split("/")[-1]], text, numbers, defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _fill(options[0] if options else {"type": "null"}, text, numbers, defs)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        return {k: _fill(v, text, numbers, defs) for k, v in schema.get("properties", {}).items()}
    if kind == "integer":
        return next(numbers)
    if kind == "number":
        return float(next(numbers))
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "null":
        return None
    return text


def _truncate(text: str, stop: Sequence[str] | str | None) -> str:
    for seq in [stop] if isinstance(stop, str) else stop or []:
        if seq and seq in text:
            text = text[: text.index(seq)]
    return text


def reply(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: Sequence[str] | str | None = None,
    name: str = "echo",
) -> dict[str, Any]:
    """Answer one OpenAI-format request: ``{"text", "tool_calls", "usage"}``.

    With tools bound and a user turn last, it calls ``tool_choice``'s tool (or the
    first tool); after a tool result it answers in text.
    """
    last = messages[-1]
    user_text = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    tool_calls: list[dict[str, Any]] = []
    text = ""
    if tools and last.get("role") != "tool" and tool_choice != "none":
        wanted = tool_choice
        if isinstance(tool_choice, dict):
            wanted = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        by_name = {t["function"]["name"]: t["function"] for t in tools}
        function = by_name.get(wanted) if isinstance(wanted, str) else None
        function = function or tools[0]["function"]
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        numbers = itertools.cycle([int(n) for n in _INT.findall(user_text)] or [0])
        args = _fill(schema, user_text, numbers, schema.get("$defs", {}))
        tool_calls.append({"id": f"call_{len(messages)}", "name": function["name"], "args": args})
    elif last.get("role") == "tool":
        text = _truncate(f"{name} read the tool result: {_text(last.get('content'))}", stop)
    else:
        text = _truncate(f"{name} echoes: {user_text or '(no text)'}", stop)
    words_in = sum(len(_text(m.get("content")).split()) for m in messages)
    words_out = len(text.split()) + sum(len(json.dumps(c["args"]).split()) for c in tool_calls)
    usage = {"input_tokens": words_in, "output_tokens": words_out, "total_tokens": words_in + words_out}
    return {"text": text, "tool_calls": tool_calls, "usage": usage}


class EchoChatModel(BaseChatModel):
    """In-process fake child: :func:`reply` behind the LangChain chat model API.

    ``fail`` raises before answering; ``fail_times`` raises on that many first
    calls only (for retries); ``fail_mid_stream`` raises after the first streamed
    chunk; ``empty_stream`` ends its stream without a chunk. ``calls`` records
    each request (its last user text and kwargs). Tokens are whitespace-separated
    words, as in the usage it reports; ``token_scale`` multiplies them (a child
    with a finer tokenizer).
    """

    model_name: str = "echo"
    fail: bool = False
    fail_times: int = 0
    fail_mid_stream: bool = False
    empty_stream: bool = False
    token_scale: int = 1
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "echo-fake"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def get_token_ids(self, text: str) -> list[int]:
        return [len(word) for word in text.split() for _ in range(self.token_scale)]

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _reply(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        openai_messages = convert_to_openai_messages(messages)
        self.calls.append({"text": _text(openai_messages[-1].get("content")), "kwargs": dict(kwargs)})
        if self.fail or len(self.calls) <= self.fail_times:
            raise RuntimeError(f"{self.model_name} is down")
        return reply(openai_messages, kwargs.get("tools"), kwargs.get("tool_choice"), stop, self.model_name)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        answer = self._reply(messages, stop, kwargs)
        message = AIMessage(
            content=answer["text"],
            tool_calls=[{**c, "type": "tool_call"} for c in answer["tool_calls"]],
            usage_metadata=answer["usage"],
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        answer = self._reply(messages, stop, kwargs)
        if self.empty_stream:
            return
        pieces = [AIMessageChunk(content=word) for word in re.findall(r"\S+\s*", answer["text"])]
        pieces += [
            AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                ],
            )
            for i, c in enumerate(answer["tool_calls"])
        ]
        pieces.append(
            AIMessageChunk(
                content="",
                usage_metadata=answer["usage"],
                response_metadata={"model_name": self.model_name},
                chunk_position="last",
            )
        )
        for i, piece in enumerate(pieces):
            if self.fail_mid_stream and i == 1:
                raise RuntimeError(f"{self.model_name} dropped the stream")
            chunk = ChatGenerationChunk(message=piece)
            if run_manager:
                run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk


# ---- a minimal OpenAI-compatible server ------------------------------------------------


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    answer = reply(
        body["messages"], body.get("tools"), body.get("tool_choice"), body.get("stop"), body["model"]
    )
    message: dict[str, Any] = {"role": "assistant", "content": answer["text"] or None}
    if answer["tool_calls"]:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["args"], ensure_ascii=False)},
            }
            for c in answer["tool_calls"]
        ]
    usage = answer["usage"]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if answer["tool_calls"] else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
        },
    }


def _stream_events(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The completion of ``body`` as chat.completion.chunk events."""
    full = _completion(body)
    message, finish = full["choices"][0]["message"], full["choices"][0]["finish_reason"]
    base = {"id": full["id"], "object": "chat.completion.chunk", "created": 0, "model": full["model"]}

    def event(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    yield event({"role": "assistant", "content": ""})
    for word in re.findall(r"\S+\s*", message["content"] or ""):
        yield event({"content": word})
    for i, call in enumerate(message.get("tool_calls", [])):
        yield event({"tool_calls": [{"index": i, **call}]})
    yield event({}, finish)
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": full["usage"]}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for item in _stream_events(body):
                self.wfile.write(f"data: {json.dumps(item, ensure_ascii=False)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        data = json.dumps(_completion(body), ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextmanager
def serve_openai() -> Iterator[ThreadingHTTPServer]:
    """Run the fake OpenAI-compatible server on 127.0.0.1 (a free port) until exit.

    ``server.server_address[1]`` is the port; ``server.requests`` the bodies received.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.requests = []  # type: ignore[attr-defined]
    with running(server):
        yield server
