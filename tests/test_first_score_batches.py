"""Cases go to a metric in batches (``gates.scoring.batch_slices``: a small first batch, so
the first scores come sooner, then ``SCORE_BATCH`` at a time), and where the cuts fall
changes no score: every offline metric gives the same value, reason and details to a
labeled case whatever batch it is scored in."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.calibrate import DATASETS, read_rows
from gates.metrics.base import get_metric
from gates.scoring import FIRST_BATCH, SCORE_BATCH, batch_slices, score_batches

CALIBRATION = Path(__file__).resolve().parents[1] / "datasets" / "calibration"
OFFLINE = ("faithfulness", "answer_relevancy", "answer_correctness", "toxicity", "pii")


@pytest.mark.parametrize("n", [0, 1, FIRST_BATCH - 1, FIRST_BATCH, FIRST_BATCH + 1, 100, 1000])
def test_batches_cover_the_cases_in_order(n: int) -> None:
    parts = batch_slices(n)
    covered = [i for part in parts for i in range(n)[part]]
    assert covered == list(range(n))
    sizes = [part.stop - part.start for part in parts]
    assert all(size > 0 for size in sizes)
    if n:
        assert sizes[0] == min(n, FIRST_BATCH)
        assert all(size <= SCORE_BATCH for size in sizes[1:])
        assert all(size == SCORE_BATCH for size in sizes[1:-1])


def test_a_caller_sizing_its_batches_gets_exactly_those() -> None:
    assert [p.stop - p.start for p in batch_slices(100, 64, 64)] == [64, 36]
    assert [p.stop - p.start for p in batch_slices(70, 70)] == [70]  # one Spark group, one batch
    assert [p.stop - p.start for p in batch_slices(25, 10)] == [10, 10, 5]
    with pytest.raises(ValueError, match="batch sizes must be >= 1"):
        batch_slices(5, 0)


@pytest.mark.parametrize("metric_name", OFFLINE)
def test_where_the_batches_are_cut_changes_no_score(metric_name: str) -> None:
    dataset = DATASETS[metric_name][0]
    rows = read_rows(CALIBRATION / dataset.file, dataset)[:70]
    cases = [r.case() for r in rows]
    metric = get_metric(metric_name)
    # Odd cuts first (cold), then the default and one batch of everything.
    odd = score_batches(metric, cases, 7, 3)
    default = score_batches(metric, cases)
    whole = score_batches(metric, cases, len(cases), len(cases))
    as_tuples = [[(s.value, s.reason, s.details) for s in scores] for scores in (odd, default, whole)]
    assert as_tuples[0] == as_tuples[1] == as_tuples[2]
    assert all(s.scored for s in default)
