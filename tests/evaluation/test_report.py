"""Markdown summaries of evaluation results."""

from __future__ import annotations

from uniroute.evaluation import report


def test_pool_table_shows_an_undefined_v_b_as_a_dash() -> None:
    row = {"mu_o": 0.0, "mu_o_std": 0.0, "v_b": None, "e_p": 1.585, "share_entropy": 1.0986}
    table = report.pool_table({"pool_sizes": {"3": {"oracle": row}}})
    assert "| oracle | 0.000 / — / 1.58 |" in table
