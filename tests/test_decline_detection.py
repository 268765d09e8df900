"""A declining answer ("the documentation does not cover that") is told apart from an answer
that states a negative fact ("No, the insurance does not cover accident damage"): the first is
judged as a decline by faithfulness, answer_relevancy and answer_correctness, the second as
an answer (it was scored 0.0 for relevancy and correctness as a decline)."""

from __future__ import annotations

import pytest

from gates.metrics import text as tx
from gates.metrics.correctness import declines

DECLINES = [
    "I don't know.",
    "The documentation does not cover this.",
    "The docs do not include that.",
    "It does not cover that.",
    "The context doesn't contain any details on refunds.",
    "The provided information does not list the opening hours.",
    "Unfortunately the FAQ doesn't seem to cover your question.",
    "The documentation does not mention a student discount.",
    "I'm sorry, I can't help with that question. Please contact customer service.",
    "I am not able to help you with this request.",
    "That isn't covered by the docs.",
    "Your question is not covered.",
]
ANSWERS = [
    "No, the theft insurance does not cover damage from accidents.",
    "The price does not include VAT.",
    "The annual plan does not include priority support.",
    "No. The basic tier does not contain the export feature.",
    "The rental does not include a helmet; helmets cost 2 euros.",
    "The warranty does not cover that battery model after two years.",
    "We cannot help with moving costs, but the deposit is refunded.",
    "I can help with that: the late fee is 10 dollars.",
    "Flood damage is not covered by the basic home policy.",
    "No, it is not covered.",
]


@pytest.mark.parametrize("text", DECLINES)
def test_a_decline_is_a_decline_for_every_metric(text: str) -> None:
    assert tx.abstains(text) and tx.abstains_any(text) and declines(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_a_negative_fact_is_an_answer(text: str) -> None:
    assert not tx.abstains(text) and not tx.abstains_any(text) and not declines(text)
