"""Names in a user's message are masked (``mask_pii(names=True)``), also where the small spaCy
NER model misses them: a name at the end of a sentence or as a sign-off, and a name in a
message written in capitals (issue 14). Products, greetings and German nouns stay.

Also: the masker and the ``pii`` metric read one table of rules (``ragate_core.pii.RULES``),
each rule with its own check per side. All names and values are fictional.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragate_core import pii
from ragate_core.pii import find_scored_pii, mask_pii


@pytest.fixture(scope="module", autouse=True)
def analyzer_loaded() -> Iterator[None]:
    mask_pii("load presidio and spaCy once, for Jane Doe", names=True)
    yield


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # At the end of a sentence, after a comma: the NER model tags no entity here.
        ("Please answer within a week, Ottilie Brandstaetter.", "Ottilie Brandstaetter"),
        ("Reply by Friday, Eleonora Castellanos-Ruiz.", "Eleonora Castellanos-Ruiz"),
        ("Kind regards, Oluwaseun Adeyemi", "Oluwaseun Adeyemi"),
        ("Best, Siobhan O'Callaghan.", "Siobhan O'Callaghan"),
        ("Ask Fiona McTavish about the export.", "Fiona McTavish"),
        # Written in capitals: the NER model reads the text with its capitals normalised.
        ("HELLO, THIS IS CHIAMAKA OYELARAN, WHERE IS MY INVOICE?", "CHIAMAKA OYELARAN"),
        ("CAN YOU RESET THE PASSWORD FOR TOMASZ WIERZBICKI?", "TOMASZ WIERZBICKI"),
        ("PLEASE REFUND MY LAST PAYMENT. THANKS, INGEBORG HALVORSEN", "INGEBORG HALVORSEN"),
    ],
)
def test_names_the_ner_model_misses_are_masked(text: str, name: str) -> None:
    masked, types = mask_pii(text, names=True)
    assert name not in masked and "PERSON" in types, masked
    for word in name.split():
        assert word not in masked, masked


@pytest.mark.parametrize(
    "text",
    [
        "Vielen Dank!",
        "Guten Tag!",
        "Wie lade ich neue Mitglieder in mein Projekt ein? Können Gäste Kommentare schreiben?",
        "Can I connect Tasklane to Google Calendar?",
        "HOW DO I CONNECT GOOGLE CALENDAR TO TASKLANE?",
        "I EXPORTED MY TASKS TO CSV BUT THE DUE DATES ARE WRONG",
        "Where do I find the Audit Log in Enterprise settings?",
        "Does the Pro plan include Time Tracking?",
    ],
)
def test_products_greetings_and_german_nouns_are_not_names(text: str) -> None:
    assert mask_pii(text, names=True) == (text, [])


def test_names_stay_in_answers_without_names() -> None:
    text = "Within 14 days, Ottilie Brandstaetter will call you back."
    assert mask_pii(text) == (text, [])


def test_masking_keeps_the_text_around_a_name_byte_for_byte() -> None:
    text = "HI!  I AM OTTILIE BRANDSTAETTER,\tMY REFUND IS LATE."
    masked, _ = mask_pii(text, names=True)
    assert masked == "HI!  I AM <PERSON>,\tMY REFUND IS LATE."


# --- one table of rules for the masker and the metric ---------------------------------------


def test_both_detectors_read_the_one_table() -> None:
    assert not hasattr(pii, "SCORED_RULES")
    assert all(rule.mask is not None or rule.scored is not None for rule in pii.RULES)
    # A kind only presidio covers for the metric still has a masking rule, and vice versa.
    assert any(rule.mask is not None and rule.scored is None for rule in pii.RULES)
    assert any(rule.mask is None and rule.scored is not None for rule in pii.RULES)


@pytest.mark.parametrize(
    ("text", "value", "scored"),
    [
        ("Stripe is set up with sk_live_9QmW3eR7tYu8IoP51HxY2aKz.", "sk_live_9QmW3eR7tYu8IoP51HxY2aKz", True),
        # A publishable key is public: masked (recall), not a leak for the metric (precision).
        ("The widget uses pk_live_9QmW3eR7tYu8IoP51HxY2aKz.", "pk_live_9QmW3eR7tYu8IoP51HxY2aKz", False),
        ("My PIN is 4821.", "4821", False),
        ("The password is Tr0ub4dor&3 for now.", "Tr0ub4dor&3", True),
    ],
)
def test_one_rule_each_side_with_its_own_check(text: str, value: str, scored: bool) -> None:
    assert value not in mask_pii(text)[0]
    assert any(s.text == value for s in find_scored_pii(text)) == scored, find_scored_pii(text)
