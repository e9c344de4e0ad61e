"""Prompt logs: the traffic a router is built for, read from the files teams already have.

Each non-blank line is one request, in any of these forms:

* ``{"prompt": "..."}`` or ``{"messages": [...]}`` (OpenAI chat format);
* a request log: ``{"request": {...}}`` or ``{"body": {...}}`` holding ``messages``
  (or ``prompt``), possibly as a JSON string;
* a LiteLLM proxy spend-log export (``LiteLLM_SpendLogs`` rows): ``proxy_server_request``
  (the request body as JSON text) or ``messages``. The proxy stores them only with
  ``general_settings: store_prompts_in_spend_logs: true``; a row without them,
  or with them redacted, is dropped and counted;
* a JSON string, or a plain text line (the line is the prompt).

``reference`` (or ``answer``) on a record is kept for grading. Messages keep their
``role`` and text ``content``; tool calls and their results (``tool`` messages) are
left out. Prompts that are empty or repeat an earlier one (same messages) are
dropped and counted by reason; a line that starts like JSON (``{`` or ``[``) but
does not parse is an error naming the line, or with ``skip_invalid=True`` dropped
and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..datasets._lines import has_lone_surrogate, settle
from ..engine.files import refuse_directory
from ..exceptions import InputError

REDACTED = "redacted-by-litellm"
REFERENCE_KEYS = ("reference", "answer")
_TOOL_RESULTS = ("tool", "function")
_CHAT_CALLS = ("completion", "acompletion", "chat", "responses", "aresponses", "text_completion")


@dataclass(frozen=True)
class LoggedPrompt:
    """One distinct prompt of a log: its chat messages, an optional reference, the line it came from."""

    messages: tuple[dict[str, Any], ...]
    reference: Any = None
    line: int = 0

    def text_prompt(self) -> str | list[dict[str, Any]]:
        """A lone user turn as its text, else the messages (what a validation item stores)."""
        if len(self.messages) == 1 and self.messages[0]["role"] == "user":
            return str(self.messages[0]["content"])
        return [dict(m) for m in self.messages]


@dataclass
class PromptLog:
    """The prompts kept from a log, how often each was sent, and what was dropped, counted by reason.

    ``counts[i]`` is the number of times ``prompts[i]`` occurs (repeats are traffic:
    they weigh the cluster shares and the report's traffic sample, but are called once).
    """

    path: Path
    prompts: list[LoggedPrompt]
    dropped: Counter[str] = field(default_factory=Counter)
    n_lines: int = 0
    counts: list[int] = field(default_factory=list)

    def traffic(self) -> list[str | list[dict[str, Any]]]:
        """Every logged request, repeats included, as prompts (the report's traffic sample)."""
        return [p.text_prompt() for p, n in zip(self.prompts, self.counts, strict=True) for _ in range(n)]

    @property
    def n_with_reference(self) -> int:
        return sum(p.reference is not None for p in self.prompts)

    def summary(self) -> str:
        line = f"{self.path}: {self.n_lines} line(s), {len(self.prompts)} distinct prompt(s) kept"
        if self.n_with_reference:
            line += f" ({self.n_with_reference} with a reference)"
        if self.dropped:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in self.dropped.most_common())
            line += f"; dropped {sum(self.dropped.values())} ({reasons})"
        return line


class _Drop(InputError):
    """A record that holds no usable prompt, with the reason it is counted under."""


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply for Python: text
            return value
    return value


def _content_text(content: Any) -> str | None:
    """The text of a message's content (a string, or text parts); None if it has none."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def _clean_messages(messages: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(messages, list) or not messages:
        raise _Drop("messages not a non-empty list")
    out = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _Drop("a message without a role")
        if message["role"] in _TOOL_RESULTS:
            continue  # the result of a tool call left out: a request with it alone is refused (400)
        text = _content_text(message.get("content"))
        if text is None:
            continue  # tool calls, images only: nothing a model can be asked again
        if text.strip() == REDACTED:
            raise _Drop("redacted by LiteLLM")
        out.append({"role": message["role"], "content": text})
    return tuple(out)


def _from_body(body: Any) -> tuple[dict[str, Any], ...] | None:
    """Messages of a request body (``messages``, or ``prompt`` / ``input`` as text); None if neither."""
    body = _maybe_json(body)
    if not isinstance(body, dict):
        return None
    if "messages" in body:
        return _clean_messages(_maybe_json(body["messages"]))
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            return ({"role": "user", "content": value},)
        if key == "input" and isinstance(value, list):
            return _clean_messages(value)
    return None


def _parse_record(record: Any) -> tuple[tuple[dict[str, Any], ...], Any]:
    """``(messages, reference)`` of one parsed JSON line."""
    if isinstance(record, str):
        return ({"role": "user", "content": record},), None
    if not isinstance(record, dict):
        raise _Drop("not a JSON object or string")
    reference = next((record[k] for k in REFERENCE_KEYS if record.get(k) is not None), None)
    if isinstance(record.get("prompt"), str):
        return ({"role": "user", "content": record["prompt"]},), reference
    if "messages" in record and _maybe_json(record["messages"]) not in ({}, [], None, ""):
        return _clean_messages(_maybe_json(record["messages"])), reference
    call_type = record.get("call_type")
    if isinstance(call_type, str) and call_type not in _CHAT_CALLS:
        raise _Drop(f"not a chat request (call_type {call_type})")
    for key in ("proxy_server_request", "request", "body"):
        if key in record:
            value = _maybe_json(record[key])
            if isinstance(value, dict) and "body" in value and "messages" not in value:
                value = value["body"]  # a request recorded with its headers
            messages = _from_body(value)
            if messages is not None:
                return messages, reference
    if "proxy_server_request" in record or "request_id" in record:
        raise _Drop("spend log without the prompt (set store_prompts_in_spend_logs: true)")
    raise _Drop("no prompt, messages or request body")


def read_prompt_log(path: str | Path, skip_invalid: bool = False) -> PromptLog:
    """Read a prompt log (see module doc); duplicates and empty prompts are dropped and counted.

    Raises
    ------
    InputError
        No such file; lines that look like JSON but do not parse (named, unless
        ``skip_invalid``); no prompt left.
    """
    path = Path(path)
    refuse_directory(path, "a prompt log (JSONL or text lines)")
    if not path.is_file():
        raise InputError(
            f"no prompt log at {path}; give a JSONL request log, a spend-log export or text lines"
        )
    log = PromptLog(path, [])
    seen: dict[str, int] = {}
    problems: list[str] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
            if not line:
                continue
            log.n_lines += 1
            try:
                record: Any = json.loads(line)
            except (ValueError, RecursionError) as exc:
                if line[:1] in ("{", "["):
                    problems.append(f"line {number}: not valid JSON ({exc})")
                    log.dropped["invalid JSON"] += 1
                    continue
                record = line
            if "\\u" in line and has_lone_surrogate(record):  # "\\ud800": JSON, but not text
                problems.append(
                    f"line {number}: holds a lone surrogate escape such as \\ud800, which is not text"
                )
                log.dropped["invalid JSON"] += 1
                continue
            try:
                messages, reference = _parse_record(record)
            except _Drop as drop:
                log.dropped[str(drop)] += 1
                continue
            if not any(m["content"].strip() for m in messages):
                log.dropped["empty"] += 1
                continue
            key = json.dumps(messages, sort_keys=True, ensure_ascii=False)
            if key in seen:
                log.dropped["duplicate"] += 1
                log.counts[seen[key]] += 1
                continue
            seen[key] = len(log.prompts)
            log.prompts.append(LoggedPrompt(messages, reference, number))
            log.counts.append(1)
    settle(path, problems, skip_invalid)
    if not log.prompts:
        raise InputError(f"{log.summary()}: no prompt left to build a router on")
    return log
