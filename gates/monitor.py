"""``ragate monitor``: production answers scored offline and compared with a baseline.

Production rows come from the traces ``ragate serve`` stored (``--experiment NAME``) or
from a JSONL file (``--traces FILE.jsonl``: rows of ``ragate ask --output`` plus an
optional ISO ``timestamp``, for teams that log elsewhere). Rows newer than ``--since``
are scored with the offline metrics through the judgment cache, and each metric is
compared with a baseline: ``--baseline`` a ``gate-report.json`` or another traces file,
by default the champion's recorded gate scores in the profile's environment
(:func:`gates.tracking.champion_baseline`).

The rules live in the ``monitor:`` section of the profile (default ``prod``; validated
with the rest of it by :func:`gates.profile.load_profile`)::

    monitor:
      since: 1d            # default window (--since overrides)
      sample: 500          # score at most this many rows (stable sample; --sample overrides)
      metrics:
        faithfulness: {max_drop: 0.05, max_failing_share: 0.5}
        latency: {max_drop: 0.25}   # a metric with a unit: a fraction of the baseline mean

Per metric: the mean now and in the baseline, their difference with a 95% bootstrap
interval (independent resamples of both, fixed seed), the share of cases failing the
per-case threshold (``monitor.metrics.<m>.threshold``, else the profile's
``metrics.<m>.threshold``, else the metric's own) now and in the baseline, and per day
(UTC) the same figures: the day's mean, its difference from the baseline's mean with a
95% bootstrap interval, and its failing share. An alert is raised when

- the mean got worse by more than ``max_drop`` *and* the whole interval of the difference
  lies on the worse side (noise alone does not alert), or
- the window's failing share exceeds ``max_failing_share``, or
- nothing could be scored now or in the baseline (fail closed).

Output: the terminal table, and ``monitor-report.json``, ``.md`` and ``.html`` (a time
series per metric and day, self-contained) in ``--report-dir``; an MLflow run in the
experiment ``ragate-monitor`` with the rules as params, the window's figures as metrics,
the per-day figures as stepped metrics (``<metric>.daily_mean`` etc.; step = the day's
number since 1970-01-01 UTC, timestamp = its midnight, so MLflow plots them over days)
and the reports as artifacts. Exit status: 1 on an alert, 2 when the window holds no row (never "no
drift") or on a usage error, else 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError

RESAMPLES = 2000
SEED = 20261130
MONITOR_EXPERIMENT = "ragate-monitor"
REPORT_STEM = "monitor-report"


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
    """One metric now against the baseline (``diff`` = now - baseline).

    ``unit`` is ``None`` for a score in [0, 1], else its unit (``ms``, a currency);
    ``per_day`` / ``per_day_failing`` / ``per_day_n`` map ISO dates (UTC) to the day's mean,
    failing share and scored cases; ``per_day_diff`` / ``per_day_interval`` to the day's
    difference of means against the whole baseline and its 95% bootstrap interval (absent
    when the baseline has no scores); ``alerts`` says which rule fired (empty: quiet)."""

    metric: str
    direction: str
    unit: str | None
    threshold: float
    max_drop: float
    max_failing_share: float | None
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
    per_day_failing: dict[str, float]
    per_day_n: dict[str, int]
    alerts: tuple[str, ...]
    why: str
    per_day_diff: dict[str, float] = field(default_factory=dict)
    per_day_interval: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def alert(self) -> bool:
        return bool(self.alerts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = list(self.interval) if self.interval else None
        data["alerts"] = list(self.alerts)
        data["per_day_interval"] = {d: list(ci) for d, ci in self.per_day_interval.items()}
        data["alert"] = self.alert
        return data


@dataclass(frozen=True)
class MonitorResult:
    """One monitor run: where the rows came from, the baseline, every metric's drift."""

    source: str
    since: str
    baseline: str
    rows: int
    profile: str
    profile_sha256: str
    created: str
    drifts: tuple[MetricDrift, ...] = field(default_factory=tuple)

    @property
    def alert(self) -> bool:
        return any(d.alert for d in self.drifts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "since": self.since,
            "baseline": self.baseline,
            "rows": self.rows,
            "profile": self.profile,
            "profile_sha256": self.profile_sha256,
            "created": self.created,
            "alert": self.alert,
            "metrics": [d.to_dict() for d in self.drifts],
        }


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
    from ragate_core.jsonl import describe_validation, json_objects

    rows = []
    for where, _, data in json_objects(path):
        stamp = _parse_time(data.pop("timestamp", None), where)
        try:
            row = AnswerRow.model_validate(data)
        except ValidationError as exc:
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
    rows: Sequence[ProductionRow], metrics: Mapping[str, Any], cache: Any
) -> dict[str, list[tuple[datetime | None, float | None]]]:
    """Per metric (name -> metric instance), ``(timestamp, value)`` per row in its scope
    (``None`` value = unscored)."""
    from gates.metrics.base import applies
    from gates.scoring import metric_case, score_through_cache

    cases = [metric_case(dataclasses.asdict(r)) for r in rows]
    out: dict[str, list[tuple[datetime | None, float | None]]] = {}
    for name, metric in metrics.items():
        chosen = [(r, c) for r, c in zip(rows, cases) if applies(metric, c)]
        scores, _ = score_through_cache(metric, [c for _, c in chosen], cache)
        out[name] = [(r.timestamp, s.value) for (r, _), s in zip(chosen, scores)]
    return out


