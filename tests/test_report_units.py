"""The cost metric's currency beside the figures in every report table."""

from __future__ import annotations

from pathlib import Path

from gates.profile import GateProfile
from gates.report import build_report, markdown, summary_lines
from gates.reporters import metric_units, with_unit
from gates.reporters.html import html_report
from gates.results import GateReport
from gates.verdict import GateResult


def _gate(metric: str, rule: str, threshold: float, observed: float | None) -> GateResult:
    return GateResult(metric, rule, threshold, observed, None, 4, 0, True)


def _report() -> GateReport:
    gates = [
        _gate("cost", "max_mean", 0.002, 0.00125),
        _gate("cost", "max_total", 0.5, 0.005),
        _gate("cost", "max_unscored_share", 0.0, 0.0),
        _gate("latency", "max_p95", 10000, 850),
    ]
    run_info = {
        "thresholds": {"cost": 0.01, "latency": 20000},
        "directions": {"cost": "lower_is_better", "latency": "lower_is_better"},
        "stats": {"cases": 4, "units": {"cost": "EUR"}},
    }
    return build_report("staging", {g.name: g for g in gates}, {}, run_info)


def test_the_profile_s_currency_is_the_cost_unit(tmp_path: Path) -> None:
    profile = GateProfile.model_validate(
        {
            "env": "staging",
            "datasets": [{"name": "golden", "path": "qa.jsonl"}],
            "pricing": {"currency": "EUR", "prompt_per_1k": 0.1, "completion_per_1k": 0.2},
            "metrics": {"cost": {}, "latency": {}, "toxicity": {}},
        }
    )
    assert metric_units(profile) == {"cost": "EUR"}  # latency's ms is fixed, not shown


def test_terminal_markdown_and_html_show_the_currency_beside_cost_figures() -> None:
    report = _report()
    lines = [text for text, _ in summary_lines(report)]
    mean = next(line for line in lines if line.startswith("cost.max_mean"))
    assert "0.002 EUR" in mean and "0.00125 EUR" in mean
    share = next(line for line in lines if line.startswith("cost.max_unscored_share"))
    assert "EUR" not in share  # a share of cases has no currency
    assert "ms" not in next(line for line in lines if line.startswith("latency.max_p95"))

    md = markdown(report)
    assert "| 0.002 EUR | 0.00125 EUR |" in md and "| 0.5 EUR | 0.005 EUR |" in md
    assert "| 0 | 0 |" in md  # max_unscored_share

    page = html_report(report)
    assert '<td class="num">0.002 EUR</td><td class="num">0.00125 EUR</td>' in page


def test_the_units_survive_the_json_round_trip_and_old_reports_show_none() -> None:
    report = GateReport.from_json(_report().to_json())
    assert with_unit(report, "cost", "max_mean", "0.1") == "0.1 EUR"
    old = build_report("ci", {}, {}, {"stats": {"cases": 1}})
    assert with_unit(old, "cost", "max_mean", "0.1") == "0.1"
