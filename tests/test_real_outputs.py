"""Real answers of the shipped models, labeled by hand, prove the answer metrics.

The dataset (datasets/calibration/real_outputs.jsonl) is written by
benchmarks/real_outputs.py: every golden question answered by each packaged model
through the real chain, each answer labeled against its contexts (``faithful``) and
against the case's ground truth (``correct``). Only the validation split is asserted
on here; it is never used to fit or tune a metric.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gates.calibrate import auroc
from gates.metrics.base import get_metric, metric_names
from gates.scoring import metric_case

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "datasets" / "calibration" / "real_outputs.jsonl"
GOLDEN = ROOT / "datasets" / "golden" / "qa.jsonl"
MODELS = {"smollm2-135m-instruct", "gemma3-270m"}
KINDS = {"number", "entity", "negation", "conflict", "baseless", "yes_no", "none"}
FIELDS = {
    "id": str,
    "case_id": str,
    "model": str,
    "question": str,
    "answer": str,
    "contexts": list,
    "sources": list,
    "source_ids": list,
    "ground_truth": str,
    "answerable": bool,
    "faithful": bool,
    "correct": bool,
    "kind": str,
    "wrong_span": str,
    "split": str,
    "label_note": str,
}


def load_rows() -> list[dict[str, Any]]:
    lines = DATASET.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return load_rows()


def test_every_row_has_the_fields_and_label_types(rows: list[dict[str, Any]]) -> None:
    assert rows, f"{DATASET} is empty"
    for n, row in enumerate(rows, 1):
        for key, kind in FIELDS.items():
            assert isinstance(row.get(key), kind), f"{DATASET.name}:{n}: {key} must be {kind.__name__}"
        assert row["kind"] in KINDS, f"{DATASET.name}:{n}: kind {row['kind']!r}"
        assert row["faithful"] == (row["kind"] == "none"), f"{DATASET.name}:{n}: kind 'none' iff faithful"
        # The wrong span is quoted from the answer (empty for a faithful one).
        assert row["wrong_span"] in row["answer"], f"{DATASET.name}:{n}: wrong_span not in the answer"
        assert row["faithful"] != bool(row["wrong_span"]), f"{DATASET.name}:{n}: span iff unfaithful"
        assert row["id"] == f"{row['model']}:{row['case_id']}"
        assert row["split"] in {"train", "validation"}


def test_both_models_answer_every_golden_question_once(rows: list[dict[str, Any]]) -> None:
    golden = {json.loads(line)["id"]: json.loads(line) for line in GOLDEN.read_text().splitlines()}
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    for model in MODELS:
        mine = {row["case_id"] for row in rows if row["model"] == model}
        assert mine == set(golden), (
            f"{model}: answers differ from the golden set (missing {sorted(set(golden) - mine)[:5]}); "
            "regenerate and relabel with benchmarks/real_outputs.py"
        )
    for row in rows:
        case = golden[row["case_id"]]
        assert (row["question"], row["ground_truth"], row["source_ids"]) == (
            case["question"],
            case["ground_truth"],
            case["source_ids"],
        )
        assert row["answerable"] == bool(case["source_ids"])


def test_the_split_is_by_question_and_holds_both_classes(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        digest = int(hashlib.sha256(row["case_id"].encode()).hexdigest(), 16)
        assert row["split"] == ("validation" if digest % 2 == 0 else "train")
    for split in ("train", "validation"):
        part = [row for row in rows if row["split"] == split]
        assert {row["model"] for row in part} == MODELS
        for label in ("faithful", "correct"):
            assert {row[label] for row in part} == {True, False}, f"{split}: {label} has one class only"


def validation_auroc(metric_name: str, label: str) -> tuple[float, int, list[str]]:
    """AUROC of the metric on the validation split, unscored count, and the worst misses."""
    metric = get_metric(metric_name)
    part = [row for row in load_rows() if row["split"] == "validation"]
    scores = metric.score_batch([metric_case(row) for row in part])
    sign = 1.0 if metric.direction == "higher_is_better" else -1.0
    kept = [(row, s.value) for row, s in zip(part, scores, strict=True) if s.value is not None]
    labels = np.array([int(row[label]) for row, _ in kept])
    values = np.array([sign * v for _, v in kept], dtype=float)
    bad = sorted(((v, row["id"]) for row, v in kept if not row[label]), reverse=True)
    return auroc(labels, values), len(part) - len(kept), [f"{i} ({v:.2f})" for v, i in bad[:8]]


@pytest.fixture(scope="module")
def faithfulness_result() -> tuple[float, int, list[str]]:
    return validation_auroc("faithfulness", "faithful")


@pytest.fixture(scope="module")
def correctness_result() -> tuple[float, int, list[str]]:
    if "answer_correctness" not in metric_names():
        pytest.skip("metric 'answer_correctness' is not registered yet (issue 10 item 3)")
    return validation_auroc("answer_correctness", "correct")


def test_faithfulness_separates_real_unfaithful_answers(faithfulness_result) -> None:
    value, unscored, worst = faithfulness_result
    assert unscored == 0
    assert value >= 0.85, f"faithfulness AUROC {value:.4f} on the validation split; top unfaithful: {worst}"


def test_answer_correctness_separates_real_wrong_answers(correctness_result) -> None:
    value, unscored, worst = correctness_result
    assert unscored == 0
    assert value >= 0.90, f"answer_correctness AUROC {value:.4f} on the validation split; top wrong: {worst}"