def baseline_values(
    spec: Path | None, root: Path, env: str, metrics: Mapping[str, Any], cache: Any
) -> tuple[str, dict[str, list[float | None]]]:
    """(where the baseline came from, per-metric values)."""
    if spec is None:
        from gates.tracking import TrackingError, champion_baseline

        try:
            champion = champion_baseline(root, env)
        except TrackingError as exc:
            raise UsageError(
                f"no baseline: {exc}; give --baseline gate-report.json or a traces file"
            ) from None
        if champion is None or not champion.scores:
            raise UsageError(
                f"no baseline: no champion with a recorded {env} gate run; give --baseline "
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
    metric: Any,
    pairs: Sequence[tuple[datetime | None, float | None]],
    base: Sequence[float | None],
    threshold: float,
    max_drop: float,
    max_failing_share: float | None = None,
) -> MetricDrift:
    """One metric's drift against the baseline (fail closed: nothing scored is an alert).

    ``metric`` is a metric instance (name, direction, optional unit); ``pairs`` are
    (timestamp, value) now, ``None`` values unscored; ``base`` the baseline's values."""
    import numpy as np

    from gates.metrics.base import passes

    name, direction = metric.name, metric.direction
    unit = getattr(metric, "unit", None)
    scored = np.array([v for _, v in pairs if v is not None], dtype=float)
    reference = np.array([v for v in base if v is not None], dtype=float)
    n_unscored = sum(v is None for _, v in pairs)

    def fails(value: float) -> bool:
        return not passes(metric, value, threshold)

    days: dict[str, list[float]] = {}
    for stamp, value in pairs:
        if value is not None:
            day = (stamp or datetime.now(tz=UTC)).astimezone(UTC).date().isoformat()
            days.setdefault(day, []).append(value)
    ordered = sorted(days.items())

    def failing(values: Any) -> float | None:
        return None if not len(values) else float(np.mean([fails(v) for v in values]))

    common: dict[str, Any] = dict(
        metric=name,
        direction=direction,
        unit=unit,
        threshold=threshold,
        max_drop=max_drop,
        max_failing_share=max_failing_share,
        n=len(scored),
        n_unscored=n_unscored,
        baseline_n=len(reference),
        failing_share=failing(scored),
        baseline_failing_share=failing(reference),
        per_day={d: round(float(np.mean(v)), 6) for d, v in ordered},
        per_day_failing={d: round(float(np.mean([fails(x) for x in v])), 6) for d, v in ordered},
        per_day_n={d: len(v) for d, v in ordered},
    )
    if len(reference):
        # Each day against the whole baseline: the same test as the window's, per day.
        base_mean = float(reference.mean())
        common["per_day_diff"] = {d: round(float(np.mean(v)) - base_mean, 6) for d, v in ordered}
        common["per_day_interval"] = {
            d: tuple(round(x, 6) for x in _bootstrap_diff(np.array(v, dtype=float), reference))
            for d, v in ordered
        }
    if not len(scored) or not len(reference):
        which = "nothing scored now" if not len(scored) else "the baseline has no scores"
        return MetricDrift(
            **common,
            mean=float(scored.mean()) if len(scored) else None,
            baseline_mean=float(reference.mean()) if len(reference) else None,
            diff=None,
            interval=None,
            alerts=("unscored",),
            why=f"{which} (fails closed)",
        )
    mean, base_mean = float(scored.mean()), float(reference.mean())
    diff = mean - base_mean
    low, high = _bootstrap_diff(scored, reference)
    tolerance = max_drop * (abs(base_mean) if unit else 1.0)
    worse = -diff if direction == "higher_is_better" else diff
    significant = high < 0 if direction == "higher_is_better" else low > 0
    alerts = []
    reasons = []
    if significant and worse > tolerance:
        alerts.append("max_drop")
        reasons.append(
            f"worse by {worse:.4g} (> {tolerance:.4g}), 95% CI of the difference [{low:.4g}, {high:.4g}]"
        )
    elif worse <= tolerance:
        reasons.append(f"difference {diff:+.4g}, 95% CI [{low:.4g}, {high:.4g}]: within {tolerance:.4g}")
    else:  # worse than allowed, but the interval still holds "no change": too few answers to say
        reasons.append(
            f"worse by {worse:.4g} (> {tolerance:.4g}), but not significant: 95% CI of the difference "
            f"[{low:.4g}, {high:.4g}] includes 0 ({len(scored)} answers)"
        )
    share = common["failing_share"]
    if max_failing_share is not None and share is not None and share > max_failing_share:
        alerts.append("max_failing_share")
        reasons.append(f"{share:.1%} of cases fail the threshold (> {max_failing_share:.1%})")
    return MetricDrift(
        **common,
        mean=mean,
        baseline_mean=base_mean,
        diff=diff,
        interval=(low, high),
        alerts=tuple(alerts),
        why="; ".join(reasons),
    )


