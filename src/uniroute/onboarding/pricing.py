"""What calls cost: LiteLLM's price list, the $ of one response, the ``--dry-run`` estimate, a budget,
and the :class:`~uniroute.Price` a model's answers give it on the traffic.

Prices come from, in order: a fixed $ per request (``cost``), a deployment's own
``(input, output)`` $ per token (``prices``, as in a LiteLLM config's
``input_cost_per_token`` / ``output_cost_per_token``), or LiteLLM's price map.
``uniroute build`` and ``uniroute onboard`` price a model the same way: each call
so, then :func:`traffic_price` over the validation set's clusters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..engine.profiles import Price, fit_price
from .cache import ResponseCache, cache_file
from .settings import CallSettings, HasMessages

DEFAULT_OUTPUT_TOKENS = 256

#: $ per input token and $ per output token.
Prices = tuple[float, float]


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


def usage_of(response: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` a response reports, or None."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def price_tokens(
    model: str, prompt_tokens: int, completion_tokens: int, prices: Prices | None = None
) -> float | None:
    """$ of a call's tokens: the given ``prices`` per token, else LiteLLM's price map (None: unknown)."""
    if prices is not None:
        return prices[0] * prompt_tokens + prices[1] * completion_tokens
    return litellm_price(model, prompt_tokens, completion_tokens)


def call_cost(
    response: Any, model: str, fixed: float | None = None, prices: Prices | None = None
) -> float | None:
    """$ of one call: ``fixed`` if given, else its usage at ``prices``, else LiteLLM's price of it."""
    if fixed is not None:
        return fixed
    if prices is not None:
        usage = usage_of(response)
        return None if usage is None else price_tokens(model, *usage, prices)
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
        """One line: prompts to call, tokens and $ (as ``--dry-run`` prints it)."""
        to_call = self.n_items - self.n_cached
        money = "$ unknown" if self.dollars is None else f"≈ ${self.dollars:.4f}"
        return (
            f"{self.n_items} prompts, {self.n_cached} already cached, {to_call} to call: "
            f"≈ {self.prompt_tokens:,} prompt + ≤ {self.completion_tokens:,} completion tokens, "
            f"{money} ({self.price_source})"
        )


def prompt_tokens(settings: CallSettings, messages: Sequence[Any]) -> int:
    """Prompt tokens of one call, counted with LiteLLM's tokenizer for the model."""
    litellm = require("litellm", "litellm")
    return int(litellm.token_counter(model=settings.model, messages=list(messages)))


def output_tokens_bound(settings: CallSettings, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> int:
    """Completion tokens a call is assumed to take: its ``max_tokens`` if set, else ``output_tokens``."""
    return int(settings.params.get("max_tokens") or output_tokens)


def estimate(
    items: Sequence[HasMessages],
    settings: CallSettings,
    cost: float | None = None,
    cache_dir: str | Path | None = None,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    prices: Prices | None = None,
) -> Estimate:
    """Count the tokens and $ of the calls a run would make (cached answers are free)."""
    cached, _ = ResponseCache.read(cache_file(settings.model, cache_dir))
    todo = [item for item in items if settings.cache_key(item) not in cached]
    per_call_out = output_tokens_bound(settings, output_tokens)
    n_prompt = sum(prompt_tokens(settings, i.messages()) for i in todo)
    completion_tokens = per_call_out * len(todo)
    if cost is not None:
        dollars: float | None = cost * len(todo)
        source = f"--cost ${cost:g} per request"
    else:
        dollars = price_tokens(settings.model, n_prompt, completion_tokens, prices)
        where = "the deployment's prices" if prices is not None else "LiteLLM prices"
        source = (
            f"{where}, ≤ {per_call_out} completion tokens a call"
            if dollars is not None
            else f"LiteLLM has no price for {settings.model!r}; pass --cost"
        )
    return Estimate(len(items), len(items) - len(todo), n_prompt, completion_tokens, dollars, source)


class Budget:
    """A $ limit shared by concurrent calls: a call reserves its bound first, and settles after.

    A call is made only if what was spent, plus what calls in flight reserved, plus
    this call's bound stays within ``limit``; so the limit is never exceeded as long
    as each bound holds (it does when the call sets ``max_tokens``). ``limit=None``
    only counts.
    """

    def __init__(self, limit: float | None = None):
        self.limit = limit
        self.spent = 0.0
        self.reserved = 0.0
        self.refused = 0

    def reserve(self, bound: float) -> bool:
        """Reserve ``bound`` $ for one call; False (and nothing reserved) if it could exceed the limit."""
        if self.limit is not None and self.spent + self.reserved + bound > self.limit:
            self.refused += 1
            return False
        self.reserved += bound
        return True

    def settle(self, bound: float, cost: float | None) -> None:
        """Release a reservation and count what the call cost (``None``: nothing known, the bound)."""
        self.reserved = max(0.0, self.reserved - bound)
        self.spent += bound if cost is None else cost

    @property
    def exhausted(self) -> bool:
        return self.refused > 0


def traffic_cost(costs: np.ndarray, clusters: np.ndarray, shares: np.ndarray) -> float:
    """$ per request of a model on the log's traffic: its mean $ per cluster, weighted by the cluster's share.

    The sample takes up to ``per_cluster`` prompts from every cluster whatever its
    share, so a plain mean would weigh a small cluster of long prompts like a large
    one. Clusters where the model has no priced answer are left out of the weights.
    NaN if it has none at all.
    """
    total = weight = 0.0
    for k, share in enumerate(shares):
        values = costs[(clusters == k) & np.isfinite(costs)]
        if len(values) and share > 0:
            total += share * float(values.mean())
            weight += share
    return total / weight if weight else math.nan


def traffic_price(chars: np.ndarray, costs: np.ndarray, clusters: np.ndarray, shares: np.ndarray) -> Price:
    """A model's :class:`~uniroute.Price` on the log's traffic: :func:`traffic_cost` at the traffic's
    mean prompt length (weighted the same way), moving with length as its sampled answers' $ do."""
    known = np.isfinite(costs)
    fitted = fit_price(chars, costs)
    mean_chars = traffic_cost(np.where(known, chars, np.nan), clusters, shares)
    return Price(traffic_cost(costs, clusters, shares), fitted.per_char, mean_chars, fitted.max_chars)
