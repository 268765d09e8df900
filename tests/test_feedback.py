"""Feedback export without a store: durations, normalised questions, deduplication,
provenance tags and the review table (the end-to-end path is in tests/test_serve.py)."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from gates.feedback import FeedbackTrace, duration, normalised, regression_rows, since_text, table
from gates.schema import QuestionRow

DAY_MS = 1_796_000_000_000  # 2026-11-30 UTC


def trace(
    trace_id: str, question: str, correction: str | None = None, rating: str | None = "down"
) -> FeedbackTrace:
    return FeedbackTrace(trace_id, DAY_MS, question, "an answer", rating, correction, None)


def test_durations() -> None:
    assert duration("7d") == timedelta(days=7)
    assert duration(" 12h ") == timedelta(hours=12)
    assert duration("30m") == timedelta(minutes=30)
    for bad in ("0d", "7", "1w", "-1d", "d7"):
        with pytest.raises(argparse.ArgumentTypeError, match="give a positive duration"):
            duration(bad)


def test_normalised_ignores_case_spacing_and_punctuation_but_keeps_masks() -> None:
    assert normalised("  How do I  EXPORT my data?!") == normalised("how do i export my data")
    assert normalised("Call <PHONE_NUMBER> now") == "call <phone_number> now"
    assert normalised("refund 14 days") != normalised("refund 30 days")


def test_rows_are_deduplicated_newest_first_existing_rows_win_and_carry_provenance() -> None:
    existing = [{"id": "feedback-aaaaaaaaaaaa", "question": "How do I export my data?", "tags": ["feedback"]}]
    traces = [
        trace("tr-new", "how do I export my data", correction="Settings > Export"),  # in the file already
        trace("tr-2", "Can I pay by invoice?", correction="Yes, on the Business plan."),
        trace("tr-1", "can I pay by INVOICE", correction="older correction"),  # older duplicate
        trace("tr-3", "Is SSO included?", correction=None),
    ]
    rows, added = regression_rows(traces, existing)
    assert added == 2 and rows[0] == existing[0]
    invoice, sso = rows[1], rows[2]
    assert invoice["ground_truth"] == "Yes, on the Business plan."
    assert invoice["tags"] == ["feedback", "rating:down", "trace:tr-2", "date:2026-11-30"]
    assert "ground_truth" not in sso
    assert invoice["id"].startswith("feedback-") and invoice["id"] != sso["id"]
    # The same question always gets the same id.
    again, _ = regression_rows([trace("tr-9", "CAN I PAY BY INVOICE??")])
    assert again[0]["id"] == invoice["id"]
    # Of one question's traces, a corrected one wins over a newer uncorrected one.
    picked, _ = regression_rows([trace("tr-b", "Is SSO included?"), trace("tr-a", "is sso included", "Yes.")])
    assert picked[0]["ground_truth"] == "Yes." and "trace:tr-a" in picked[0]["tags"]
    assert since_text(duration("7d")) == "7d" and since_text(duration("36h")) == "36h"
    for row in rows:
        QuestionRow.model_validate(row)
    printed = table(rows[1:])
    assert "rating" in printed.splitlines()[0] and "Yes, on the Business plan." in printed


def test_personal_data_in_questions_and_corrections_is_masked() -> None:
    rows, _ = regression_rows(
        [trace("tr-4", "My mail is jo.doe@example.org, refund?", correction="Write to jo.doe@example.org")]
    )
    assert "jo.doe@example.org" not in str(rows)
    assert "<EMAIL_ADDRESS>" in rows[0]["question"] and "<EMAIL_ADDRESS>" in rows[0]["ground_truth"]
