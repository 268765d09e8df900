"""``gate-report.md``: a table fit for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from gates.reporters import register_reporter, with_unit
from gates.results import GateReport, GateResult
from gates.verdict import rule_spec

REPORT_MD = "gate-report.md"
FAILING_CASES_SHOWN = 20


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def fmt_interval(gate: GateResult) -> str:
    return "" if not gate.interval else f"[{gate.interval[0]:.3g}, {gate.interval[1]:.3g}]"


def rule_words(rule: str) -> tuple[str, str]:
    """(what the rule reads, its comparison); an unregistered rule shows its own name."""
    spec = rule_spec(rule)
    return (spec.reads, spec.op) if spec else (rule, "?")


def served_line(report: GateReport) -> str:
    """The served-model calls (:mod:`gates.served`) retried or failed after retrying, as the
    terminal summary shows them; empty when there were none (or no served model)."""
    stats = report.stats or {}
    retried, failed = int(stats.get("served_retries") or 0), int(stats.get("served_failures") or 0)
    if not retried and not failed:
        return ""
    return (
        f"Served-model calls: {retried} {'retry' if retried == 1 else 'retries'}, "
        f"{failed} failed after retrying (those cases are unscored)."
    )


def markdown(report: GateReport) -> str:
    gates = list(report.gates)
    failed = report.failing
    icon = "✅" if report.passed else "❌"
    verdict = "PASS" if report.passed else "FAIL"
    lines = [
        f"## {icon} ragate gates: {verdict} (env `{report.env}`)",
        "",
        f"{len(gates) - len(failed)} of {len(gates)} gates passed."
        if gates
        else "No gate ran: the run fails closed.",
        *(
            [
                "Metrics of the profile that reported no gate (the run fails closed): "
                f"{', '.join(report.missing)}."
            ]
            if report.missing
            else []
        ),
        *([f"The run stopped before a verdict: {report.stopped}"] if report.stopped else []),
        *([served] if (served := served_line(report)) else []),
        "",
        "| gate | rule | threshold | observed | 95% CI | scored | unscored | result |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for g in gates:
        what, op = rule_words(g.rule)
        lines.append(
            f"| {g.metric} | {what} {op} | {with_unit(report, g.metric, g.rule, f'{g.threshold:g}')} "
            f"| {with_unit(report, g.metric, g.rule, fmt(g.observed))} | {fmt_interval(g)} "
            f"| {g.n_scored} | {g.n_unscored} | {'PASS' if g.passed else '**FAIL**'} |"
        )
    _, failing_cases = report.worst_failing(FAILING_CASES_SHOWN)
    if failing_cases:
        lines += ["", "<details><summary>Failing cases, worst first</summary>", ""]
        lines += ["| case | metric | score | reason |", "|---|---|---:|---|"]
        for case, metric, value, reason in failing_cases:
            lines.append(f"| {case.id} | {metric} | {fmt(value)} | {reason.replace('|', '/')[:160]} |")
        lines += ["", "</details>"]
    if report.chain_version:
        lines += [
            "",
            "Chain version: " + ", ".join(f"{k} `{v}`" for k, v in sorted(report.chain_version.items())),
        ]
    return "\n".join(lines) + "\n"


@register_reporter("markdown")
class MarkdownReporter:
    name = "markdown"
    filename = REPORT_MD

    def render(self, report: GateReport) -> str:
        return markdown(report)
