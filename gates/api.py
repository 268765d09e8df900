"""ragate from Python: a table of answers in, a table of scores (and gate results) out.

    from gates import evaluate

    ev = evaluate(df, profile="ci")          # a DataFrame, a list of dicts or a .jsonl/.csv/.parquet path
    ev.scores.sort_values("faithfulness").head()   # one row per case: metric values and reasons
    ev.gates                                 # one row per gate of the profile
    ev.passed                                # the verdict, decided as `pytest -m gate` decides it
    ev.write("reports/")                     # the reports the gate run writes

The columns are those of ``ragate score`` rows (:class:`gates.schema.AnswerRow`):
``question``, ``answer``, ``contexts`` and optionally ``id`` (the row label when absent),
``ground_truth``, ``answerable``, ``source_ids``, ``sources``, ``tags``, ``latency_ms``,
``blocked``, ``rail``... Given a ``chain`` and no ``answer`` column, the questions are
answered first, through the project's generation cache (the same entries the gate run
reads and writes). Scores are the metrics' own, computed as ``ragate score`` and the gate
run compute them (same :class:`~gates.metrics.base.MetricCase`, same batches, same
judgment cache), and the gate results come from :func:`gates.verdict.evaluate_metric`.

Every problem with the input (a missing column, a ``contexts`` cell that is not a list of
strings, an unknown metric or column) raises :class:`ragate_core.tables.DataError`, a
``ValueError``, naming the row, the column and what was expected, before any model loads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from gates.schema import AnswerRow, QuestionRow
from ragate_core.errors import UsageError
from ragate_core.tables import DataError, check_columns, read_rows, validate_records

if TYPE_CHECKING:
    import pandas as pd

    from gates.metrics.base import Metric, Score
    from gates.profile import GateProfile
    from gates.verdict import GateResult

__all__ = ["DEFAULT_METRICS", "DataError", "Evaluation", "evaluate"]

# What `ragate score` scores by default.
DEFAULT_METRICS = ("faithfulness", "answer_relevancy", "toxicity", "pii")
GATE_COLUMNS = (
    "gate",
    "metric",
    "rule",
    "threshold",
    "observed",
    "ci_low",
    "ci_high",
    "n_scored",
    "n_unscored",
    "passed",
    "note",
)


class QuestionInput(QuestionRow):
    """A question for :func:`evaluate` to answer with a chain (no ``answer`` column)."""

    answerable: bool | None = None


@dataclass
class _Case:
    """One row to score: what the data said, and the chain's answer if it generated one."""

    id: str
    question: str
    fields: dict[str, Any]  # the row's fields (AnswerRow / QuestionInput), lists as tuples
    answer: dict[str, Any] | None = None
    error: str | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    # What the metrics read as the question when it differs from ``question`` (see _generate).
    scored_question: str | None = None


@dataclass(frozen=True, eq=False)  # DataFrames have no truth value to compare by
class Evaluation:
    """What :func:`evaluate` measured and decided.

    - ``scores``: a DataFrame indexed by case ``id``, with ``question``, ``answer``, one
      column per metric (its value; NaN = unscored) and one ``<metric>_reason`` column each.
    - ``gates``: a DataFrame, one row per gate (``gate``, ``metric``, ``rule``,
      ``threshold``, ``observed``, ``ci_low``, ``ci_high``, ``n_scored``, ``n_unscored``,
      ``passed``, ``note``); empty without a profile.
    - ``passed``: the verdict: at least one gate ran, all passed and every gated metric of
      the profile was scored. Without a profile nothing is gated, so it is ``False`` (fail
      closed): give ``profile=`` to gate.
    - ``report``: the gate report (:class:`gates.results.GateReport`, what
      ``gate-report.json`` holds), built on first use; as in the gate run's reports,
      personal data in its questions, answers and errors is masked.
    """

    scores: pd.DataFrame
    gates: pd.DataFrame
    passed: bool
    metrics: tuple[str, ...]
    thresholds: Mapping[str, float]
    directions: Mapping[str, str]
    _build_report: Callable[[], Any] = field(repr=False, compare=False)

    @functools.cached_property
    def report(self) -> Any:
        return self._build_report()

    def worst(self, metric: str, n: int = 5) -> pd.DataFrame:
        """The ``n`` worst cases on ``metric`` (unscored first, then by the metric's direction)."""
        if metric not in self.metrics:
            raise DataError(f"metric {metric!r} was not evaluated; evaluated: {', '.join(self.metrics)}")
        higher = self.directions.get(metric) == "higher_is_better"
        frame = self.scores[["question", "answer", metric, f"{metric}_reason"]]
        return frame.sort_values(metric, ascending=higher, na_position="first", kind="stable").head(n)

    def to_html(self) -> str:
        """The HTML gate report (self-contained), as the gate run writes it."""
        from gates.reporters import get_reporter

        return get_reporter("html").render(self.report)

    def write(self, directory: str | os.PathLike[str], reporters: Sequence[str] | None = None) -> list[Path]:
        """Write the gate reports (JSON, Markdown, JUnit XML, HTML by default) atomically into
        ``directory``; returns the paths written."""
        from gates.reporters import write_reports

        return write_reports(self.report, Path(directory), list(reporters) if reporters else None)

    def _repr_html_(self) -> str:  # how a notebook shows it: the summary and the gates
        from html import escape

        table = self.gates.to_html(index=False) if len(self.gates) else "<p>No gate: give profile=.</p>"
        return f"<p><code>{escape(repr(self))}</code></p>{table}"

    def __repr__(self) -> str:
        verdict = "PASS" if self.passed else ("FAIL" if len(self.gates) else "not gated")
        return (
            f"<Evaluation: {len(self.scores)} cases, metrics {', '.join(self.metrics)}; "
            f"{len(self.gates)} gates, {verdict}>"
        )


