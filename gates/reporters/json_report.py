"""``gate-report.json``: the :class:`~gates.results.GateReport` itself, every gate and case."""

from __future__ import annotations

from typing import IO

from gates.reporters import register_reporter
from gates.results import GateReport

REPORT_JSON = "gate-report.json"


@register_reporter("json")
class JsonReporter:
    name = "json"
    filename = REPORT_JSON

    def render(self, report: GateReport) -> str:
        return report.to_json()

    def write(self, report: GateReport, handle: IO[str]) -> None:
        """:meth:`render`'s text written piece by piece (:meth:`GateReport.iter_json`)."""
        handle.writelines(report.iter_json())
