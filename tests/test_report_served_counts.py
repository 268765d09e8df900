"""The Markdown and HTML reports show the served-model calls that were retried or failed
(``stats.served_retries`` / ``stats.served_failures``), as the terminal and the JSON do,
and say nothing about them when there were none."""

from __future__ import annotations

from typing import Any

import pytest

from gates.reporters.html import html_report
from gates.reporters.markdown import markdown
from gates.results import GateReport
from gates.verdict import GateResult

GATE = GateResult("faithfulness", "min_mean", 0.8, 0.9, None, 3, 1, True)


def report(**stats: Any) -> GateReport:
    return GateReport(env="ci", gates=(GATE,), cases=(), stats={"cases": 4, **stats})


@pytest.mark.parametrize(
    ("retries", "failures", "expected"),
    [
        (2, 1, "Served-model calls: 2 retries, 1 failed after retrying (those cases are unscored)."),
        (1, 0, "Served-model calls: 1 retry, 0 failed after retrying (those cases are unscored)."),
        (0, 3, "Served-model calls: 0 retries, 3 failed after retrying (those cases are unscored)."),
    ],
)
def test_non_zero_counts_are_shown_in_markdown_and_html(retries: int, failures: int, expected: str) -> None:
    shown = report(served_retries=retries, served_failures=failures)
    assert expected in markdown(shown)
    page = html_report(shown)
    assert expected in page
    # Failed calls left cases unscored: shown as a failure; retries alone are muted.
    assert f"<p class='{'fail' if failures else 'muted'}'>{expected}</p>" in page


@pytest.mark.parametrize("stats", [{"served_retries": 0, "served_failures": 0}, {}])
def test_no_line_without_retries_or_failures(stats: dict[str, int]) -> None:
    shown = report(**stats)
    assert "Served-model calls" not in markdown(shown)
    assert "Served-model calls" not in html_report(shown)


def test_counts_survive_the_json_round_trip_into_both_reports() -> None:
    again = GateReport.from_json(report(served_retries=4, served_failures=2).to_json())
    assert "4 retries, 2 failed" in markdown(again)
    assert "4 retries, 2 failed" in html_report(again)
