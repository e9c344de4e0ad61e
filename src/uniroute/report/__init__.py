"""The router report: what each cluster is, Ψ per model and cluster, and the quality/cost frontier.

:func:`build_report` computes the figures (a :class:`ReportData`);
:func:`render_html` and :func:`render_markdown` render them, and
:func:`write_report` writes ``report.html`` (one self-contained page) and
``summary.md`` into a directory. ``uniroute report STATE`` runs all three.

Importing this package is cheap: each public name is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from ._content import (
        ClusterInfo,
        OperatingPoint,
        ReportData,
        build_report,
        read_prompts,
        read_validation,
    )
    from ._html import render_html
    from ._markdown import render_markdown
    from ._write import write_report

_WHERE = {
    "ClusterInfo": "._content",
    "OperatingPoint": "._content",
    "ReportData": "._content",
    "build_report": "._content",
    "read_prompts": "._content",
    "read_validation": "._content",
    "render_html": "._html",
    "render_markdown": "._markdown",
    "write_report": "._write",
}

__all__ = [
    "ClusterInfo",
    "OperatingPoint",
    "ReportData",
    "build_report",
    "read_prompts",
    "read_validation",
    "render_html",
    "render_markdown",
    "write_report",
]


__getattr__, __dir__ = attach(__name__, _WHERE)
