"""Metrics prove themselves: AUROC, precision, recall and agreement on labeled data.

Every metric that gates is measured as a *violation detector*: a case violates when it
is unfaithful, irrelevant, toxic or leaks PII, and the metric flags it when its value
fails the per-case threshold. AUROC is threshold-free (with a bootstrap 95% interval);
precision, recall, the false-positive rate and Cohen's kappa (agreement of the metric's
pass/fail with the labels) are read at the threshold the profile uses.

Labeled files carry a ``split`` ("train" or "validation"); the faithfulness combiner is
fitted on the train rows only (``ragate calibrate --fit``), and thresholds are suggested
from the validation rows only (``--suggest``), so the validation figures stay honest.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gates.metrics.base import Metric, MetricCase, get_metric, passes
from gates.schema import CaseId
from ragate_core.errors import UsageError
from ragate_core.jsonl import read_jsonl

CALIBRATION_DIR = Path("datasets/calibration")
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Dataset:
    """One labeled file of a metric: ``file`` under the calibration folder, the row field
    holding the label (``label`` 0/1, or a bool such as ``faithful``; 1/True is the good
    class for quality metrics and the violating class for detectors), and whether the
    file may be absent (data another process produces)."""

    file: str
    label: str = "label"
    optional: bool = False


# metric -> its labeled files. One entry per metric; add a metric by adding a line.
DATASETS: dict[str, tuple[Dataset, ...]] = {
    "faithfulness": (
        Dataset("faithfulness.jsonl"),  # matched-length pairs in English (contradictions)
        Dataset("faithfulness_multilingual.jsonl"),  # German, French, Spanish, Chinese pairs
        Dataset("faithfulness_forms.jsonl"),  # short, yes/no and comparison answers
        Dataset("real_outputs.jsonl", label="faithful", optional=True),  # the chain's own answers
        # More of them, to questions written apart from the golden set (per plan, person or
        # product; false premises; unanswerable): benchmarks/real_outputs_extra.py.
        Dataset("real_outputs_extra.jsonl", label="faithful", optional=True),
    ),
    "answer_relevancy": (Dataset("relevancy.jsonl"),),
    "answer_correctness": (
        Dataset("correctness.jsonl"),  # numbers, entities, yes/no, declining; 5 languages
        Dataset("real_outputs.jsonl", label="correct", optional=True),  # the chain's own answers
    ),
    "toxicity": (
        Dataset("toxicity.jsonl"),  # toxic texts and plain support text
        Dataset("toxicity_identity.jsonl"),  # groups named neutrally, safety rules, hate in 5 languages
    ),
    "pii": (Dataset("pii.jsonl"),),
}
# Compatibility: metric -> its first file.
FILES = {name: sets[0].file for name, sets in DATASETS.items()}


class CalibrationRow(BaseModel):
    """A labeled example. Fields a metric does not read (the labeler's notes, the model
    that answered) are kept or ignored; the label field is checked per file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: CaseId
    label: int | None = Field(default=None, ge=0, le=1)
    faithful: bool | None = None
    correct: bool | None = None
    kind: str = ""
    question: str = ""
    answer: str | None = None
    text: str | None = None
    contexts: list[str] = Field(default_factory=list)
    answerable: bool | None = None
    ground_truth: str | None = None
    source_ids: list[str] | None = None
    sources: list[str] | None = None
    pair: str | None = None
    split: Literal["train", "validation"] | None = None
    lang: str | None = None
    model: str | None = None
    blocked: bool | None = None
    rail: str | None = None

    def label_of(self, name: str) -> int | None:
        value = getattr(self, name, None)
        return None if value is None else int(value)

    def case(self) -> MetricCase:
        from gates.scoring import metric_case

        fields = self.model_dump()
        fields["answer"] = self.answer if self.answer is not None else (self.text or "")
        if fields.get("source_ids") is None:
            fields.pop("source_ids", None)
        if fields.get("sources") is None:
            fields.pop("sources", None)
        return metric_case(fields)


