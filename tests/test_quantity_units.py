"""A number is a quantity: its unit (currency), its bound (under/over, before/after) and
what it is said about must agree with the contexts (faithfulness) or the reference
(answer_correctness). Sentences written for these tests, apart from any labeled data."""

from __future__ import annotations

import pytest

from gates.metrics import quantities as qty
from gates.metrics.base import MetricCase, get_metric


def kinds(text: str) -> list[tuple[float, str, list[str]]]:
    return [(q.value, q.unit, sorted(q.bounds)) for q in qty.quantities(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The fee is €4.50 or 5 dollars.", [(4.5, "money:EUR", []), (5.0, "money:USD", [])]),
        ("Boats stay in port when gusts exceed 30 knots.", [(30.0, "speed:1.852", ["min"])]),
        ("Arrive 2 hours before the show.", [(2.0, "time:3600", ["before"])]),
        ("Refunds take up to 5 business days.", [(5.0, "time:86400", ["max"])]),
        ("Under-10s swim free; 65 and over pay half.", [(10.0, "", ["max"]), (65.0, "", ["min"])]),
        ("Never take more than 2 capsules.", [(2.0, "", ["max"])]),
        ("At most 3 a day, 10 per cent off.", [(3.0, "", ["max"]), (10.0, "percent:1", [])]),
        ("Uses AES-256 and S3 since the 1990s.", [(1990.0, "", [])]),
    ],
)
def test_quantities_read_unit_and_bound(text: str, expected: list) -> None:
    assert kinds(text) == expected


def test_hyphen_forms_free_the_numbers() -> None:
    assert qty.hyphen_forms("Under-12s and over-60s, 5-year-olds") == "Under 12 and over 60, 5 year-olds"
    assert qty.hyphen_forms("AES-256 in the 1990s") == "AES-256 in the 1990s"


def faithfulness(question: str, context: str, *answers: str) -> list[float]:
    cases = [
        MetricCase(id=str(i), question=question, answer=a, contexts=(context,)) for i, a in enumerate(answers)
    ]
    return [s.value for s in get_metric("faithfulness").score_batch(cases)]


THRESHOLD = 0.5


@pytest.mark.parametrize(
    ("question", "context", "good", "bad"),
    [
        (  # currency
            "What does the monthly pass cost?",
            "The monthly parking pass costs 85 euros. A single day costs 6 euros.",
            "The monthly pass costs €85.",
            "The monthly pass costs $85.",
        ),
        (  # time unit
            "How long is the cooling-off period?",
            "You can cancel the contract within 14 days of signing it.",
            "You can cancel within 14 days of signing.",
            "You can cancel within 14 hours of signing.",
        ),
        (  # direction of a bound
            "When must the lift stop?",
            "The lift stops automatically when the load exceeds 800 kg.",
            "It stops when the load is over 800 kg.",
            "It stops when the load is below 800 kg.",
        ),
        (  # the value bound to another subject
            "Who gets into the zoo for free?",
            "Visitors under 3 get in free. Visitors under 14 pay 8 euros. Adults pay 16 euros.",
            "Visitors under 3 get in free.",
            "Visitors under 14 get in free.",
        ),
    ],
)
def test_a_wrong_unit_bound_or_binding_fails_faithfulness(
    question: str, context: str, good: str, bad: str
) -> None:
    faithful, unfaithful = faithfulness(question, context, good, bad)
    assert faithful >= THRESHOLD > unfaithful


def test_under_12s_is_read_as_a_number_not_a_name() -> None:
    [value] = faithfulness(
        "Who travels free?",
        "Kids under 5 travel free. Kids under 12 pay 4 pounds.",
        "Only kids under 5 travel free; under-12s pay £4.",
    )
    assert value >= THRESHOLD


def correctness(question: str, reference: str, *answers: str) -> list[float]:
    cases = [
        MetricCase(id=str(i), question=question, answer=a, ground_truth=reference, answerable=True)
        for i, a in enumerate(answers)
    ]
    return [s.value for s in get_metric("answer_correctness").score_batch(cases)]


def test_an_opposite_bound_fails_correctness() -> None:
    metric = get_metric("answer_correctness")
    good, bad = correctness(
        "When is the ferry cancelled?",
        "The ferry is cancelled when waves exceed 3 metres.",
        "It is cancelled if the waves are over 3 metres.",
        "It is cancelled if the waves are under 3 metres.",
    )
    assert good >= metric.default_threshold > bad
