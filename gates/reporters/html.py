"""``gate-report.html``: the run at a glance, with plots, in one self-contained file.

Per metric a histogram of the per-case scores with the per-case threshold drawn in, a
candidate-vs-champion scatter of the same cases when the report carries the champion's
baseline, the distribution of the chain's latency, and the failing cases with their
reasons. The plots are SVG written here in Python: no script, no CDN, no font or image
fetched, so the file opens offline and can be attached to a CI run or an MLflow run as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from gates.reporters import register_reporter, with_unit
from gates.reporters.markdown import fmt, fmt_interval, rule_words, served_line
from gates.reporters.svg import FAIL_COLOUR, MUTED, histogram_svg, scatter_svg
from gates.results import GateReport

__all__ = ["REPORT_HTML", "HtmlReporter", "histogram_svg", "html_report", "scatter_svg"]

REPORT_HTML = "gate-report.html"
FAILING_CASES_SHOWN = 200
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em} td,th{border:1px solid #ddd;padding:3px 8px;
vertical-align:top} th{background:#f5f5f5;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32;font-weight:600} .fail{color:#c62828;font-weight:600}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff}
.verdict.pass{background:#2e7d32;color:#fff} .verdict.fail{background:#c62828;color:#fff}
.plots{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0} figcaption{font-size:.85em;color:#555}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#333}
.reason{max-width:520px} .muted{color:#777}
"""


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _metric_section(report: GateReport, metric: str) -> str:
    values = report.values(metric)
    scored = [v for v in values.values() if v is not None]
    unscored = len(values) - len(scored)
    threshold = report.thresholds.get(metric)
    higher = report.higher_is_better(metric)
    direction = "higher is better" if higher else "lower is better"
    markers = [(threshold, FAIL_COLOUR, f"threshold {threshold:g}")] if threshold is not None else []
    plots = [
        "<figure>"
        + histogram_svg(scored, f"{metric}: per-case scores", f"{metric} ({direction})", markers)
        + f"<figcaption>{len(scored)} scored, {unscored} unscored; dashed: the per-case threshold"
        "</figcaption></figure>"
    ]
    champion = report.champion
    if champion is not None:
        points = [
            (case_id, champion.scores[case_id][metric], value, report.case_passes(metric, value))
            for case_id, value in sorted(values.items())
            if value is not None
            and threshold is not None
            and champion.scores.get(case_id, {}).get(metric) is not None
        ]
        if points:
            plots.append(
                "<figure>"
                + scatter_svg(points, f"{metric}: candidate vs champion", "champion", "candidate")
                + f"<figcaption>{len(points)} cases scored by both (champion: model version "
                f"{escape(champion.model_version)}); red: fails its threshold now</figcaption></figure>"
            )
    gates = [g for g in report.gates if g.metric == metric]
    rows = "".join(
        f"<tr><td>{escape(rule_words(g.rule)[0])} {escape(rule_words(g.rule)[1])}</td>"
        f'<td class="num">{escape(with_unit(report, g.metric, g.rule, f"{g.threshold:g}"))}</td>'
        f'<td class="num">{escape(with_unit(report, g.metric, g.rule, fmt(g.observed)))}</td>'
        f"<td>{fmt_interval(g)}</td><td class='{'pass' if g.passed else 'fail'}'>"
        f"{'PASS' if g.passed else 'FAIL'}</td><td>{escape(g.note)}</td></tr>"
        for g in gates
    )
    table = (
        "<table><tr><th>rule</th><th>threshold</th><th>observed</th><th>95% CI</th><th>result</th>"
        f"<th>note</th></tr>{rows}</table>"
        if gates
        else '<p class="muted">no gate rule ran for this metric</p>'
    )
    return (
        f'<h2 id="m-{escape(metric)}">{escape(metric)}</h2>{table}<div class="plots">{"".join(plots)}</div>'
    )


def _latency_section(report: GateReport) -> str:
    latencies = [c.latency_ms for c in report.cases if c.latency_ms is not None]
    if not latencies:
        return ""
    p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
    markers = [(p50, MUTED, f"p50 {p50:.0f}"), (p95, "#ef6c00", f"p95 {p95:.0f}")]
    limits = [g for g in report.gates if g.rule == "max_p95"]
    markers += [
        (g.threshold, FAIL_COLOUR, f"max_p95 {g.threshold:g}") for g in limits if g.metric == "latency"
    ]
    plot = histogram_svg(latencies, "latency per case", "ms", markers)
    return (
        '<h2 id="latency-distribution">Latency distribution</h2><div class="plots"><figure>'
        f"{plot}<figcaption>{len(latencies)} answered cases; p50 {p50:.0f} ms, p95 {p95:.0f} ms</figcaption>"
        "</figure></div>"
    )


