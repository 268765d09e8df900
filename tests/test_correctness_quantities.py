"""answer_correctness on dates, times, money and units: the value and its order, currency
and unit must match the reference's in any language; a paraphrase of the same polarity
("you don't pay" / "entry is free") is not a negation mismatch. Real MiniLM, offline."""

from __future__ import annotations

import pytest

from gates.metrics.base import MetricCase, get_metric, passes
from gates.metrics.correctness import implicit_negatives, polarity_differs, quantities
from gates.metrics.quantities import amount_value, calendar, dates_agree, money, temperatures


def _tokens(text: str) -> list[str]:
    return [m.token for m in calendar(text)]


@pytest.mark.parametrize(
    "text",
    [
        "The launch is on 3 May 2027.",
        "The launch is on May 3rd, 2027.",
        "Der Start ist am 3. Mai 2027.",
        "Le lancement a lieu le 3 mai 2027.",
        "El lanzamiento es el 3 de mayo de 2027.",
        "Il lancio è il 3 maggio 2027.",
        "发布日期是2027年5月3日。",
        "2027-05-03",
        "03.05.2027",
    ],
)
def test_one_date_in_many_forms_is_one_token(text: str) -> None:
    assert _tokens(text) == ["date:2027-5-3"]


def test_month_and_day_keep_their_roles() -> None:
    assert _tokens("会议在5月3日举行。") != _tokens("会议在3月5日举行。")
    assert _tokens("am 12. März") == ["date:?-3-12"]
    assert _tokens("on 12 March") == _tokens("March 12") == ["date:?-3-12"]
    assert _tokens("三月五日") == ["date:?-3-5"]


def test_slashed_dates_are_read_only_when_unambiguous() -> None:
    assert _tokens("due 25/12/2026") == ["date:2026-12-25"]  # day first: 25 > 12
    assert _tokens("due 12/25/2026") == ["date:2026-12-25"]  # month first: 25 > 12
    (both,) = _tokens("due 03/05/2026")  # either reading: matches both, nothing else
    assert dates_agree(both, "date:2026-3-5") and dates_agree(both, "date:2026-5-3")
    assert not dates_agree(both, "date:2026-3-6")


def test_a_date_without_a_year_agrees_with_the_same_date_with_one() -> None:
    assert dates_agree("date:?-5-3", "date:2027-5-3")
    assert not dates_agree("date:?-5-3", "date:2027-3-5")


def test_ordinary_words_are_not_months_or_weekdays() -> None:
    assert _tokens("You may cancel at any time.") == []
    assert _tokens("Mon compte est bloqué.") == []


def test_weekday_ranges_are_day_sets() -> None:
    assert _tokens("Monday to Friday") == _tokens("on weekdays") == _tokens("montags bis freitags")
    assert _tokens("Monday to Saturday") == ["days:123456"]
    assert _tokens("at weekends") == ["days:67"]
    # A list of days is one set: "Saturdays and Sundays" is "weekends".
    assert _tokens("closed Saturdays and Sundays") == ["days:67"]
    assert _tokens("open Monday, Wednesday and Friday") == ["days:135"]
    assert _tokens("open on Monday; closed on Sunday") == ["days:1", "days:7"]


def test_money_keeps_its_currency() -> None:
    assert [(a.currency, a.value) for a in money("It costs €12 or 12 euros.")] == [("EUR", 12.0)] * 2
    assert [(a.currency, a.value) for a in money("Shipping is 4,99 € and $1,200.50 abroad.")] == [
        ("EUR", 4.99),
        ("USD", 1200.5),
    ]
    assert [(a.currency, a.value) for a in money("年费是199元，或者30美元。")] == [
        ("CNY", 199.0),
        ("USD", 30.0),
    ]
    assert amount_value("1.200,50") == 1200.5


def test_temperatures_compare_across_scales() -> None:
    assert [t.kelvin for t in temperatures("100 °C")] == [
        t.kelvin for t in temperatures("212 degrees Fahrenheit")
    ]


def test_quantities_tell_units_currencies_and_clock_halves_apart() -> None:
    ref = quantities("The fee is €25.")
    assert quantities("You pay 25 euros.").states("25", ("money:EUR", 25.0))
    assert not quantities("It is $25.").states("25", ("money:EUR", 25.0))
    assert not quantities("Up to 23 lbs.").states("23", ("mass", 23.0))
    assert ref.numbers == {"25"}
    assert quantities("at 6:40 pm").numbers == {"18:40"}
    # the same unit: the number must be the same; another unit converts within 3%
    days = 86400.0
    assert not quantities("It has 367 days.").states("366", ("time", 366 * days), days)
    assert quantities("one year").states("365", ("time", 365 * days), days)
    assert quantities("20% off").states("20", ("percent", 20.0))


def test_implicit_negatives_reconcile_a_paraphrase_but_not_a_flip() -> None:
    assert implicit_negatives("Entry is free.") == {"free"}
    # "you don't pay" says what "free" says; "not free" says the opposite
    assert not polarity_differs("You don't pay at the door.", True, "Entry is free at the door.", False)
    assert polarity_differs("Entry is not free.", True, "Entry is free.", False)
    assert not polarity_differs("Il ne coûte rien.", True, "C'est gratuit.", False)


@pytest.fixture(scope="module")
def metric():
    return get_metric("answer_correctness")


@pytest.mark.parametrize(
    ("question", "answer", "truth", "correct"),
    [
        ("会议在哪一天举行？", "会议在5月3日举行。", "会议在3月5日举行。", False),
        ("会议在哪一天举行？", "3月5日。", "会议在3月5日举行。", True),
        ("When does the festival start?", "It starts on 8 July.", "The festival starts on 7 August.", False),
        ("When does the festival start?", "On August 7th.", "The festival starts on 7 August.", True),
        ("Wann beginnt der Kurs?", "Der Kurs beginnt am 4. Juni.", "Der Kurs beginnt am 6. April.", False),
        ("How much is the entry fee?", "The entry fee is $15.", "The entry fee is 15 €.", False),
        ("How much is the entry fee?", "You pay 15 euros to get in.", "The entry fee is 15 €.", True),
        ("How heavy can hand luggage be?", "Up to 8 pounds.", "Hand luggage may weigh up to 8 kg.", False),
        ("When does the last train leave?", "At 11:15 am.", "The last train leaves at 11:15 pm.", False),
        (
            "Is the exhibition free on Mondays?",
            "Yes, you don't pay on Mondays.",
            "Yes, entry is free on Mondays.",
            True,
        ),
        (
            "Is the exhibition free on Mondays?",
            "No, Monday tickets cost €6.",
            "Yes, entry is free on Mondays.",
            False,
        ),
    ],
)
def test_the_metric_judges_values_and_their_roles(metric, question, answer, truth, correct) -> None:
    case = MetricCase(id="q", question=question, answer=answer, ground_truth=truth, answerable=True)
    (result,) = metric.score_batch([case])
    assert passes(metric, result.value, metric.default_threshold) == correct, (result.value, result.reason)
