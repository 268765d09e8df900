"""Metrics prove themselves: AUROC, precision and recall on labeled calibration data.

Every metric that gates is measured as a *violation detector*: a case violates when it
is unfaithful, irrelevant, toxic or leaks PII, and the metric flags it when its value
fails the per-case threshold. AUROC is threshold-free; precision, recall and the
false-positive rate are read at the threshold the profile uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gates.metrics.base import MetricCase, get_metric, passes
from gates.schema import NonBlank
from rag.jsonl import read_jsonl

CALIBRATION_DIR = Path("datasets/calibration")
# metric -> calibration file (under datasets/calibration/)
FILES = {
    "faithfulness": "faithfulness.jsonl",
    "answer_relevancy": "relevancy.jsonl",
    "toxicity": "toxicity.jsonl",
    "pii": "pii.jsonl",
}


class CalibrationRow(BaseModel):
    """A labeled example; ``label`` 1 is the good class for quality metrics
    (faithful, relevant) and the violating class for detectors (toxic, PII)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: NonBlank
    label: int = Field(ge=0, le=1)
    kind: str = ""
    question: str = ""
    answer: str | None = None
    text: str | None = None
    contexts: list[str] = Field(default_factory=list)
    answerable: bool | None = None
    pair: str | None = None

    def case(self) -> MetricCase:
        answer = self.answer if self.answer is not None else (self.text or "")
        return MetricCase(
            id=self.id,
            question=self.question,
            answer=answer,
            contexts=tuple(self.contexts),
            answerable=self.answerable,
        )


@dataclass(frozen=True)
class Calibration:
    """How well one metric separates good from bad on one labeled file."""

    metric: str
    file: str
    n: int
    n_violations: int
    unscored: int
    auroc: float
    threshold: float
    precision: float
    recall: float
    false_positive_rate: float
    missed: tuple[str, ...]
    false_alarms: tuple[str, ...]
    by_kind: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def calibrate_metric(metric_name: str, path: Path, threshold: float | None = None) -> Calibration:
    """Score every labeled row of ``path`` with the metric and measure it."""
    metric = get_metric(metric_name)
    rows = read_jsonl(path, CalibrationRow)
    threshold = metric.default_threshold if threshold is None else threshold
    scores = metric.score_batch([r.case() for r in rows])
    higher_is_better = metric.direction == "higher_is_better"
    kept = [(r, s.value) for r, s in zip(rows, scores) if s.value is not None]
    # As a violation detector: which rows violate, and which does the metric flag?
    violates = np.array([(r.label == 0) if higher_is_better else (r.label == 1) for r, _ in kept])
    values = np.array([v for _, v in kept], dtype=float)
    flagged = np.array([not passes(metric, v, threshold) for v in values])
    # Orient the score so that higher means "more likely a violation".
    risk = -values if higher_is_better else values
    tp = int((flagged & violates).sum())
    fp = int((flagged & ~violates).sum())
    fn = int((~flagged & violates).sum())
    tn = int((~flagged & ~violates).sum())
    by_kind: dict[str, dict[str, float]] = {}
    for (row, value), flag in zip(kept, flagged):
        entry = by_kind.setdefault(row.kind or "-", {"n": 0, "flagged": 0, "mean": 0.0})
        entry["n"] += 1
        entry["flagged"] += int(flag)
        entry["mean"] += value
    for entry in by_kind.values():
        entry["mean"] = round(entry["mean"] / entry["n"], 4)
    return Calibration(
        metric=metric_name,
        file=str(path),
        n=len(rows),
        n_violations=int(violates.sum()),
        unscored=len(rows) - len(kept),
        auroc=round(auroc(violates.astype(int), risk), 4),
        threshold=threshold,
        precision=round(tp / (tp + fp), 4) if tp + fp else 0.0,
        recall=round(tp / (tp + fn), 4) if tp + fn else 0.0,
        false_positive_rate=round(fp / (fp + tn), 4) if fp + tn else 0.0,
        missed=tuple(r.id for (r, _), f, v in zip(kept, flagged, violates) if v and not f),
        false_alarms=tuple(r.id for (r, _), f, v in zip(kept, flagged, violates) if f and not v),
        by_kind=by_kind,
    )
