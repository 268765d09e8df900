"""The report's failing cases come worst first (found by an independent tester: the
markdown's "lowest-scoring cases" were listed in case-id order)."""

from __future__ import annotations

from gates.report import build_report

RUN_INFO = {
    "env": "ci",
    "thresholds": {"faithfulness": 0.5, "toxicity": 0.4},
    "directions": {"faithfulness": "higher_is_better", "toxicity": "lower_is_better"},
}


def _case(case_id: str, faithfulness: float | None, toxicity: float | None) -> dict:
    return {
        "id": case_id,
        "question": "q",
        "answer": "a",
        "scores": {"faithfulness": faithfulness, "toxicity": toxicity},
        "reasons": {"faithfulness": "r", "toxicity": "r"},
    }


def test_unscored_first_then_farthest_from_passing_metric_by_metric() -> None:
    cases = {
        c["id"]: c
        for c in [
            _case("a", 0.45, 0.1),
            _case("b", 0.05, 0.9),
            _case("c", None, 0.5),
            _case("d", 0.3, 0.7),
            _case("e", 0.9, None),
        ]
    }
    report = build_report("ci", {}, cases, RUN_INFO)
    assert [(c.id, m) for c, m, _, _ in report.failing_cases()] == [
        ("c", "faithfulness"),
        ("b", "faithfulness"),
        ("d", "faithfulness"),
        ("a", "faithfulness"),
        ("e", "toxicity"),
        ("b", "toxicity"),
        ("d", "toxicity"),
        ("c", "toxicity"),
    ]
