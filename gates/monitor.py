"""``ragate monitor``: production answers scored offline and compared with a baseline.

Production rows come from the traces ``ragate serve`` stored (``--experiment NAME``) or
from a JSONL file (``--traces FILE.jsonl``: rows of ``ragate ask --output`` plus an
optional ISO ``timestamp``, for teams that log elsewhere). Rows newer than ``--since``
are scored with the offline metrics through the judgment cache, and each metric is
compared with a baseline: ``--baseline`` a ``gate-report.json`` or another traces file,
by default the champion's recorded prod gate scores (:func:`gates.tracking.champion_baseline`).

Per metric: the mean now and in the baseline, their difference with a 95% bootstrap
interval (independent resamples of both, fixed seed), the share of cases failing the
per-case threshold now and in the baseline, and the mean per day. An alert is raised
when the metric got worse by more than ``--max-drop`` (absolute for metrics in [0, 1];
a fraction of the baseline mean for metrics with a unit, such as latency) *and* the
whole interval of the difference lies on the worse side. Exit status: 1 on an alert,
2 when the window holds no row (never "no drift"), else 0.

Not (yet) here: rules from a ``monitor:`` profile section, Markdown/HTML output with a
time-series plot, and an MLflow run; the JSON output has the per-day means a plot needs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError

DEFAULT_METRICS = ("faithfulness", "answer_relevancy", "toxicity", "pii")
RESAMPLES = 2000
SEED = 20261130


@dataclass(frozen=True)
class ProductionRow:
    """One served answer, as monitoring reads it (question and answer already masked)."""

    id: str
    question: str
    answer: str
    contexts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    latency_ms: float | None = None
    blocked: bool | None = None
    rail: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True)
class MetricDrift:
    """One metric now against the baseline (``diff`` = now - baseline)."""

    metric: str
    direction: str
    threshold: float
    n: int
    n_unscored: int
    mean: float | None
    baseline_n: int
    baseline_mean: float | None
    diff: float | None
    interval: tuple[float, float] | None
    failing_share: float | None
    baseline_failing_share: float | None
    per_day: dict[str, float]
    alert: bool
    why: str


def _parse_time(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{where}: timestamp {value!r} is not an ISO date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rows_from_file(path: Path) -> list[ProductionRow]:
    """Rows of ``ragate ask --output`` (+ optional ``timestamp``); errors name file:line."""
    from pydantic import ValidationError

    from gates.engine import mask_text
    from gates.schema import AnswerRow

    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object")
        stamp = _parse_time(data.pop("timestamp", None), where)
        try:
            row = AnswerRow.model_validate(data)
        except ValidationError as exc:
            from ragate_core.jsonl import describe_validation

            raise UsageError(f"{where}: {describe_validation(exc)}") from None
        rows.append(
            ProductionRow(
                id=row.id,
                question=mask_text(row.question, names=True),
                answer=row.answer,
                contexts=tuple(row.contexts),
                sources=tuple(row.sources or ()),
                latency_ms=row.latency_ms,
                blocked=row.blocked,
                rail=row.rail,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                timestamp=stamp,
            )
        )
    return rows


def rows_from_experiment(root: Path, experiment: str, since: timedelta) -> list[ProductionRow]:
    """The ``ragate serve`` traces of ``experiment`` newer than ``since``."""
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    from gates.tracking import tracking_uri

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    if found is None:
        raise UsageError(f"--experiment {experiment}: no such experiment in {uri}")
    start_ms = int((time.time() - since.total_seconds()) * 1000)
    traces = mlflow.search_traces(
        locations=[found.experiment_id],
        filter_string=f"trace.timestamp_ms > {start_ms}",
        return_type="list",
    )
    rows = []
    for trace in traces:
        span = next((s for s in trace.data.spans if s.parent_id is None), None)
        if span is None or not isinstance(span.inputs, dict) or not isinstance(span.outputs, dict):
            continue  # not a ragate serve trace, or a failed request
        usage = span.get_attribute("mlflow.chat.tokenUsage") or {}
        out = span.outputs
        rows.append(
            ProductionRow(
                id=trace.info.trace_id,
                question=str(span.inputs.get("question", "")),
                answer=str(out.get("answer", "")),
                contexts=tuple(out.get("contexts") or ()),
                sources=tuple(out.get("sources") or ()),
                latency_ms=span.get_attribute("ragate.latency_ms"),
                blocked=out.get("blocked"),
                rail=out.get("rail"),
                prompt_tokens=usage.get("input_tokens"),
                completion_tokens=usage.get("output_tokens"),
                timestamp=datetime.fromtimestamp(trace.info.request_time / 1000, tz=UTC),
            )
        )
    return rows


def in_window(
    rows: Sequence[ProductionRow], since: timedelta, now: datetime | None = None
) -> list[ProductionRow]:
    """Rows newer than ``since``; a row without a timestamp counts as now."""
    start = (now or datetime.now(tz=UTC)) - since
    return [r for r in rows if r.timestamp is None or r.timestamp >= start]


def score_rows(
    rows: Sequence[ProductionRow], metrics: Sequence[str], cache: Any
) -> dict[str, list[tuple[datetime | None, float | None]]]:
    """Per metric, ``(timestamp, value)`` per row in scope (``None`` value = unscored)."""
    from gates.metrics.base import MetricCase, applies, get_metric
    from gates.scoring import score_through_cache

    out: dict[str, list[tuple[datetime | None, float | None]]] = {}
    for name in metrics:
        metric = get_metric(name)
        cases = [
            MetricCase(
                id=r.id,
                question=r.question,
                answer=r.answer,
                contexts=r.contexts,
                latency_ms=r.latency_ms,
                blocked=r.blocked,
                rail=r.rail,
                sources=r.sources,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
            )
            for r in rows
        ]
        chosen = [(r, c) for r, c in zip(rows, cases) if applies(metric, c)]
        scores, _ = score_through_cache(metric, [c for _, c in chosen], cache)
        out[name] = [(r.timestamp, s.value) for (r, _), s in zip(chosen, scores)]
    return out


def baseline_values(
    spec: Path | None, root: Path, metrics: Sequence[str], cache: Any
) -> tuple[str, dict[str, list[float | None]]]:
    """(where the baseline came from, per-metric values)."""
    if spec is None:
        from gates.tracking import champion_baseline

        champion = champion_baseline(root, "prod")
        if champion is None or not champion.scores:
            raise UsageError(
                "no baseline: no champion with a recorded prod gate run; give --baseline "
                "gate-report.json or a traces file"
            )
        values = {m: [s.get(m) for s in champion.scores.values() if m in s] for m in metrics}
        return f"champion (model version {champion.model_version})", values
    if not spec.is_file():
        raise UsageError(f"--baseline {spec}: no such file")
    if spec.suffix == ".json":
        from gates.results import GateReport

        try:
            report = GateReport.from_json(spec.read_text(encoding="utf-8"))
        except Exception as exc:
            raise UsageError(f"--baseline {spec}: not a gate-report.json: {exc}") from None
        values = {m: [c.scores[m] for c in report.cases if m in c.scores] for m in metrics}
        return f"gate report {spec}", values
    scored = score_rows(rows_from_file(spec), metrics, cache)
    return f"traces {spec}", {m: [v for _, v in pairs] for m, pairs in scored.items()}


def _bootstrap_diff(now: Any, base: Any) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    a = now[rng.integers(0, len(now), size=(RESAMPLES, len(now)))].mean(axis=1)
    b = base[rng.integers(0, len(base), size=(RESAMPLES, len(base)))].mean(axis=1)
    low, high = np.quantile(a - b, [0.025, 0.975])
    return float(low), float(high)


def compare(
    name: str,
    pairs: Sequence[tuple[datetime | None, float | None]],
    base: Sequence[float | None],
    threshold: float,
    max_drop: float,
) -> MetricDrift:
    """One metric's drift against the baseline (fail closed: nothing scored is an alert)."""
    import numpy as np

    from gates.metrics.base import get_metric, passes

    metric = get_metric(name)
    direction = metric.direction
    scored = np.array([v for _, v in pairs if v is not None], dtype=float)
    reference = np.array([v for v in base if v is not None], dtype=float)
    n_unscored = sum(v is None for _, v in pairs)
    days: dict[str, list[float]] = {}
    for stamp, value in pairs:
        if value is not None:
            day = (stamp or datetime.now(tz=UTC)).date().isoformat()
            days.setdefault(day, []).append(value)
    per_day = {d: round(float(np.mean(v)), 6) for d, v in sorted(days.items())}

    def failing(values: Any) -> float | None:
        return None if not len(values) else float(np.mean([not passes(metric, v, threshold) for v in values]))

    common = dict(
        metric=name,
        direction=direction,
        threshold=threshold,
        n=len(scored),
        n_unscored=n_unscored,
        baseline_n=len(reference),
        failing_share=failing(scored),
        baseline_failing_share=failing(reference),
        per_day=per_day,
    )
    if not len(scored) or not len(reference):
        which = "nothing scored now" if not len(scored) else "the baseline has no scores"
        return MetricDrift(
            **common,
            mean=float(scored.mean()) if len(scored) else None,
            baseline_mean=float(reference.mean()) if len(reference) else None,
            diff=None,
            interval=None,
            alert=True,
            why=which,
        )
    mean, base_mean = float(scored.mean()), float(reference.mean())
    diff = mean - base_mean
    low, high = _bootstrap_diff(scored, reference)
    tolerance = max_drop * (abs(base_mean) if getattr(metric, "unit", None) else 1.0)
    worse = -diff if direction == "higher_is_better" else diff
    significant = high < 0 if direction == "higher_is_better" else low > 0
    alert = significant and worse > tolerance
    why = (
        f"worse by {worse:.4g} (> {tolerance:.4g}), 95% interval of the difference [{low:.4g}, {high:.4g}]"
        if alert
        else f"difference {diff:+.4g}, 95% interval [{low:.4g}, {high:.4g}]: within {tolerance:.4g}"
    )
    return MetricDrift(
        **common,
        mean=mean,
        baseline_mean=base_mean,
        diff=diff,
        interval=(low, high),
        alert=alert,
        why=why,
    )


