"""Gate reports: the JSON, the Markdown table, the terminal lines, and atomic writes."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gates.report import (
    REPORT_HTML,
    REPORT_JSON,
    REPORT_JUNIT,
    REPORT_MD,
    build_report,
    markdown,
    summary_lines,
    write_reports,
)
from gates.reporters import get_reporter, parse_reporters, reporter_names
from gates.reporters import markdown as markdown_module
from gates.reporters.html import html_report
from gates.reporters.junit import junit_xml
from gates.results import ChampionBaseline, GateReport, decide
from gates.verdict import GateResult
from ragate_core.errors import UsageError


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
    report = build_report("ci", PASSING, CASES, RUN_INFO).to_dict()

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
    assert build_report("ci", gates, CASES, RUN_INFO).passed is False


def test_a_profile_metric_that_reported_no_gate_fails_the_report() -> None:
    only_faithfulness = gates_of(gate("faithfulness", "min_mean", 0.5, 0.55, True))

    report = build_report("ci", only_faithfulness, CASES, RUN_INFO)

    assert report.missing == ("toxicity",)
    assert report.passed is False
    assert "reported no gate (the run fails closed): toxicity" in markdown(report)


def test_a_report_with_no_gate_fails() -> None:
    report = build_report("ci", {}, {}, {})
    assert report.passed is False
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
    assert "Failing cases, worst first" not in text


def test_summary_lines_one_per_gate_then_the_verdict() -> None:
    paths = [Path("reports/gate-report.json"), Path("reports/gate-report.md")]
    gates = gates_of(*PASSING.values(), gate("faithfulness", "min_lower_bound", 0.5, 0.3, False))

    lines = summary_lines(build_report("ci", gates, CASES, RUN_INFO), paths)
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
    assert lines[5] == ("chain: model=smollm2, prompt_version=answer-v1", None)  # what was gated
    assert lines[6] == ("flaky faithfulness: qa-2", "yellow")
    assert lines[-1] == (
        "ragate verdict: FAIL: 1 of 3 gates failed (faithfulness.min_lower_bound)"
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
            "ragate verdict: FAIL: 1 gated metrics reported nothing (toxicity)",
            "red",
        ),
    ],
)
def test_the_verdict_line(gates, run_info, verdict: str, colour: str) -> None:
    lines = summary_lines(build_report("ci", gates, {}, run_info), [])
    assert lines[-1] == (verdict, colour)
    if "reported nothing" in verdict:
        assert any(text.startswith("toxicity") and "not run" in text for text, _ in lines)


def test_write_reports_writes_every_default_file(tmp_path: Path) -> None:
    report = build_report("ci", PASSING, CASES, RUN_INFO)

    paths = write_reports(report, tmp_path / "out")

    out = tmp_path / "out"
    assert paths == [out / REPORT_JSON, out / REPORT_MD, out / REPORT_JUNIT, out / REPORT_HTML]
    assert GateReport.from_json(paths[0].read_text(encoding="utf-8")) == report
    assert json.loads(paths[0].read_text(encoding="utf-8")) == report.to_dict()
    assert paths[1].read_text(encoding="utf-8") == markdown(report)


def test_write_reports_writes_only_the_selected_reporters(tmp_path: Path) -> None:
    paths = write_reports(build_report("ci", PASSING, CASES, RUN_INFO), tmp_path, ["markdown"])
    assert paths == [tmp_path / REPORT_MD]
    assert [p.name for p in tmp_path.iterdir()] == [REPORT_MD]


def _previous_pair(directory: Path) -> dict[str, str]:
    directory.mkdir()
    (directory / REPORT_JSON).write_text('{"previous": true}\n')
    (directory / REPORT_MD).write_text("previous\n")
    return {p.name: p.read_text() for p in directory.iterdir()}


def test_a_report_that_cannot_be_serialised_leaves_no_partial_file(tmp_path: Path) -> None:
    directory = tmp_path / "reports"
    before = _previous_pair(directory)
    report = dataclasses.replace(
        build_report("ci", PASSING, CASES, RUN_INFO), stats={"cases": 2, "bad": object()}
    )

    with pytest.raises(TypeError):
        write_reports(report, directory)

    assert {p.name: p.read_text() for p in directory.iterdir()} == before  # no temp file left either


def test_a_report_that_cannot_be_rendered_keeps_the_previous_pair(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "reports"
    before = _previous_pair(directory)

    def broken(report: GateReport) -> str:
        raise KeyError("rule")

    monkeypatch.setattr(markdown_module, "markdown", broken)
    with pytest.raises(KeyError):
        write_reports(build_report("ci", PASSING, CASES, RUN_INFO), directory)

    assert {p.name: p.read_text() for p in directory.iterdir()} == before


# --- the typed report, its JSON round trip and the other reporters ----------------------


CHAMPION = ChampionBaseline("3", "run-1", {"qa-1": {"faithfulness": 0.8}, "qa-2": {"faithfulness": 0.6}})


def rich_report(**changes: Any) -> GateReport:
    """A failing report with a champion baseline, latencies, an unknown field and an unscored case."""
    cases = {k: dict(v, latency_ms=1000.0 * i, model="m1") for i, (k, v) in enumerate(CASES.items(), 1)}
    gates = gates_of(*PASSING.values(), gate("faithfulness", "min_lower_bound", 0.5, 0.3, False))
    report = build_report("ci", gates, cases, {**RUN_INFO, "champion": CHAMPION.to_dict()})
    return dataclasses.replace(report, **changes)


def test_the_report_round_trips_through_json() -> None:
    report = rich_report()

    again = GateReport.from_json(report.to_json())

    assert again == report
    assert again.champion == CHAMPION
    assert again.cases[0].extra == {"model": "m1"}  # unknown fields survive
    assert again.to_dict() == report.to_dict()


def test_the_verdict_is_decided_in_one_place() -> None:
    report = rich_report()
    assert report.passed is decide(report.gates, report.missing) is False
    assert rich_report(gates=PASSING_TUPLE).passed is True
    assert rich_report(gates=PASSING_TUPLE, missing=("toxicity",)).passed is False
    assert rich_report(gates=()).passed is False


PASSING_TUPLE = tuple(sorted(PASSING.values(), key=lambda g: (g.metric, g.rule)))


def test_a_report_whose_passed_field_contradicts_its_gates_is_refused() -> None:
    data = rich_report().to_dict()
    data["passed"] = True
    with pytest.raises(ValueError, match="says passed=True but its gates decide False"):
        GateReport.from_dict(data)
    with pytest.raises(ValueError, match="not a gate report"):
        GateReport.from_dict({"gates": []})


def test_junit_xml_has_one_testcase_per_gate_and_fails_the_failing_ones() -> None:
    root = ET.fromstring(junit_xml(rich_report(missing=("pii",))))

    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures")) == ("4", "2")
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == {
        ("ragate.faithfulness", "min_lower_bound"),
        ("ragate.faithfulness", "min_mean"),
        ("ragate.toxicity", "max_violations"),
        ("ragate.pii", "not_run"),
    }
    failure = cases[("ragate.faithfulness", "min_lower_bound")].find("failure")
    assert failure is not None and "lower bound of the 95% CI of the mean 0.3 >= 0.5" in failure.get(
        "message"
    )
    assert cases[("ragate.faithfulness", "min_mean")].find("failure") is None
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict"] == "FAIL" and props["chain.model"] == "smollm2"


def test_junit_xml_of_a_run_that_decided_nothing_fails() -> None:
    root = ET.fromstring(junit_xml(build_report("ci", {}, {}, {})))
    assert (root.get("tests"), root.get("failures")) == ("1", "1")


def test_html_report_is_self_contained_with_every_plot() -> None:
    text = html_report(rich_report())

    assert text.startswith("<!DOCTYPE html>")
    # Histograms for faithfulness and toxicity, the champion scatter, the latency plot.
    assert text.count("<svg") == 4
    assert "faithfulness: candidate vs champion" in text
    assert "threshold 0.5" in text and "p95 " in text
    assert "Failing cases (2)" in text
    assert "number not in the contexts: 90 | weakest claim" in text
    # Nothing is fetched: no script, no stylesheet link, no external image or font.
    assert "<script" not in text and "<link" not in text and "src=" not in text
    assert text.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0


def test_html_escapes_what_the_chain_said() -> None:
    cases = {
        "x": {
            "id": "x",
            "question": "<b>q</b>",
            "answer": "<script>alert(1)</script>",
            "scores": {"faithfulness": 0.1},
            "reasons": {"faithfulness": "<i>r</i>"},
        }
    }
    text = html_report(build_report("ci", PASSING, cases, RUN_INFO))
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;i&gt;r&lt;/i&gt;" in text


def test_html_without_champion_or_cases_still_renders() -> None:
    text = html_report(build_report("ci", {}, {}, {}))
    assert "No gate ran: the run fails closed." in text
    assert "<svg" not in text


def test_reporters_are_registered_by_name() -> None:
    assert {"terminal", "json", "markdown", "junit", "html"} <= set(reporter_names())
    assert get_reporter("terminal").filename is None
    assert parse_reporters("json, html") == ["json", "html"]
    with pytest.raises(UsageError, match="unknown reporter"):
        parse_reporters("json,pdf")
    with pytest.raises(UsageError, match="unknown reporter"):
        get_reporter("pdf")


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless browser installed (apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    [path] = write_reports(rich_report(), tmp_path, ["html"])
    shot = tmp_path / "shot.png"
    browser = _browser()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]

    done = subprocess.run(
        [*common, "--window-size=1200,1800", f"--screenshot={shot}", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few kB
    assert dom.stdout.count("<svg") == 4
    assert "Failing cases (2)" in dom.stdout


def test_a_run_that_stopped_says_why_in_every_report() -> None:
    report = build_report("ci", {}, {}, {"stopped": "interrupted (KeyboardInterrupt)"})

    assert report.passed is False
    assert GateReport.from_json(report.to_json()).stopped == "interrupted (KeyboardInterrupt)"
    why = "stopped before a verdict: interrupted (KeyboardInterrupt)"
    assert why in markdown(report)
    assert why in html_report(report)
    assert why in junit_xml(report)
    assert any(why in text for text, _ in summary_lines(report))