def table(drifts: Sequence[MetricDrift]) -> str:
    """The terminal table: one line per metric, the unit beside the figures that have one."""

    def f(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    lines = [
        f"{'metric':<18} {'unit':<5} {'n':>5} {'now':>9} {'baseline':>9} {'diff':>9} {'95% CI':<21} "
        f"{'fail now':>8} {'fail base':>9}  verdict"
    ]
    for d in drifts:
        ci = "" if d.interval is None else f"[{d.interval[0]:.3g}, {d.interval[1]:.3g}]"
        lines.append(
            f"{d.metric:<18} {d.unit or '':<5} {d.n:>5} {f(d.mean):>9} {f(d.baseline_mean):>9} "
            f"{f(d.diff):>9} {ci:<21} {pct(d.failing_share):>8} {pct(d.baseline_failing_share):>9}  "
            f"{'ALERT' if d.alert else 'ok'}: {d.why}"
        )
    return "\n".join(lines)


def _metrics_of(profile: Any) -> dict[str, Any]:
    """Name -> the metric instance the monitor scores with (cost gets the profile's prices)."""
    from gates.metrics.base import get_metric

    out = {}
    for name in profile.monitor.metrics:
        metric = get_metric(name)
        configured = getattr(metric, "configured", None)
        out[name] = configured(profile) if callable(configured) else metric
    return out


def _threshold(profile: Any, name: str, metric: Any) -> float:
    rule = profile.monitor.metrics[name]
    if rule.threshold is not None:
        return float(rule.threshold)
    gate = profile.metrics.get(name)
    if gate is not None and gate.threshold is not None:
        return float(gate.threshold)
    return float(metric.default_threshold)


def run_monitor(
    profile: Any,
    rows: Sequence[ProductionRow],
    source: str,
    since: timedelta,
    baseline: Path | None,
    root: Path,
    cache: Any,
) -> MonitorResult:
    """Score ``rows`` with the profile's ``monitor:`` metrics and compare with the baseline."""
    from gates.feedback import since_text

    metrics = _metrics_of(profile)
    now = score_rows(rows, metrics, cache)
    label, base = baseline_values(baseline, root, profile.env, metrics, cache)
    drifts = []
    for name, metric in metrics.items():
        rule = profile.monitor.metrics[name]
        drifts.append(
            compare(
                metric,
                now[name],
                base.get(name, []),
                _threshold(profile, name, metric),
                rule.max_drop,
                rule.max_failing_share,
            )
        )
    return MonitorResult(
        source=source,
        since=since_text(since),
        baseline=label,
        rows=len(rows),
        profile=str(profile.source),
        profile_sha256=profile.sha256,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        drifts=tuple(drifts),
    )


def write_monitor_reports(result: MonitorResult, directory: Path) -> list[Path]:
    """``monitor-report.json``, ``.md`` and ``.html`` in ``directory``: all rendered first,
    then each written atomically (a failing renderer leaves the previous files as they were)."""
    from gates.reporters import write_rendered
    from gates.reporters.monitor import monitor_html, monitor_markdown

    data = result.to_dict()
    rendered = [
        (f"{REPORT_STEM}.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n"),
        (f"{REPORT_STEM}.md", monitor_markdown(data)),
        (f"{REPORT_STEM}.html", monitor_html(data)),
    ]
    return write_rendered(directory, rendered)


def daily_metrics(result: MonitorResult) -> list[Any]:
    """The per-day figures as MLflow metrics with a step each: ``<metric>.daily_mean``,
    ``.daily_diff``, ``.daily_ci_low``, ``.daily_ci_high``, ``.daily_failing_share`` and
    ``.daily_n``; step = days since 1970-01-01 (UTC), timestamp = that day's midnight (ms)."""
    from mlflow.entities import Metric

    out = []
    for d in result.drifts:
        for day, mean in d.per_day.items():
            midnight = datetime.fromisoformat(day).replace(tzinfo=UTC)
            step = (midnight - datetime(1970, 1, 1, tzinfo=UTC)).days
            stamp = int(midnight.timestamp() * 1000)
            interval = d.per_day_interval.get(day)
            figures = {
                "daily_mean": mean,
                "daily_diff": d.per_day_diff.get(day),
                "daily_ci_low": interval[0] if interval else None,
                "daily_ci_high": interval[1] if interval else None,
                "daily_failing_share": d.per_day_failing.get(day),
                "daily_n": d.per_day_n.get(day),
            }
            out += [
                Metric(f"{d.metric}.{name}", float(value), stamp, step)
                for name, value in figures.items()
                if value is not None
            ]
    return out


def track_monitor_run(root: Path, result: MonitorResult, paths: Sequence[Path]) -> str:
    """One MLflow run in ``ragate-monitor``: rules and window as params, figures as metrics,
    the reports as artifacts; returns the run id. Raises ``TrackingError`` when the store
    cannot be used."""
    import os

    from gates.tracking import TrackingError, tracking_uri

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
        from mlflow.tracking import MlflowClient

        from gates.tracking import _default_uri

        uri = tracking_uri(root)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(MONITOR_EXPERIMENT) is None:
            # The default store keeps artifacts in the project (as the gate runs do).
            location = (
                (root / ".ragate" / "mlartifacts").resolve().as_uri() if uri == _default_uri(root) else None
            )
            client.create_experiment(MONITOR_EXPERIMENT, artifact_location=location)
        mlflow.set_experiment(MONITOR_EXPERIMENT)
        params: dict[str, Any] = {
            "source": result.source,
            "since": result.since,
            "baseline": result.baseline,
            "rows": result.rows,
            "profile": result.profile,
            "profile_sha256": result.profile_sha256[:16],
        }
        metrics: dict[str, float] = {"rows": float(result.rows), "alert": float(result.alert)}
        for d in result.drifts:
            params[f"rule.{d.metric}.threshold"] = d.threshold
            params[f"rule.{d.metric}.max_drop"] = d.max_drop
            if d.max_failing_share is not None:
                params[f"rule.{d.metric}.max_failing_share"] = d.max_failing_share
            figures = {
                "mean": d.mean,
                "baseline_mean": d.baseline_mean,
                "diff": d.diff,
                "failing_share": d.failing_share,
                "baseline_failing_share": d.baseline_failing_share,
                "ci_low": d.interval[0] if d.interval else None,
                "ci_high": d.interval[1] if d.interval else None,
            }
            metrics.update({f"{d.metric}.{k}": float(v) for k, v in figures.items() if v is not None})
            metrics[f"{d.metric}.n_scored"] = float(d.n)
            metrics[f"{d.metric}.n_unscored"] = float(d.n_unscored)
            metrics[f"{d.metric}.alert"] = float(d.alert)
        with mlflow.start_run(run_name=f"monitor-{result.created[:10]}") as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            daily = daily_metrics(result)
            for start in range(0, len(daily), 1000):  # MLflow's batch limit
                client.log_batch(run.info.run_id, metrics=daily[start : start + 1000])
            mlflow.set_tags(
                {
                    "ragate.monitor.alert": str(result.alert).lower(),
                    **{f"ragate.monitor.{d.metric}": "ALERT" if d.alert else "ok" for d in result.drifts},
                }
            )
            for path in paths:
                mlflow.log_artifact(str(path))
        return str(run.info.run_id)
    except Exception as exc:  # a server that is down, a store that is locked, ...
        raise TrackingError(f"tracking to {tracking_uri(root)} failed: {type(exc).__name__}: {exc}") from exc


def cmd_monitor(args: argparse.Namespace) -> int:
    from gates.api import _cache
    from gates.feedback import duration, since_text
    from gates.profile import load_profile
    from gates.tracking import TrackingError
    from ragate_core.project import find_project_root

    root = find_project_root()
    profile = load_profile(args.profile, root)
    if profile.monitor is None:
        raise UsageError(
            f"{profile.source}: no monitor: section; add one (monitor: metrics: <name>: max_drop ...) "
            "or give --profile a profile that has it"
        )
    since = args.since or duration(profile.monitor.since)
    sample = args.sample if args.sample is not None else profile.monitor.sample
    if args.traces is not None:
        if not args.traces.is_file():
            raise UsageError(f"--traces {args.traces}: no such file")
        rows = in_window(rows_from_file(args.traces), since)
        source = str(args.traces)
    else:
        rows = rows_from_experiment(root, args.experiment, since)
        source = f"experiment {args.experiment}"
    if not rows:
        raise UsageError(f"no traces in {source} over the last {since_text(since)}: nothing to monitor")
    if sample and len(rows) > sample:
        import random

        rows = random.Random(SEED).sample(list(rows), sample)
    cache = _cache(not args.no_cache, root)
    result = run_monitor(profile, rows, source, since, args.baseline, root, cache)
    print(f"monitor: {result.rows} answers from {source} (last {result.since}) vs {result.baseline}")
    print(table(result.drifts))
    report_dir = args.report_dir if args.report_dir.is_absolute() else Path.cwd() / args.report_dir
    paths = write_monitor_reports(result, report_dir)
    print(f"reports: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    status = 1 if result.alert else 0
    if not args.no_tracking:
        try:
            run_id = track_monitor_run(root, result, paths)
            print(f"MLflow run {run_id} (experiment {MONITOR_EXPERIMENT})", file=sys.stderr)
        except TrackingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = status or 2
    alerts = sum(d.alert for d in result.drifts)
    verdict = "ALERT" if result.alert else "no alert"
    print(f"ragate monitor: {verdict}: {alerts} of {len(result.drifts)} metrics alert")
    return status


def _profile_arg(value: str) -> str:
    from gates import ENVIRONMENTS

    if value in ENVIRONMENTS or value.endswith((".yaml", ".yml")):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: give {', '.join(ENVIRONMENTS)} or a .yaml path")


def add_monitor_parser(sub: Any) -> None:
    """The ``monitor`` subcommand (registered by :func:`gates.cli.build_parser`)."""
    from gates.feedback import duration
    from gates.serve import EXPERIMENT

    p = sub.add_parser("monitor", help="score production answers and compare them with a baseline")
    p.add_argument(
        "--profile",
        type=_profile_arg,
        default="prod",
        metavar="ENV|FILE.yaml",
        help="the profile whose monitor: section has the rules (default: prod)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--experiment", default=EXPERIMENT, metavar="NAME", help=f"default: {EXPERIMENT}")
    where.add_argument(
        "--traces", type=Path, metavar="FILE.jsonl", help="ragate ask --output rows (+ timestamp)"
    )
    p.add_argument("--since", type=duration, metavar="AGE", help="e.g. 1d, 12h (default: the profile's)")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="gate-report.json or a traces .jsonl (default: the champion)",
    )
    p.add_argument("--sample", type=_positive, metavar="N", help="score at most N rows (stable sample)")
    p.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where monitor-report.json/.md/.html go (default: reports)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or fill the judgment cache")
    p.add_argument("--no-tracking", action="store_true", help="do not log an MLflow run")
    p.set_defaults(func=cmd_monitor)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number >= 1")
    return int(value)
