"""``ragate feedback export``: human feedback on served answers becomes regression cases.

``ragate serve`` records a user's thumbs up/down on the trace as the MLflow feedback
``user_rating`` (True = up) and a correction as the expectation ``expected_response``.
This module reads those traces back and writes every thumbs-down or corrected trace as a
row of ``datasets/regression/feedback.jsonl``:

``{"id", "question", "ground_truth"?, "tags": ["feedback", "rating:down", "trace:<id>",
"date:YYYY-MM-DD"]}``

- ``question`` is masked (it was masked before it was stored; masked again here).
- ``ground_truth`` is the correction when one was given (masked), absent otherwise.
- Rows are deduplicated by normalised question (case, spacing and punctuation ignored):
  rows already in the file win (they may have been edited by a reviewer), and among new
  traces the newest wins. ``id`` is ``feedback-`` + a hash of the normalised question, so
  the same question always gets the same id.
- The rows are :class:`gates.schema.QuestionRow` rows (``ragate ask --input`` reads them).
  They are not golden rows yet: a golden row needs a reference answer and the ids of the
  documents that hold it (``source_ids``; an empty list means "unanswerable"), which
  feedback does not give; a reviewer adds them before a row moves into a golden set.

``--review`` prints the rows as a table and writes nothing unless ``--yes`` is given too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError

DEFAULT_OUTPUT = Path("datasets/regression/feedback.jsonl")
_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def duration(value: str) -> timedelta:
    """``7d``, ``12h`` or ``30m`` as a :class:`timedelta` (argparse type)."""
    match = _DURATION.match(value)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{value!r}: give a positive duration like 7d, 12h or 30m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def since_text(age: timedelta) -> str:
    """``7d``/``12h``/``30m``: a duration as ``--since`` takes it."""
    minutes = int(age.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def normalised(question: str) -> str:
    """What two questions must share to count as the same: words, lower case."""
    return " ".join(re.findall(r"\w+|<\w+>", question.casefold()))


@dataclass(frozen=True)
class FeedbackTrace:
    """A served answer a user rated down or corrected."""

    trace_id: str
    timestamp_ms: int
    question: str
    answer: str
    rating: str | None  # "up" | "down" | None (a correction without a rating)
    correction: str | None
    comment: str | None


def _latest(assessments: list[Any], name: str) -> Any | None:
    found = [a for a in assessments if a.name == name and getattr(a, "valid", True) is not False]
    return max(found, key=lambda a: a.last_update_time_ms or 0) if found else None


def collect(root: Path, experiment: str, since: timedelta) -> list[FeedbackTrace]:
    """The rated-down or corrected traces of ``experiment`` newer than ``since``, newest first.

    Raises :class:`UsageError` when the experiment does not exist in the tracking store.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    from gates.serve import EXPECTATION_NAME, FEEDBACK_NAME
    from gates.tracking import tracking_uri

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    if found is None:
        raise UsageError(
            f"--experiment {experiment}: no such experiment in {uri} (ragate serve traces into "
            "'ragate-serve' unless given --experiment)"
        )
    start_ms = int((time.time() - since.total_seconds()) * 1000)
    traces = mlflow.search_traces(
        locations=[found.experiment_id],
        filter_string=f"trace.timestamp_ms > {start_ms}",
        return_type="list",
        order_by=["timestamp_ms DESC"],
    )
    out = []
    for trace in traces:
        assessments = list(trace.info.assessments or [])
        rating = _latest(assessments, FEEDBACK_NAME)
        correction = _latest(assessments, EXPECTATION_NAME)
        down = rating is not None and rating.value is False
        if not down and correction is None:
            continue
        root_span = next((s for s in trace.data.spans if s.parent_id is None), None)
        inputs = (root_span.inputs if root_span is not None else None) or {}
        outputs = (root_span.outputs if root_span is not None else None) or {}
        question = inputs.get("question") if isinstance(inputs, dict) else None
        if not question:
            continue  # not a ragate serve trace
        out.append(
            FeedbackTrace(
                trace_id=trace.info.trace_id,
                timestamp_ms=int(trace.info.request_time),
                question=str(question),
                answer=str(outputs.get("answer", "")) if isinstance(outputs, dict) else "",
                rating=None if rating is None else ("up" if rating.value else "down"),
                correction=None if correction is None else str(correction.value),
                comment=None if rating is None else rating.rationale,
            )
        )
    return out


