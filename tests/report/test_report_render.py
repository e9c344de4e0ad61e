"""The HTML page (parses, self-contained, escaped, complete) and the markdown summary (same numbers)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from report_toys import SCRIPT

from uniroute.report import build_report, render_html, render_markdown, write_report


class _Page(HTMLParser):
    """Collects tags, attributes and visible text; records unclosed or mismatched elements."""

    VOID = frozenset({"meta", "br", "wbr", "circle", "rect", "line", "polyline", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.mismatched: list[str] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self._in_style = False
        if tag in self.VOID:
            return
        if tag in ("p", "tr", "td", "th") and self.stack and self.stack[-1] != tag:
            return
        if not self.stack or self.stack[-1] != tag:
            self.mismatched.append(tag)
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


_URL = re.compile(r"^\s*(https?:|//|ftp:|data:text/html)", re.IGNORECASE)


def assert_self_contained(page: str) -> _Page:
    """No script, no stylesheet link, no URL in src/href/url(): the page loads nothing."""
    parsed = _parse(page)
    assert not parsed.mismatched and not parsed.stack, (parsed.mismatched, parsed.stack)
    names = [tag for tag, _ in parsed.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    for tag, attrs in parsed.tags:
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key)  # no event handlers
            if key in ("src", "href", "xlink:href", "action", "srcset", "poster"):
                assert not _URL.match(value or ""), (tag, key, value)
            assert "url(" not in (value or "").replace("repeating-linear-gradient", "")
    assert "url(" not in parsed.style and "@import" not in parsed.style
    return parsed


@pytest.fixture()
def hostile(report_router, topics_data):
    """Traffic with a script prompt and a model whose name is markup."""
    prompts = [*topics_data["prompts"], f"Poetry request: write a short haiku poem {SCRIPT} about snow"]
    report_router.add_model(
        '<img src="http://x/y.png" onerror=alert(2)>', prompts[:3], [1.0, 1.0, 0.0], cost=0.5
    )
    return build_report(report_router, prompts=prompts, budget=0.003, n_examples=len(prompts))


def test_page_parses_and_is_self_contained(hostile):
    assert_self_contained(render_html(hostile))


def test_page_shows_every_model_cluster_and_point(hostile):
    text = " ".join(_parse(render_html(hostile)).text)
    for model in hostile.models:
        assert model in text  # unescaped by the parser: shown as text, not markup
    for c in hostile.clusters:
        assert f"c{c.index}" in text
        for term in c.terms:
            assert term in text
    for p in hostile.points:
        assert p.name in text
    assert "router's own estimate" in text
    assert "The map averages" not in text  # one map: no blocks to explain


def test_user_text_is_escaped(hostile):
    page = render_html(hostile)
    assert SCRIPT not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert any(SCRIPT in t for t in _parse(page).text)  # but shown to the reader as written


def test_missing_validation_data_is_flagged(hostile):
    page = render_html(hostile)
    assert page.count("class=lack") == int(hostile.lacking.sum()) > 0
    assert "mathbot: clusters" in page


def _psi_table(page: str) -> list[list[str]]:
    table = page.split("<table class=psi>", 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]


@pytest.mark.parametrize("n_models", [4, 2])
def test_psi_table_runs_the_longer_side_down_the_page(report_router, topics_data, n_models):
    for name in report_router.models[n_models:]:
        report_router.remove_model(name)
    data = build_report(report_router, prompts=topics_data["prompts"])
    rows = _psi_table(render_html(data))
    models_down = len(data.models) >= data.n_clusters  # 4 models × 3 clusters; 2 models × 3 clusters
    assert len(rows) == 1 + (len(data.models) if models_down else data.n_clusters)
    assert rows[0][0] == ("model" if models_down else "cluster")
    for r, row in enumerate(rows[1:]):
        for c, cell in enumerate(row[1:]):
            model, cluster = (r, c) if models_down else (c, r)
            name = sorted(data.models, key=lambda m: -data.model_costs[m])[model]
            i = data.models.index(name)
            assert float(cell.split("<br>")[0]) == pytest.approx(data.psi[i, cluster], abs=5e-4)
            assert name in (row[0] if models_down else rows[0][c + 1]).replace("<wbr>", "")


def test_measured_column_only_with_scores(report_router, report_dataset, topics_data):
    with_scores = render_html(build_report(report_router, validation=report_dataset))
    without = render_html(build_report(report_router, prompts=topics_data["prompts"]))
    assert "measured quality" in with_scores.lower() and "<th>measured quality</th>" not in without


def _table(markdown: str, heading: str) -> list[list[str]]:
    block = markdown.split(f"## {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in block.splitlines()[2:]]


def _money(text: str) -> float:
    return float(text.split(" ")[0].replace("$", ""))


def test_markdown_has_the_numbers_of_the_data(report_router, report_dataset):
    data = build_report(report_router, validation=report_dataset, budget=0.003)
    markdown = render_markdown(data)
    rows = _table(markdown, "Operating points")
    assert [r[0] for r in rows] == [p.name for p in data.points] + [f"always {data.strongest}"]
    for row, p in zip(rows, data.points, strict=False):
        assert float(row[1]) == pytest.approx(p.lam, rel=1e-3)
        assert _money(row[2]) == pytest.approx(1000 * p.cost, rel=1e-3)
        assert float(row[3]) == pytest.approx(p.expected_quality, abs=5e-4)
        assert float(row[4]) == pytest.approx(p.measured_quality, abs=5e-4)
        assert _money(row[5]) == pytest.approx(1000 * p.saved, rel=1e-3, abs=1e-9)
        assert float(row[5].split("(")[1].rstrip("%)")) == pytest.approx(100 * p.saved_fraction, abs=0.05)
    shares = _table(markdown, "Share of traffic per model")
    assert sorted(r[0] for r in shares) == sorted(data.models)
    for row in shares:
        for cell, p in zip(row[1:], data.points, strict=True):
            assert float(cell.rstrip("%")) == pytest.approx(100 * p.shares[row[0]], abs=0.05)
    clusters = _table(markdown, "Clusters")
    for row, c in zip(clusters, data.clusters, strict=True):
        assert (int(row[0]), int(row[2])) == (c.index, c.n_prompts)
        assert float(row[1].rstrip("%")) == pytest.approx(100 * c.share, abs=0.05)
        assert row[3] == ", ".join(c.terms[:6])


def test_markdown_escapes_user_text(hostile):
    markdown = render_markdown(hostile)
    assert SCRIPT not in markdown and "<img" not in markdown
    assert "&lt;img src=" in markdown


def test_write_report_writes_both_files(report_router, topics_data, tmp_path):
    data = build_report(report_router, prompts=topics_data["prompts"])
    paths = write_report(data, tmp_path / "out" / "report", title="Team <A>")
    assert paths["html"].read_text(encoding="utf-8") == render_html(data, "Team <A>")
    assert paths["summary"].read_text(encoding="utf-8").startswith("# Team &lt;A&gt;\n")


def test_long_prompts_show_their_end_from_a_word_start():
    from uniroute.report._html import _tail

    text = "preamble " * 100 + "Question: which gas do plants take in? Answer:"
    shown = _tail(text, 60)
    assert shown.startswith("… ") and shown.endswith("Answer:")
    assert text.endswith(shown[2:]) and text[-len(shown) + 1] == " "  # cut before a whole word
    assert _tail("short prompt", 60) == "short prompt"
