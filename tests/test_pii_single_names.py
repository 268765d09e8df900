"""One-word names the NER model misses are masked in a user's message when the words around
them say a person is meant: a title before it, or a greeting or sign-off addressing it
(issue 11). English words there (teams, insults) and products stay. Real presidio and
spaCy; the people are fictional."""

from __future__ import annotations

import pytest

from ragate_core.pii import mask_pii


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Thanks, Priya", "Thanks, <PERSON>"),
        ("Hi Priya, my refund is late.", "Hi <PERSON>, my refund is late."),
        ("Thank you, Priya.", "Thank you, <PERSON>."),
        ("Dr. Okonkwo said it is fine", "Dr. <PERSON> said it is fine"),
        ("Regards, Okonkwo", "Regards, <PERSON>"),
    ],
)
def test_a_single_name_after_a_title_or_greeting_is_masked(text: str, masked: str) -> None:
    assert mask_pii(text, names=True)[0] == masked


@pytest.mark.parametrize(
    "text",
    [
        "Hi Team, how do I export?",
        "Thanks, Support.",
        "Hello Slack",
        "Hello Tasklane, I need help",
        "Hi there, how do I export?",
        "Thanks, Pro plan works",
        "Listen, Mr. Idiot, fix it",  # an insult dressed as a name stays visible to the rails
    ],
)
def test_teams_products_and_words_after_a_greeting_or_title_stay(text: str) -> None:
    assert mask_pii(text, names=True)[0] == text


def test_without_names_nothing_changes() -> None:
    assert mask_pii("Thanks, Priya", names=False)[0] == "Thanks, Priya"
