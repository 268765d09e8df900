"""answer_correctness: the answer against the case's ground truth (offline, fitted combiner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from gates.metrics.base import MetricCase, get_metric, passes
from gates.metrics.correctness import (
    FEATURES,
    MODEL_FILE,
    declines,
    labeled_cases,
    language,
    load_model,
    names,
    negated,
    quantities,
    yes_no,
)

CALIBRATION = Path(__file__).resolve().parents[1] / "datasets" / "calibration"
PRO_QUESTION = "How many API requests per minute can I make on the Pro plan?"
PRO_TRUTH = "On the Pro plan, the limit is 600 requests per minute."  # golden qa-027


@pytest.fixture(scope="module")
def metric():
    return get_metric("answer_correctness")


def score(metric, question, answer, ground_truth, answerable=True, **fields):
    case = MetricCase(
        id="t", question=question, answer=answer, ground_truth=ground_truth, answerable=answerable, **fields
    )
    return metric.score_batch([case])[0]


def test_the_real_chain_answer_about_the_pro_rate_limit_fails(metric):
    # The shipped chain's answer: 10 is the bulk-request limit, stated in its contexts.
    wrong = score(metric, PRO_QUESTION, "The Pro plan allows up to 10 requests per minute.", PRO_TRUTH)
    assert wrong.value is not None
    assert not passes(metric, wrong.value, metric.default_threshold)
    assert "different number" in wrong.reason
    right = score(metric, PRO_QUESTION, "You can make up to 600 requests per minute on Pro.", PRO_TRUTH)
    assert passes(metric, right.value, metric.default_threshold)
    assert right.value > wrong.value + 0.5


@pytest.mark.parametrize(
    ("question", "answer", "truth", "correct"),
    [
        ("Is the refund window 60 days?", "Yes, the refund window is 60 days.", "No, it is 30 days.", False),
        ("Is the refund window 60 days?", "No, you have 30 days.", "No, it is 30 days.", True),
        ("How long is the trial?", "It lasts two weeks.", "The trial lasts 14 days.", True),
        ("How long are backups kept?", "They are kept for 35 hours.", "Backups are kept for 35 days.", False),
        ("Who wrote Pride and Prejudice?", "It was written by Charlotte Brontë.", "Jane Austen", False),
        ("Who wrote Pride and Prejudice?", "Jane Austen wrote it in 1813.", "Jane Austen", True),
        (
            "Wie lange habe ich Zeit, eine Rückerstattung zu beantragen?",
            "Sie haben 30 Tage Zeit, eine Rückerstattung zu beantragen.",
            "Eine Rückerstattung kann innerhalb von 30 Tagen nach dem Kauf beantragt werden.",
            True,
        ),
        ("免费试用期有多长？", "免费试用期为30天。", "免费试用期为14天。", False),
        # A negation said with an opposite word agrees; the same word negated does not.
        (
            "When is the gym closed?",
            "It doesn't open on public holidays.",
            "The gym is closed on public holidays.",
            True,
        ),
        ("When is the gym closed?", "The gym is not open on Fridays.", "The gym is open on Fridays.", False),
        (
            "When is the office closed?",
            "It is closed Saturdays and Sundays.",
            "It is closed at weekends.",
            True,
        ),
        # What one side excludes with "without", the other may not affirm.
        (
            "Can I film in the hall?",
            "Yes, filming with a tripod is fine.",
            "Filming is allowed, without a tripod.",
            False,
        ),
        (
            "Can I film in the hall?",
            "Yes, but without a tripod.",
            "Filming is allowed, without a tripod.",
            True,
        ),
    ],
)
def test_small_inputs(metric, question, answer, truth, correct):
    result = score(metric, question, answer, truth)
    assert passes(metric, result.value, metric.default_threshold) == correct, result.reason


def test_unanswerable_is_correct_exactly_when_it_declines(metric):
    truth = "The knowledge base does not say; the assistant should say it does not know."
    q = "Does Tasklane have a dark mode?"
    assert score(metric, q, "I don't know. The documentation does not cover that.", truth, False).value == 1.0
    assert score(metric, q, "Yes, under Settings > Appearance.", truth, False).value == 0.0
    # No ground truth needed to judge an unanswerable case; blocked by a rail = declined.
    assert score(metric, q, "Ich weiß es nicht.", None, False).value == 1.0
    assert score(metric, q, "I can only help with the product.", None, False, blocked=True).value == 1.0
    # answerable unknown: a ground truth that itself declines makes the case unanswerable
    assert score(metric, q, "Yes, it does.", truth, None).value == 0.0


def test_declining_an_answerable_case_is_wrong(metric):
    result = score(metric, PRO_QUESTION, "I don't know. The documentation does not cover that.", PRO_TRUTH)
    assert result.value == 0.0
    assert "answerable" in result.reason


@pytest.mark.parametrize("truth", [None, "", "  "])
def test_missing_ground_truth_is_unscored_and_named(metric, truth):
    for answerable in (True, None):
        result = score(metric, PRO_QUESTION, "600 per minute.", truth, answerable)
        assert result.value is None
        assert "missing field 'ground_truth'" in result.reason


def test_capitalised_common_nouns_are_not_names_outside_name_case_languages():
    assert language("Sie haben 30 Tage Zeit, eine Rückerstattung zu beantragen.") == "de"
    assert names("Sie haben 30 Tage Zeit, eine Rückerstattung zu beantragen.") == set()
    assert names("The Pro plan includes SAML via Okta.") >= {"pro", "saml", "okta"}
    assert names("Der Pro-Tarif nutzt PostgreSQL und S3.") >= {"postgresql", "s3"}
    # A one-word answer is read in its question's language.
    assert names("Canberra.", "What is the capital of Australia?") == {"canberra"}


def test_quantities_normalise_numbers_and_units():
    assert quantities("15,000 runs").numbers == quantities("15.000 Läufe").numbers == {"15000"}
    assert quantities("300 000 km").numbers == {"300000"}
    assert quantities("Two hundred and six.").numbers == {"206"}
    assert quantities("from 9 am to 5 pm").numbers == quantities("09:00-17:00").numbers
    two_weeks, fourteen_days = quantities("two weeks"), quantities("14 days")
    assert fourteen_days.states("14", ("time", 14 * 86400.0))
    assert two_weeks.states("14", ("time", 14 * 86400.0))
    assert not quantities("35 hours").states("35", ("time", 35 * 86400.0))
    assert quantities("可以免费试用两周").has_measure(("time", 14 * 86400.0))
    assert quantities("a month").has_measure(("time", 30 * 86400.0))  # within 3%


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No, viewers cannot edit tasks.", True),
        ("Nein, das geht nicht.", True),
        ("Non, ce n'est pas possible.", True),
        ("No, no se puede.", True),
        ("不需要信用卡。", True),
        ("Viewers can edit tasks.", False),
        ("Refunds take no longer than 10 days.", False),
    ],
)
def test_negation_in_five_languages(text, expected):
    assert negated(text) == expected


def test_yes_no_and_declines():
    assert yes_no("Yes, you can.") is True
    assert yes_no("Nein.") is False
    assert yes_no("The trial lasts 14 days.") is None
    for text in (
        "I don't know.",
        "The documentation does not mention it.",
        "Das ist nicht angegeben.",
        "Je ne sais pas.",
        "No lo sé.",
        "文档没有提到。",
    ):
        assert declines(text), text
    assert not declines("No, the trial does not need a card.")


def test_shipped_model_matches_the_features():
    model = load_model(MODEL_FILE)
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES)
    assert len(model.coefficients) == len(FEATURES)
    assert 0.0 < model.threshold < 1.0


def _validation_auroc(metric, path: Path, label: str) -> tuple[float, int]:
    rows = [(case, y) for case, y, split in labeled_cases(path, label) if split == "validation"]
    scores = metric.score_batch([case for case, _ in rows])
    kept = [(s.value, y) for s, (_, y) in zip(scores, rows) if s.value is not None]
    assert len(kept) == len(rows), "every validation row is scored"
    return float(roc_auc_score([y for _, y in kept], [v for v, _ in kept])), len(kept)


def test_validation_auroc_on_the_labeled_set(metric):
    auroc, n = _validation_auroc(metric, CALIBRATION / "correctness.jsonl", "label")
    assert n >= 100
    assert auroc >= 0.90


def test_validation_auroc_on_real_chain_outputs(metric):
    path = CALIBRATION / "real_outputs.jsonl"
    if not path.is_file():
        pytest.skip("datasets/calibration/real_outputs.jsonl not generated yet")
    auroc, n = _validation_auroc(metric, path, "correct")
    assert n >= 40
    assert auroc >= 0.90


def test_labeled_set_covers_the_wrong_kinds_and_languages():
    rows = [json.loads(line) for line in (CALIBRATION / "correctness.jsonl").read_text("utf-8").splitlines()]
    kinds = {r["kind"] for r in rows if r["label"] == 0}
    assert kinds >= {
        "changed_number",
        "other_entity",
        "flipped_yes_no",
        "declined_answerable",
        "answered_unanswerable",
        "partial",
    }
    assert {r["kind"] for r in rows if r["label"] == 1} >= {"correct", "paraphrase", "declined_unanswerable"}
    prefixes = {r["pair"].split("-")[0] for r in rows}
    assert prefixes >= {"de", "fr", "es", "zh", "gk", "prod"}
    # A question's variants never straddle the splits (no leakage through the question).
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r["pair"], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())
