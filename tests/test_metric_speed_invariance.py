"""Speed must not buy a different answer: the batched, cached scoring path gives the same
scores as scoring one case at a time from a cold cache, and the encoder gives a text the
same vector whatever it is encoded with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gates.calibrate import CalibrationRow
from gates.metrics.base import get_metric
from ragate_core.embeddings import default_encoder
from ragate_core.jsonl import read_jsonl

CALIBRATION = Path(__file__).resolve().parents[1] / "datasets" / "calibration"
# A few rows of each labeled file: several per file, so batches mix languages and forms.
SAMPLES = {
    "faithfulness": ("faithfulness.jsonl", "faithfulness_multilingual.jsonl", "faithfulness_forms.jsonl"),
    "answer_relevancy": ("relevancy.jsonl",),
    "answer_correctness": ("correctness.jsonl",),
}


def _cases(files: tuple[str, ...], per_file: int = 8) -> list:
    cases = []
    for name in files:
        rows = read_jsonl(CALIBRATION / name, CalibrationRow)
        step = max(1, len(rows) // per_file)
        cases.extend(r.case() for r in rows[::step][:per_file])
    return cases


@pytest.mark.parametrize("metric_name", sorted(SAMPLES))
def test_batched_cached_scores_equal_one_case_at_a_time(metric_name: str) -> None:
    metric = get_metric(metric_name)
    cases = _cases(SAMPLES[metric_name])
    encoder = default_encoder()
    encoder.clear_cache()
    batched = metric.score_batch(cases)
    again = metric.score_batch(cases[::-1])[::-1]  # warm cache, other order
    singles = []
    for case in cases:
        encoder.clear_cache()
        singles.extend(metric.score_batch([case]))
    for b, a, s in zip(batched, again, singles):
        assert (b.value is None) == (s.value is None) == (a.value is None)
        if b.value is not None:
            assert b.value == pytest.approx(s.value, abs=1e-6)
            assert a.value == pytest.approx(s.value, abs=1e-6)


def test_a_text_gets_the_same_vector_alone_and_in_any_batch() -> None:
    encoder = default_encoder()
    texts = [
        "The Pro plan allows up to 600 requests per minute.",
        "Refunds are available within 30 days.",
        "Wie lange dauert die Rückerstattung?",
        "退款需要多长时间？",
        "ok",
        "",
    ]
    encoder.clear_cache()
    together = encoder.encode(texts)
    assert together.shape == (len(texts), 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(texts):
        encoder.clear_cache()
        assert np.array_equal(encoder.encode([text])[0], together[i])
    assert encoder.encode([]).shape == (0, 384)


def test_vectors_match_sentence_transformers() -> None:
    """The forward pass equals sentence-transformers' for the same weights (to 1e-6)."""
    st = pytest.importorskip("sentence_transformers")
    from ragate_core.embeddings import minilm_path

    texts = [
        "How many API calls per minute does the Growth plan allow?",
        "Annual plans can be refunded within 30 days; monthly plans are not refundable.",
        "Le forfait Pro inclut le SSO.",
        "word " * 400,  # longer than 256 tokens: truncated the same way
    ]
    model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    reference = np.stack([model.encode([t], normalize_embeddings=True)[0] for t in texts])
    default_encoder().clear_cache()
    assert np.abs(default_encoder().encode(texts) - reference).max() < 1e-6


def test_passes_side_by_side_give_the_same_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward passes run on several threads at once (one torch thread each): the number of
    threads changes the speed only, never a bit of a vector."""
    texts = [row.case().answer for row in read_jsonl(CALIBRATION / "relevancy.jsonl", CalibrationRow)][:120]
    encoder = default_encoder()
    vectors = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("RAGATE_EMBED_THREADS", threads)
        encoder.clear_cache()
        vectors[threads] = encoder.encode(texts)
    assert np.array_equal(vectors["1"], vectors["2"]) and np.array_equal(vectors["1"], vectors["3"])


def test_pass_threads_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragate_core.embeddings import pass_threads

    monkeypatch.delenv("RAGATE_EMBED_THREADS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert pass_threads(2) == 2
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert pass_threads(2) == 1 and pass_threads(8) == 4
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    assert pass_threads(2) == 1
    monkeypatch.setenv("RAGATE_EMBED_THREADS", "3")
    assert pass_threads(2) == 3
