"""answer_relevancy on the form of the answer: a short answer of the kind asked (a time, a
price, a count, a yes or a no) addresses the question; an answer that repeats the question's
words but adds the asked-for fact is not a mere restatement; an answer with none of the asked
content and only praise or filler is evasive. Real MiniLM encoder, offline."""

from __future__ import annotations

import pytest

from gates.metrics import get_metric
from gates.metrics.base import MetricCase

THRESHOLD = 0.5


def _scores(pairs: list[tuple[str, str]]) -> list[float]:
    cases = [MetricCase(id=f"c{i}", question=q, answer=a, answerable=True) for i, (q, a) in enumerate(pairs)]
    return [s.value for s in get_metric("answer_relevancy").score_batch(cases)]


SHORT_DIRECT = [
    ("What time does the museum close on Fridays?", "At 20:30."),
    ("When does the spring term start?", "On 3 March."),
    ("Does the hotel allow pets?", "Yes."),
    ("Is the beta open to free accounts?", "No."),
    ("How much is a day pass for the climbing hall?", "$18, or $14 with a student card."),
    ("How many seats does the small meeting room have?", "Eight."),
    ("Combien de jours dure l'essai gratuit ?", "14 jours."),
    ("Where is the Aldgate warehouse?", "In Croydon, next to the station."),
]

RESTATES_WITH_NEW_INFO = [
    ("Where is the Harlow depot located?", "The Harlow depot is located in Leeds."),
    ("When was the Orin library opened?", "The Orin library was opened in 1962."),
    ("Which plan includes SSO, Team or Enterprise?", "Enterprise includes SSO."),
    ("Is parking free for visitors?", "Parking is free for visitors on weekends."),
    ("¿Cuántas sucursales tiene el banco?", "El banco tiene 85 sucursales."),
]

EVASIVE = [
    ("How much does the family ticket cost?", "The family ticket is a wonderful choice parents enjoy."),
    ("What time does the clinic open on Mondays?", "The clinic is a friendly place with a caring team."),
    ("How many users can a workspace have?", "Workspaces are a great way to collaborate with your team."),
]


@pytest.mark.parametrize(("question", "answer"), SHORT_DIRECT)
def test_short_answer_of_the_asked_kind_passes(question: str, answer: str) -> None:
    (value,) = _scores([(question, answer)])
    assert value >= THRESHOLD, (question, answer, value)


@pytest.mark.parametrize(("question", "answer"), RESTATES_WITH_NEW_INFO)
def test_restating_with_the_asked_fact_passes(question: str, answer: str) -> None:
    (value,) = _scores([(question, answer)])
    assert value >= THRESHOLD, (question, answer, value)


@pytest.mark.parametrize(("question", "answer"), EVASIVE)
def test_praise_without_the_asked_content_fails(question: str, answer: str) -> None:
    (value,) = _scores([(question, answer)])
    assert value < THRESHOLD, (question, answer, value)


def test_pure_restatement_still_fails() -> None:
    (value,) = _scores([("What is the refund policy for gift cards?", "The refund policy for gift cards.")])
    assert value < THRESHOLD


def test_direct_answer_ranks_above_evasive_one_for_the_same_question() -> None:
    question = "How much does the family ticket cost?"
    direct, evasive = _scores(
        [(question, "€45 for two adults and two children."), (question, "Families love this ticket a lot.")]
    )
    assert direct > evasive


def test_reason_names_an_answer_of_the_asked_kind() -> None:
    question = "What time does the museum close?"
    case = MetricCase(id="x", question=question, answer="At 17:00.", answerable=True)
    (score,) = get_metric("answer_relevancy").score_batch([case])
    assert "answer of the kind asked" in score.reason
