"""The ``pii`` metric scores a batch in one spaCy pass (issue 12) with the same judgments as
text by text, and importing the metrics loads no model. Fictional data throughout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gates.metrics.base import MetricCase
from gates.metrics.pii import PiiLeakage
from ragate_core import pii

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "Your refund was issued on 3 March.",
    "Dr. Amelia Hartmann was diagnosed with asthma in 2019.",
    "Mail jane.roe@example.org or call +44 7700 900418.",
    "",
    "   ",
    "Your refund was issued on 3 March.",  # a repeat
    "The token is ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8.",
    "Our office is at 18 Harbour Road, Leeds LS1 4AB.",
]


@pytest.fixture(scope="module")
def one_by_one() -> list[list[pii.ScoredSpan]]:
    # spaCy on one text at a time, as before the batch (presidio's own per-text call).
    out = []
    for text in TEXTS:
        if not text.strip():
            out.append([])
            continue
        artifacts = pii.analyzer().nlp_engine.process_text(text, "en")
        out.append(pii._scored_findings(text, artifacts))
    return out


def test_a_batch_finds_what_each_text_alone_finds(one_by_one: list[list[pii.ScoredSpan]]) -> None:
    assert pii.find_scored_pii_batch(TEXTS) == one_by_one
    assert [pii.find_scored_pii(t) for t in TEXTS] == one_by_one


def test_each_distinct_text_goes_through_spacy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    real = pii.nlp_artifacts

    def counting(texts: list[str]) -> list[object]:
        seen.append(list(texts))
        return real(texts)

    monkeypatch.setattr(pii, "nlp_artifacts", counting)
    pii.find_scored_pii_batch(TEXTS)
    assert len(seen) == 1
    assert sorted(seen[0]) == sorted({t for t in TEXTS if t.strip()})


def test_the_metric_scores_a_batch_like_single_cases() -> None:
    metric = PiiLeakage()
    cases = [MetricCase(id=f"c{i}", question="q", answer=t) for i, t in enumerate(TEXTS)]
    batch = metric.score_batch(cases)
    single = [metric.score_batch([c])[0] for c in cases]
    assert [(s.value, s.reason) for s in batch] == [(s.value, s.reason) for s in single]
    assert batch[1].value >= 0.5 and batch[0].value < 0.5


def test_a_failing_batch_falls_back_to_single_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    import gates.metrics.pii as metric_module

    def broken(_: list[str]) -> list[list[pii.ScoredSpan]]:
        raise RuntimeError("spaCy fell over")

    monkeypatch.setattr(metric_module, "find_scored_pii_batch", broken)
    scores = PiiLeakage().score_batch([MetricCase(id="c", question="q", answer=TEXTS[2])])
    assert scores[0].value is not None and scores[0].value >= 0.5


def test_importing_the_metrics_and_rails_loads_no_model() -> None:
    code = (
        "import sys; import gates.metrics.pii, gates.metrics.toxicity, rag.guardrails.detectors; "
        "print(sorted(m for m in ('spacy', 'presidio_analyzer', 'torch', 'sentence_transformers', "
        "'profanity_check') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
