"""Which text of a request is embedded for routing.

Embedders see a few hundred tokens at most, and what decides the right model is
usually at the end: few-shot prompts put the question last, and in a chat the
latest turns matter most. So the routing text is the *tail* of the conversation:

1. ``str`` prompts are used as they are; ``bytes`` are decoded as UTF-8 with
   invalid bytes replaced.
2. Message lists (OpenAI-style dicts with ``role`` and ``content``) contribute the
   text of their user and assistant turns, in order. Content given as a list of
   parts contributes its ``text`` parts; images, audio and tool calls carry no
   text. System, developer and tool turns are used only when no user or assistant
   turn has text, since they are mostly boilerplate or data.
3. The joined text is stripped and cut to its last ``MAX_ROUTING_CHARS``
   characters: about 250 tokens of English, the window all-MiniLM-L6-v2 reads.
   The cut also bounds the work any prompt costs (a 1 MB prompt routes as fast
   as a 1 kB one); tokenising is the slowest step of the static embedder, about
   0.7 µs a character on the reference machine, so a longer window would break
   the 2 ms routing budget.

A request with no text at all gives ``""``; the router then routes on the
cluster prior (see :meth:`uniroute.Router.route`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import InputError

MAX_ROUTING_CHARS = 1000
_CONVERSATION_ROLES = frozenset({"user", "assistant", "human", "ai"})

Prompt = str | bytes | Sequence[Mapping[str, Any]]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return ""


def _messages_text(messages: Sequence[Any]) -> str:
    conversation: list[str] = []
    other: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InputError(
                f"message {i} is a {type(message).__name__}; pass dicts with 'role' and "
                "'content' (OpenAI chat format), or a plain string"
            )
        text = _content_text(message.get("content"))
        if not text.strip():
            continue
        role = str(message.get("role", "user")).lower()
        (conversation if role in _CONVERSATION_ROLES else other).append(text)
    return "\n".join(conversation or other)


def routing_text(prompt: Prompt, max_chars: int = MAX_ROUTING_CHARS) -> str:
    """Return the part of ``prompt`` that is embedded for routing (see module doc)."""
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, (bytes, bytearray)):
        text = bytes(prompt).decode("utf-8", errors="replace")
    elif isinstance(prompt, Sequence):
        text = _messages_text(prompt)
    else:
        raise InputError(
            f"cannot route a {type(prompt).__name__}; pass a string, bytes or a list of "
            "chat messages ({'role': ..., 'content': ...})"
        )
    if len(text) > 4 * max_chars:
        text = text[-4 * max_chars :]
    return text.strip()[-max_chars:]
