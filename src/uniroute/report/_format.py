"""Number formats shared by the HTML page and the markdown summary, so both show the same figures."""

from __future__ import annotations

import math


def money(value: float) -> str:
    """$ with four significant digits: ``$0.001234``, ``$12.35``."""
    if value == 0:
        return "$0"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):.4g}" if abs(value) >= 1e-4 else f"{sign}${abs(value):.3e}"


def per_1k(value: float) -> str:
    """$ per 1,000 requests, from $ per request."""
    return money(1000.0 * value)


def quality(value: float | None) -> str:
    """A share correct in [0, 1] with three decimals; ``n/a`` when unknown."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def percent(value: float) -> str:
    return f"{100.0 * value:.1f}%"


def lam(value: float) -> str:
    return f"{value:.4g}"
