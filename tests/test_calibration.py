"""The offline metrics prove themselves: AUROC on the labeled calibration data, and
hand-made cases of each kind of unfaithfulness (written apart from that data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gates import calibrate
from gates.calibrate import FILES, Calibration, auroc, calibrate_metric
from gates.metrics.base import MetricCase, get_metric, score_each

CALIBRATION = Path(__file__).resolve().parents[1] / "datasets" / "calibration"


@pytest.fixture(scope="module")
def calibrations() -> dict[str, Calibration]:
    # The real metrics on the real data: computed once, read by several tests.
    return {
        name: calibrate_metric(name, CALIBRATION / FILES[name])
        for name in ("faithfulness", "answer_relevancy")
    }


@pytest.mark.parametrize("metric", ["faithfulness", "answer_relevancy"])
def test_metric_separates_good_from_bad(calibrations: dict[str, Calibration], metric: str) -> None:
    cal = calibrations[metric]
    rows = (CALIBRATION / FILES[metric]).read_text(encoding="utf-8").splitlines()
    labels = [json.loads(line)["label"] for line in rows if line.strip()]

    assert cal.n == len(labels)
    assert cal.n_violations == labels.count(0)  # label 0 = unfaithful / irrelevant
    assert cal.unscored == 0, "every calibration row must be scored"
    assert cal.auroc >= 0.90, (
        f"{metric} AUROC {cal.auroc}; missed {cal.missed}, false alarms {cal.false_alarms}"
    )
    assert cal.threshold == get_metric(metric).default_threshold


def test_auroc_counts_ranks_and_ties() -> None:
    labels = np.array([1, 1, 0, 0])
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert auroc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert auroc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert auroc(labels, np.array([0.9, 0.3, 0.5, 0.1])) == 0.75
    assert np.isnan(auroc(np.array([1, 1]), np.array([0.2, 0.3])))


class NumberDetector:
    """A lower-is-better detector with no model: the text is the probability of a violation."""

    name = "detector"
    version = "1"
    direction = "lower_is_better"
    default_threshold = 0.5

    def score_batch(self, cases):
        return score_each(self, cases, lambda c: (float(c.answer), "", {}))


def test_calibration_measures_a_detector_at_its_threshold(tmp_path: Path, monkeypatch) -> None:
    rows = [("r1", 0, "0.1"), ("r2", 0, "0.6"), ("r3", 1, "0.4"), ("r4", 1, "0.7"), ("r5", 1, "0.9")]
    path = tmp_path / "detector.jsonl"
    path.write_text("".join(json.dumps({"id": i, "label": label, "text": t}) + "\n" for i, label, t in rows))
    monkeypatch.setattr(calibrate, "get_metric", lambda name: NumberDetector())

    cal = calibrate_metric("detector", path)

    assert (cal.n, cal.n_violations, cal.unscored) == (5, 3, 0)
    assert cal.auroc == pytest.approx(5 / 6, abs=1e-4)  # r3 ranks below r2
    assert (cal.precision, cal.recall, cal.false_positive_rate) == (0.6667, 0.6667, 0.5)
    assert cal.missed == ("r3",)
    assert cal.false_alarms == ("r2",)


CONTEXT = (
    "The Team plan costs $12 per user per month and includes 50 GB of storage per workspace. "
    "Two-factor authentication is required for every admin account. "
    "Data exports are available to owners on the Business plan. "
    "Invoices are emailed to the billing contact on the first day of each month.",
)
# kind -> (question, faithful answer, unfaithful answer of that kind)
UNFAITHFUL = {
    "changed number": (
        "How much does the Team plan cost?",
        "The Team plan costs $12 per user per month.",
        "The Team plan costs $15 per user per month.",
    ),
    "swapped entity": (
        "Who can export data?",
        "Data exports are available to owners on the Business plan.",
        "Data exports are available to owners on the Enterprise plan.",
    ),
    "negation": (
        "Do admins need two-factor authentication?",
        "Two-factor authentication is required for every admin account.",
        "Two-factor authentication is not required for admin accounts.",
    ),
    "antonym": (
        "Do admins need two-factor authentication?",
        "Two-factor authentication is required for every admin account.",
        "Two-factor authentication is optional for admin accounts.",
    ),
    "unsupported addition": (
        "How much does the Team plan cost?",
        "The Team plan costs $12 per user per month.",
        "The Team plan costs $12 per user per month. It also includes a free custom domain.",
    ),
    "addition inside the same clause": (
        "How much does the Team plan cost?",
        "The Team plan costs $12 per user per month.",
        "The Team plan costs $12 per user per month and includes priority phone support.",
    ),
}
# Known gaps of the lexical faithfulness check: scored lower than the faithful answer, but
# not below the threshold. Strict xfails, so that a fix is noticed.
MISSED = {
    "swapped common-noun entity": (
        "Who receives invoices?",
        "Invoices are emailed to the billing contact on the first day of each month.",
        "Invoices are emailed to the workspace owner on the first day of each month.",
    ),
}


def faithfulness(question: str, *answers: str) -> list[float | None]:
    cases = [MetricCase(f"c{i}", question, a, CONTEXT) for i, a in enumerate(answers)]
    return [s.value for s in get_metric("faithfulness").score_batch(cases)]


@pytest.mark.parametrize("kind", list(UNFAITHFUL) + list(MISSED))
def test_each_kind_of_unfaithfulness_scores_lower_than_the_faithful_answer(kind: str) -> None:
    question, good, bad = {**UNFAITHFUL, **MISSED}[kind]
    faithful, unfaithful = faithfulness(question, good, bad)
    assert faithful >= 0.8
    assert unfaithful < faithful - 0.1


@pytest.mark.parametrize(
    "kind",
    list(UNFAITHFUL)
    + [
        pytest.param(k, marks=pytest.mark.xfail(strict=True, reason="known gap of the metric"))
        for k in MISSED
    ],
)
def test_each_kind_of_unfaithfulness_fails_the_default_threshold(kind: str) -> None:
    question, _, bad = {**UNFAITHFUL, **MISSED}[kind]
    [value] = faithfulness(question, bad)
    assert value < get_metric("faithfulness").default_threshold


def test_declining_to_answer_is_faithful() -> None:
    score = get_metric("faithfulness").score_batch(
        [MetricCase("idk", "Is there a Linux app?", "I don't know; the documentation does not say.", CONTEXT)]
    )[0]
    assert score.value == 1.0
    assert "declines" in score.reason


@pytest.mark.parametrize(("answerable", "expected"), [(False, 1.0), (True, 0.0)])
def test_i_dont_know_is_relevant_only_when_the_case_is_unanswerable(
    answerable: bool, expected: float
) -> None:
    case = MetricCase(
        "idk", "How much does the Team plan cost?", "I don't know.", CONTEXT, answerable=answerable
    )
    score = get_metric("answer_relevancy").score_batch([case])[0]
    assert score.value == expected, score.reason


def test_a_direct_answer_is_relevant_and_an_evasive_one_is_not() -> None:
    question = "How much does the Team plan cost?"
    cases = [
        MetricCase(
            "direct", question, "The Team plan costs $12 per user per month.", CONTEXT, answerable=True
        ),
        MetricCase(
            "evasive",
            question,
            "Great question! Pricing depends on many factors, so reach out to our sales team.",
            CONTEXT,
            answerable=True,
        ),
    ]
    direct, evasive = get_metric("answer_relevancy").score_batch(cases)
    assert direct.value >= 0.5 > evasive.value
