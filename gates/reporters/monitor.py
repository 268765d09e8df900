"""``monitor-report.md`` and ``monitor-report.html``: what ``ragate monitor`` found.

Both render the JSON form of a :class:`gates.monitor.MonitorResult` (its ``to_dict()``,
the content of ``monitor-report.json``), so a saved report can be re-rendered. The HTML
page draws, per metric and day, the mean against the baseline's mean, the difference
from the baseline's mean with its 95% bootstrap interval, and the share of cases failing
the per-case threshold, with the SVG helpers of
:mod:`gates.reporters.svg` (self-contained: no script, no CDN).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from gates.reporters.html import CSS
from gates.reporters.svg import FAIL_COLOUR, MUTED, time_series_svg

NOW_COLOUR = "#1f5fbf"


def _num(value: float | None, unit: str | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" + (f" {unit}" if unit else "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ci(metric: Mapping[str, Any]) -> str:
    interval = metric.get("interval")
    return "" if not interval else f"[{interval[0]:.3g}, {interval[1]:.3g}]"


def _headline(data: Mapping[str, Any]) -> str:
    alerts = [m["metric"] for m in data["metrics"] if m["alert"]]
    if alerts:
        return f"ALERT on {len(alerts)} of {len(data['metrics'])} metrics: {', '.join(alerts)}"
    return f"no alert on {len(data['metrics'])} metrics"


def monitor_markdown(data: Mapping[str, Any]) -> str:
    """A table per metric, fit for a chat message or ``$GITHUB_STEP_SUMMARY``."""
    icon = "🚨" if data["alert"] else "✅"
    lines = [
        f"## {icon} ragate monitor: {_headline(data)}",
        "",
        f"{data['rows']} answers from {data['source']} over the last {data['since']}, "
        f"against {data['baseline']}; profile `{data['profile']}`, {data['created']}.",
        "",
        "| metric | unit | scored | unscored | now | baseline | diff | 95% CI | failing now | "
        "failing baseline | result |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for m in data["metrics"]:
        result = "**ALERT**: " + m["why"] if m["alert"] else "ok: " + m["why"]
        lines.append(
            f"| {m['metric']} | {m.get('unit') or ''} | {m['n']} | {m['n_unscored']} | {_num(m['mean'])} "
            f"| {_num(m['baseline_mean'])} | {_num(m['diff'])} | {_ci(m)} | {_pct(m['failing_share'])} "
            f"| {_pct(m['baseline_failing_share'])} | {result.replace('|', '/')} |"
        )
    days = sorted({d for m in data["metrics"] for d in m["per_day"]})
    if days:
        lines += ["", "<details><summary>Per day (mean / difference [95% CI] / failing share)</summary>", ""]
        lines += ["| metric | " + " | ".join(days) + " |", "|---|" + "---:|" * len(days)]
        for m in data["metrics"]:
            cells = [_day_cell(m, d) if d in m["per_day"] else "" for d in days]
            lines.append(f"| {m['metric']} | " + " | ".join(cells) + " |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _day_cell(m: Mapping[str, Any], day: str) -> str:
    diff = (m.get("per_day_diff") or {}).get(day)
    ci = (m.get("per_day_interval") or {}).get(day)
    middle = "n/a" if diff is None else f"{diff:+.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
    return f"{_num(m['per_day'][day])} / {middle} / {_pct(m['per_day_failing'][day])}"


def _metric_section(m: Mapping[str, Any]) -> str:
    unit = m.get("unit")
    label = f"{m['metric']} ({unit})" if unit else m["metric"]
    mean_markers = []
    if m["baseline_mean"] is not None:
        mean_markers.append((m["baseline_mean"], MUTED, f"baseline {m['baseline_mean']:.3g}"))
    days = list(m["per_day"].items())
    means = time_series_svg([("mean", days, NOW_COLOUR)], f"{m['metric']}: daily mean", label, mean_markers)
    share_markers = []
    if m["baseline_failing_share"] is not None:
        share_markers.append(
            (m["baseline_failing_share"], MUTED, f"baseline {m['baseline_failing_share']:.0%}")
        )
    if m.get("max_failing_share") is not None:
        share_markers.append((m["max_failing_share"], FAIL_COLOUR, f"max {m['max_failing_share']:.0%}"))
    shares = time_series_svg(
        [("failing share", list(m["per_day_failing"].items()), NOW_COLOUR)],
        f"{m['metric']}: daily share failing the threshold",
        "share of cases",
        share_markers,
        y_range=(0.0, 1.0),
    )
    diffs = _diff_svg(m)
    cls = "fail" if m["alert"] else "pass"
    counts = ", ".join(f"{d}: {n}" for d, n in m["per_day_n"].items())
    return (
        f"<h2 id='m-{escape(m['metric'])}'>{escape(m['metric'])} "
        f"<span class='{cls}'>{'ALERT' if m['alert'] else 'ok'}</span></h2>"
        f"<p>{escape(m['why'])}</p><div class='plots'>"
        f"<figure>{means}<figcaption>dashed: the baseline's mean; scored cases per day: "
        f"{escape(counts) or 'none'}</figcaption></figure>"
        f"{diffs}"
        f"<figure>{shares}<figcaption>cases failing the per-case threshold "
        f"{m['threshold']:g}{escape(' ' + unit) if unit else ''} ({escape(m['direction'].replace('_', ' '))})"
        "</figcaption></figure></div>"
    )


def _diff_svg(m: Mapping[str, Any]) -> str:
    """The daily difference from the baseline's mean, between its interval's bounds ('' when
    the baseline has no scores)."""
    diffs = m.get("per_day_diff") or {}
    if not diffs:
        return ""
    intervals = m.get("per_day_interval") or {}
    unit = m.get("unit")
    # The line an alert needs the difference to cross (a unit's max_drop is relative).
    tolerance = m["max_drop"] * (abs(m["baseline_mean"]) if unit and m["baseline_mean"] else 1.0)
    worse = tolerance if m["direction"] != "higher_is_better" else -tolerance
    series = [
        ("difference", list(diffs.items()), NOW_COLOUR),
        ("95% CI low", [(d, ci[0]) for d, ci in intervals.items()], MUTED),
        ("95% CI high", [(d, ci[1]) for d, ci in intervals.items()], MUTED),
    ]
    plot = time_series_svg(
        series,
        f"{m['metric']}: daily difference from the baseline",
        f"now - baseline{' (' + unit + ')' if unit else ''}",
        [(0.0, MUTED, "no change"), (worse, FAIL_COLOUR, f"max_drop {worse:+.3g}")],
    )
    return (
        f"<figure>{plot}<figcaption>grey: the 95% bootstrap interval of the day's difference "
        "(the day's cases against the whole baseline)</figcaption></figure>"
    )


def monitor_html(data: Mapping[str, Any]) -> str:
    """One self-contained page: the summary table, then two time series per metric."""
    cls = "fail" if data["alert"] else "pass"
    verdict = "ALERT" if data["alert"] else "OK"
    rows = "".join(
        f"<tr><td><a href='#m-{escape(m['metric'])}'>{escape(m['metric'])}</a></td>"
        f"<td>{escape(m.get('unit') or '')}</td><td class='num'>{m['n']}</td>"
        f"<td class='num'>{m['n_unscored']}</td><td class='num'>{_num(m['mean'])}</td>"
        f"<td class='num'>{_num(m['baseline_mean'])}</td><td class='num'>{_num(m['diff'])}</td>"
        f"<td>{_ci(m)}</td><td class='num'>{_pct(m['failing_share'])}</td>"
        f"<td class='num'>{_pct(m['baseline_failing_share'])}</td>"
        f"<td class='{'fail' if m['alert'] else 'pass'}'>{'ALERT' if m['alert'] else 'ok'}</td></tr>"
        for m in data["metrics"]
    )
    sections = "".join(_metric_section(m) for m in data["metrics"])
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>ragate monitor: {verdict}</title><style>{CSS}</style></head><body>"
        f"<h1>ragate monitor <span class='verdict {cls}'>{verdict}</span></h1>"
        f"<p>{escape(_headline(data))}. {data['rows']} answers from {escape(data['source'])} over the "
        f"last {escape(data['since'])}, against {escape(data['baseline'])}; profile "
        f"<code>{escape(data['profile'])}</code>, {escape(data['created'])}.</p>"
        "<table><tr><th>metric</th><th>unit</th><th>scored</th><th>unscored</th><th>now</th>"
        "<th>baseline</th><th>diff</th><th>95% CI</th><th>failing now</th><th>failing baseline</th>"
        f"<th>result</th></tr>{rows}</table>{sections}</body></html>\n"
    )