def evaluate(
    data: Any,
    metrics: str | Sequence[str] | None = None,
    profile: str | os.PathLike[str] | GateProfile | None = None,
    chain: Any = None,
    *,
    cache: bool | str | os.PathLike[str] = True,
    root: str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Score ``data`` with ragate's metrics and, given a profile, decide its gates.

    ``data``: a pandas DataFrame, a list of dicts or a path to a ``.jsonl``, ``.csv`` or
    ``.parquet`` file, with the columns of ``ragate score`` rows (see the module doc).
    ``metrics``: metric names (default: the profile's metrics, else those ``ragate score``
    uses: faithfulness, answer_relevancy, toxicity, pii). ``profile``: ``"ci"``,
    ``"staging"``, ``"prod"``, a YAML path or a :class:`~gates.profile.GateProfile`; its
    metrics, per-case thresholds and rules apply to ``data`` (its datasets are not read, and
    ``max_regression``, which needs the champion's recorded scores, is left to the gate run).
    ``chain``: a :class:`~gates.chain.Chain` object, a factory (callable taking no argument)
    or its import string ``"module:factory"``; used only when ``data`` has no ``answer``
    column (as in the gate run, the metrics then read the question with personal data
    masked; given answers are scored as written, as ``ragate score`` scores them).
    ``cache``: ``True`` for the project's cache (``.ragate/cache/gates.sqlite``),
    ``False`` for none, or a SQLite file path. ``root``: the project folder (default: found
    from the working directory) that profile paths and the cache resolve against.

    Raises :class:`~ragate_core.tables.DataError` (a ``ValueError``) for bad input, before
    any model loads. A metric or chain error does not raise: the case is unscored (NaN in
    ``scores``, the error as its reason) and counted by the gates.
    """
    from gates.metrics.base import metric_names
    from gates.results import decide
    from ragate_core.project import find_project_root

    project = Path(root) if root is not None else find_project_root()
    gate_profile = _load_profile(profile, project)
    names = _metric_names(metrics, gate_profile, metric_names())
    has_answers, rows = _load_data(data, chain is not None)
    instances = {name: _metric(name, gate_profile, project) for name in names}
    store = _cache(cache, project)

    chain_version: dict[str, str] = {}
    if has_answers:
        cases = [_Case(r.id, r.question, _fields(r)) for r in rows]
    else:
        cases, chain_version = _generate(rows, chain, gate_profile, store)
    _score(cases, instances, store)

    thresholds = {
        name: (
            gate_profile.metrics[name].threshold
            if gate_profile
            and name in gate_profile.metrics
            and gate_profile.metrics[name].threshold is not None
            else instances[name].default_threshold
        )
        for name in names
    }
    gates = _gates(cases, instances, thresholds, gate_profile)
    # A gated metric of the profile that was not evaluated is missing: the run fails closed.
    missing = sorted(set(gate_profile.metrics if gate_profile else ()) - {g.metric for g in gates})
    return Evaluation(
        scores=_scores_frame(cases, names),
        gates=_gates_frame(gates),
        passed=decide(gates, missing),
        metrics=tuple(names),
        thresholds=thresholds,
        directions={n: m.direction for n, m in instances.items()},
        _build_report=lambda: _report(
            cases, names, instances, thresholds, gates, gate_profile, chain_version
        ),
    )


# -- input ------------------------------------------------------------------------------


def _load_profile(profile: Any, root: Path) -> GateProfile | None:
    from gates.profile import GateProfile, load_profile

    if profile is None or isinstance(profile, GateProfile):
        return profile
    if not isinstance(profile, (str, os.PathLike)):
        raise DataError(
            f"profile: expected 'ci', 'staging', 'prod', a YAML path or a GateProfile, "
            f"got {type(profile).__name__}"
        )
    try:
        return load_profile(os.fspath(profile), root)
    except DataError:
        raise
    except UsageError as exc:
        raise DataError(str(exc)) from exc


def _metric_names(metrics: Any, profile: GateProfile | None, known: list[str]) -> list[str]:
    if metrics is None:
        names = list(profile.metrics) if profile is not None else list(DEFAULT_METRICS)
    elif isinstance(metrics, str):
        names = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        names = [str(m) for m in metrics]
    if not names:
        raise DataError(f"metrics: no metric given; choose from {', '.join(known)}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DataError(
            f"metrics: unknown metric{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known metrics: {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


def _metric(name: str, profile: GateProfile | None, root: Path) -> Metric:
    from gates.metrics.base import get_metric

    gate = profile.metrics.get(name) if profile is not None else None
    if gate is not None and gate.judge == "llm":  # as the gate run does: the LLM-judge variant
        from gates.metrics.llm_metrics import llm_metric

        try:
            return llm_metric(name, root, where=f"{profile.source}: metrics.{name}.judge")
        except UsageError as exc:
            raise DataError(str(exc)) from exc
    return get_metric(name)


def _load_data(data: Any, with_chain: bool) -> tuple[bool, list[Any]]:
    """(whether the rows carry answers, the validated rows)."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        has_answers = not with_chain or "answer" in _file_columns(path)
        rows = read_rows(path, AnswerRow if has_answers else QuestionInput)
    else:
        where_records, columns = _records(data)
        if not where_records:  # an empty list or DataFrame: no rows, whatever its columns
            raise DataError("data: no rows to evaluate")
        has_answers = not with_chain or "answer" in columns
        model: type[BaseModel] = AnswerRow if has_answers else QuestionInput
        check_columns(columns, model, "data")
        rows = validate_records(where_records, model)
    if not rows:
        raise DataError("data: no rows to evaluate")
    return has_answers, rows


def _records(data: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """``(where, record)`` pairs and the columns, from a DataFrame or a list of dicts.

    A missing ``id`` column is filled with the row label (DataFrame) or number (list).
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a pinned dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        fill_id = "id" not in columns
        records = []
        for label, values in zip(data.index, data.itertuples(index=False, name=None)):
            record = dict(zip(columns, values))
            if fill_id:
                record["id"] = str(label)
            records.append((f"row {label!r}", record))
        return records, (["id"] if fill_id else []) + columns
    if isinstance(data, Mapping) or not isinstance(data, Sequence):
        raise DataError(
            "data: expected a pandas DataFrame, a list of dicts or a path to a .jsonl, .csv or "
            f".parquet file; got {type(data).__name__}"
        )
    columns: list[str] = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise DataError(f"data[{i}]: expected a dict (one row), got {type(item).__name__}")
        columns.extend(str(k) for k in item if str(k) not in columns)
    fill_id = "id" not in columns
    records = [
        (f"row {i}", ({"id": str(i)} if fill_id else {}) | {str(k): v for k, v in item.items()})
        for i, item in enumerate(data)
    ]
    return records, (["id"] if fill_id else []) + columns


def _file_columns(path: Path) -> list[str]:
    """The column names of a data file (its first row for JSONL), to tell answers from questions."""
    import csv
    import json

    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                return [c.strip() for c in next(csv.reader(handle), [])]
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    first = json.loads(line)
                    return list(first) if isinstance(first, dict) else []
    except Exception:  # unreadable: read_rows reports it properly, with the line
        return []
    return []


def _fields(row: BaseModel) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.model_dump().items()}


# -- generation -------------------------------------------------------------------------


def _resolve_chain(chain: Any) -> tuple[Any, str | None]:
    from gates.chain import load_chain_factory

    spec = None
    if isinstance(chain, str):
        spec = chain
        try:
            factory: Callable[[], Any] = load_chain_factory(chain)
        except UsageError as exc:
            raise DataError(f"chain={chain!r}: {exc}") from exc
        chain = factory()
    elif callable(chain) and not hasattr(chain, "invoke"):
        chain = chain()
    if not callable(getattr(chain, "invoke", None)):
        raise DataError(
            f"chain: expected an object with invoke(question), a factory returning one, or "
            f"'module:factory'; got {type(chain).__name__}"
        )
    return chain, spec


def _generate(
    rows: list[Any], chain: Any, profile: GateProfile | None, store: Any
) -> tuple[list[_Case], dict[str, str]]:
    """Answer every question (each ``repeats`` times under the profile's sampling), through
    the generation cache, keyed as the gate run keys it; the metrics then read the masked
    question, as in the gate run."""
    from gates.cache import content_key
    from gates.chain import Answer, call_chain, chain_version, check_sampling_support
    from gates.engine import mask_text, question_keep, store_answers

    chain, spec = _resolve_chain(chain)
    version = chain_version(chain, spec)
    repeats = profile.sampling.repeats if profile else 1
    temperature = profile.sampling.temperature if profile else None
    sampled = profile is not None and profile.sampling.active
    if sampled:
        check_sampling_support(chain, spec, repeats, temperature)
    cases: list[_Case] = []
    keys: list[str] = []
    for repeat in range(repeats):
        for row in rows:
            suffix = f"#r{repeat + 1}" if repeats > 1 else ""
            case = _Case(f"{row.id}{suffix}", row.question, _fields(row) | {"_repeat": repeat})
            # As in the gate run: the chain gets the question as written, the metrics (and the
            # reports) its masked form.
            case.scored_question = mask_text(row.question, True, question_keep(row))
            cases.append(case)
            keys.append(content_key("generation", version, row.question, repeat, temperature))
    cached = store.get_many("generation", keys)
    todo = []
    for case, key in zip(cases, keys):
        if key in cached:
            case.answer = Answer.of(cached[key]).to_dict()
        else:
            todo.append((case, key))

    def work(item: tuple[_Case, str]) -> None:
        case, _ = item
        try:
            answer = call_chain(
                chain, case.question, repeat=case.fields["_repeat"], temperature=temperature, sampled=sampled
            )
            case.answer = answer.to_dict()  # the form the gate run caches
        except Exception as exc:  # counted as unscored for every metric, never dropped
            case.error = f"generation failed: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=profile.concurrency if profile else 2) as pool:
        list(pool.map(work, todo))
    # Stored as the gate run stores them: an answer holding personal data is kept masked
    # (where this reader never looks, so the next call answers it again rather than score it).
    store_answers(store, {k: Answer.of(c.answer) for c, k in todo if c.answer is not None})
    return cases, version


# -- scoring ----------------------------------------------------------------------------


def _case_fields(case: _Case) -> dict[str, Any]:
    # A generated answer overrides nothing the data said but the answer itself and what the
    # chain reports about it (contexts, sources, latency, rails).
    merged = {k: v for k, v in case.fields.items() if not k.startswith("_")}
    if case.answer is not None:
        merged |= case.answer
    merged["id"], merged["question"] = case.id, case.scored_question or case.question
    return merged


def _score(cases: list[_Case], metrics: Mapping[str, Metric], store: Any) -> None:
    # The one scoring loop (gates.scoring): the gate run and `ragate score` use it too.
    from gates.metrics.base import Score
    from gates.scoring import metric_case, score_through_cache

    answered = [c for c in cases if "answer" in c.fields or c.answer is not None]
    mcs = [metric_case(_case_fields(c)) for c in answered]
    for name, metric in metrics.items():
        for case in cases:  # no answer (the chain failed): unscored for every metric, not dropped
            if "answer" not in case.fields and case.answer is None:
                case.scores[name] = Score(name, metric.version, None, case.error or "no answer")
        scores, _ = score_through_cache(metric, mcs, store)
        for case, score in zip(answered, scores):
            case.scores[name] = score


def _cache(cache: Any, root: Path) -> Any:
    from gates.cache import Cache, NoCache

    if cache is False or cache is None:
        return NoCache()
    if cache is True:
        from ragate_core.project import tool_table

        folder = Path(
            os.environ.get("RAGATE_CACHE_DIR") or tool_table(root).get("cache_dir", ".ragate/cache")
        )
        return Cache((folder if folder.is_absolute() else root / folder) / "gates.sqlite")
    return Cache(Path(cache))


# -- results ----------------------------------------------------------------------------


def _gates(
    cases: list[_Case],
    metrics: Mapping[str, Metric],
    thresholds: Mapping[str, float],
    profile: GateProfile | None,
) -> list[GateResult]:
    from gates.verdict import metric_gates

    if profile is None:
        return []
    # A case outside a metric's scope ("not applicable", e.g. retrieval on an unanswerable
    # case) is neither scored nor unscored, as in the gate run.
    return metric_gates(
        profile,
        metrics,
        thresholds,
        lambda name: [c.scores[name].value for c in cases if not _not_applicable(c.scores[name])],
        # Repeats of one row ("<id>#r2") resample together, as in the gate run.
        lambda name: [
            c.id.rsplit("#r", 1)[0] if profile.sampling.repeats > 1 else c.id
            for c in cases
            if not _not_applicable(c.scores[name])
        ],
    )


def _report(
    cases: list[_Case],
    names: list[str],
    metrics: Mapping[str, Metric],
    thresholds: Mapping[str, float],
    gates: list[GateResult],
    profile: GateProfile | None,
    chain_version: dict[str, str],
) -> Any:
    from gates.engine import mask_text, masked_answer_and_reasons
    from gates.report import build_report
    from gates.reporters import metric_units

    records = {}
    for case in cases:
        merged = _case_fields(case)
        answer, reasons = masked_answer_and_reasons(
            merged.get("answer"),
            tuple(merged.get("contexts") or ()),
            {m: case.scores[m].reason for m in names if not _not_applicable(case.scores[m])},
        )
        records[case.id] = {
            "id": case.id,
            "dataset": "data",
            "question": mask_text(case.question, names=True),
            "tags": list(merged.get("tags") or ()),
            "answer": answer,
            "sources": list(merged["sources"]) if merged.get("sources") is not None else None,
            "latency_ms": merged.get("latency_ms"),
            "blocked": merged.get("blocked"),
            "rail": merged.get("rail"),
            "error": None if case.error is None else mask_text(case.error, names=True),
            "scores": {m: case.scores[m].value for m in names if not _not_applicable(case.scores[m])},
            "reasons": reasons,
        }
    # Thresholds of the gated metrics only: a gated metric that reported no gate is missing.
    gated = list(profile.metrics) if profile is not None else []
    run_info = {
        "profile": str(profile.source) if profile is not None else None,
        "profile_sha256": profile.sha256 if profile is not None else None,
        "chain_version": chain_version,
        "thresholds": {m: thresholds.get(m, _default_threshold(m)) for m in gated},
        "directions": {m: metrics[m].direction if m in metrics else _direction(m) for m in gated}
        | {m: metrics[m].direction for m in names},
        "stats": {"cases": len(cases)} | ({"units": metric_units(profile)} if profile is not None else {}),
        "flaky": {},
    }
    env = profile.env if profile is not None else "notebook"
    return build_report(env, {g.name: g for g in gates}, records, run_info)


def _not_applicable(score: Score) -> bool:
    return bool(score.details.get("not_applicable"))


def _default_threshold(name: str) -> float:
    from gates.metrics.base import get_metric

    return get_metric(name).default_threshold


def _direction(name: str) -> str:
    from gates.metrics.base import get_metric

    return get_metric(name).direction


def _scores_frame(cases: list[_Case], names: list[str]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for case in cases:
        merged = _case_fields(case)
        row: dict[str, Any] = {"id": case.id, "question": case.question, "answer": merged.get("answer")}
        for name in names:
            value = case.scores[name].value
            row[name] = float("nan") if value is None else value
        for name in names:
            row[f"{name}_reason"] = case.scores[name].reason
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["id", "question", "answer", *names, *(f"{n}_reason" for n in names)])
    for name in names:
        frame[name] = frame[name].astype(float)
    return frame.set_index("id")


def _gates_frame(gates: list[GateResult]) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "gate": g.name,
            "metric": g.metric,
            "rule": g.rule,
            "threshold": g.threshold,
            "observed": g.observed,
            "ci_low": g.interval[0] if g.interval else None,
            "ci_high": g.interval[1] if g.interval else None,
            "n_scored": g.n_scored,
            "n_unscored": g.n_unscored,
            "passed": g.passed,
            "note": g.note,
        }
        for g in gates
    ]
    return pd.DataFrame(rows, columns=list(GATE_COLUMNS))