@dataclass(frozen=True)
class Calibration:
    """How well one metric separates good from bad on one labeled file (one split)."""

    metric: str
    file: str
    n: int
    n_violations: int
    unscored: int
    auroc: float
    threshold: float
    precision: float
    recall: float
    false_positive_rate: float
    missed: tuple[str, ...]
    false_alarms: tuple[str, ...]
    by_kind: dict[str, dict[str, float]]
    split: str = "all"
    auroc_low: float = float("nan")  # bootstrap 95% interval of the AUROC
    auroc_high: float = float("nan")
    kappa: float = float("nan")  # Cohen's kappa of pass/fail against the labels
    false_pass_rate: float = float("nan")  # share of violating cases that pass
    judge: str = "offline"

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (higher = more likely label 1) against 0/1
    ``labels``: the probability that a random positive outscores a random negative, ties
    counting half (scikit-learn's ``roc_auc_score``). NaN when a class is absent."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=int)
    if len(set(labels.tolist())) < 2:
        return float("nan")
    # The trapezoid sum carries ~1e-17 of float error: a value that is exactly x.xxxx5 (e.g.
    # 0.43125 = 69/160) would round to 4 places either way. 12 places is far below any
    # figure quoted and gives back the exact fraction's nearest float.
    return round(float(roc_auc_score(labels, np.asarray(scores, dtype=float))), 12)


def bootstrap_auroc(
    labels: np.ndarray, scores: np.ndarray, *, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the AUROC (cases resampled with replacement;
    resamples with a single class are skipped). (nan, nan) when there is one class."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=int)
    if len(set(labels.tolist())) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() == labels[idx].max():
            continue
        values.append(roc_auc_score(labels[idx], scores[idx]))
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def read_rows(path: Path, dataset: Dataset) -> list[CalibrationRow]:
    """The rows of one labeled file; a row without its label is a usage error naming it."""
    rows = read_jsonl(path, CalibrationRow)
    for line, row in enumerate(rows, 1):
        if row.label_of(dataset.label) is None:
            raise UsageError(
                f"{path}:{line}: row {row.id!r} has no {dataset.label!r} label; every row of this "
                f"file needs {dataset.label!r} ({'true/false' if dataset.label != 'label' else '0 or 1'})"
            )
    return rows


def calibrate_metric(
    metric_name: str,
    path: Path,
    threshold: float | None = None,
    *,
    dataset: Dataset | None = None,
    split: str = "all",
    metric: Metric | None = None,
    rows: Sequence[CalibrationRow] | None = None,
    judge: str = "offline",
) -> Calibration:
    """Score every labeled row of ``path`` (of ``split``: "train", "validation" or "all")
    with the metric and measure it at ``threshold`` (default: the metric's own)."""
    metric = metric or get_metric(metric_name)
    dataset = dataset or Dataset(path.name)
    if rows is None:
        rows = read_rows(path, dataset)
    rows = [r for r in rows if split == "all" or (r.split or "train") == split]
    threshold = metric.default_threshold if threshold is None else threshold
    from gates.scoring import score_batches

    scores = score_batches(metric, [r.case() for r in rows]) if rows else []
    higher_is_better = metric.direction == "higher_is_better"
    kept = [(r, s.value) for r, s in zip(rows, scores) if s.value is not None]
    label = dataset.label
    # As a violation detector: which rows violate, and which does the metric flag?
    violates = np.array(
        [(r.label_of(label) == 0) if higher_is_better else (r.label_of(label) == 1) for r, _ in kept],
        dtype=bool,
    )
    values = np.array([v for _, v in kept], dtype=float)
    flagged = np.array([not passes(metric, v, threshold) for v in values], dtype=bool)
    # Orient the score so that higher means "more likely a violation".
    risk = -values if higher_is_better else values
    tp = int((flagged & violates).sum())
    fp = int((flagged & ~violates).sum())
    fn = int((~flagged & violates).sum())
    tn = int((~flagged & ~violates).sum())
    by_kind: dict[str, dict[str, float]] = {}
    for (row, value), flag in zip(kept, flagged):
        entry = by_kind.setdefault(row.kind or "-", {"n": 0, "flagged": 0, "mean": 0.0})
        entry["n"] += 1
        entry["flagged"] += int(flag)
        entry["mean"] += value
    for entry in by_kind.values():
        entry["mean"] = round(entry["mean"] / entry["n"], 4)
    low, high = bootstrap_auroc(violates.astype(int), risk) if len(kept) else (float("nan"),) * 2
    kappa = float("nan")
    if len(kept) and len(set(violates.tolist()) | set(flagged.tolist())) > 1:
        from sklearn.metrics import cohen_kappa_score

        kappa = round(float(cohen_kappa_score(violates, flagged)), 4)
    return Calibration(
        metric=metric_name,
        file=str(path),
        n=len(rows),
        n_violations=int(violates.sum()),
        unscored=len(rows) - len(kept),
        auroc=round(auroc(violates.astype(int), risk), 4),
        threshold=threshold,
        precision=round(tp / (tp + fp), 4) if tp + fp else 0.0,
        recall=round(tp / (tp + fn), 4) if tp + fn else 0.0,
        false_positive_rate=round(fp / (fp + tn), 4) if fp + tn else 0.0,
        missed=tuple(r.id for (r, _), f, v in zip(kept, flagged, violates) if v and not f),
        false_alarms=tuple(r.id for (r, _), f, v in zip(kept, flagged, violates) if f and not v),
        by_kind=by_kind,
        split=split,
        auroc_low=low,
        auroc_high=high,
        kappa=kappa,
        false_pass_rate=round(fn / (tp + fn), 4) if tp + fn else float("nan"),
        judge=judge,
    )


@dataclass(frozen=True)
class Suggestion:
    """The most lenient per-case threshold whose false pass rate is at most ``target``."""

    metric: str
    threshold: float
    target: float
    false_pass_rate: float  # share of violating validation cases that pass
    false_fail_rate: float  # share of good validation cases that fail
    n: int
    n_violations: int
    files: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def suggest_threshold(
    values: np.ndarray, violates: np.ndarray, direction: str, target: float
) -> tuple[float, float, float]:
    """(threshold, false pass rate, false fail rate): the threshold that lets at most a
    ``target`` share of the violating cases pass, failing as few good cases as possible.
    Thresholds are rounded to 4 decimals, away from the violating value they exclude."""
    values = np.asarray(values, dtype=float)
    violates = np.asarray(violates, dtype=bool)
    bad = np.sort(values[violates])
    if len(bad) == 0:
        raise ValueError("no violating case to set a threshold against")
    allowed = math.floor(target * len(bad) + 1e-9)  # violating cases that may pass
    if direction == "higher_is_better":
        # pass iff value >= t: t must lie above the (allowed+1)-th highest violating value
        cut = bad[::-1][allowed] if allowed < len(bad) else -math.inf
        t = math.floor(cut * 1e4 + 1) / 1e4 if allowed < len(bad) else float(values.min())
        t = min(max(t, 0.0), 1.0) if allowed < len(bad) else t
        passed = values >= t
    else:
        # pass iff value <= t: t must lie below the (allowed+1)-th lowest violating value
        cut = bad[allowed] if allowed < len(bad) else math.inf
        t = math.ceil(cut * 1e4 - 1) / 1e4 if allowed < len(bad) else float(values.max())
        t = max(t, 0.0)
        passed = values <= t
    fpr = float((passed & violates).sum() / violates.sum())
    good = ~violates
    ffr = float((~passed & good).sum() / good.sum()) if good.any() else float("nan")
    return round(t, 4), round(fpr, 4), round(ffr, 4)


# --- fitting the faithfulness combiner ------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def faithfulness_training_rows(data_dir: Path, split: str = "train") -> list[tuple[Dataset, CalibrationRow]]:
    """Every labeled faithfulness row of ``split`` from the files that exist."""
    out = []
    for dataset in DATASETS["faithfulness"]:
        path = data_dir / dataset.file
        if not path.is_file():
            if dataset.optional:
                continue
            raise UsageError(f"{path}: calibration file missing")
        out.extend((dataset, r) for r in read_rows(path, dataset) if (r.split or "train") == split)
    return out


def fit_faithfulness(data_dir: Path, output: Path | None = None) -> dict[str, Any]:
    """Refit the faithfulness combiner on the train split of every faithfulness file and
    write it (atomically) to ``output`` (default: the model file in the package).

    Returns the model written, with its train AUROC per file under ``train_auroc``.
    """
    from sklearn import __version__ as sklearn_version

    from gates.metrics import faithfulness as fm
    from ragate_core.jsonl import write_text

    output = output or fm.MODEL_PATH
    rows = faithfulness_training_rows(data_dir, "train")
    if not rows:
        raise UsageError(f"{data_dir}: no faithfulness rows with split 'train' to fit on")
    evidence = fm.analyse([r.case() for _, r in rows])
    kept = [(d, r, e) for (d, r), e in zip(rows, evidence) if e is not None]
    x = fm.feature_matrix([e for _, _, e in kept])
    y = np.array([r.label_of(d.label) for d, r, _ in kept])
    files = sorted({d.file for d, _, _ in kept})
    meta = {
        "metric_version": fm.Faithfulness.version,
        "fitted": _dt.date.today().isoformat(),
        "fitter": f"scikit-learn {sklearn_version} LogisticRegressionCV(class_weight='balanced', cv=5)",
        "training_data": [
            {
                "file": f"datasets/calibration/{name}",
                "sha256": _sha256(data_dir / name),
                "rows": sum(1 for d, _, _ in kept if d.file == name),
            }
            for name in files
        ],
        "note": "fitted by `ragate calibrate --fit` on the train splits only; never edit by hand",
    }
    model = fm.fit_combiner(x, y, meta)
    combiner = fm.Combiner.from_dict(model)
    probs = combiner.probability(x)
    model["train_auroc"] = {
        name: round(auroc(y[m], probs[m]), 4)
        for name in files
        if (m := np.array([d.file == name for d, _, _ in kept])).any()
    }
    write_text(output, json.dumps(model, indent=2, ensure_ascii=False) + "\n")
    fm.combiner.cache_clear()
    return model


# --- the command ------------------------------------------------------------------------------


def _metric_for(name: str, judge: str, root: Path) -> Metric:
    if judge == "offline":
        return get_metric(name)
    from gates.metrics.llm_metrics import llm_metric

    return llm_metric(name, root, where=f"ragate calibrate --judge llm ({name})")


def _no_judge(name: str, n: int, dataset: Dataset) -> str:
    return (
        f"ragate calibrate --judge llm: the LLM judge scored none of the {n} {name} rows of "
        f"{dataset.file} (the judge is unavailable or answers no valid JSON); start or configure "
        "the judge ([tool.ragate.judge] in pyproject.toml) and run again"
    )


def run(args: argparse.Namespace) -> int:
    """``ragate calibrate``: measure, ``--suggest`` thresholds, or ``--fit`` the combiner."""
    from gates.profile import load_profile
    from ragate_core.jsonl import write_text
    from ragate_core.project import find_project_root

    root = find_project_root()
    data_dir = args.data or root / CALIBRATION_DIR
    if not data_dir.is_dir():
        raise UsageError(f"--data {data_dir}: no such folder")
    if getattr(args, "fit", False):
        model = fit_faithfulness(data_dir)
        from gates.metrics.faithfulness import MODEL_PATH

        print(
            f"fitted the faithfulness combiner on {sum(d['rows'] for d in model['training_data'])} train rows"
        )
        for name, value in model["train_auroc"].items():
            print(f"  train AUROC {value:.3f}  {name}")
        print(f"wrote {MODEL_PATH}", file=sys.stderr)
        return 0
    profile = load_profile(args.gate_env, root)
    judge = getattr(args, "judge", "offline")
    split = getattr(args, "split", "all")
    suggest = getattr(args, "suggest", False)
    target = getattr(args, "target", 0.05)
    if not 0.0 <= target < 1.0:
        raise UsageError(f"--target {target!r}: give a rate in [0, 1), for example 0.05")
    results, suggestions = [], []
    header = (
        f"{'metric':<18} {'file':<34} {'split':<10} {'n':>4} {'viol.':>5} {'AUROC':>6} {'95% CI':>15} "
        f"{'thr':>5} {'prec.':>6} {'recall':>6} {'FPR':>6} {'kappa':>6}"
    )
    print(
        header
        if not suggest
        else f"suggested per-case thresholds (false pass rate <= {target:g}, validation split)"
    )
    for name in args.metrics:
        if name not in DATASETS:
            raise UsageError(f"--metrics: no calibration data for {name!r}; known: {', '.join(DATASETS)}")
        metric = _metric_for(name, judge, root)
        gate = profile.metrics.get(name)
        threshold = gate.threshold if gate else None
        pooled_values: list[float] = []
        pooled_violates: list[bool] = []
        files = []
        for dataset in DATASETS[name]:
            path = data_dir / dataset.file
            if not path.is_file():
                if dataset.optional:
                    print(f"{name:<18} {dataset.file:<34} (absent: skipped)")
                    continue
                raise UsageError(f"{path}: calibration file missing for {name}")
            rows = read_rows(path, dataset)
            has_splits = any(r.split for r in rows)
            # A file without splits is read whole; one with splits, per split.
            if not has_splits:
                splits: tuple[str, ...] = ("all",)
            elif suggest:
                splits = ("validation",)
            else:
                splits = SPLITS if split == "all" else (split,)
            for sp in splits:
                if suggest:
                    values, violates = calibrate_scores(metric, rows, dataset, sp)
                    chosen = sum(1 for r in rows if sp == "all" or (r.split or "train") == sp)
                    if judge != "offline" and chosen and not values:
                        raise UsageError(_no_judge(name, chosen, dataset))
                    pooled_values.extend(values)
                    pooled_violates.extend(violates)
                    files.append(dataset.file)
                    continue
                cal = calibrate_metric(
                    name, path, threshold, dataset=dataset, split=sp, metric=metric, rows=rows, judge=judge
                )
                if cal.n == 0:
                    continue
                if judge != "offline" and cal.unscored == cal.n:
                    raise UsageError(_no_judge(name, cal.n, dataset))
                results.append(cal.to_dict())
                ci = f"[{cal.auroc_low:.3f}, {cal.auroc_high:.3f}]" if not math.isnan(cal.auroc_low) else "-"
                print(
                    f"{name:<18} {dataset.file:<34} {sp:<10} {cal.n:>4} {cal.n_violations:>5} "
                    f"{cal.auroc:>6.3f} {ci:>15} {cal.threshold:>5.2f} {cal.precision:>6.3f} "
                    f"{cal.recall:>6.3f} {cal.false_positive_rate:>6.3f} {cal.kappa:>6.3f}"
                    + (f"  ({cal.unscored} unscored)" if cal.unscored else "")
                )
        if suggest and not any(pooled_violates):
            print(f"{name:<18} no violating validation case: no threshold to suggest")
        elif suggest:
            values = np.array(pooled_values)
            violates = np.array(pooled_violates)
            t, fpr, ffr = suggest_threshold(values, violates, metric.direction, target)
            s = Suggestion(name, t, target, fpr, ffr, len(values), int(violates.sum()), tuple(files))
            suggestions.append(s.to_dict())
            rule = ">=" if metric.direction == "higher_is_better" else "<="
            print(
                f"{name:<18} pass when value {rule} {t:.4f}: false pass rate {fpr:.3f}, good cases failed "
                f"{ffr:.3f} (n={s.n}, violating {s.n_violations}; profile {args.gate_env} has {threshold})"
            )
    report = {"profile": args.gate_env, "judge": judge, "metrics": results}
    if suggest:
        report["suggestions"] = suggestions
    write_text(args.output, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def calibrate_scores(
    metric: Metric, rows: Sequence[CalibrationRow], dataset: Dataset, split: str
) -> tuple[list[float], list[bool]]:
    """(values, violates) of the scored rows of ``split``."""
    from gates.scoring import score_batches

    chosen = [r for r in rows if split == "all" or (r.split or "train") == split]
    scores = score_batches(metric, [r.case() for r in chosen])
    higher = metric.direction == "higher_is_better"
    values, violates = [], []
    for row, score in zip(chosen, scores):
        if score.value is None:
            continue
        values.append(score.value)
        label = row.label_of(dataset.label)
        violates.append(label == 0 if higher else label == 1)
    return values, violates
