"""What calls cost: LiteLLM's price list, the $ of one response, and the ``--dry-run`` estimate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._optional import require
from .cache import ResponseCache, cache_file
from .settings import CallSettings, HasMessages

DEFAULT_OUTPUT_TOKENS = 256


def litellm_price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """$ LiteLLM's price list gives for a call, or None if it does not know the model."""
    litellm = require("litellm", "litellm")
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:
        return None
    return float(prompt_cost + completion_cost)


def call_cost(response: Any, model: str, fixed: float | None = None) -> float | None:
    """$ of one call: ``fixed`` if given, else LiteLLM's price of the response or of its usage."""
    if fixed is not None:
        return fixed
    litellm = require("litellm", "litellm")
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:
        usage = getattr(response, "usage", None)
        if usage is None:
            return None
        return litellm_price(model, int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))


@dataclass
class Estimate:
    """What a run would cost (``--dry-run``)."""

    n_items: int
    n_cached: int
    prompt_tokens: int
    completion_tokens: int
    dollars: float | None
    price_source: str

    def summary(self) -> str:
        to_call = self.n_items - self.n_cached
        money = "$ unknown" if self.dollars is None else f"≈ ${self.dollars:.4f}"
        return (
            f"{self.n_items} prompts, {self.n_cached} already cached, {to_call} to call: "
            f"≈ {self.prompt_tokens:,} prompt + ≤ {self.completion_tokens:,} completion tokens, "
            f"{money} ({self.price_source})"
        )


def estimate(
    items: Sequence[HasMessages],
    settings: CallSettings,
    cost: float | None = None,
    cache_dir: str | Path | None = None,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Estimate:
    """Count the tokens and $ of the calls a run would make (cached answers are free)."""
    litellm = require("litellm", "litellm")
    cached, _ = ResponseCache.read(cache_file(settings.model, cache_dir))
    todo = [item for item in items if settings.cache_key(item) not in cached]
    per_call_out = int(settings.params.get("max_tokens") or output_tokens)
    prompt_tokens = sum(int(litellm.token_counter(model=settings.model, messages=i.messages())) for i in todo)
    completion_tokens = per_call_out * len(todo)
    if cost is not None:
        dollars: float | None = cost * len(todo)
        source = f"--cost ${cost:g} per request"
    else:
        dollars = litellm_price(settings.model, prompt_tokens, completion_tokens)
        source = (
            f"LiteLLM prices, ≤ {per_call_out} completion tokens a call"
            if dollars is not None
            else f"LiteLLM has no price for {settings.model!r}; pass --cost"
        )
    return Estimate(len(items), len(items) - len(todo), prompt_tokens, completion_tokens, dollars, source)
