"""gate-report.json written piece by piece: the same text as the whole report's dump, and
write_reports still moves no file into place until every reporter has finished."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import pytest

from gates.report import REPORT_JSON, REPORT_MD, build_report, write_reports
from gates.reporters import _REGISTRY, register_reporter
from gates.results import ChampionBaseline, GateReport, GateResult


def _whole(report: GateReport) -> str:
    """What gate-report.json held before it was streamed: one dump of the whole dict."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _report(cases: dict[str, dict], **run_info) -> GateReport:
    gate = GateResult("faithfulness", "min_mean", 0.7, 0.8, (0.7, 0.9), 2, 1, True, "note")
    return build_report("ci", [gate], cases, {"thresholds": {"faithfulness": 0.5}, **run_info})


CASES = {
    "b": {
        "id": "b",
        "question": 'Où est le «café»?\nSecond line\ttab "quoted" \\ back',
        "answer": None,
        "tags": ["x", "y"],
        "sources": None,
        "error": "generation failed: <PERSON>",
        "scores": {"faithfulness": None},
        "reasons": {"faithfulness": "no answer"},
    },
    "a": {
        "id": "a",
        "question": "How long is the trial? 😀",
        "answer": "Ninety days.",
        "sources": ["pricing", "faq"],
        "latency_ms": 12.5,
        "blocked": False,
        "scores": {"faithfulness": 0.25, "latency": float("nan")},
        "reasons": {"faithfulness": "weakest claim '90'"},
        # a field this version does not know: kept as it came
        "trace": {"nested": [1, {"deep": []}], "empty": {}},
    },
}


@pytest.mark.parametrize(
    "report",
    [
        _report({}),
        _report({"a": CASES["a"]}),
        _report(CASES, stats={"cases": 2, "units": {"cost": "EUR"}}, flaky={"faithfulness": ["a"]}),
        _report(
            CASES,
            champion=ChampionBaseline("3", "run-1", {"a": {"faithfulness": 0.9}}),
            stopped="interrupted",
        ),
        build_report("ci", [], {}, {}),
    ],
    ids=["no-cases", "one-case", "two-cases", "champion-stopped", "nothing"],
)
def test_streamed_json_is_the_whole_dump(report: GateReport) -> None:
    text = "".join(report.iter_json())
    assert text == report.to_json() == _whole(report)
    assert GateReport.from_json(text).to_json() == text  # a NaN score is not equal to itself


def test_write_reports_streams_json_with_the_same_text(tmp_path: Path) -> None:
    report = _report(CASES)
    paths = write_reports(report, tmp_path, ["json", "markdown"])
    assert paths == [tmp_path / REPORT_JSON, tmp_path / REPORT_MD]
    assert (tmp_path / REPORT_JSON).read_text(encoding="utf-8") == _whole(report)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([REPORT_JSON, REPORT_MD])


def test_a_failing_reporter_leaves_the_previous_files_and_no_temporary_file(tmp_path: Path) -> None:
    class Broken:
        name = "broken-for-test"
        filename = "broken.txt"

        def render(self, report: GateReport) -> str:
            raise RuntimeError("cannot render")

    class HalfWriter:
        name = "half-for-test"
        filename = "half.txt"

        def render(self, report: GateReport) -> str:
            return "whole"

        def write(self, report: GateReport, handle: IO[str]) -> None:
            handle.write("half of it")
            raise RuntimeError("stopped halfway")

    register_reporter(Broken.name)(Broken)
    register_reporter(HalfWriter.name)(HalfWriter)
    try:
        write_reports(_report({}), tmp_path, ["json"])
        before = (tmp_path / REPORT_JSON).read_text(encoding="utf-8")
        for failing in (Broken.name, HalfWriter.name):
            with pytest.raises(RuntimeError):
                write_reports(_report(CASES), tmp_path, ["json", failing, "markdown"])
            assert sorted(p.name for p in tmp_path.iterdir()) == [REPORT_JSON]
            assert (tmp_path / REPORT_JSON).read_text(encoding="utf-8") == before
    finally:
        _REGISTRY.pop(Broken.name, None)
        _REGISTRY.pop(HalfWriter.name, None)
