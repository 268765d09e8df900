"""Gate reports: the JSON, the Markdown table, the terminal lines, and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gates import report as report_module
from gates.report import REPORT_JSON, REPORT_MD, build_report, markdown, summary_lines, write_reports
from gates.verdict import GateResult


def gate(
    metric: str, rule: str, threshold: float, observed: float | None, passed: bool, **kw: Any
) -> GateResult:
    return GateResult(
        metric,
        rule,
        threshold,
        observed,
        kw.get("interval"),
        kw.get("n_scored", 3),
        kw.get("n_unscored", 0),
        passed,
        kw.get("note", ""),
    )


def gates_of(*results: GateResult) -> dict[str, GateResult]:
    return {g.name: g for g in results}


CASES = {
    "qa-2": {
        "id": "qa-2",
        "question": "How long is the trial?",
        "answer": "Ninety days.",
        "scores": {"faithfulness": 0.2, "toxicity": 0.01},
        "reasons": {"faithfulness": "number not in the contexts: 90 | weakest claim", "toxicity": "clean"},
    },
    "qa-1": {
        "id": "qa-1",
        "question": "How much is Pro?",
        "answer": "$29.",
        "scores": {"faithfulness": 0.9, "toxicity": None},
        "reasons": {"faithfulness": "supported", "toxicity": "error: model missing"},
    },
}
RUN_INFO = {
    "env": "ci",
    "profile": "gates/profiles/ci.yaml",
    "profile_sha256": "abc123",
    "chain_version": {"model": "smollm2", "prompt_version": "answer-v1"},
    "thresholds": {"faithfulness": 0.5, "toxicity": 0.5},
    "directions": {"faithfulness": "higher_is_better", "toxicity": "lower_is_better"},
    "stats": {
        "cases": 2,
        "generated": 1,
        "generation_cache_hits": 1,
        "judgments": 4,
        "judgment_cache_hits": 0,
    },
    "flaky": {"faithfulness": ["qa-2"]},
}
PASSING = gates_of(
    gate("faithfulness", "min_mean", 0.5, 0.55, True, interval=(0.2, 0.9)),
    gate("toxicity", "max_violations", 0, 0.0, True),
)


def test_build_report_has_every_field_and_orders_gates_and_cases() -> None:
    report = build_report("ci", PASSING, CASES, RUN_INFO)

    assert report["passed"] is True
    assert report["missing"] == []
    assert report["env"] == "ci"
    assert report["profile"] == "gates/profiles/ci.yaml"
    assert report["profile_sha256"] == "abc123"
    assert report["chain_version"] == RUN_INFO["chain_version"]
    assert report["thresholds"] == RUN_INFO["thresholds"]
    assert report["stats"]["judgments"] == 4
    assert report["flaky"] == {"faithfulness": ["qa-2"]}
    assert report["created"].endswith("+00:00")
    assert [g["name"] for g in report["gates"]] == ["faithfulness.min_mean", "toxicity.max_violations"]
    assert report["gates"][0]["interval"] == [0.2, 0.9]
    assert [c["id"] for c in report["cases"]] == ["qa-1", "qa-2"]
    json.dumps(report)  # all of it serialisable


def test_a_failing_gate_fails_the_report() -> None:
    gates = gates_of(*PASSING.values(), gate("faithfulness", "min_lower_bound", 0.5, 0.3, False))
    assert build_report("ci", gates, CASES, RUN_INFO)["passed"] is False


def test_a_profile_metric_that_reported_no_gate_fails_the_report() -> None:
    only_faithfulness = gates_of(gate("faithfulness", "min_mean", 0.5, 0.55, True))

    report = build_report("ci", only_faithfulness, CASES, RUN_INFO)

    assert report["missing"] == ["toxicity"]
    assert report["passed"] is False
    assert "reported no gate (the run fails closed): toxicity" in markdown(report)


def test_a_report_with_no_gate_fails() -> None:
    report = build_report("ci", {}, {}, {})
    assert report["passed"] is False
    assert "No gate ran: the run fails closed." in markdown(report)


def test_markdown_table_failing_cases_and_chain_version() -> None:
    gates = gates_of(*PASSING.values(), gate("faithfulness", "min_lower_bound", 0.5, 0.3, False))
    text = markdown(build_report("staging", gates, CASES, RUN_INFO))
    lines = text.splitlines()

    assert lines[0] == "## ❌ ragate gates: FAIL (env `staging`)"
    assert "2 of 3 gates passed." in lines
    assert "| gate | rule | threshold | observed | 95% CI | scored | unscored | result |" in lines
    assert "| faithfulness | mean >= | 0.5 | 0.55 | [0.2, 0.9] | 3 | 0 | PASS |" in lines
    assert (
        "| faithfulness | lower bound of the 95% CI of the mean >= | 0.5 | 0.3 |  | 3 | 0 | **FAIL** |"
        in lines
    )
    # Failing cases, in the metric's direction; a "|" in a reason must not break the table.
    assert "| qa-2 | faithfulness | 0.2 | number not in the contexts: 90 / weakest claim |" in lines
    assert "| qa-1 | toxicity | n/a | error: model missing |" in lines
    assert not any(line.startswith("| qa-1 | faithfulness") for line in lines)
    assert not any(line.startswith("| qa-2 | toxicity") for line in lines)
    assert lines[-1] == "Chain version: model `smollm2`, prompt_version `answer-v1`"


def test_markdown_of_a_passing_report() -> None:
    text = markdown(build_report("ci", PASSING, {}, RUN_INFO))
    assert text.startswith("## ✅ ragate gates: PASS (env `ci`)\n")
    assert "2 of 2 gates passed." in text
    assert "Lowest-scoring cases" not in text


def test_summary_lines_one_per_gate_then_the_verdict() -> None:
    paths = [Path("reports/gate-report.json"), Path("reports/gate-report.md")]
    gates = gates_of(*PASSING.values(), gate("faithfulness", "min_lower_bound", 0.5, 0.3, False))

    lines = summary_lines(gates, RUN_INFO, paths)
    texts = [text for text, _ in lines]

    assert texts[0].split() == [
        "gate",
        "rule",
        "threshold",
        "observed",
        "95%",
        "CI",
        "scored",
        "unsc.",
        "result",
    ]
    assert texts[1].split() == ["faithfulness.min_lower_bound", ">=", "0.5", "0.3", "3", "0", "FAIL"]
    assert texts[2].split() == [
        "faithfulness.min_mean",
        ">=",
        "0.5",
        "0.55",
        "[0.2,",
        "0.9]",
        "3",
        "0",
        "PASS",
    ]
    assert texts[3].split()[-1] == "PASS"
    assert [colour for _, colour in lines[1:4]] == ["red", "green", "green"]
    assert "cases 2: generated 1 (cached 1), judged 4 (cached 0)" in texts[4]
    assert lines[5] == ("flaky faithfulness: qa-2", "yellow")
    assert lines[-1] == (
        "ragate verdict: FAIL: 1 of 3 gates failed"
        " (reports: reports/gate-report.json, reports/gate-report.md)",
        "red",
    )


@pytest.mark.parametrize(
    ("gates", "run_info", "verdict", "colour"),
    [
        (PASSING, RUN_INFO, "ragate verdict: PASS: all 2 gates passed", "green"),
        ({}, {}, "ragate verdict: FAIL: no gate ran, nothing was decided", "red"),
        (
            gates_of(gate("faithfulness", "min_mean", 0.5, 0.9, True)),
            RUN_INFO,
            "ragate verdict: FAIL: 1 gated metrics reported nothing",
            "red",
        ),
    ],
)
def test_the_verdict_line(gates, run_info, verdict: str, colour: str) -> None:
    lines = summary_lines(gates, run_info, [])
    assert lines[-1] == (verdict, colour)
    if verdict.endswith("reported nothing"):
        assert any(text.startswith("toxicity") and "not run" in text for text, _ in lines)


def test_write_reports_writes_both_files(tmp_path: Path) -> None:
    report = build_report("ci", PASSING, CASES, RUN_INFO)

    paths = write_reports(report, tmp_path / "out")

    assert paths == [tmp_path / "out" / REPORT_JSON, tmp_path / "out" / REPORT_MD]
    assert json.loads(paths[0].read_text(encoding="utf-8")) == report
    assert paths[1].read_text(encoding="utf-8") == markdown(report)


def _previous_pair(directory: Path) -> dict[str, str]:
    directory.mkdir()
    (directory / REPORT_JSON).write_text('{"previous": true}\n')
    (directory / REPORT_MD).write_text("previous\n")
    return {p.name: p.read_text() for p in directory.iterdir()}


def test_a_report_that_cannot_be_serialised_leaves_no_partial_file(tmp_path: Path) -> None:
    directory = tmp_path / "reports"
    before = _previous_pair(directory)
    report = build_report("ci", PASSING, CASES, RUN_INFO)
    report["stats"] = {"cases": 2, "bad": object()}

    with pytest.raises(TypeError):
        write_reports(report, directory)

    assert {p.name: p.read_text() for p in directory.iterdir()} == before  # no temp file left either


def test_a_report_that_cannot_be_rendered_keeps_the_previous_pair(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "reports"
    before = _previous_pair(directory)

    def broken(report: dict[str, Any]) -> str:
        raise KeyError("rule")

    monkeypatch.setattr(report_module, "markdown", broken)
    with pytest.raises(KeyError):
        write_reports(build_report("ci", PASSING, CASES, RUN_INFO), directory)

    assert {p.name: p.read_text() for p in directory.iterdir()} == before
