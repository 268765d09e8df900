"""The offline metrics prove themselves: AUROC on the labeled calibration data, and
hand-made cases of each kind of unfaithfulness (written apart from that data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gates import calibrate
from gates.calibrate import (
    DATASETS,
    FILES,
    Calibration,
    Dataset,
    auroc,
    bootstrap_auroc,
    calibrate_metric,
    read_rows,
    suggest_threshold,
)
from gates.metrics.base import MetricCase, get_metric, score_each

CALIBRATION = Path(__file__).resolve().parents[1] / "datasets" / "calibration"
# (file, least AUROC on its validation split): the contradiction pairs and the chain's own
# answers are the done-when figures of issue 10; the other files guard their own kinds.
FAITHFULNESS_FLOORS = {
    "faithfulness.jsonl": 0.90,
    "faithfulness_multilingual.jsonl": 0.90,
    "faithfulness_forms.jsonl": 0.75,
    "real_outputs.jsonl": 0.85,
    "real_outputs_extra.jsonl": 0.85,  # more real answers: per plan, false premises, unanswerable
}


@pytest.fixture(scope="module")
def calibrations() -> dict[str, Calibration]:
    # The real metrics on the real data: computed once, read by several tests.
    return {"answer_relevancy": calibrate_metric("answer_relevancy", CALIBRATION / FILES["answer_relevancy"])}


def test_relevancy_separates_good_from_bad(calibrations: dict[str, Calibration]) -> None:
    cal = calibrations["answer_relevancy"]
    rows = (CALIBRATION / FILES["answer_relevancy"]).read_text(encoding="utf-8").splitlines()
    labels = [json.loads(line)["label"] for line in rows if line.strip()]

    assert cal.n == len(labels)
    assert cal.n_violations == labels.count(0)  # label 0 = irrelevant
    assert cal.unscored == 0, "every calibration row must be scored"
    assert cal.auroc >= 0.90, f"AUROC {cal.auroc}; missed {cal.missed}, false alarms {cal.false_alarms}"
    assert cal.threshold == get_metric("answer_relevancy").default_threshold


@pytest.mark.parametrize("dataset", DATASETS["faithfulness"], ids=lambda d: d.file)
def test_faithfulness_separates_good_from_bad_on_the_validation_split(dataset: Dataset) -> None:
    path = CALIBRATION / dataset.file
    if dataset.optional and not path.is_file():
        pytest.skip(f"{dataset.file} is not there yet")
    rows = read_rows(path, dataset)
    validation = [r for r in rows if r.split == "validation"]
    cal = calibrate_metric("faithfulness", path, dataset=dataset, split="validation", rows=rows)

    assert cal.n == len(validation) > 0
    assert cal.n_violations == sum(1 for r in validation if r.label_of(dataset.label) == 0)
    assert cal.unscored == 0, "every calibration row must be scored"
    assert cal.auroc >= FAITHFULNESS_FLOORS[dataset.file], (
        f"{dataset.file} validation AUROC {cal.auroc} [{cal.auroc_low}, {cal.auroc_high}]; "
        f"missed {cal.missed}, false alarms {cal.false_alarms}"
    )
    assert cal.auroc_low <= cal.auroc <= cal.auroc_high
    assert -1.0 <= cal.kappa <= 1.0


def test_every_faithfulness_file_has_a_split_by_pair() -> None:
    for dataset in DATASETS["faithfulness"]:
        path = CALIBRATION / dataset.file
        if not path.is_file():
            continue
        rows = read_rows(path, dataset)
        assert {r.split for r in rows} == {"train", "validation"}, dataset.file
        pairs: dict[str, set[str]] = {}
        for row in rows:
            if row.pair:
                pairs.setdefault(row.pair, set()).add(row.split)
        assert all(len(splits) == 1 for splits in pairs.values()), f"{dataset.file}: a pair spans both splits"


def test_the_multilingual_file_has_twenty_pairs_in_each_language() -> None:
    rows = read_rows(
        CALIBRATION / "faithfulness_multilingual.jsonl", Dataset("faithfulness_multilingual.jsonl")
    )
    for lang in ("de", "fr", "es", "zh"):
        pairs = {r.pair for r in rows if r.lang == lang}
        labels = {r.label for r in rows if r.lang == lang}
        assert len(pairs) >= 20 and labels == {0, 1}, lang


def test_auroc_counts_ranks_and_ties() -> None:
    labels = np.array([1, 1, 0, 0])
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert auroc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert auroc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert auroc(labels, np.array([0.9, 0.3, 0.5, 0.1])) == 0.75
    assert np.isnan(auroc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_bootstrap_interval_brackets_the_auroc_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([1] * 40 + [0] * 40)
    scores = np.concatenate([rng.normal(1, 1, 40), rng.normal(0, 1, 40)])
    low, high = bootstrap_auroc(labels, scores)
    assert low < auroc(labels, scores) < high
    assert (low, high) == bootstrap_auroc(labels, scores)
    assert all(np.isnan(v) for v in bootstrap_auroc(np.array([1, 1]), np.array([0.1, 0.2])))


@pytest.mark.parametrize(
    ("direction", "values", "violates", "target", "expected"),
    [
        # higher is better: the violating values are 0.2, 0.4, 0.6; none may pass at 0.0
        ("higher_is_better", [0.2, 0.4, 0.6, 0.7, 0.9], [1, 1, 1, 0, 0], 0.0, (0.6001, 0.0, 0.0)),
        # one of three violating cases may pass at a target of 0.34
        ("higher_is_better", [0.2, 0.4, 0.6, 0.5, 0.9], [1, 1, 1, 0, 0], 0.34, (0.4001, 0.3333, 0.0)),
        # lower is better (a detector): pass when value <= t
        ("lower_is_better", [0.1, 0.3, 0.8, 0.9], [0, 0, 1, 1], 0.0, (0.7999, 0.0, 0.0)),
        ("lower_is_better", [0.1, 0.5, 0.4, 0.9], [0, 0, 1, 1], 0.0, (0.3999, 0.0, 0.5)),
    ],
)
def test_suggested_threshold_keeps_the_false_pass_rate(direction, values, violates, target, expected) -> None:
    got = suggest_threshold(np.array(values), np.array(violates, dtype=bool), direction, target)
    assert got == expected


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
    "changed currency": (
        "How much does the Team plan cost?",
        "The Team plan costs $12 per user per month.",
        "The Team plan costs €12 per user per month.",
    ),
    "changed unit": (
        "How much storage comes with the Team plan?",
        "The Team plan includes 50 GB of storage per workspace.",
        "The Team plan includes 50 MB of storage per workspace.",
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
}
# Known gaps of faithfulness v2: an addition whose words the contexts use nowhere lowers
# the score (word share) but, alone, not below the threshold; a swapped common noun
# ("workspace owner" for "billing contact") that the contexts use elsewhere is not seen at
# all. Strict xfails, so that a fix is noticed.
NOT_LOWER = {"swapped common-noun entity"}
MISSED = {
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
    "swapped common-noun entity": (
        "Who receives invoices?",
        "Invoices are emailed to the billing contact on the first day of each month.",
        "Invoices are emailed to the workspace owner on the first day of each month.",
    ),
}


def faithfulness(question: str, *answers: str) -> list[float | None]:
    cases = [MetricCase(f"c{i}", question, a, CONTEXT) for i, a in enumerate(answers)]
    return [s.value for s in get_metric("faithfulness").score_batch(cases)]


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, marks=pytest.mark.xfail(strict=True, reason="known gap of the metric"))
        if k in NOT_LOWER
        else k
        for k in [*UNFAITHFUL, *MISSED]
    ],
)
def test_each_kind_of_unfaithfulness_scores_lower_than_the_faithful_answer(kind: str) -> None:
    question, good, bad = {**UNFAITHFUL, **MISSED}[kind]
    faithful, unfaithful = faithfulness(question, good, bad)
    assert faithful >= 0.8
    assert unfaithful < faithful - 0.1


@pytest.mark.parametrize(
    "kind",
    list(UNFAITHFUL)
    + [
        # Not strict: a refit on more data may close the gap without failing the suite.
        pytest.param(k, marks=pytest.mark.xfail(strict=False, reason="known gap of the metric"))
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


# --- the command: --suggest, --fit, --judge llm ---------------------------------------------


def _small_calibration_dir(tmp_path: Path, per_file: int = 6) -> Path:
    """A calibration folder with a few rows of each faithfulness file (both splits)."""
    out = tmp_path / "calibration"
    out.mkdir()
    for dataset in DATASETS["faithfulness"]:
        source = CALIBRATION / dataset.file
        if not source.is_file():
            continue
        lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        picked = [line for line in lines if '"validation"' in line][:per_file]
        picked += [line for line in lines if '"train"' in line][:per_file]
        (out / dataset.file).write_text("\n".join(picked) + "\n", encoding="utf-8")
    return out


def test_fit_writes_a_model_from_the_train_split_only(tmp_path: Path) -> None:
    from gates.metrics import faithfulness as fm

    data_dir = _small_calibration_dir(tmp_path)
    output = tmp_path / "model.json"
    model = calibrate.fit_faithfulness(data_dir, output)

    written = json.loads(output.read_text(encoding="utf-8"))
    assert written == model
    assert written["features"] == list(fm.FEATURES)
    fm.Combiner.from_dict(written)  # loads
    for entry in written["training_data"]:
        rows = [json.loads(line) for line in (data_dir / Path(entry["file"]).name).read_text().splitlines()]
        # Train rows only; an answer that declines makes no claim and is not fitted on.
        assert 0 < entry["rows"] <= sum(1 for r in rows if r["split"] == "train")
    assert not list(tmp_path.glob(".model.json.*"))  # written atomically, no temporary left


def test_suggest_prints_a_threshold_per_metric(tmp_path: Path, capsys) -> None:
    from gates.cli import main

    data_dir = _small_calibration_dir(tmp_path)
    report = tmp_path / "calibration.json"
    code = main(
        [
            "calibrate",
            "--metrics",
            "faithfulness",
            "--data",
            str(data_dir),
            "--suggest",
            "--output",
            str(report),
        ]
    )
    assert code == 0
    assert "faithfulness" in capsys.readouterr().out
    [suggestion] = json.loads(report.read_text())["suggestions"]
    assert 0.0 <= suggestion["threshold"] <= 1.0
    assert suggestion["false_pass_rate"] <= 0.05


def test_calibrate_reports_interval_and_kappa_per_split(tmp_path: Path) -> None:
    from gates.cli import main

    data_dir = _small_calibration_dir(tmp_path)
    report = tmp_path / "calibration.json"
    assert (
        main(["calibrate", "--metrics", "faithfulness", "--data", str(data_dir), "--output", str(report)])
        == 0
    )
    results = json.loads(report.read_text())["metrics"]
    assert {r["split"] for r in results} == {"train", "validation"}
    for r in results:
        assert {"auroc", "auroc_low", "auroc_high", "kappa", "precision", "recall"} <= set(r)


def test_an_unreachable_judge_is_a_usage_error(tmp_path: Path, monkeypatch, capsys) -> None:
    from gates.cli import main

    data_dir = tmp_path / "calibration"
    data_dir.mkdir()
    rows = [json.loads(line) for line in (CALIBRATION / "relevancy.jsonl").read_text().splitlines()[:2]]
    (data_dir / "relevancy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("RAGATE_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("RAGATE_JUDGE_MODEL", "absent-judge")
    args = ["calibrate", "--metrics", "answer_relevancy", "--data", str(data_dir), "--judge", "llm"]
    code = main([*args, "--output", str(tmp_path / "out.json")])
    assert code == 2
    assert "judge" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_a_row_without_its_label_names_file_and_line(tmp_path: Path) -> None:
    from ragate_core.errors import UsageError

    path = tmp_path / "real_outputs.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q", "answer": "a"}) + "\n")
    with pytest.raises(UsageError, match=r"real_outputs.jsonl:1: row 'a' has no 'faithful' label"):
        read_rows(path, Dataset("real_outputs.jsonl", label="faithful"))