def table(drifts: Sequence[MetricDrift]) -> str:
    def f(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    lines = [
        f"{'metric':<18} {'n':>5} {'now':>9} {'baseline':>9} {'diff':>9} "
        f"{'fail now':>9} {'fail base':>9}  verdict"
    ]
    for d in drifts:
        lines.append(
            f"{d.metric:<18} {d.n:>5} {f(d.mean):>9} {f(d.baseline_mean):>9} {f(d.diff):>9} "
            f"{f(d.failing_share):>9} {f(d.baseline_failing_share):>9}  "
            f"{'ALERT' if d.alert else 'ok'}: {d.why}"
        )
    return "\n".join(lines)


def cmd_monitor(args: argparse.Namespace) -> int:
    from gates.api import _cache
    from gates.feedback import since_text
    from gates.metrics.base import get_metric
    from ragate_core.jsonl import write_text
    from ragate_core.project import find_project_root

    root = find_project_root()
    if args.traces is not None:
        if not args.traces.is_file():
            raise UsageError(f"--traces {args.traces}: no such file")
        rows = in_window(rows_from_file(args.traces), args.since)
        source = str(args.traces)
    else:
        rows = rows_from_experiment(root, args.experiment, args.since)
        source = f"experiment {args.experiment}"
    if not rows:
        raise UsageError(f"no traces in {source} over the last {since_text(args.since)}: nothing to monitor")
    if args.sample and len(rows) > args.sample:
        import random

        rows = random.Random(SEED).sample(rows, args.sample)
    cache = _cache(not args.no_cache, root)
    now = score_rows(rows, args.metrics, cache)
    label, base = baseline_values(args.baseline, root, args.metrics, cache)
    thresholds: Mapping[str, float] = dict(args.threshold or {})
    drifts = [
        compare(
            name,
            now[name],
            base.get(name, []),
            thresholds.get(name, get_metric(name).default_threshold),
            args.max_drop,
        )
        for name in args.metrics
    ]
    print(f"monitor: {len(rows)} answers from {source} (last {since_text(args.since)}) vs {label}")
    print(table(drifts))
    alert = any(d.alert for d in drifts)
    if args.output is not None:
        write_text(
            args.output,
            json.dumps(
                {
                    "source": source,
                    "since": since_text(args.since),
                    "baseline": label,
                    "rows": len(rows),
                    "alert": alert,
                    "metrics": [asdict(d) for d in drifts],
                },
                indent=2,
            )
            + "\n",
        )
        print(f"wrote {args.output}", file=sys.stderr)
    return 1 if alert else 0


def _thresholds(value: str) -> dict[str, float]:
    out = {}
    for part in value.split(","):
        name, _, number = part.partition("=")
        try:
            out[name.strip()] = float(number)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: give metric=value, e.g. faithfulness=0.5") from None
    return out


def add_monitor_parser(sub: Any) -> None:
    """The ``monitor`` subcommand (registered by :func:`gates.cli.build_parser`)."""
    from gates.cli import _metric_list
    from gates.feedback import duration
    from gates.serve import EXPERIMENT

    p = sub.add_parser("monitor", help="score production answers and compare them with a baseline")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--experiment", default=EXPERIMENT, metavar="NAME", help=f"default: {EXPERIMENT}")
    where.add_argument(
        "--traces", type=Path, metavar="FILE.jsonl", help="ragate ask --output rows (+ timestamp)"
    )
    p.add_argument("--since", type=duration, default=duration("1d"), metavar="AGE", help="default: 1d")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="gate-report.json or a traces .jsonl (default: the champion)",
    )
    p.add_argument("--metrics", type=_metric_list, default=",".join(DEFAULT_METRICS))
    p.add_argument("--threshold", type=_thresholds, metavar="M=V,...", help="per-case thresholds")
    p.add_argument("--max-drop", type=float, default=0.05, help="tolerated worsening (default 0.05)")
    p.add_argument("--sample", type=int, default=0, metavar="N", help="score at most N rows (stable sample)")
    p.add_argument("--output", type=Path, metavar="FILE.json", help="write the comparison as JSON")
    p.add_argument("--no-cache", action="store_true", help="do not read or fill the judgment cache")
    p.set_defaults(func=cmd_monitor)
