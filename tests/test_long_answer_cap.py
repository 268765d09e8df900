"""An answer over ``gates.scoring.MAX_ANSWER_CHARS``, or a blank one no rail blocked, is never
scored by a metric that reads it (a blank answer scored 0.74 for faithfulness in `ragate
score`; a gate run already counts it a failed generation). Such a case is unscored, with
the answer's length or blankness in the error (so the gate fails, as for any unscored case),
its batch-mates are scored as before, and a metric that does not read the answer (latency)
scores the case as usual. Scoring only the start of a long answer would pass a tail that was
never read; scoring all of it costs seconds and gigabytes per case."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gates.cli import main
from gates.metrics.base import MetricCase, Score
from gates.scoring import MAX_ANSWER_CHARS, score_batches


class FakeAnswerLengthMetric:
    """A fake metric for this test: the answer's length over 100, recording what it was given."""

    name = "fake_answer_length"
    version = "1"
    direction = "lower_is_better"
    default_threshold = 0.5

    def __init__(self, reads_answer: bool = True) -> None:
        self.reads_answer = reads_answer
        self.given: list[str] = []

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {"answer": case.answer} if self.reads_answer else {"latency_ms": case.latency_ms}

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        self.given += [c.id for c in cases]
        return [Score(self.name, self.version, min(len(c.answer) / 100, 1.0), "length") for c in cases]


def case(case_id: str, length: int) -> MetricCase:
    return MetricCase(id=case_id, question="q?", answer=("word " * length)[:length], contexts=("c.",))


def test_a_too_long_answer_is_unscored_and_its_batch_mates_are_scored() -> None:
    metric = FakeAnswerLengthMetric()
    cases = [case("short", 50), case("long", MAX_ANSWER_CHARS + 1), case("at-limit", MAX_ANSWER_CHARS)]

    short, long, at_limit = score_batches(metric, cases)

    assert metric.given == ["short", "at-limit"]  # the long answer never reached the metric
    assert short.value == 0.5 and at_limit.value == 1.0
    assert long.value is None and not long.scored
    assert f"the answer has {MAX_ANSWER_CHARS + 1:,} characters" in long.reason
    assert "gates.scoring.MAX_ANSWER_CHARS" in long.reason and "max_tokens" in long.reason


def test_a_blank_answer_is_unscored_unless_a_rail_blocked_it() -> None:
    metric = FakeAnswerLengthMetric()
    blank = MetricCase(id="blank", question="q?", answer=" \n", contexts=("c.",))
    blocked = MetricCase(id="blocked", question="q?", answer="", contexts=(), blocked=True)

    left, kept = score_batches(metric, [blank, blocked])

    assert metric.given == ["blocked"]
    assert left.value is None and "the answer is empty" in left.reason
    assert kept.value == 0.0


def test_a_metric_that_does_not_read_the_answer_scores_a_long_one() -> None:
    metric = FakeAnswerLengthMetric(reads_answer=False)

    (score,) = score_batches(metric, [case("long", MAX_ANSWER_CHARS + 1)])

    assert metric.given == ["long"] and score.value == 1.0


def test_ragate_score_counts_a_too_long_answer_as_unscored(tmp_path: Path, capsys) -> None:
    row = {"question": "Is there a fee?", "contexts": ["No fee."]}
    rows = [
        {**row, "id": "ok", "answer": "No, there is no fee."},
        {**row, "id": "huge", "answer": "No fee. " * 3000},
    ]
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    code = main(["score", "--metrics", "pii", "--input", str(source), "--output", str(output)])

    assert code == 1  # unscored cases fail the run, as every unscored case does
    ok, huge = (json.loads(line) for line in output.read_text(encoding="utf-8").splitlines())
    assert ok["scores"]["pii"] == 0.0
    assert huge["scores"]["pii"] is None and "24,000 characters" in huge["reasons"]["pii"]
    assert "(1 unscored)" in capsys.readouterr().err
