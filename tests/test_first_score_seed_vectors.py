"""The toxicity seeds' shipped MiniLM vectors (``ragate_core/data/toxicity_seed_vectors.npz``)
are exactly what the packaged encoder computes for the current seeds, and a file that is
stale or foreign is never used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragate_core.embeddings import default_encoder
from ragate_core.toxicity import (
    SEED_VECTORS_PATH,
    PrototypeClassifier,
    Seed,
    detector_seed_texts,
    load_seeds,
    neutralise_groups,
    seed_vectors_key,
    stored_seed_fit,
    stored_seed_vectors,
)

REGENERATE = 'python -c "from ragate_core.toxicity import write_seed_vectors; write_seed_vectors()"'


def test_shipped_vectors_equal_the_encoders_for_the_current_seeds() -> None:
    encoder = default_encoder()
    texts = detector_seed_texts()
    with np.load(SEED_VECTORS_PATH, allow_pickle=False) as data:
        key, vectors = str(data["key"]), np.array(data["vectors"])
    assert key == seed_vectors_key(texts, encoder.name), f"the seeds or the model changed: run {REGENERATE}"
    fresh = encoder.encode(texts)
    assert vectors.dtype == fresh.dtype and vectors.shape == fresh.shape
    assert np.array_equal(vectors, fresh), f"the shipped seed vectors are stale: run {REGENERATE}"
    assert stored_seed_vectors(texts, encoder) is not None


def test_the_stored_logistic_is_scikit_learns_fit_of_these_seeds() -> None:
    """The file's logistic has the key of the margins the shipped vectors give, and it is
    bit for bit what scikit-learn fits on them; a logistic of other margins is refitted."""
    encoder = default_encoder()
    seeds = [Seed(neutralise_groups(s.text), s.label, s.kind) for s in load_seeds()]
    vectors = stored_seed_vectors([s.text for s in seeds], encoder)
    stored = stored_seed_fit()
    assert vectors is not None and stored is not None, f"run {REGENERATE}"
    fitted = PrototypeClassifier(seeds, encoder.encode, vectors)  # fitted by scikit-learn here
    assert fitted.fit_key == stored.key, f"the seeds' logistic is stale: run {REGENERATE}"
    assert (fitted.slope, fitted.intercept) == (stored.slope, stored.intercept)
    reused = PrototypeClassifier(seeds, encoder.encode, vectors, stored)
    assert (reused.slope, reused.intercept) == (stored.slope, stored.intercept)
    other = stored._replace(key="0" * 64, slope=1.0, intercept=0.0)
    refitted = PrototypeClassifier(seeds, encoder.encode, vectors, other)
    assert (refitted.slope, refitted.intercept) == (fitted.slope, fitted.intercept)


def test_the_classifier_is_the_same_from_shipped_or_fresh_vectors() -> None:
    encoder = default_encoder()
    seeds = [Seed(neutralise_groups(s.text), s.label, s.kind) for s in load_seeds()]
    stored = stored_seed_vectors([s.text for s in seeds], encoder)
    assert stored is not None
    shipped = PrototypeClassifier(seeds, encoder.encode, stored)
    fresh = PrototypeClassifier(seeds, encoder.encode)
    assert (shipped.slope, shipped.intercept, shipped.clean_margin) == (
        fresh.slope,
        fresh.intercept,
        fresh.clean_margin,
    )
    assert np.array_equal(shipped._toxic, fresh._toxic) and np.array_equal(shipped._clean, fresh._clean)
    texts = ["You are a worthless idiot.", "Your refund was sent on Monday.", "Kill the process and retry."]
    assert shipped.predict(texts) == fresh.predict(texts)


def test_other_seeds_or_a_missing_file_mean_no_shipped_vectors(tmp_path: Path) -> None:
    encoder = default_encoder()
    texts = detector_seed_texts()
    assert stored_seed_vectors([*texts[:-1], texts[-1] + " (edited)"], encoder) is None
    assert stored_seed_vectors(texts[:-1], encoder) is None
    assert stored_seed_vectors(texts, encoder, tmp_path / "absent.npz") is None
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a numpy file")
    assert stored_seed_vectors(texts, encoder, broken) is None


@pytest.mark.parametrize("row", ["shortest", "longest"])
def test_vectors_this_encoder_would_not_compute_are_not_used(tmp_path: Path, row: str) -> None:
    """Same key, but a row the load re-embeds differs (another torch build or CPU): unused."""
    encoder = default_encoder()
    texts = detector_seed_texts()
    with np.load(SEED_VECTORS_PATH, allow_pickle=False) as data:
        vectors = np.array(data["vectors"])
    lengths = [len(t) for t in texts]
    i = int(np.argmin(lengths)) if row == "shortest" else int(np.argmax(lengths))
    vectors[i, 0] = np.nextafter(vectors[i, 0], np.float32(2))  # one ulp off
    other = tmp_path / "other.npz"
    np.savez(other, key=np.array(seed_vectors_key(texts, encoder.name)), vectors=vectors)
    assert stored_seed_vectors(texts, encoder, other) is None
