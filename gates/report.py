"""Gate reports: ``gate-report.json`` (everything) and ``gate-report.md`` (for a PR comment)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gates.verdict import RULES, GateResult
from rag.jsonl import write_text

REPORT_JSON = "gate-report.json"
REPORT_MD = "gate-report.md"


def build_report(
    env: str, gates: Mapping[str, GateResult], cases: Mapping[str, dict[str, Any]], run_info: dict[str, Any]
) -> dict[str, Any]:
    """The full report; ``passed`` is False when any gate failed, a gated metric of the
    profile reported nothing (deselected, interrupted, errored) or no gate ran at all."""
    ordered = sorted(gates.values(), key=lambda g: (g.metric, g.rule))
    missing = sorted(set(run_info.get("thresholds", {})) - {g.metric for g in ordered})
    return {
        "env": env,
        "passed": bool(ordered) and not missing and all(g.passed for g in ordered),
        "missing": missing,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": run_info.get("profile"),
        "profile_sha256": run_info.get("profile_sha256"),
        "chain_version": run_info.get("chain_version", {}),
        "thresholds": run_info.get("thresholds", {}),
        "directions": run_info.get("directions", {}),
        "stats": run_info.get("stats", {}),
        "flaky": run_info.get("flaky", {}),
        "gates": [g.to_dict() for g in ordered],
        "cases": [cases[k] for k in sorted(cases)],
    }


def write_reports(report: dict[str, Any], directory: Path) -> list[Path]:
    """Write both files atomically; returns their paths."""
    json_path, md_path = directory / REPORT_JSON, directory / REPORT_MD
    # Render both before writing either: a report that cannot be rendered must not leave a
    # new JSON beside the previous run's Markdown.
    json_text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    md_text = markdown(report)
    write_text(json_path, json_text)
    write_text(md_path, md_text)
    return [json_path, md_path]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _interval(gate: GateResult | dict[str, Any]) -> str:
    interval = gate.interval if isinstance(gate, GateResult) else gate.get("interval")
    return "" if not interval else f"[{interval[0]:.3g}, {interval[1]:.3g}]"


def markdown(report: dict[str, Any]) -> str:
    """A table fit for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    gates = [GateResult.from_dict(g) for g in report["gates"]]
    failed = [g for g in gates if not g.passed]
    missing = report.get("missing", [])
    icon = "✅" if report["passed"] else "❌"
    verdict = "PASS" if report["passed"] else "FAIL"
    lines = [
        f"## {icon} ragate gates: {verdict} (env `{report['env']}`)",
        "",
        f"{len(gates) - len(failed)} of {len(gates)} gates passed."
        if gates
        else "No gate ran: the run fails closed.",
        *(
            [f"Metrics of the profile that reported no gate (the run fails closed): {', '.join(missing)}."]
            if missing
            else []
        ),
        "",
        "| gate | rule | threshold | observed | 95% CI | scored | unscored | result |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for g in gates:
        what, op = RULES[g.rule]
        lines.append(
            f"| {g.metric} | {what} {op} | {g.threshold:g} | {_fmt(g.observed)} | {_interval(g)} "
            f"| {g.n_scored} | {g.n_unscored} | {'PASS' if g.passed else '**FAIL**'} |"
        )
    failing_cases = _failing_cases(report)
    if failing_cases:
        lines += ["", "<details><summary>Lowest-scoring cases</summary>", ""]
        lines += ["| case | metric | score | reason |", "|---|---|---:|---|"]
        for case_id, metric, value, reason in failing_cases[:20]:
            lines.append(f"| {case_id} | {metric} | {_fmt(value)} | {reason.replace('|', '/')[:160]} |")
        lines += ["", "</details>"]
    version = report.get("chain_version") or {}
    if version:
        lines += ["", "Chain version: " + ", ".join(f"{k} `{v}`" for k, v in sorted(version.items()))]
    return "\n".join(lines) + "\n"


def _failing_cases(report: dict[str, Any]) -> list[tuple[str, str, float | None, str]]:
    thresholds = report.get("thresholds", {})
    directions = report.get("directions", {})
    rows = []
    for case in report["cases"]:
        for metric, value in case["scores"].items():
            threshold = thresholds.get(metric)
            if threshold is None:
                continue
            higher = directions.get(metric) == "higher_is_better"
            bad = value is None or (value < threshold if higher else value > threshold)
            if bad:
                rows.append((case["id"], metric, value, case["reasons"].get(metric, "")))
    return rows


def summary_lines(
    gates: Mapping[str, GateResult], run_info: dict[str, Any], report_paths: list[Path]
) -> list[tuple[str, str | None]]:
    """The terminal table: one line per gate, then the verdict; (text, colour)."""
    ordered = sorted(gates.values(), key=lambda g: (g.metric, g.rule))
    missing = sorted(set(run_info.get("thresholds", {})) - {g.metric for g in ordered})
    header = (
        f"{'gate':<34} {'rule':<6} {'threshold':>10} {'observed':>10} {'95% CI':<20} "
        f"{'scored':>6} {'unsc.':>5}  result"
    )
    lines: list[tuple[str, str | None]] = [(header, None)]
    for g in ordered:
        op = RULES[g.rule][1]
        lines.append(
            (
                f"{g.name:<34} {op:<6} {g.threshold:>10g} {_fmt(g.observed):>10} {_interval(g):<20} "
                f"{g.n_scored:>6} {g.n_unscored:>5}  {'PASS' if g.passed else 'FAIL'}",
                "green" if g.passed else "red",
            )
        )
    stats = run_info.get("stats", {})
    if stats:
        lines.append(
            (
                f"cases {stats.get('cases', 0)}: generated {stats.get('generated', 0)} "
                f"(cached {stats.get('generation_cache_hits', 0)}), judged {stats.get('judgments', 0)} "
                f"(cached {stats.get('judgment_cache_hits', 0)}); model {stats.get('model_seconds', 0):.1f}s",
                None,
            )
        )
    for metric, ids in (run_info.get("flaky") or {}).items():
        if ids:
            lines.append(
                (f"flaky {metric}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}", "yellow")
            )
    failed = [g for g in ordered if not g.passed]
    where = f" (reports: {', '.join(str(p) for p in report_paths)})" if report_paths else ""
    for metric in missing:
        lines.append((f"{metric:<34} not run: its gate item was deselected, interrupted or errored", "red"))
    if not ordered:
        lines.append(("ragate verdict: FAIL: no gate ran, nothing was decided" + where, "red"))
    elif missing:
        lines.append((f"ragate verdict: FAIL: {len(missing)} gated metrics reported nothing{where}", "red"))
    elif failed:
        lines.append((f"ragate verdict: FAIL: {len(failed)} of {len(ordered)} gates failed{where}", "red"))
    else:
        lines.append((f"ragate verdict: PASS: all {len(ordered)} gates passed{where}", "green"))
    return lines
