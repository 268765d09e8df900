"""alt-profanity-check's classifier, evaluated with numpy from its own parameters.

``alt-profanity-check`` (``profanity_check.predict_prob``) is a scikit-learn pipeline: a
``TfidfVectorizer`` (lower-cased words of two or more word characters, English stop words
removed, unigrams, smoothed idf, l2-normalised) feeding a ``CalibratedClassifierCV`` of
five ``LinearSVC`` folds, each with a sigmoid calibrator, whose probabilities are averaged.
Importing it loads two joblib pickles and with them scikit-learn and SciPy: ~1.4 CPU-s
of every process's first toxicity score (issue 12), for a linear model of 15,442 words.

This module reads the same model from a file of its parameters (vocabulary, idf, the
five folds' coefficients and intercepts, the calibrators' ``a`` and ``b``) written from
the installed package (:func:`write_parameters`) and computes, per text,

    x = l2_normalise(counts(words(text)) * idf)
    p = mean_k expit(-(a_k * (x . w_k + c_k) + b_k))

which is what scikit-learn computes (``TfidfVectorizer.transform``,
``_CalibratedClassifier.predict_proba``, ``_SigmoidCalibration.predict``); the shipped
tests compare the two on every labelled text to 1e-12. The file is used only while its key,
the sha256 of the installed package's two pickles, matches: another version of
alt-profanity-check is read through the library itself (:func:`predict_prob`), never
through stale parameters.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

PARAMETERS_PATH = Path(__file__).parent / "data" / "profanity_check_parameters.npz"
LIBRARY_FILES = ("vectorizer.joblib", "model.joblib")
# The vectorizer settings the formula above assumes; :func:`write_parameters` refuses others.
VECTORIZER_SETTINGS = {
    "analyzer": "word",
    "binary": False,
    "lowercase": True,
    "ngram_range": (1, 1),
    "norm": "l2",
    "preprocessor": None,
    "smooth_idf": True,
    "strip_accents": None,
    "sublinear_tf": False,
    "tokenizer": None,
    "use_idf": True,
}


class Parameters(NamedTuple):
    """The model as arrays: ``vocabulary`` (word -> column), ``idf`` (n_words,), ``coef``
    (n_words, n_folds), ``intercept``, ``a``, ``b`` (n_folds,), ``token_pattern``."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    a: np.ndarray
    b: np.ndarray
    token_pattern: re.Pattern[str]


def library_folder() -> Path | None:
    """The installed ``profanity_check/data`` folder, found without importing the package
    (its import loads the pickles); None when the package is not installed."""
    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def library_key(folder: Path | None = None) -> str | None:
    """sha256 over the installed package's two pickles (:data:`LIBRARY_FILES`), or None
    when either is missing."""
    folder = folder if folder is not None else library_folder()
    if folder is None:
        return None
    digest = hashlib.sha256()
    for name in LIBRARY_FILES:
        try:
            digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def load_parameters(path: Path = PARAMETERS_PATH, key: str | None = None) -> Parameters | None:
    """The parameters in ``path`` when its key equals ``key`` (default: the installed
    package's :func:`library_key`), else None. A missing or unreadable file is None."""
    key = key if key is not None else library_key()
    try:
        with np.load(path, allow_pickle=False) as data:
            if key is None or str(data["key"]) != key:
                return None
            words = bytes(data["vocabulary"]).decode("utf-8").split("\n")
            return Parameters(
                vocabulary={word: i for i, word in enumerate(words)},
                idf=np.array(data["idf"], dtype=np.float64),
                coef=np.array(data["coef"], dtype=np.float64),
                intercept=np.array(data["intercept"], dtype=np.float64),
                a=np.array(data["a"], dtype=np.float64),
                b=np.array(data["b"], dtype=np.float64),
                token_pattern=re.compile(str(data["token_pattern"])),
            )
    except (OSError, KeyError, ValueError):
        return None


@functools.cache
def shipped_parameters() -> Parameters | None:
    """:func:`load_parameters` of the shipped file, once per process."""
    return load_parameters()