def _failing_section(report: GateReport) -> str:
    count, rows = report.worst_failing(FAILING_CASES_SHOWN)
    if not rows:
        return '<h2 id="failing-cases">Failing cases</h2><p class="muted">none</p>'
    body = "".join(
        f"<tr><td>{escape(case.id)}</td><td>{escape(metric)}</td><td class='num'>{fmt(value)}</td>"
        f"<td class='reason'>{escape(reason[:400])}</td><td>{escape(case.question[:300])}</td>"
        f"<td>{escape((case.answer or case.error or '')[:300])}</td></tr>"
        for case, metric, value, reason in rows
    )
    more = (
        f'<p class="muted">{count - FAILING_CASES_SHOWN} more in gate-report.json</p>'
        if count > FAILING_CASES_SHOWN
        else ""
    )
    return (
        f'<h2 id="failing-cases">Failing cases ({count})</h2>'
        "<table><tr><th>case</th><th>metric</th><th>score</th><th>reason</th><th>question</th>"
        f"<th>answer</th></tr>{body}</table>{more}"
    )


def html_report(report: GateReport) -> str:
    verdict = "PASS" if report.passed else "FAIL"
    cls = "pass" if report.passed else "fail"
    gates_rows = "".join(
        f"<tr><td><a href='#m-{escape(g.metric)}'>{escape(g.name)}</a></td>"
        f"<td>{escape(rule_words(g.rule)[1])}</td>"
        f'<td class="num">{escape(with_unit(report, g.metric, g.rule, f"{g.threshold:g}"))}</td>'
        f'<td class="num">{escape(with_unit(report, g.metric, g.rule, fmt(g.observed)))}</td>'
        f"<td>{fmt_interval(g)}</td>"
        f'<td class="num">{g.n_scored}</td><td class="num">{g.n_unscored}</td>'
        f"<td class='{'pass' if g.passed else 'fail'}'>{'PASS' if g.passed else 'FAIL'}</td></tr>"
        for g in report.gates
    )
    missing = (
        f"<p class='fail'>Metrics of the profile that reported no gate (the run fails closed): "
        f"{escape(', '.join(report.missing))}</p>"
        if report.missing
        else ""
    )
    summary = (
        f"{len(report.gates) - len(report.failing)} of {len(report.gates)} gates passed."
        if report.gates
        else "No gate ran: the run fails closed."
    )
    version = ", ".join(
        f"{escape(k)} <code>{escape(str(v))}</code>" for k, v in sorted(report.chain_version.items())
    )
    stopped = (
        f"<p class='fail'>The run stopped before a verdict: {escape(report.stopped)}</p>"
        if report.stopped
        else ""
    )
    served_text = served_line(report)  # retried / failed calls to a served model, if any
    served_class = "fail" if (report.stats or {}).get("served_failures") else "muted"
    served = f"<p class='{served_class}'>{escape(served_text)}</p>" if served_text else ""
    sections = "".join(_metric_section(report, m) for m in report.metrics)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>ragate gates: {verdict} ({escape(report.env)})</title><style>{CSS}</style></head><body>"
        f"<h1>ragate gates <span class='verdict {cls}'>{verdict}</span> "
        f"env <code>{escape(report.env)}</code></h1>"
        f"<p>{summary} Profile <code>{escape(report.profile or '-')}</code>, "
        f"created {escape(report.created)}.</p>"
        f"{stopped}{missing}{served}"
        f"<p>Chain version: {version or '<span class=muted>not reported</span>'}</p>"
        "<h2>Gates</h2><table><tr><th>gate</th><th>rule</th><th>threshold</th><th>observed</th>"
        "<th>95% CI</th>"
        f"<th>scored</th><th>unscored</th><th>result</th></tr>{gates_rows}</table>"
        f"{sections}{_latency_section(report)}{_failing_section(report)}"
        "</body></html>\n"
    )


@register_reporter("html")
class HtmlReporter:
    name = "html"
    filename = REPORT_HTML

    def render(self, report: GateReport) -> str:
        return html_report(report)
