"""ragate metrics as MLflow GenAI scorers, run by the pinned ``mlflow.genai.evaluate``, offline.

A temporary SQLite tracking store per module (its migrations cost seconds: created once).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from gates.metrics.base import MetricCase, get_metric  # noqa: E402
from gates.metrics.mlflow_scorers import case_fields, ragate_scorer, ragate_scorers  # noqa: E402
from ragate_core.tables import DataError  # noqa: E402

CONTEXT = "Refunds are issued within 14 days of a cancellation, to the original payment method."
ROWS = [
    {
        "inputs": {"question": "How long do refunds take?"},
        "outputs": {
            "answer": "Refunds are issued within 14 days.",
            "contexts": [CONTEXT],
            "latency_ms": 640.0,
        },
    },
    {
        "inputs": {"question": "Is there a Linux app?"},
        "outputs": {"answer": "You idiot, read the docs yourself.", "contexts": []},
        "expectations": {"answerable": False},
    },
]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment("ragate-scorers-test")
    try:
        yield folder
    finally:
        mlflow.set_tracking_uri(previous)


def test_mlflow_evaluate_runs_ragate_metrics_with_ragate_numbers(tracking: Path) -> None:
    names = ["answer_relevancy", "toxicity", "latency"]
    result = mlflow.genai.evaluate(data=ROWS, scorers=ragate_scorers(names))

    cases = [
        MetricCase(
            id=str(i),
            question=r["inputs"]["question"],
            answer=r["outputs"]["answer"],
            contexts=tuple(r["outputs"]["contexts"]),
            answerable=r.get("expectations", {}).get("answerable"),
            latency_ms=r["outputs"].get("latency_ms"),
        )
        for i, r in enumerate(ROWS)
    ]
    frame = result.result_df.sort_values("request", key=lambda s: s.map(str)).reset_index(drop=True)
    by_question = {str(req): i for i, req in enumerate(frame["request"])}
    for name in ("answer_relevancy", "toxicity"):
        expected = [s.value for s in get_metric(name).score_batch(cases)]
        for case, value in zip(cases, expected):
            row = by_question[str({"question": case.question})]
            assert frame.loc[row, f"{name}/value"] == pytest.approx(value, abs=1e-9)
    # What the MLflow run shows: one aggregate per metric.
    assert result.metrics["toxicity/mean"] == pytest.approx(
        sum(s.value for s in get_metric("toxicity").score_batch(cases)) / 2, abs=1e-6
    )

    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    feedback = {(t.data.request, a.name): a for t in traces for a in t.info.assessments if a.name in names}
    toxic = next(a for (req, n), a in feedback.items() if n == "toxicity" and "Linux" in req)
    assert toxic.value > 0.5 and toxic.metadata["passed"] == "false"
    assert toxic.metadata["direction"] == "lower_is_better" and toxic.source.source_id.startswith("ragate/")
    # No latency_ms in the second row: an error in MLflow, not a made-up number.
    latency = next(a for (req, n), a in feedback.items() if n == "latency" and "Linux" in req)
    assert latency.value is None and "latency_ms" in latency.error.error_message


def test_contexts_come_from_the_retriever_spans_of_a_traced_app(tracking: Path) -> None:
    from mlflow.entities import SpanType
    from mlflow.genai.scorers import scorer

    def predict_fn(question: str) -> str:
        with mlflow.start_span(name="retrieve", span_type=SpanType.RETRIEVER) as span:
            span.set_inputs({"query": question})
            span.set_outputs([{"page_content": CONTEXT, "metadata": {"doc_uri": "refund-policy"}}])
        return "Refunds are issued within 14 days."

    seen: list[dict] = []

    @scorer
    def probe_fields(inputs, outputs, expectations, trace) -> bool:  # a test probe, not a metric
        seen.append(case_fields(inputs, outputs, expectations, trace))
        return True

    mlflow.genai.evaluate(
        data=[{"inputs": {"question": "How long do refunds take?"}}],
        predict_fn=predict_fn,
        scorers=[probe_fields],
    )
    assert len(seen) == 1
    assert seen[0]["question"] == "How long do refunds take?"
    assert seen[0]["answer"] == "Refunds are issued within 14 days."
    assert seen[0]["contexts"] == [CONTEXT]


def test_a_scorer_can_be_called_directly() -> None:
    feedback = ragate_scorer("toxicity", threshold=0.4)(
        inputs="Is there a Linux app?", outputs="You idiot, read the docs yourself."
    )
    assert feedback.name == "toxicity" and feedback.value > 0.4
    assert feedback.metadata["threshold"] == "0.4" and feedback.rationale


def test_retrieval_scorers_read_expectations_and_skip_out_of_scope_cases() -> None:
    hit_rate = ragate_scorer("hit_rate")
    outputs = {"answer": "Within 14 days.", "contexts": [CONTEXT], "sources": ["refund-policy"]}
    hit = hit_rate(
        inputs={"question": "Refunds?"}, outputs=outputs, expectations={"source_ids": ["refund-policy"]}
    )
    assert hit.value == 1.0 and hit.metadata["passed"] == "true"
    # An unanswerable case has no relevant source to retrieve: no assessment at all.
    assert hit_rate(inputs="Linux app?", outputs=outputs, expectations={"source_ids": []}) is None
    # No latency reported: an error, not a number.
    latency = ragate_scorer("latency")(inputs="Refunds?", outputs=outputs)
    assert latency.value is None and "latency_ms" in latency.error.error_message


def test_unknown_metric_is_a_value_error_naming_the_known_ones() -> None:
    with pytest.raises(DataError, match=r"unknown metric 'faithfullness'; known metrics: .*faithfulness"):
        ragate_scorers(["faithfullness"])
    assert issubclass(DataError, ValueError)
