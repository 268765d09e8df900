"""ragate's metrics as MLflow GenAI scorers: ``mlflow.genai.evaluate`` runs them unchanged.

    import mlflow
    from gates.metrics.mlflow_scorers import ragate_scorers

    mlflow.genai.evaluate(data=rows, scorers=ragate_scorers(["faithfulness", "toxicity"]))

Each scorer wraps one registered ragate metric (offline, no judge model, no API key) and
returns an MLflow ``Feedback`` named after the metric: ``value`` is the metric's own
score (the same number ``ragate score`` gives; for toxicity and pii the probability of a
violation), ``rationale`` its reason, ``metadata`` the metric version, direction, per-case
threshold and whether the case passes it. A case the metric cannot score comes back as a
``Feedback`` with ``error`` set (MLflow counts it as an error), never as a made-up value;
a case outside the metric's scope (retrieval metrics on an unanswerable case) gets no
assessment at all.

Where a scorer finds a case's fields in MLflow's rows:

- the question: ``inputs`` as a string, or ``inputs["question"]`` (also ``query``,
  ``input``, ``request``, the only key of a one-key dict, or the last chat message);
- the answer: ``outputs`` as a string, or ``outputs["answer"]`` (also ``response``,
  ``output``, chat formats);
- the contexts: ``outputs["contexts"]`` (or ``retrieved_context``, or the same keys in
  ``inputs``), else the RETRIEVER spans of the row's trace;
- ``sources``, ``latency_ms``, ``blocked``, ``rail``: ``outputs`` (not the trace's duration:
  without a ``predict_fn`` MLflow times its own placeholder trace, not the chain);
- ``ground_truth`` (or ``expected_response``), ``answerable``, ``source_ids``:
  ``expectations``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow.entities import AssessmentSource, AssessmentSourceType, Feedback
from mlflow.genai.scorers import Scorer

from gates.metrics.base import get_metric, metric_names, passes

_QUESTION_KEYS = ("question", "query", "input", "request")
_ANSWER_KEYS = ("answer", "response", "output")
_CONTEXT_KEYS = ("contexts", "retrieved_context", "context")
_OUTPUT_FIELDS = ("sources", "latency_ms", "blocked", "rail")
_EXPECTATION_FIELDS = {
    "ground_truth": ("ground_truth", "expected_response", "expected_answer"),
    "answerable": ("answerable",),
    "source_ids": ("source_ids",),
}
# MLflow runs scorers in a thread pool; a metric loads its models on first use and is not
# promised to be thread-safe, so each metric scores one case at a time.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(name, threading.Lock())


class RagateScorer(Scorer):
    """One ragate metric as an MLflow scorer (see the module doc for the fields it reads).

    ``metric`` is a registered metric name; ``threshold`` the per-case threshold recorded
    in each feedback's metadata (default: the metric's own). The scorer's ``name``, which
    MLflow shows as the assessment and metric name, is the metric's name.
    """

    metric: str
    threshold: float | None = None

    def __call__(
        self,
        *,
        inputs: Any = None,
        outputs: Any = None,
        expectations: dict[str, Any] | None = None,
        trace: Any = None,
    ) -> Feedback | None:
        from gates.scoring import metric_case, score_batches

        metric = get_metric(self.metric)
        source = AssessmentSource(
            source_type=AssessmentSourceType.CODE, source_id=f"ragate/{metric.name}@{metric.version}"
        )
        try:
            case = metric_case(case_fields(inputs, outputs, expectations, trace))
        except Exception as exc:  # a row MLflow cannot give us: an error, never a guessed score
            return Feedback(name=self.name, error=f"{type(exc).__name__}: {exc}", source=source)
        with _lock(self.metric):
            (score,) = score_batches(metric, [case])  # a metric error -> unscored, as everywhere
        if score.details.get("not_applicable"):
            return None  # outside the metric's scope: neither scored nor unscored (no assessment)
        threshold = metric.default_threshold if self.threshold is None else self.threshold
        metadata = {
            "metric_version": metric.version,
            "direction": metric.direction,
            "threshold": f"{threshold:g}",
        }
        if score.value is None:
            return Feedback(
                name=self.name, error=score.reason, rationale=score.reason, source=source, metadata=metadata
            )
        metadata["passed"] = str(passes(metric, score.value, threshold)).lower()
        return Feedback(
            name=self.name, value=score.value, rationale=score.reason, source=source, metadata=metadata
        )


def ragate_scorer(name: str, threshold: float | None = None) -> RagateScorer:
    """The registered ragate metric ``name`` as an MLflow scorer.

    Raises ``ValueError`` (:class:`ragate_core.tables.DataError`) naming the known metrics
    when ``name`` is not one.
    """
    from ragate_core.tables import DataError

    known = metric_names()
    if name not in known:
        raise DataError(f"unknown metric {name!r}; known metrics: {', '.join(known)}")
    return RagateScorer(name=name, metric=name, threshold=threshold)


def ragate_scorers(
    names: Sequence[str] | None = None, thresholds: Mapping[str, float] | None = None
) -> list[RagateScorer]:
    """Scorers for ``names`` (default: faithfulness, answer_relevancy, toxicity, pii, as
    ``ragate score``), with optional per-case ``thresholds`` by metric name."""
    from gates.api import DEFAULT_METRICS

    thresholds = thresholds or {}
    return [ragate_scorer(n, thresholds.get(n)) for n in (names or DEFAULT_METRICS)]


def case_fields(inputs: Any, outputs: Any, expectations: Any, trace: Any) -> dict[str, Any]:
    """The ragate row (``id``, ``question``, ``answer``, ``contexts``, ...) of one MLflow row."""
    ins = _as_dict(inputs)
    outs = _as_dict(outputs)
    exp = _as_dict(expectations)
    fields: dict[str, Any] = {
        "id": str(getattr(getattr(trace, "info", None), "trace_id", None) or "mlflow-row"),
        "question": _question(inputs, ins),
        "answer": _answer(outputs, outs),
        "contexts": _contexts(ins, outs, trace),
    }
    for key in _OUTPUT_FIELDS:
        if outs.get(key) is not None:
            fields[key] = outs[key]
    for key, aliases in _EXPECTATION_FIELDS.items():
        for alias in aliases:
            if exp.get(alias) is not None:
                fields[key] = exp[alias]
                break
    if fields.get("sources") is not None:
        fields["sources"] = [str(s) for s in fields["sources"]]
    return fields


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return {}


def _question(inputs: Any, ins: dict[str, Any]) -> str:
    if isinstance(inputs, str):
        return inputs
    for key in _QUESTION_KEYS:
        if isinstance(ins.get(key), str):
            return ins[key]
    if len(ins) == 1 and isinstance(next(iter(ins.values())), str):
        return next(iter(ins.values()))
    if inputs is None:
        raise ValueError("the row has no inputs (expected inputs={'question': ...})")
    from mlflow.genai.utils.trace_utils import parse_inputs_to_str

    return parse_inputs_to_str(inputs)


def _answer(outputs: Any, outs: dict[str, Any]) -> str:
    if isinstance(outputs, str):
        return outputs
    for key in _ANSWER_KEYS:
        if isinstance(outs.get(key), str):
            return outs[key]
    if outputs is None:
        raise ValueError("the row has no outputs (expected outputs='...' or {'answer': ...})")
    from mlflow.genai.utils.trace_utils import parse_outputs_to_str

    return parse_outputs_to_str(outputs)


def _contexts(ins: dict[str, Any], outs: dict[str, Any], trace: Any) -> list[str]:
    for source in (outs, ins):
        for key in _CONTEXT_KEYS:
            value = source.get(key)
            if value is None:
                continue
            if isinstance(value, str):
                return [value]
            if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of strings, got {type(value).__name__}")
            return list(value)
    if trace is not None:
        from mlflow.genai.utils.trace_utils import extract_retrieval_context_from_trace

        chunks = [c for span in extract_retrieval_context_from_trace(trace).values() for c in span]
        return [str(c.get("content")) for c in chunks if c.get("content") is not None]
    return []
