"""faithfulness v3: the failure modes it now judges by general mechanisms (numbers written
as words, durations in other units, yes/no against a context with an exception or an
opposite word, roles bound to names per clause, "which is larger, A or B" against the
values). The examples are written for these tests, apart from the calibration data."""

from __future__ import annotations

import pytest

from gates.metrics import text as tx
from gates.metrics.base import MetricCase, get_metric


def scores(question: str, contexts: list[str], *answers: str) -> list[float]:
    cases = [MetricCase(f"c{i}", question, a, contexts) for i, a in enumerate(answers)]
    return [s.value for s in get_metric("faithfulness").score_batch(cases)]


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Die Lieferung dauert drei bis fünf Werktage.", "de", "Die Lieferung dauert 3 bis 5 Werktage."),
        ("twenty-four months", "en", "24 months"),
        ("quatre-vingt-dix euros", "fr", "90 euros"),
        ("doce meses", "es", "12 meses"),
        # A lone "one" is an article as often as a number; ordinals stay words.
        ("one of the second-tier plans", "en", "one of the second-tier plans"),
        ("die zweite Stufe", "de", "die zweite Stufe"),
        ("costs 1,000 dollars", "en", "costs 1,000 dollars"),
        ("你好", "zh", "你好"),
    ],
)
def test_numbers_written_as_words_become_digits(text: str, lang: str, expected: str) -> None:
    assert tx.with_digits(text, lang) == expected


def test_durations_in_other_units_are_one_duration() -> None:
    [(n1, _, two_years)] = tx.durations("Two years.", "en")
    [(n2, _, months)] = tx.durations("a 24-month warranty", "en")
    assert (n1, n2) == ("2", "24") and tx.same_duration(two_years, months)
    [(_, _, weeks)] = tx.durations("zwei Wochen", "de")
    assert tx.same_duration(weeks, 14.0)
    assert not tx.same_duration(tx.durations("6 weeks", "en")[0][2], tx.durations("1.5 months", "en")[0][2])
    # Working days are not calendar days: the qualifier keeps them out.
    assert tx.durations("5 business days", "en") == []


def test_restrictions_and_full_names() -> None:
    assert tx.restriction("Refunds are not possible unless the item is damaged.") == "exception"
    assert tx.restriction("Nur wenn die Ware beschädigt ist.") == "only"
    assert tx.restriction("The app syncs every hour.") == ""
    assert tx.full_names("The CFO is Ben Okoro.", "en") == {"ben", "okoro"}
    assert tx.full_names("The Bergen office is large.", "en") == set()


def test_yes_against_a_denial_with_an_exception_fails_and_the_no_passes() -> None:
    context = ["Gift cards cannot be refunded unless the card was never activated."]
    yes, bare_yes, no, only_if = scores(
        "Can I get a refund for a gift card?",
        context,
        "Yes, gift cards can be refunded.",
        "Yes.",
        "No.",
        "No, only if the card was never activated.",
    )
    assert yes < 0.5 and bare_yes < 0.5
    assert no >= 0.5 and only_if >= 0.5


@pytest.mark.parametrize(
    ("question", "context", "right", "wrong"),
    [
        (
            "Ist die Kantine am Samstag geöffnet?",
            "Die Kantine ist am Samstag geschlossen und sonst ab 11 Uhr geöffnet.",
            "Nein, am Samstag ist sie geschlossen.",
            "Ja, die Kantine ist am Samstag geöffnet.",
        ),
        (
            "Le musée est-il ouvert le mardi ?",
            "Le musée est fermé le mardi et ouvert les autres jours.",
            "Non, il est fermé le mardi.",
            "Oui, le musée est ouvert le mardi.",
        ),
        (
            "¿El gimnasio abre los festivos?",
            "El gimnasio está cerrado los festivos.",
            "No, está cerrado los festivos.",
            "Sí, el gimnasio abre los festivos.",
        ),
    ],
)
def test_opposite_words_in_german_french_spanish(question: str, context: str, right: str, wrong: str) -> None:
    good, bad = scores(question, [context], right, wrong)
    assert good >= 0.5 > bad


@pytest.mark.parametrize(
    ("question", "context", "right", "wrong"),
    [
        (
            "Wie lange ist das Ticket gültig?",
            "Das Ticket ist sieben Tage gültig.",
            "Das Ticket ist 7 Tage gültig.",
            "Das Ticket ist zwölf Tage gültig.",
        ),
        (
            "How long is the warranty on the blender?",
            "The blender comes with a 36-month warranty.",
            "Three years.",
            "Five years.",
        ),
        (
            "Combien de temps dure l'abonnement d'essai ?",
            "L'abonnement d'essai dure deux semaines.",
            "Il dure 14 jours.",
            "Il dure trois semaines.",
        ),
    ],
)
def test_numbers_as_words_and_durations_are_compared(
    question: str, context: str, right: str, wrong: str
) -> None:
    good, bad = scores(question, [context], right, wrong)
    assert good >= 0.5 > bad


def test_a_name_given_the_role_of_another_fails() -> None:
    good, bad = scores(
        "Who is the treasurer of the club?",
        ["The club's treasurer is Mina Varga, and its secretary is Pavel Novak."],
        "Mina Varga is the treasurer of the club.",
        "Pavel Novak is the treasurer of the club.",
    )
    assert good >= 0.5 > bad


def test_a_person_put_in_the_wrong_office_fails() -> None:
    contexts = ["The Porto studio is led by Rui Alves.", "The Braga studio is led by Ines Costa."]
    good, bad = scores(
        "Who leads the Porto studio?",
        contexts,
        "Rui Alves leads the Porto studio.",
        "Ines Costa leads the Porto studio.",
    )
    assert good >= 0.5 > bad


def test_which_is_larger_is_checked_against_the_values() -> None:
    contexts = ["The Delta boiler holds 80 litres. The Sigma boiler holds 120 litres."]
    right, wrong = scores(
        "Which is larger, the Delta or the Sigma boiler?",
        contexts,
        "The Sigma boiler is larger.",
        "The Delta boiler is larger.",
    )
    assert right >= 0.5 > wrong
    [yes] = scores("Is the Delta boiler larger than the Sigma boiler?", contexts, "Yes.")
    assert yes < 0.5
