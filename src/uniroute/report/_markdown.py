"""The report's markdown summary: operating points, traffic shares, clusters and missing data.

User text is HTML-escaped (markdown renderers pass HTML through) and table cells
have their pipes and line breaks neutralised.
"""

from __future__ import annotations

from html import escape

from . import _format as fmt
from ._content import ReportData
from ._html import _lacking, _sample, _tail

_TERMS_IN_SUMMARY = 6
_EXAMPLE_CHARS = 200


def _cell(text: str) -> str:
    return escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def render_markdown(data: ReportData, title: str = "uniroute report") -> str:
    """The summary as markdown text (same figures as the HTML page)."""
    measured = data.has_scores
    lines = [
        f"# {_cell(title)}",
        "",
        f"{len(data.models)} models, {data.n_clusters} clusters ({_cell(data.cluster_map)}), "
        f"embedder `{_cell(data.embedder)}`; traffic sample: {_cell(_sample(data))}.",
        "",
        "Expected quality is the router's own estimate (1 − Φ·Ψ), not a measurement"
        + ("; measured quality is the validation file's score of the chosen model." if measured else "."),
        "",
        "## Operating points",
        "",
        "| point | λ | $ / 1k requests | expected quality | "
        + ("measured quality | " if measured else "")
        + "saved vs strongest |",
        "|---|---:|---:|---:|" + ("---:|" if measured else "") + "---:|",
    ]
    for p in data.points:
        lines.append(
            f"| {_cell(p.name)} | {fmt.lam(p.lam)} | {fmt.per_1k(p.cost)} | "
            f"{fmt.quality(p.expected_quality)} | "
            + (f"{fmt.quality(p.measured_quality)} | " if measured else "")
            + f"{fmt.per_1k(p.saved)} ({fmt.percent(p.saved_fraction)}) |"
        )
    lines.append(
        f"| always {_cell(data.strongest)} |  | {fmt.per_1k(data.strongest_cost)} | "
        f"{fmt.quality(data.strongest_quality)} | "
        + (f"{fmt.quality(data.strongest_measured)} | " if measured else "")
        + "— |"
    )
    lines += [
        "",
        "## Share of traffic per model",
        "",
        "| model | " + " | ".join(_cell(p.name) for p in data.points) + " |",
        "|---|" + "---:|" * len(data.points),
    ]
    for m in sorted(data.models, key=lambda m: -data.model_costs[m]):
        lines.append(
            f"| {_cell(m)} | " + " | ".join(fmt.percent(p.shares.get(m, 0.0)) for p in data.points) + " |"
        )
    lines += [
        "",
        "## Clusters",
        "",
        *(
            [
                f"The map averages {len(data.maps)} maps: {data.map_blocks()}. Each prompt falls in one "
                "cluster of each map; share and n are within the cluster's own map.",
                "",
            ]
            if data.maps
            else []
        ),
        "| cluster | share | n | distinctive terms | example |",
        "|---:|---:|---:|---|---|",
    ]
    for c in data.clusters:
        terms = ", ".join(c.terms[:_TERMS_IN_SUMMARY])
        example = _tail(c.examples[0], _EXAMPLE_CHARS) if c.examples else ""
        lines.append(
            f"| {c.index} | {fmt.percent(c.share)} | {c.n_prompts} | {_cell(terms)} | {_cell(example)} |"
        )
    lacking = _lacking(data)
    lines += ["", "## Validation data", ""]
    lines += (
        ["Clusters lacking validation data (Ψ there is a prior, not a measurement):", ""]
        + [f"- {_cell(line)}" for line in lacking]
        if lacking
        else ["Every model has validation data in every cluster."]
    )
    lines += [f"\nNote: {_cell(n)}" for n in data.notes]
    return "\n".join(lines) + "\n"
