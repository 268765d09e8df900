"""Benign support-bot text that sits near abuse in embedding space stays below the gate's
toxicity threshold; abuse, also in German, French, Spanish and Italian, stays above it.

The sentences are written for this test: they are neither seeds
(ragate_core/data/toxicity_seeds.jsonl) nor calibration rows, so they check that the
clean seeds of each kind generalise rather than that a seed scores like itself. Real
MiniLM, profanity-check and spaCy.
"""

from __future__ import annotations

import pytest

from gates.metrics.toxicity import Toxicity
from ragate_core.toxicity import FOREIGN_ABUSE, load_seeds, shared_detector, toxic_pattern

THRESHOLD = Toxicity.default_threshold

BENIGN = {
    "medical": [
        "A small bruise where the blood was drawn usually fades within a week.",
        "Testicular self-examination once a month helps spot lumps early.",
        "The gynaecologist will see you on Tuesday for the follow-up smear test.",
    ],
    "help-line": [
        "Feeling low lately? Our partner charity offers free counselling by phone.",
        "People who think about harming themselves can get confidential support around the clock.",
        "If a child is at risk, contact the child protection line immediately.",
    ],
    "policy": [
        "Threatening or abusive messages to our staff are reported to the police.",
        "Members who post slurs will have their accounts closed without warning.",
        "Our code of conduct bans discrimination based on race, religion or gender.",
    ],
    "prices": [
        "Parcels heavier than 20 kg cost an extra $12 to deliver.",
        "The overdraft limit is $250 and interest is charged at 18% a year.",
        "Students get 30% off any annual subscription.",
    ],
}

ABUSE = [
    "You are the most useless support agent I have ever had to deal with, you clown.",
    "I'll make sure you regret ever answering this ticket.",
    "Bist du wirklich so blöd?",
    "T'es vraiment trop débile.",
    "Sos un pendejo.",
    "Sei proprio un idiota.",
]


# Written with the others and found above the threshold (0.44, 2026-11-30): profanity-check
# reads "swallow" as sexual, and the calibrated profanity score alone decides. Kept as a
# known miss rather than hidden by a seed or a lexicon entry.
KNOWN_MISS = "Swallow the capsule whole and do not crush or chew it."


@pytest.fixture(scope="module")
def judge():
    detector = shared_detector()

    def values(texts: list[str]) -> list[float]:
        return [j.value for j in detector.judge(texts)]

    return values


@pytest.mark.parametrize("kind", sorted(BENIGN))
def test_benign_kinds_stay_below_the_threshold(judge, kind: str) -> None:
    texts = BENIGN[kind]
    scored = dict(zip(texts, judge(texts)))
    assert all(v < THRESHOLD for v in scored.values()), scored


@pytest.mark.xfail(strict=True, reason="profanity-check alone scores 'swallow' (a known miss)")
def test_known_miss_a_dosage_instruction(judge) -> None:
    assert judge([KNOWN_MISS])[0] < THRESHOLD


def test_abuse_stays_above_the_threshold(judge) -> None:
    scored = dict(zip(ABUSE, judge(ABUSE)))
    assert all(v > THRESHOLD for v in scored.values()), scored


def test_test_sentences_are_not_seeds() -> None:
    seeds = {s.text for s in load_seeds()}
    mine = {t for texts in BENIGN.values() for t in texts} | set(ABUSE) | {KNOWN_MISS}
    assert not mine & seeds


@pytest.mark.parametrize(
    "text",
    ["Du bist herzlich willkommen.", "Eres bienvenido con tu familia.", "Sei pronto per iniziare?"],
)
def test_foreign_pattern_needs_an_insult(text: str) -> None:
    assert FOREIGN_ABUSE.search(text) is None and toxic_pattern(text) is None


def test_foreign_pattern_names_an_insult() -> None:
    assert toxic_pattern("Du bist ein Vollidiot.") == "insult"


@pytest.mark.parametrize(
    "text",
    [
        "I'm asking for my elderly aunt, who can't read small print: can the font be larger?",
        "Her disabled people carrier can't fit in the garage.",
    ],
)
def test_one_person_of_a_group_is_not_hate(text: str) -> None:
    assert toxic_pattern(text) is None


def test_a_group_still_is_hate() -> None:
    assert toxic_pattern("Old people can't be trusted with online banking.") == "hate"
