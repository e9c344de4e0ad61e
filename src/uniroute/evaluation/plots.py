"""Figures of evaluation results; the only module that imports matplotlib (Agg backend)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.files import atomic_write_bytes

_STYLE = {"oracle": ":", "random": "--", "best-single": "--", "zerorouter": "-."}


def _pyplot() -> Any:
    from .._optional import require

    require("matplotlib", "eval").use("Agg")
    return require("matplotlib.pyplot", "eval")


def deferral_plot(result: Mapping[str, Any], path: str | Path, title: str = "Deferral curves") -> Path:
    """Quality against mean cost (normalised by the most expensive model, log scale) for every router.

    Costs of pool models often span two or three orders of magnitude, so the cost
    axis is logarithmic; the legend sits outside the axes so it never hides a curve.
    When the curves are one trial of several (``result["curves_shown"]``, unseen
    protocol), the title names that trial and its pool.
    """
    plt = _pyplot()
    shown = result.get("curves_shown")
    if shown:
        of = f" of {result['trials']}" if result.get("trials") else ""
        title = f"{title}\ntrial {shown['trial']}{of} shown, pool: {', '.join(map(str, shown['pool']))}"
    top = max(m["cost"] for m in result["models"].values())
    positive = [c / top for curve in result["curves"].values() for c in curve["costs"] if c > 0]
    floor = min(positive, default=1e-3) / 2
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for name, curve in result["curves"].items():
        xs = [max(c / top, floor) for c in curve["costs"]]
        pairs = sorted(zip(xs, curve["qualities"], strict=True))
        marker = "o" if len(pairs) == 1 else None
        ax.plot(*zip(*pairs, strict=True), _STYLE.get(name, "-"), marker=marker, label=name, linewidth=1.4)
    for model, info in result["models"].items():
        x = max(info["cost"] / top, floor)
        ax.scatter(x, info["quality"], s=12, color="grey", zorder=3)
        ax.annotate(model.split("/")[-1][:18], (x, info["quality"]), fontsize=6, color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per request / cost of the most expensive model (log scale)")
    ax.set_ylabel("mean quality")
    ax.set_xlim(right=1.3)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return _save(fig, plt, path)


def scaling_plot(result: Mapping[str, Any], path: str | Path, title: str = "Model-level scaling") -> Path:
    """RouterEval-style μ_o against the number of candidate models, per router and r_o(p)."""
    plt = _pyplot()
    sizes = sorted(int(s) for s in result["scaling"])
    names = list(result["scaling"][str(sizes[0])])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name in names:
        ys = [result["scaling"][str(s)][name]["mu_o"] for s in sizes]
        style = ":" if name.startswith("r_o(") else "-"
        ax.plot(sizes, ys, style, marker=".", label=name, linewidth=1.2)
    ax.set_xlabel("number of candidate models")
    ax.set_ylabel("μ_o (mean quality at λ = 0)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    """Write the figure to ``path`` atomically: a run that dies meanwhile leaves the last run's plot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    image = io.BytesIO()
    fmt = path.suffix.lstrip(".") or "png"
    fig.savefig(image, format=fmt, dpi=110, bbox_inches="tight")  # keeps the legend placed outside the axes
    plt.close(fig)
    atomic_write_bytes(path, image.getvalue())
    return path
