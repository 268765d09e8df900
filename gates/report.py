"""The gate report of a run: built once as a :class:`~gates.results.GateReport`, then
written by the selected reporters (:mod:`gates.reporters`: ``gate-report.json``, ``.md``,
``.junit.xml``, ``.html``) and printed as the terminal table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from gates.reporters import DEFAULT_REPORTERS, write_reports
from gates.reporters.html import REPORT_HTML
from gates.reporters.json_report import REPORT_JSON
from gates.reporters.junit import REPORT_JUNIT
from gates.reporters.markdown import REPORT_MD, markdown
from gates.reporters.terminal import summary_lines
from gates.results import CaseRecord, ChampionBaseline, GateReport, GateResult

__all__ = [
    "DEFAULT_REPORTERS",
    "REPORT_HTML",
    "REPORT_JSON",
    "REPORT_JUNIT",
    "REPORT_MD",
    "build_report",
    "markdown",
    "summary_lines",
    "write_reports",
]


def build_report(
    env: str,
    gates: Mapping[str, GateResult] | Iterable[GateResult],
    cases: Mapping[str, Mapping[str, Any]] | Iterable[CaseRecord],
    run_info: Mapping[str, Any],
) -> GateReport:
    """The run's report: gates sorted by metric and rule, cases by id.

    ``cases`` are case records (or their dicts, as the pytest items send them);
    ``run_info`` carries ``profile``, ``profile_sha256``, ``chain_version``, ``thresholds``,
    ``directions``, ``stats``, ``flaky`` and optionally ``champion`` (a
    :class:`ChampionBaseline` or its dict) and ``stopped`` (why the run reached no
    verdict). A gated metric of the profile (a key of ``thresholds``) with no gate lands in
    ``missing``, which fails the report.
    """
    gate_list = list(gates.values()) if isinstance(gates, Mapping) else list(gates)
    ordered = tuple(sorted(gate_list, key=lambda g: (g.metric, g.rule)))
    records = [
        c if isinstance(c, CaseRecord) else CaseRecord.from_dict(c)
        for c in (cases.values() if isinstance(cases, Mapping) else cases)
    ]
    thresholds = dict(run_info.get("thresholds") or {})
    champion = run_info.get("champion")
    if isinstance(champion, Mapping):
        champion = ChampionBaseline.from_dict(champion)
    return GateReport(
        env=env,
        gates=ordered,
        cases=tuple(sorted(records, key=lambda c: c.id)),
        missing=tuple(sorted(set(thresholds) - {g.metric for g in ordered})),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        profile=run_info.get("profile"),
        profile_sha256=run_info.get("profile_sha256"),
        chain_version=dict(run_info.get("chain_version") or {}),
        thresholds=thresholds,
        directions=dict(run_info.get("directions") or {}),
        stats=dict(run_info.get("stats") or {}),
        flaky={k: list(v) for k, v in (run_info.get("flaky") or {}).items()},
        champion=champion,
        stopped=run_info.get("stopped"),
    )
