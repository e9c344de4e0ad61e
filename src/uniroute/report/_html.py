"""The report as one self-contained HTML page: inline CSS and SVG, no script, no external reference.

Every piece of text that comes from the user (prompts, model names, terms, paths)
goes through :func:`html.escape`; prompts are untrusted input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

from . import _format as fmt
from ._content import ReportData

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d232a;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #dde1e6}
.meta{color:#5b6470;margin:0 0 12px}.note{background:#eef4ff;border-left:4px solid #3b6fd8;padding:8px 12px}
.warn{background:#fff5e6;border-left:4px solid #d88a1b;padding:8px 12px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f0f2f5}td.l,th.l{text-align:left}
.bar{display:inline-block;height:10px;background:#3b6fd8;vertical-align:middle;margin-right:6px}
.ex{margin:2px 0;padding:4px 6px;background:#f6f7f9;font:12px/1.35 ui-monospace,monospace;
white-space:pre-wrap;word-break:break-word;text-align:left;max-height:6.9em;overflow:auto}
.terms{color:#27408b}
td.lack{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#f1d4d4 4px,#f1d4d4 8px)}
.legend{font-size:12px;color:#3a424c;margin:0 0 8px}.legend span{display:inline-block;margin-right:4px;
vertical-align:middle}.key{width:9px;height:9px;border:2.5px solid;border-radius:50%}
.dot{width:6px;height:6px;background:#8a939e;border-radius:50%}.line{width:16px;height:2px;background:#3b6fd8}
.psi small{opacity:.75}.cluster td{max-width:620px}svg text{font:11px system-ui,sans-serif}
.wide{overflow-x:auto}
"""
_EXAMPLE_CHARS = 280
_COLOURS = ("#d7301f", "#1a9850", "#7b3294", "#e08214", "#2c7fb8")
_LOW, _MID, _HIGH = (26, 152, 80), (255, 255, 191), (215, 48, 39)


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _heat(value: float, lo: float, hi: float) -> str:
    """Green (low error) through pale yellow to red (high error), scaled to the table's range."""
    t = 0.5 if hi <= lo else (value - lo) / (hi - lo)
    return _blend(_LOW, _MID, 2 * t) if t < 0.5 else _blend(_MID, _HIGH, 2 * t - 1)


