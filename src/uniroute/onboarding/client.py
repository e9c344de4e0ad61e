"""An async chat-completion call through LiteLLM with the retry policy onboarding needs.

* at most one call per :func:`complete` and a per-call ``timeout`` (plus a hard
  ``asyncio`` deadline in case the provider ignores it);
* 429, 408, 409, 5xx, timeouts and connection errors are retried with exponential
  backoff and jitter (``Retry-After`` honoured, capped);
* other 4xx fail the prompt at once: ``(None, "<status> <error>")``;
* 401/403, and a call made without any API key (which LiteLLM reports as a
  500), raise :class:`_FatalCallError`: no other prompt will escape them.

Bounding the number of calls in flight is the caller's job (a semaphore).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from .._optional import require
from ..exceptions import OnboardingError
from .settings import CallSettings


class _FatalCallError(OnboardingError):
    """An error no other prompt will escape (bad key, no permission, a dead endpoint).

    Internal: the runner turns it into an :class:`~uniroute.OnboardingError` that
    says the state is unchanged and where the answers so far are cached.
    """


# What the provider SDK says when no key was given at all; LiteLLM reports it as a 500.
_NO_KEY = ("Missing credentials", "api_key client option must be set")


def classify(exc: BaseException) -> str:
    """``"fatal"``, ``"no key"``, ``"retry"`` or ``"fail"`` for an exception raised by a LiteLLM call."""
    litellm = require("litellm", "litellm")
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return "fatal"
    if any(text in str(exc) for text in _NO_KEY):
        return "no key"
    retryable = (
        asyncio.TimeoutError,
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
    )
    status = getattr(exc, "status_code", None)
    if isinstance(exc, retryable) or status in (408, 409, 429) or (isinstance(status, int) and status >= 500):
        return "retry"
    return "fail"


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``Retry-After``), if it did."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None) or {}
    try:
        value = headers.get("retry-after")
    except AttributeError:
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def error_name(exc: BaseException) -> str:
    """``"<status> <exception class>"``, the label failures are counted under."""
    status = getattr(exc, "status_code", None)
    name = "Timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
    return f"{status} {name}" if isinstance(status, int) else name


def response_text(response: Any) -> str:
    """The text of a chat completion; "" for none (tool calls only, refusals, no choices)."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


async def complete(settings: CallSettings, messages: Sequence[Mapping[str, Any]]) -> tuple[Any, str | None]:
    """One chat completion with retries: ``(response, None)`` or ``(None, error label)``.

    Raises
    ------
    _FatalCallError
        401/403: the key or the permissions are wrong.
    """
    litellm = require("litellm", "litellm")
    s = settings
    attempt = 0
    while True:
        try:
            response = await asyncio.wait_for(
                litellm.acompletion(
                    messages=list(messages), timeout=s.timeout, max_retries=0, **s.call_kwargs()
                ),
                timeout=s.timeout * 1.5 + 5,
            )
            return response, None
        except Exception as exc:
            kind = classify(exc)
            if kind == "fatal":
                raise _FatalCallError(f"{error_name(exc)}: {exc}") from exc
            if kind == "no key":
                raise _FatalCallError(
                    f"no API key for {s.model!r}: pass api_key= (CLI: --api-key-env VAR) or set the "
                    "provider's key variable (e.g. OPENAI_API_KEY); a local server without keys takes any "
                    "non-empty key"
                ) from exc
            if kind == "fail" or attempt == s.max_retries:
                return None, error_name(exc) + ("" if kind == "fail" else f" after {attempt + 1} attempts")
            delay = min(s.backoff_max, s.backoff * 2**attempt) * (0.5 + random.random() / 2)
            wait = retry_after(exc)
            await asyncio.sleep(min(s.backoff_max, wait) if wait is not None else delay)
            attempt += 1
