"""Figures of evaluation results; the only module that imports matplotlib (Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

_STYLE = {"oracle": ":", "random": "--", "best-single": "--", "zerorouter": "-."}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def deferral_plot(result: Mapping[str, Any], path: str | Path, title: str = "Deferral curves") -> Path:
    """Quality against mean cost (normalised by the most expensive model) for every router."""
    plt = _pyplot()
    top = max(m["cost"] for m in result["models"].values())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in result["curves"].items():
        xs = [c / top for c in curve["costs"]]
        pairs = sorted(zip(xs, curve["qualities"], strict=True))
        marker = "o" if len(pairs) == 1 else None
        ax.plot(*zip(*pairs, strict=True), _STYLE.get(name, "-"), marker=marker, label=name, linewidth=1.4)
    for model, info in result["models"].items():
        ax.scatter(info["cost"] / top, info["quality"], s=12, color="grey", zorder=3)
        ax.annotate(
            model.split("/")[-1][:18], (info["cost"] / top, info["quality"]), fontsize=6, color="grey"
        )
    ax.set_xlabel("mean cost per request / cost of the most expensive model")
    ax.set_ylabel("mean quality")
    ax.set_xlim(0, 1.05)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, plt, path)


def scaling_plot(result: Mapping[str, Any], path: str | Path, title: str = "Model-level scaling") -> Path:
    """RouterEval-style μ_o against the number of candidate models, per router and r_o(p)."""
    plt = _pyplot()
    sizes = sorted(int(s) for s in result["scaling"])
    names = list(result["scaling"][str(sizes[0])])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        ys = [result["scaling"][str(s)][name]["mu_o"] for s in sizes]
        style = ":" if name.startswith("r_o(") else "-"
        ax.plot(sizes, ys, style, marker=".", label=name, linewidth=1.2)
    ax.set_xlabel("number of candidate models")
    ax.set_ylabel("μ_o (mean quality at λ = 0)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