def _short(text: str, limit: int = _EXAMPLE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def _tail(text: str, limit: int = _EXAMPLE_CHARS) -> str:
    """The end of a prompt (where the question usually is), cut at ``limit`` characters."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    space = cut.find(" ", 0, 40)  # start at a word, not in the middle of one
    return "… " + cut[space + 1 :].lstrip()


def _legend(data: ReportData) -> str:
    swatches = [
        f'<span class=key style="border-color:{_COLOURS[i % len(_COLOURS)]}"></span>'
        f"{escape(p.name)} (λ={fmt.lam(p.lam)})"
        for i, p in enumerate(data.points)
    ]
    swatches += ["<span class=dot></span>one model, always", "<span class=line></span>λ sweep"]
    return "<p class=legend>" + " &nbsp; ".join(swatches) + "</p>"


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        steps = (1, 2, 5) if last - first <= 4 else (1,)
        return [s * 10.0**e for e in range(first, last + 1) for s in steps if lo <= s * 10.0**e <= hi]
    span = hi - lo or 1.0
    step = 10.0 ** math.floor(math.log10(span / 5))
    step *= next((m for m in (1, 2, 5, 10) if span / (step * m) <= 6), 10)
    return [float(v) for v in np.arange(math.ceil(lo / step) * step, hi + step / 2, step)]


def frontier_svg(data: ReportData, width: int = 760, height: int = 380) -> str:
    """Expected quality against mean $ per request: the λ sweep, the operating points, each model alone."""
    left, right, top, bottom = 64, 110, 16, 46
    costs = [c for _, c, _ in data.frontier] + list(data.model_costs.values())
    qualities = [q for _, _, q in data.frontier] + list(data.model_quality.values())
    positive = [c for c in costs if c > 0]
    log = bool(positive) and max(positive) / min(positive) > 20
    x_lo = min(positive) / 1.3 if log else 0.0
    x_hi = max(costs) * (1.3 if log else 1.05) or 1.0
    q_lo, q_hi = min(qualities), max(qualities)
    pad = (q_hi - q_lo) * 0.08 or 0.05
    y_lo, y_hi = max(0.0, q_lo - pad), min(1.0, q_hi + pad)
    if y_hi <= y_lo:
        y_lo, y_hi = y_lo - 0.05, y_hi + 0.05
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(c: float) -> float:
        if log:
            c = max(c, x_lo)
            return left + plot_w * (math.log(c / x_lo) / math.log(x_hi / x_lo))
        return left + plot_w * (c - x_lo) / (x_hi - x_lo)

    def y(q: float) -> float:
        return top + plot_h * (1 - (q - y_lo) / (y_hi - y_lo))

    parts = [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="quality/cost frontier">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfcfd" stroke="#c6ccd4"/>',
    ]
    for t in _ticks(x_lo if log else 0.0, x_hi, log):
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#e6e9ee"/>'
            f'<text x="{x(t):.1f}" y="{top + plot_h + 15}" text-anchor="middle">'
            f"{escape(fmt.per_1k(t))}</text>"
        )
    for t in _ticks(y_lo, y_hi, False):
        if y_lo <= t <= y_hi:
            parts.append(
                f'<line x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#e6e9ee"/>'
                f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>'
            )
    scale = " (log scale)" if log else ""
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">'
        f"mean $ per 1,000 requests{scale}</text>"
        f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        "expected quality (1 − Φ·Ψ)</text>"
    )
    line = sorted((x(c), y(q)) for _, c, q in data.frontier)
    parts.append(
        '<polyline fill="none" stroke="#3b6fd8" stroke-width="2" points="'
        + " ".join(f"{a:.1f},{b:.1f}" for a, b in line)
        + '"/>'
    )
    for name, cost in data.model_costs.items():
        cx, cy = x(cost), y(data.model_quality[name])
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="#8a939e"><title>{escape(name)}: '
            f"{escape(fmt.per_1k(cost))} per 1k, quality {fmt.quality(data.model_quality[name])}"
            "</title></circle>"
            f'<text x="{cx + 5:.1f}" y="{cy - 4:.1f}" fill="#6b737d" font-size="9">'
            f"{escape(_short(name.split('/')[-1], 22))}</text>"
        )
    for i, p in enumerate(data.points):
        parts.append(
            f'<circle cx="{x(p.cost):.1f}" cy="{y(p.expected_quality):.1f}" r="6" fill="none" '
            f'stroke="{_COLOURS[i % len(_COLOURS)]}" stroke-width="2.5">'
            f"<title>{escape(p.name)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _points_section(data: ReportData) -> list[str]:
    measured = data.has_scores
    head = (
        "<tr><th class=l>operating point</th><th>λ</th><th>$ / 1k requests</th><th>expected quality</th>"
        + ("<th>measured quality</th>" if measured else "")
        + "<th>saved vs strongest</th></tr>"
    )
    rows = [
        f"<tr><td class=l>{escape(p.name)}</td><td>{fmt.lam(p.lam)}</td><td>{fmt.per_1k(p.cost)}</td>"
        f"<td>{fmt.quality(p.expected_quality)}</td>"
        + (f"<td>{fmt.quality(p.measured_quality)}</td>" if measured else "")
        + f"<td>{fmt.per_1k(p.saved)} ({fmt.percent(p.saved_fraction)})</td></tr>"
        for p in data.points
    ]
    strongest = (
        f"<tr><td class=l>always {escape(data.strongest)}</td><td></td>"
        f"<td>{fmt.per_1k(data.strongest_cost)}</td><td>{fmt.quality(data.strongest_quality)}</td>"
        + (f"<td>{fmt.quality(data.strongest_measured)}</td>" if measured else "")
        + "<td>—</td></tr>"
    )
    share_head = (
        "<tr><th class=l>model</th><th>$ / 1k requests</th>"
        + "".join(f"<th>{escape(p.name)}</th>" for p in data.points)
        + "</tr>"
    )
    share_rows = []
    for m in sorted(data.models, key=lambda m: -data.model_costs[m]):
        cells = "".join(
            f'<td><span class=bar style="width:{round(60 * p.shares.get(m, 0.0))}px"></span>'
            f"{fmt.percent(p.shares.get(m, 0.0))}</td>"
            for p in data.points
        )
        share_rows.append(
            f"<tr><td class=l>{escape(m)}</td><td>{fmt.per_1k(data.model_costs[m])}</td>{cells}</tr>"
        )
    measured_text = (
        " <b>Measured quality</b> is the mean score, in the validation file, of the model each "
        "validation prompt is routed to."
        if measured
        else ""
    )
    return [
        "<h2>Quality and cost</h2>",
        "<p class=note><b>Expected quality</b> is the router's own estimate, 1 − Φ(x)·Ψ(h) averaged over "
        f"the {_sample(data)}, not a measurement.{measured_text} λ trades error points per $ of cost "
        "per request: λ = 0 routes for quality alone; <i>balanced</i> is the knee of the curve (the "
        "point farthest above the straight line from cheapest to best); a budget point is the λ "
        "<code>Router.calibrate(max_cost=…)</code> finds. Savings are against always calling "
        f"<b>{escape(data.strongest)}</b>, the model with the best expected quality.</p>",
        frontier_svg(data),
        _legend(data),
        f"<table>{head}{''.join(rows)}{strongest}</table>",
        "<h3>Share of traffic each model gets</h3>",
        f"<table>{share_head}{''.join(share_rows)}</table>",
    ]


def _sample(data: ReportData) -> str:
    if data.share_source == "map":
        return "clusters weighted by their share of the training prompts (no traffic sample given)"
    what = "given prompts" if data.share_source == "prompts" else "validation prompts"
    return f"{data.n_traffic} {what}"


def _cluster_section(data: ReportData) -> list[str]:
    rows = []
    for c in data.clusters:
        examples = "".join(f"<div class=ex>{escape(_tail(e))}</div>" for e in c.examples)
        terms = escape(", ".join(c.terms)) if c.terms else "<i>—</i>"
        rows.append(
            f"<tr class=cluster><td>{c.index}</td><td><span class=bar "
            f'style="width:{round(80 * c.share)}px"></span>{fmt.percent(c.share)}</td>'
            f"<td>{c.n_prompts}</td><td class=l><span class=terms>{terms}</span>"
            f"{examples or '<div><i>no prompt of the sample falls here</i></div>'}</td></tr>"
        )
    source = {
        "prompts": "the given prompts",
        "validation": "the validation prompts",
        "map": "the cluster map's training prompts",
    }[data.share_source]
    return [
        "<h2>Clusters</h2>",
        f"<p>Share of traffic: mean Φ over {escape(source)}; <i>n</i>: prompts whose most likely "
        "cluster it is. Terms: highest TF-IDF lift over the nearest other cluster. Examples: the end "
        "(the part the router reads) of the prompts nearest the cluster's centre (or with the "
        "highest Φ for maps without centres).</p>",
        *(
            [
                f"<p>The map averages {len(data.maps)} maps: {escape(data.map_blocks())}. Each prompt "
                "falls in one cluster of each map; share and <i>n</i> are within the cluster's own map.</p>"
            ]
            if data.maps
            else []
        ),
        "<table><tr><th>cluster</th><th>share</th><th>n</th><th class=l>distinctive terms and "
        f"representative prompts</th></tr>{''.join(rows)}</table>",
    ]


def _psi_section(data: ReportData) -> list[str]:
    lo, hi = float(np.min(data.psi)), float(np.max(data.psi))
    order = sorted(range(len(data.models)), key=lambda i: -data.model_costs[data.models[i]])
    grid: list[list[str]] = []  # grid[model][cluster]: one cell, models from the most to the least expensive
    for i in order:
        cells = []
        for k in range(data.n_clusters):
            value, count = float(data.psi[i, k]), float(data.counts[i, k])
            if data.lacking[i, k]:
                style, flag = 'class=lack title="no validation data"', " ⚠"
            else:
                style, flag = f'style="background:{_heat(value, lo, hi)}"', ""
            cells.append(f"<td {style}>{value:.3f}<br><small>n={count:.0f}{flag}</small></td>")
        grid.append(cells)
    models = [escape(data.models[i]).replace("/", "/<wbr>") for i in order]  # "org/<wbr>name" may wrap
    clusters = [f"c{c.index}<br><small>{escape(', '.join(c.terms[:2]))}</small>" for c in data.clusters]
    # The longer of the two lists runs down the page, so that the table fits the page's width.
    if data.n_clusters > len(order):
        corner, heads, labels = "cluster", models, clusters
        grid = [list(column) for column in zip(*grid, strict=True)]
        reading = (
            "Rows are clusters (with their top terms), columns models from the most to the least expensive."
        )
    else:
        corner, heads, labels = "model", clusters, models
        reading = (
            "Rows are models from the most to the least expensive, columns clusters (with their top terms)."
        )
    head = f"<tr><th class=l>{corner}</th>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>"
    rows = [
        f"<tr><td class=l>{label}</td>{''.join(cells)}</tr>"
        for label, cells in zip(labels, grid, strict=True)
    ]
    lacking = _lacking(data)
    warn = (
        "<p class=warn>Clusters lacking validation data (Ψ there is the model's prior, not a "
        "measurement): " + "; ".join(escape(line) for line in lacking) + "</p>"
        if lacking
        else "<p>Every model has validation data in every cluster.</p>"
    )
    return [
        "<h2>Ψ: error rate per model and cluster</h2>",
        f"<p>{reading} Each cell: the model's estimated error rate in the cluster (green = low, "
        "red = high, scaled to this table) and <i>n</i>, the results its profile holds there (soft "
        "counts of its validation results, or of the training results with <code>fit --profile</code>). "
        "Hatched cells have fewer than one.</p>",
        f"<div class=wide><table class=psi>{head}{''.join(rows)}</table></div>",
        warn,
    ]


def _lacking(data: ReportData) -> list[str]:
    """``model: clusters 1, 4`` for every model lacking data somewhere."""
    return [
        f"{m}: cluster{'s' if len(ks) > 1 else ''} {', '.join(str(k) for k in ks)}"
        for m, row in zip(data.models, data.lacking, strict=True)
        if (ks := [int(k) for k in np.flatnonzero(row)])
    ]


def render_html(data: ReportData, title: str = "uniroute report") -> str:
    """The whole page as a string."""
    meta = (
        f"{len(data.models)} models · {data.n_clusters} clusters ({escape(data.cluster_map)}) · "
        f"embedder {escape(data.embedder)} · traffic sample: {escape(_sample(data))}"
    )
    if data.validation:
        meta += f" · validation: {escape(data.validation)} ({data.n_validation} prompts)"
    notes = "".join(f"<p class=warn>{escape(n)}</p>" for n in data.notes)
    body: Sequence[str] = [
        f"<h1>{escape(title)}</h1>",
        f"<p class=meta>{meta}</p>",
        notes,
        *_points_section(data),
        *_psi_section(data),
        *_cluster_section(data),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
