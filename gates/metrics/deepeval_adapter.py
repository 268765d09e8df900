"""Any ragate metric as a deepeval ``BaseMetric``: ``deepeval.evaluate`` and
``assert_test`` run it unchanged, offline, with no judge model.

    from deepeval import assert_test
    from deepeval.test_case import LLMTestCase
    from gates.metrics.deepeval_adapter import RagateMetric

    assert_test(LLMTestCase(input=q, actual_output=a, retrieval_context=ctx), [RagateMetric("faithfulness")])
"""

from __future__ import annotations

from typing import Any, ClassVar

from deepeval.metrics import BaseMetric
from deepeval.test_case import LLMTestCase, SingleTurnParams

from gates.metrics.base import Metric, MetricCase, get_metric, passes


class RagateMetric(BaseMetric):
    """Wraps the registered metric ``name``; ``threshold`` defaults to the metric's own.

    The direction is the metric's: for toxicity and pii a case succeeds when its score
    (the probability of a violation) is at most the threshold. A metric error sets
    ``error`` and fails the case; it is never a silent score.
    """

    _required_params: ClassVar[list[SingleTurnParams]] = [
        SingleTurnParams.INPUT,
        SingleTurnParams.ACTUAL_OUTPUT,
    ]

    def __init__(self, name: str, threshold: float | None = None, metric: Metric | None = None) -> None:
        # deepeval copies a metric by calling the class with its attributes of the same
        # names as the constructor's parameters: keep them all.
        self.name = name
        self.metric: Metric = metric or get_metric(name)
        self.threshold = self.metric.default_threshold if threshold is None else threshold
        self.evaluation_model = "ragate offline"
        self.include_reason = True
        self.async_mode = False
        self.strict_mode = False
        self.verbose_mode = False

    def measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        case = MetricCase(
            id=getattr(test_case, "name", None) or "deepeval-case",
            question=test_case.input or "",
            answer=test_case.actual_output or "",
            contexts=tuple(test_case.retrieval_context or test_case.context or ()),
            ground_truth=test_case.expected_output,
        )
        score = self.metric.score_batch([case])[0]
        self.reason = score.reason
        if score.value is None:
            self.error = score.reason
            self.score = None
            self.success = False
            raise RuntimeError(f"ragate {self.metric.name} could not score the case: {score.reason}")
        self.error = None
        self.score = score.value
        self.success = passes(self.metric, score.value, self.threshold)
        return self.score

    async def a_measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        return self.measure(test_case, *args, **kwargs)

    def is_successful(self) -> bool:
        return bool(self.success) and self.error is None

    @property
    def __name__(self) -> str:  # type: ignore[override]
        return f"ragate {self.metric.name}"
