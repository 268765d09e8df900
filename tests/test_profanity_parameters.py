"""alt-profanity-check read with numpy (:mod:`ragate_core.profanity`): the shipped parameters
are the installed model's, they give scikit-learn's probabilities, and a stale, foreign or
missing file is never used (the library itself answers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _fixtures import calibration_texts, run_python
from profanity_check import predict_prob as library_predict_prob

from ragate_core import profanity
from ragate_core.toxicity import detector_seed_texts

REGENERATE = 'python -c "from ragate_core.profanity import write_parameters; write_parameters()"'


def labelled_texts() -> list[str]:
    """Every text of the toxicity calibration files and the seeds, plus edge cases."""
    texts = detector_seed_texts()
    texts += calibration_texts("toxicity.jsonl", "toxicity_hard_negatives.jsonl", "toxicity_identity.jsonl")
    edge = ["", " ", "a", "!!!", "The and of to", "FUCK", "shit shit shit", "Ünïcödé wörds ß", "x" * 5000]
    return list(dict.fromkeys([*texts, *edge]))


def test_the_shipped_parameters_are_the_installed_models() -> None:
    with np.load(profanity.PARAMETERS_PATH, allow_pickle=False) as data:
        key = str(data["key"])
    assert key == profanity.library_key(), f"alt-profanity-check changed: run {REGENERATE}"
    assert profanity.shipped_parameters() is not None


def test_numpy_gives_scikit_learns_probabilities() -> None:
    texts = labelled_texts()
    assert len(texts) > 1000
    ours = profanity.predict_prob(texts)
    theirs = np.asarray(library_predict_prob(texts), dtype=np.float64)
    assert ours.shape == theirs.shape == (len(texts),)
    assert np.max(np.abs(ours - theirs)) <= 1e-12
    assert profanity.predict_prob([]).shape == (0,)


def test_a_file_of_another_model_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert profanity.load_parameters(key="0" * 64) is None  # another version of the package
    assert profanity.load_parameters(tmp_path / "absent.npz") is None
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a numpy file")
    assert profanity.load_parameters(broken) is None
    # Without usable parameters the library itself answers, with the same numbers.
    monkeypatch.setattr(profanity, "shipped_parameters", lambda: None)
    texts = ["you are a piece of shit", "Your refund is on its way."]
    assert np.array_equal(profanity.predict_prob(texts), np.asarray(library_predict_prob(texts)))


def test_the_file_is_rewritten_from_the_installed_package(tmp_path: Path) -> None:
    written = profanity.write_parameters(tmp_path / "parameters.npz")
    fresh = profanity.load_parameters(written)
    shipped = profanity.shipped_parameters()
    assert fresh is not None and shipped is not None
    assert fresh.vocabulary == shipped.vocabulary
    for field in ("idf", "coef", "intercept", "a", "b"):
        assert np.array_equal(getattr(fresh, field), getattr(shipped, field)), field
    assert not list(tmp_path.glob("*.tmp*"))


def test_the_toxicity_detector_imports_no_scikit_learn() -> None:
    """The first toxicity judgment of a fresh process loads neither scikit-learn nor SciPy
    (the profanity model is read with numpy, the seeds' logistic is stored)."""
    code = (
        "import sys\n"
        "from ragate_core.toxicity import shared_detector\n"
        "texts = ['You are a worthless idiot, Ms. Dick.', 'Your refund is on its way.']\n"
        "toxic, clean = (j.value for j in shared_detector().judge(texts))\n"
        "print(round(toxic, 3), round(clean, 3), 'sklearn' in sys.modules, 'scipy' in sys.modules)\n"
    )
    toxic, clean, sklearn, scipy = run_python(code).split()
    assert float(toxic) > 0.5 > float(clean)
    assert (sklearn, scipy) == ("False", "False")
