"""answer_relevancy on what the question asks about: an answer of the asked form (a time, a
price, a count, a place, a person, a yes/no statement) addresses the question only when it
is about the asked thing -- a year of renovation is not opening hours. Short direct answers
keep passing. Real MiniLM encoder, offline."""

from __future__ import annotations

import pytest

from gates.metrics import get_metric
from gates.metrics.base import MetricCase

THRESHOLD = 0.5


def _scores(pairs: list[tuple[str, str]]) -> list[tuple[float, str]]:
    cases = [MetricCase(id=f"c{i}", question=q, answer=a, answerable=True) for i, (q, a) in enumerate(pairs)]
    return [(s.value, s.reason) for s in get_metric("answer_relevancy").score_batch(cases)]


ABOUT_SOMETHING_ELSE = [
    ("When is the office open?", "The office was renovated in 2019."),
    ("What are the opening hours of the ice rink?", "The ice rink was built in 1971."),
    ("Wann hat die Stadtbibliothek geöffnet?", "Die Stadtbibliothek wurde 2008 erweitert."),
    ("How many beds does the hostel have?", "The hostel opened in 2011 near the harbour."),
    ("How much does the yearly membership cost?", "The yearly membership was launched in 2021."),
    ("Where is the Redhill depot?", "The Redhill depot was founded in 1988."),
    ("Who is the chair of the board?", "The board was formed in 2004."),
    ("Does the tablet app work offline?", "The tablet app costs $3 and has 200 reviews."),
]

ABOUT_THE_ASKED_THING = [
    ("When is the office open?", "Monday to Friday, 8:30 to 17:00."),
    ("When is the office open?", "The office is open on weekdays from 9 am to 5 pm."),
    ("What are the opening hours of the ice rink?", "10:00-22:00 every day."),
    ("Wann hat die Stadtbibliothek geöffnet?", "Dienstags bis samstags von 10 bis 19 Uhr."),
    ("When was the Orin library opened?", "It opened in 1962."),
    ("How many beds does the hostel have?", "The hostel has 48 beds."),
    ("How much does the yearly membership cost?", "€120 a year."),
    ("Where is the Redhill depot?", "On Station Road, next to the bus garage."),
    ("Who is the chair of the board?", "Helena Strand chairs the board."),
    ("Does the tablet app work offline?", "Yes, it syncs when you are back online."),
    # a synonym of the counted thing, and the asked predicate itself ("costs"), are no other topic
    ("How many people can join a team on the basic plan?", "The basic plan allows up to 8 members."),
    ("How much is the Team plan per person each month?", "The Team plan costs $12 per user."),
    ("How many users can the Studio plan have?", "The Studio plan allows 2000 users."),
    # "how much" of a thing that is not money asks an amount of it, not a price
    ("How much notice do I need to give to cancel the lease?", "Give at least 30 days of notice."),
    ("How much luggage can I take on board?", "One bag of up to 8 kg."),
]


@pytest.mark.parametrize(("question", "answer"), ABOUT_SOMETHING_ELSE)
def test_an_answer_of_the_asked_form_about_something_else_fails(question: str, answer: str) -> None:
    ((value, reason),) = _scores([(question, answer)])
    assert value < THRESHOLD, (question, answer, value, reason)


@pytest.mark.parametrize(("question", "answer"), ABOUT_THE_ASKED_THING)
def test_an_answer_about_the_asked_thing_passes(question: str, answer: str) -> None:
    ((value, reason),) = _scores([(question, answer)])
    assert value >= THRESHOLD, (question, answer, value, reason)


def test_the_reason_names_the_words_that_replace_the_asked_ones() -> None:
    ((value, reason),) = _scores([("How many beds does the hostel have?", "The hostel was painted in 2015.")])
    assert value < THRESHOLD
    assert "about something else" in reason and "paint" in reason and "bed" in reason


def test_a_paraphrase_that_shares_no_word_is_not_read_as_off_topic() -> None:
    ((value, reason),) = _scores(
        [("How many vacation days do employees get?", "Full-time staff receive 25 days.")]
    )
    assert value >= THRESHOLD, reason
