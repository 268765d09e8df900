"""Feedback regression cases (``kind: regression``) in a gate profile: scored by the metrics
that need no source ids, answer_correctness only where a corrected answer exists, and an
``optional`` regression file that is missing or empty adds no case (and breaks nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gates.cache import NoCache
from gates.engine import GateEngine, load_cases
from gates.feedback import FeedbackTrace, regression_rows
from gates.profile import load_profile
from ragate_core.errors import UsageError

GOLDEN = [
    {
        "id": "g1",
        "question": "When are refunds paid?",
        "ground_truth": "Within 14 days.",
        "source_ids": ["r"],
    },
    {
        "id": "g2",
        "question": "Can I export my data?",
        "ground_truth": "Yes, in settings.",
        "source_ids": ["e"],
    },
]
PROFILE = """\
env: staging
datasets:
  - name: golden
    path: qa.jsonl
  - name: regression
    path: regression/feedback.jsonl
    kind: regression
    optional: true
{extra}metrics:
  toxicity: {{threshold: 0.4, rules: {{max_violations: 0}}}}
  latency: {{threshold: 20000, rules: {{max_p95: 10000}}}}
  answer_correctness: {{rules: {{max_unscored_share: 0.0}}}}
  hit_rate: {{threshold: 0.5, rules: {{min_mean: 0.5}}}}
"""


class FakeChain:
    """A fake chain for the harness test: a fixed polite answer, instantly."""

    version: ClassVar[dict[str, str]] = {"model": "fake"}

    def __init__(self) -> None:
        self.asked: list[str] = []

    def invoke(self, question: str, **kw: Any) -> dict[str, Any]:
        self.asked.append(question)
        return {
            "answer": "Refunds are paid within 14 days.",
            "contexts": ["ctx"],
            "sources": ["r"],
            "latency_ms": 5.0,
        }


def _project(tmp_path: Path, extra: str = "", regression: str | None = None) -> Path:
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOLDEN), encoding="utf-8")
    if regression is not None:
        (tmp_path / "regression").mkdir()
        (tmp_path / "regression" / "feedback.jsonl").write_text(regression, encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.format(extra=extra), encoding="utf-8")
    return path


def _feedback_rows() -> str:
    traces = [
        FeedbackTrace(
            "tr-1", 1764460800000, "Do you ship to Norway?", "Yes.", "down", "No, only within the EU.", None
        ),
        FeedbackTrace("tr-2", 1764460800000, "Is there a student discount?", "No.", "down", None, "wrong"),
    ]
    rows, added = regression_rows(traces)
    assert added == 2
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_exported_feedback_is_gated_without_retrieval_metrics(tmp_path: Path) -> None:
    profile = load_profile(str(_project(tmp_path, regression=_feedback_rows())), tmp_path)
    cases = {c.id: c for c in load_cases(profile, tmp_path)}

    corrected = next(c for c in cases.values() if c.dataset == "regression" and c.ground_truth)
    plain = next(c for c in cases.values() if c.dataset == "regression" and not c.ground_truth)
    assert corrected.dataset == "regression" and corrected.ground_truth == "No, only within the EU."
    assert set(corrected.metrics) == {"toxicity", "latency", "answer_correctness"}  # no hit_rate
    assert set(plain.metrics) == {"toxicity", "latency"}  # nothing to judge correctness against
    assert "hit_rate" in cases["g1"].metrics  # golden cases keep their retrieval metrics


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank-line"])
def test_an_optional_missing_or_empty_regression_file_adds_no_case(
    tmp_path: Path, content: str | None
) -> None:
    profile = load_profile(str(_project(tmp_path, regression=content)), tmp_path)
    cases = load_cases(profile, tmp_path)
    assert [c.id for c in cases] == ["g1", "g2"]


def test_a_gate_run_with_no_feedback_yet_still_gates_the_golden_cases(tmp_path: Path) -> None:
    path = _project(tmp_path)
    profile = load_profile(str(path), tmp_path)
    profile = profile.model_copy(
        update={"metrics": {k: v for k, v in profile.metrics.items() if k in ("toxicity", "latency")}}
    )
    chain = FakeChain()
    run = GateEngine(profile, tmp_path, lambda: chain, NoCache()).run()

    assert len(chain.asked) == 2 and run.verdict.passed
    assert {g.metric for g in run.verdict.gates} == {"toxicity", "latency"}
    assert all(g.n_scored == 2 for g in run.verdict.gates)  # decided on real cases, not vacuously


def test_a_gate_run_scores_the_regression_cases_too(tmp_path: Path) -> None:
    path = _project(tmp_path, regression=_feedback_rows())
    profile = load_profile(str(path), tmp_path)
    profile = profile.model_copy(
        update={"metrics": {k: v for k, v in profile.metrics.items() if k in ("toxicity", "latency")}}
    )
    chain = FakeChain()
    run = GateEngine(profile, tmp_path, lambda: chain, NoCache()).run()

    assert "Do you ship to Norway?" in chain.asked
    assert all(g.n_scored == 4 and g.n_unscored == 0 for g in run.verdict.gates)


def test_a_required_regression_file_that_is_missing_is_a_usage_error(tmp_path: Path) -> None:
    path = _project(tmp_path)
    path.write_text(path.read_text().replace("    optional: true\n", ""), encoding="utf-8")
    with pytest.raises(UsageError, match=r"datasets\[1\]\.path: dataset file .* not found \(optional: true"):
        load_profile(str(path), tmp_path)


def test_listing_a_retrieval_metric_for_regression_cases_names_the_key(tmp_path: Path) -> None:
    path = _project(tmp_path, extra="    metrics: [toxicity, hit_rate]\n", regression="")
    with pytest.raises(UsageError, match=r"datasets\[1\]\.metrics: 'hit_rate' reads the cases' source_ids"):
        load_profile(str(path), tmp_path)


def test_a_regression_row_with_source_ids_is_refused_naming_the_line(tmp_path: Path) -> None:
    row = {"id": "feedback-1", "question": "Do you ship?", "source_ids": ["x"]}
    profile = load_profile(str(_project(tmp_path, regression=json.dumps(row) + "\n")), tmp_path)
    with pytest.raises(UsageError, match=r"feedback\.jsonl:1.*source_ids"):
        load_cases(profile, tmp_path)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_shipped_staging_and_prod_profiles_gate_the_regression_set(env: str) -> None:
    root = Path(__file__).resolve().parents[1]
    profile = load_profile(env, root)
    [spec] = [d for d in profile.datasets if d.kind == "regression"]
    assert spec.path == Path("datasets/regression/feedback.jsonl") and spec.optional
    assert "answer_correctness" in (spec.metrics or []) and "hit_rate" not in (spec.metrics or [])