def regression_rows(
    traces: list[FeedbackTrace], existing: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """``existing`` rows plus one row per new normalised question; returns (rows, new count).

    ``traces`` newest first: of one question's traces, the newest with a correction wins,
    else the newest; an existing row always wins.
    """
    from gates.engine import mask_text

    rows = list(existing or [])
    seen = {normalised(str(r.get("question", ""))) for r in rows}
    added = 0
    # Stable sort: corrected traces first, each group still newest first.
    for t in sorted(traces, key=lambda t: not (t.correction and t.correction.strip())):
        question = mask_text(t.question, names=True)
        key = normalised(question)
        if not key or key in seen:
            continue
        seen.add(key)
        day = datetime.fromtimestamp(t.timestamp_ms / 1000, tz=UTC).date().isoformat()
        row: dict[str, Any] = {
            "id": "feedback-" + hashlib.sha256(key.encode()).hexdigest()[:12],
            "question": question,
        }
        if t.correction and t.correction.strip():
            row["ground_truth"] = mask_text(t.correction, names=True)
        row["tags"] = ["feedback", f"rating:{t.rating or 'none'}", f"trace:{t.trace_id}", f"date:{day}"]
        rows.append(row)
        added += 1
    return rows, added


def table(rows: list[dict[str, Any]], width: int = 48) -> str:
    """The rows as a plain-text table (id, trace, date, question, correction)."""

    def cut(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"

    def tag(row: dict[str, Any], prefix: str) -> str:
        return next((t[len(prefix) :] for t in row.get("tags", []) if t.startswith(prefix)), "-")

    lines = [f"{'id':<21} {'rating':<6} {'date':<10} {'question':<{width}} correction"]
    for r in rows:
        lines.append(
            f"{r['id']:<21} {tag(r, 'rating:'):<6} {tag(r, 'date:'):<10} "
            f"{cut(r['question']):<{width}} {cut(r.get('ground_truth') or '-')}"
        )
    return "\n".join(lines)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from gates.schema import QuestionRow
    from ragate_core.jsonl import read_jsonl, write_jsonl
    from ragate_core.project import find_project_root

    root = find_project_root()
    output = args.output if args.output.is_absolute() else root / args.output
    if output.is_dir():
        raise UsageError(f"--output {args.output}: is a directory; give a .jsonl file path")
    existing = (
        [r.model_dump(exclude_none=True) for r in read_jsonl(output, QuestionRow)] if output.is_file() else []
    )
    traces = collect(root, args.experiment, args.since)
    rows, added = regression_rows(traces, existing)
    for row in rows:  # what the harness will read back: checked before anything is written
        QuestionRow.model_validate(row)
    new = rows[len(existing) :]
    window = f"in {args.experiment} over the last {since_text(args.since)}"
    if not new:
        print(
            f"no new thumbs-down or corrected traces {window} ({len(traces)} with feedback); nothing written"
        )
        return 0
    if args.review:
        print(table(new))
        if not args.yes:
            print(
                f"\n{added} new regression case(s) {window}; nothing written "
                f"(add --yes to write {args.output})"
            )
            return 0
    write_jsonl(output, rows)
    print(
        f"wrote {added} new regression case(s) {window} to {args.output} ({len(rows)} in the file)",
        file=sys.stderr,
    )
    return 0


def add_feedback_parser(sub: Any) -> None:
    """The ``feedback`` subcommand group (registered by :func:`gates.cli.build_parser`)."""
    from gates.serve import EXPERIMENT

    p = sub.add_parser(
        "feedback", help="turn served answers users rated down or corrected into regression cases"
    )
    actions = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    e = actions.add_parser("export", help="write thumbs-down and corrected traces as regression cases")
    e.add_argument("--experiment", default=EXPERIMENT, metavar="NAME", help=f"default: {EXPERIMENT}")
    e.add_argument(
        "--since",
        type=duration,
        default=duration("7d"),
        metavar="AGE",
        help="e.g. 7d, 12h, 30m (default: 7d)",
    )
    e.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, metavar="FILE.jsonl", help=f"default: {DEFAULT_OUTPUT}"
    )
    e.add_argument("--review", action="store_true", help="print the new cases; write only with --yes")
    e.add_argument("--yes", action="store_true", help="with --review: write after printing")
    e.set_defaults(func=cmd_feedback_export)


def regression_cases(path: Path, spec: Any, metrics: tuple[str, ...]) -> list[Any]:
    """The :class:`gates.engine.Case` rows of a ``kind: regression`` dataset.

    A missing file (``optional: true`` in the profile; otherwise the profile check refused
    it) or an empty one gives no case. Per row, the metrics in scope are ``metrics`` minus
    those that read source ids (unknown for feedback) and, for a row without a corrected
    answer, minus those that read a ground truth it would need (answer_correctness): out
    of scope, neither scored nor unscored.
    """
    from gates.engine import Case, _in_scope
    from gates.metrics.base import MetricCase, get_metric, metric_names
    from gates.profile import needs_source_ids
    from gates.schema import RegressionRow
    from ragate_core.tables import read_rows

    if not path.is_file() or not path.read_bytes().strip():
        return []
    known = set(metric_names())
    probe = MetricCase(id="", question="", answer="")
    usable = tuple(m for m in metrics if m not in known or not needs_source_ids(get_metric(m)))
    needs_truth = {m for m in usable if m in known and "ground_truth" in get_metric(m).reads(probe)}
    cases = []
    for row in read_rows(path, RegressionRow):
        has_truth = bool((row.ground_truth or "").strip())
        scope = usable if has_truth else tuple(m for m in usable if m not in needs_truth)
        cases.append(
            Case(
                row.id,
                row.id,
                spec.name,
                row.question,
                _in_scope(scope, ground_truth=row.ground_truth if has_truth else None),
                ground_truth=row.ground_truth if has_truth else None,
                # Unknown: a correction may well say "we do not offer that".
                answerable=None,
                tags=tuple(row.tags),
            )
        )
    return cases