def tfidf(texts: Sequence[str], params: Parameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The l2-normalised tf-idf rows of ``texts`` as sparse entries ``(row, column, value)``,
    three arrays of one length (int, int, float64), rows ascending and each row's columns
    ascending (scikit-learn's CSR order). A text with no known word has no entries (a row
    of zeros, as in scikit-learn)."""
    columns: list[int] = []
    counts: list[int] = []
    starts = [0]
    for text in texts:
        in_text: dict[int, int] = {}
        for word in params.token_pattern.findall(text.lower()):
            column = params.vocabulary.get(word)
            if column is not None:
                in_text[column] = in_text.get(column, 0) + 1
        for column in sorted(in_text):  # scikit-learn's CSR order: columns ascending
            columns.append(column)
            counts.append(in_text[column])
        starts.append(len(columns))
    bounds = np.array(starts)
    index = np.array(columns, dtype=np.intp)
    values = np.array(counts, dtype=np.float64) * params.idf[index]
    row = np.repeat(np.arange(len(texts)), np.diff(bounds))
    norms = np.sqrt(np.bincount(row, weights=values * values, minlength=len(texts)))
    values /= norms[row]
    return row, index, values


def probabilities(texts: Sequence[str], params: Parameters) -> np.ndarray:
    """P(profane) per text, shape (len(texts),): the folds' calibrated sigmoids, averaged."""
    if not texts:
        return np.zeros(0)
    row, column, value = tfidf(texts, params)
    dot = np.zeros((len(texts), params.coef.shape[1]))
    np.add.at(dot, row, value[:, None] * params.coef[column])
    decision = dot + params.intercept
    per_fold = 1.0 / (1.0 + np.exp(params.a * decision + params.b))
    proba = per_fold.mean(axis=1)
    proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba


def predict_prob(texts: Sequence[str]) -> np.ndarray:
    """alt-profanity-check's P(profane) per text, shape (len(texts),), float64.

    From the shipped parameters when they are the installed model's (:func:`load_parameters`),
    otherwise from the library itself (``profanity_check.predict_prob``, which imports
    scikit-learn)."""
    params = shipped_parameters()
    if params is not None:
        return probabilities(list(texts), params)
    from profanity_check import predict_prob as library_predict_prob

    return np.asarray(library_predict_prob(list(texts)), dtype=np.float64)


def write_parameters(path: Path = PARAMETERS_PATH) -> Path:
    """Read the installed alt-profanity-check's model (scikit-learn) and write its parameters
    with its key to ``path``; run after upgrading the package
    (``tests/test_profanity_parameters.py`` fails until then):

        python -c "from ragate_core.profanity import write_parameters; write_parameters()"

    Raises ValueError when the vectorizer or the classifier is not of the shape the formula
    of this module computes."""
    import joblib
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    folder = library_folder()
    key = library_key(folder)
    if folder is None or key is None:
        raise ValueError("alt-profanity-check is not installed: pip install alt-profanity-check")
    vectorizer = joblib.load(folder / "vectorizer.joblib")
    model = joblib.load(folder / "model.joblib")
    settings = vectorizer.get_params()
    wrong = {k: settings.get(k) for k, v in VECTORIZER_SETTINGS.items() if settings.get(k) != v}
    if wrong:
        raise ValueError(f"profanity_check's vectorizer has settings this module does not compute: {wrong}")
    words = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    if any("\n" in w for w in words) or set(words) & set(ENGLISH_STOP_WORDS):
        raise ValueError("profanity_check's vocabulary holds a stop word or a line break")
    folds = model.calibrated_classifiers_
    if any(c.method != "sigmoid" or len(c.calibrators) != 1 for c in folds) or list(model.classes_) != [0, 1]:
        raise ValueError("profanity_check's model is not a binary sigmoid-calibrated linear model")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        key=np.array(key),
        vocabulary=np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coef=np.stack([np.asarray(c.estimator.coef_, dtype=np.float64)[0] for c in folds], axis=1),
        intercept=np.array([float(c.estimator.intercept_[0]) for c in folds]),
        a=np.array([float(c.calibrators[0].a_) for c in folds]),
        b=np.array([float(c.calibrators[0].b_) for c in folds]),
        token_pattern=np.array(vectorizer.token_pattern),
    )
    tmp.replace(path)
    return path


__all__ = [
    "PARAMETERS_PATH",
    "Parameters",
    "library_key",
    "load_parameters",
    "predict_prob",
    "probabilities",
    "shipped_parameters",
    "tfidf",
    "write_parameters",
]
