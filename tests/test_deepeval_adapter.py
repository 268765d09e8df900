"""Any ragate metric as a deepeval ``BaseMetric``: ``assert_test`` and ``evaluate`` run it
unchanged and offline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gates.metrics.base import MetricCase, Score

CONTEXT = ["The Pro plan costs $24 per user per month billed annually, or $29 billed monthly."]
QUESTION = "How much is Pro when billed monthly?"
FAITHFUL = "Pro costs $29 per user when billed monthly."
UNFAITHFUL = "Pro costs $35 per user when billed monthly."


@pytest.fixture
def deepeval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    # deepeval writes ./.deepeval and may phone home: keep both out of the repository.
    monkeypatch.setenv("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
    monkeypatch.chdir(tmp_path)
    import deepeval

    return deepeval


def case(answer: str, context: list[str] | None = None) -> Any:
    from deepeval.test_case import LLMTestCase

    return LLMTestCase(input=QUESTION, actual_output=answer, retrieval_context=context or CONTEXT)


def test_assert_test_passes_a_faithful_case(deepeval: ModuleType) -> None:
    from gates.metrics.deepeval_adapter import RagateMetric

    metric = RagateMetric("faithfulness")
    deepeval.assert_test(case(FAITHFUL), [metric], run_async=False)


def test_assert_test_fails_an_unfaithful_case(deepeval: ModuleType) -> None:
    from gates.metrics.deepeval_adapter import RagateMetric

    with pytest.raises(AssertionError, match="number not in the contexts: 35"):
        deepeval.assert_test(case(UNFAITHFUL), [RagateMetric("faithfulness")], run_async=False)


def test_evaluate_runs_the_metric_unchanged(deepeval: ModuleType) -> None:
    from deepeval.evaluate.configs import AsyncConfig, CacheConfig, DisplayConfig

    from gates.metrics.deepeval_adapter import RagateMetric

    result = deepeval.evaluate(
        [case(FAITHFUL), case(UNFAITHFUL)],
        [RagateMetric("faithfulness")],
        async_config=AsyncConfig(run_async=False),
        display_config=DisplayConfig(print_results=False, show_indicator=False),
        cache_config=CacheConfig(write_cache=False),
    )

    outcomes = sorted(
        (t.success, m.name, m.score >= 0.5, m.threshold) for t in result.test_results for m in t.metrics_data
    )
    assert outcomes == [(False, "ragate faithfulness", False, 0.5), (True, "ragate faithfulness", True, 0.5)]


class Detector:
    """A lower-is-better metric with no model: the answer text is the violation probability."""

    name = "detector"
    version = "1"
    direction = "lower_is_better"
    default_threshold = 0.5

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {"answer": case.answer}

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        out = []
        for c in cases:
            try:
                out.append(Score(self.name, self.version, float(c.answer), "read"))
            except ValueError as exc:
                out.append(Score(self.name, self.version, None, f"error: {exc}"))
        return out


@pytest.mark.parametrize(
    ("answer", "threshold", "success"), [("0.2", None, True), ("0.7", None, False), ("0.2", 0.1, False)]
)
def test_the_metric_s_direction_and_threshold_decide_success(
    deepeval: ModuleType, answer: str, threshold: float | None, success: bool
) -> None:
    from gates.metrics.deepeval_adapter import RagateMetric

    metric = RagateMetric("detector", threshold=threshold, metric=Detector())
    assert metric.measure(case(answer)) == float(answer)
    assert metric.is_successful() is success
    assert metric.__name__ == "ragate detector"


def test_an_unscored_case_is_an_error_never_a_silent_score(deepeval: ModuleType) -> None:
    from gates.metrics.deepeval_adapter import RagateMetric

    metric = RagateMetric("detector", metric=Detector())
    with pytest.raises(RuntimeError, match="could not score the case"):
        metric.measure(case("not a number"))
    assert metric.score is None
    assert metric.error.startswith("error:")
    assert metric.is_successful() is False
