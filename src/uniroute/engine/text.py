"""Which text of a request is embedded for routing.

Embedders see a few hundred tokens at most, and what decides the right model is
usually at the end: few-shot prompts put the question last, and in a chat the
latest turns matter most. So the routing text is the *tail* of the conversation:

1. ``str`` prompts are used as they are; ``bytes`` are decoded as UTF-8 with
   invalid bytes replaced, and lone surrogates in a ``str`` are replaced too
   (pairs are joined), so the text always encodes as UTF-8 downstream.
2. Message lists (OpenAI-style dicts with ``role`` and ``content``, from Chat
   Completions or the Responses API) contribute the text of their user and
   assistant turns, in order. Content given as a list of parts contributes its
   ``text``, ``input_text`` and ``output_text`` parts; images, audio and tool
   calls carry no text. System, developer and tool turns are used only when no
   user or assistant turn has text, since they are mostly boilerplate or data.
   Plain strings in the list count as user turns, so a list of strings is joined.
3. The joined text is stripped and cut to its last ``MAX_ROUTING_CHARS``
   characters: about 250 tokens of English, the window all-MiniLM-L6-v2 reads.
   The cut also bounds the work any prompt costs (a 1 MB prompt routes as fast
   as a 1 kB one); tokenising is the slowest step of the static embedder, about
   0.7 µs a character on the reference machine, so a longer window would break
   the 2 ms routing budget.

A request with no text at all gives ``""``; the router then routes on the
cluster prior (see :meth:`uniroute.Router.route`). :func:`prompt_text` gives the
same text without the cut, for code that needs the whole prompt (replay, grading).
This module is the one place routing text is extracted; front doors convert their
own message types to OpenAI dicts and call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..exceptions import InputError

MAX_ROUTING_CHARS = 1000
_CONVERSATION_ROLES = frozenset({"user", "assistant", "human", "ai"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})

Prompt = str | bytes | Sequence[Mapping[str, Any] | str]


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
            elif isinstance(part, Mapping) and part.get("type", "text") in _TEXT_PARTS:
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return ""


def _messages_text(messages: Sequence[Any]) -> str:
    conversation: list[str] = []
    other: list[str] = []
    for i, message in enumerate(messages):
        if isinstance(message, str):
            text, role = message, "user"
        elif isinstance(message, Mapping):
            text, role = _content_text(message.get("content")), str(message.get("role", "user")).lower()
        else:
            raise InputError(
                f"message {i} is a {type(message).__name__}; pass dicts with 'role' and "
                "'content' (OpenAI chat format), strings, or one plain string"
            )
        if text.strip():
            (conversation if role in _CONVERSATION_ROLES else other).append(text)
    return "\n".join(conversation or other)


def _raw_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (bytes, bytearray)):
        return bytes(prompt).decode("utf-8", errors="replace")
    if isinstance(prompt, Sequence):
        return _messages_text(prompt)
    raise InputError(
        f"cannot route a {type(prompt).__name__}; pass a string, bytes or a list of "
        "chat messages ({'role': ..., 'content': ...})"
    )


def _utf8_safe(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (surrogate pairs joined)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _cut(text: str, max_chars: int) -> str:
    if len(text) > 4 * max_chars:
        text = text[-4 * max_chars :]
    return _utf8_safe(text).strip()[-max_chars:]


def _chars(text: str) -> int:
    return len(_utf8_safe(text).strip())


def routing_text(prompt: Prompt, max_chars: int = MAX_ROUTING_CHARS) -> str:
    """Return the part of ``prompt`` that is embedded for routing (see module doc)."""
    return _cut(_raw_text(prompt), max_chars)


def prompt_text(prompt: Prompt) -> str:
    """The whole text of ``prompt``, chosen as :func:`routing_text` chooses it, without the cut."""
    return _utf8_safe(_raw_text(prompt)).strip()


def prompt_chars(prompts: Sequence[Prompt]) -> np.ndarray:
    """Each prompt's length in characters (:func:`prompt_text`): what requests are priced by."""
    return np.array([_chars(_raw_text(p)) for p in prompts], dtype=np.float64)


def routing_texts(prompts: Sequence[Prompt], with_chars: bool = False) -> tuple[list[str], np.ndarray | None]:
    """Each prompt's :func:`routing_text` and, ``with_chars``, its :func:`prompt_chars`, taking
    each prompt's text out once (the route path needs both when requests are priced by length)."""
    raw = [_raw_text(p) for p in prompts]
    chars = np.array([_chars(t) for t in raw], dtype=np.float64) if with_chars else None
    return [_cut(t, MAX_ROUTING_CHARS) for t in raw], chars
