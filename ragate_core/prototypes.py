"""Nearest-prototype classification over MiniLM sentence embeddings.

A text is compared with its nearest seed examples of each class and with its nearest
examples of the negative class; the margin between the two goes through a logistic
fitted on the seeds themselves, leave-one-out (each seed scored without itself), so a
probability of 0.5 sits where the seeds of the two classes meet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Mean similarity to the k nearest seeds of a class: k > 1 keeps one odd seed from deciding.
TOP_K = 3

Embed = Callable[[list[str]], Any]


@dataclass(frozen=True)
class Seed:
    """One labelled prototype text."""

    text: str
    label: str


def seed_rows(
    path: Path, required: Sequence[str] = ("text", "label")
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL seed file; ``ValueError`` naming ``path:line`` for a bad row."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            missing = [key for key in required if key not in row]
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: a seed needs {' and '.join(required)}: {exc}") from exc
        if missing:
            raise ValueError(f"{path}:{number}: a seed needs {' and '.join(required)}: missing {missing}")
        yield number, row


def load_seeds(path: Path) -> list[Seed]:
    """Seed texts, one JSON object (``text``, ``label``) a line."""
    return [Seed(str(row["text"]), str(row["label"])) for _, row in seed_rows(path)]


def _top_k_mean(similarities: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Row-wise mean of the k largest values."""
    k = min(k, similarities.shape[1])
    return np.sort(similarities, axis=1)[:, -k:].mean(axis=1)


class PrototypeClassifier:
    """Per positive class, the calibrated probability that a text belongs to it rather than
    to the ``negative`` class."""

    def __init__(self, seeds: Sequence[Seed], negative: str, embed: Embed) -> None:
        labels = sorted({s.label for s in seeds})
        if negative not in labels or len(labels) < 2:
            raise ValueError(
                f"seeds need the negative class {negative!r} and at least one other, got {labels}"
            )
        self._embed = embed
        self.negative = negative
        self.classes = [label for label in labels if label != negative]
        vectors = np.asarray(embed([s.text for s in seeds]), dtype=np.float64)
        names = np.array([s.label for s in seeds])
        self._vectors = {label: vectors[names == label] for label in labels}
        self.calibration = {c: self._fit(vectors, names, c) for c in self.classes}

    def _fit(self, vectors: np.ndarray, names: np.ndarray, label: str) -> tuple[float, float]:
        """A 1-D logistic on the leave-one-out margins of the seeds of ``label`` vs the negatives."""
        from sklearn.linear_model import LogisticRegression

        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)  # leave one out: a seed is never its own neighbour
        rows = np.isin(names, [label, self.negative])
        to_pos = np.where(names[None, :] == label, sims, -np.inf)[rows]
        to_neg = np.where(names[None, :] == self.negative, sims, -np.inf)[rows]
        margin = _top_k_mean(to_pos) - _top_k_mean(to_neg)
        target = (names[rows] == label).astype(int)
        model = LogisticRegression(C=10.0).fit(margin[:, None], target)
        return float(model.coef_[0, 0]), float(model.intercept_[0])

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Per positive class, one probability per text."""
        if not texts:
            return {c: np.zeros(0) for c in self.classes}
        vectors = np.asarray(self._embed(list(texts)), dtype=np.float64)
        to_neg = _top_k_mean(vectors @ self._vectors[self.negative].T)
        out = {}
        for c in self.classes:
            slope, intercept = self.calibration[c]
            margin = _top_k_mean(vectors @ self._vectors[c].T) - to_neg
            out[c] = 1.0 / (1.0 + np.exp(-(slope * margin + intercept)))
        return out
