"""The terminal table: one line per gate, then the verdict (the pytest plugin prints it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gates.reporters import NOT_RUN, register_reporter, with_unit
from gates.reporters.markdown import fmt, fmt_interval, rule_words
from gates.results import GateReport


def summary_lines(report: GateReport, report_paths: Sequence[Path] = ()) -> list[tuple[str, str | None]]:
    """(text, colour) per line: a header, one line per gate, the run's cost, flaky cases,
    metrics that reported nothing, and the verdict."""
    ordered = list(report.gates)
    header = (
        f"{'gate':<34} {'rule':<6} {'threshold':>10} {'observed':>10} {'95% CI':<20} "
        f"{'scored':>6} {'unsc.':>5}  result"
    )
    lines: list[tuple[str, str | None]] = [(header, None)]
    for g in ordered:
        op = rule_words(g.rule)[1]
        lines.append(
            (
                f"{g.name:<34} {op:<6} {with_unit(report, g.metric, g.rule, f'{g.threshold:g}'):>10} "
                f"{with_unit(report, g.metric, g.rule, fmt(g.observed)):>10} {fmt_interval(g):<20} "
                f"{g.n_scored:>6} {g.n_unscored:>5}  {'PASS' if g.passed else 'FAIL'}"
                # Why a rule observed nothing: "no champion yet", "nothing scored".
                + (f"  ({g.note})" if g.note and g.observed is None else ""),
                "green" if g.passed else "red",
            )
        )
    stats = report.stats
    if stats:
        # Calls to a served model (gates.served) that were retried or failed after retrying.
        retried, failed = stats.get("served_retries", 0), stats.get("served_failures", 0)
        served = f"; served calls: {retried} retries, {failed} failed (unscored)" if retried or failed else ""
        lines.append(
            (
                f"cases {stats.get('cases', 0)}: generated {stats.get('generated', 0)} "
                f"(cached {stats.get('generation_cache_hits', 0)}), judged {stats.get('judgments', 0)} "
                f"(cached {stats.get('judgment_cache_hits', 0)}); model {stats.get('model_seconds', 0):.1f}s"
                f"{served}",
                "yellow" if failed else None,
            )
        )
    if report.chain_version:
        # Which chain was gated (its own version(), or the factory's import string).
        shown = ", ".join(f"{k}={v}" for k, v in sorted(report.chain_version.items()))
        lines.append((f"chain: {shown[:150]}{' ...' if len(shown) > 150 else ''}", None))
    for metric, ids in report.flaky.items():
        if ids:
            lines.append(
                (f"flaky {metric}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}", "yellow")
            )
    failed = report.failing
    where = f" (reports: {', '.join(str(p) for p in report_paths)})" if report_paths else ""
    for metric in report.missing:
        lines.append((f"{metric:<34} not run: {NOT_RUN}", "red"))
    if report.stopped:
        lines.append((f"the run stopped before a verdict: {report.stopped}", "red"))
    if not ordered:
        lines.append(("ragate verdict: FAIL: no gate ran, nothing was decided" + where, "red"))
    elif report.missing or failed:
        why = []
        if failed:
            names = ", ".join(f"{g.metric}.{g.rule}" for g in failed[:5])
            names += " ..." if len(failed) > 5 else ""
            why.append(f"{len(failed)} of {len(ordered)} gates failed ({names})")
        if report.missing:
            why.append(f"{len(report.missing)} gated metrics reported nothing ({', '.join(report.missing)})")
        lines.append((f"ragate verdict: FAIL: {'; '.join(why)}{where}", "red"))
    else:
        lines.append((f"ragate verdict: PASS: all {len(ordered)} gates passed{where}", "green"))
    return lines


@register_reporter("terminal")
class TerminalReporter:
    """Printed by the pytest plugin at the end of the run; writes no file."""

    name = "terminal"
    filename = None

    def render(self, report: GateReport) -> str:
        return "\n".join(text for text, _ in summary_lines(report)) + "\n"
