"""Write a report directory: ``report.html`` and ``summary.md``."""

from __future__ import annotations

from pathlib import Path

from ..engine.files import atomic_write_bytes
from ._content import ReportData
from ._html import render_html
from ._markdown import render_markdown

HTML_NAME = "report.html"
SUMMARY_NAME = "summary.md"


def write_report(data: ReportData, out: str | Path, title: str = "uniroute report") -> dict[str, Path]:
    """Render ``data`` into directory ``out`` (created if needed); returns the paths written.

    Keys: ``"html"`` (``report.html``) and ``"summary"`` (``summary.md``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / HTML_NAME, "summary": out / SUMMARY_NAME}
    atomic_write_bytes(paths["html"], render_html(data, title).encode("utf-8"))
    atomic_write_bytes(paths["summary"], render_markdown(data, title).encode("utf-8"))
    return paths
