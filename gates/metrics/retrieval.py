"""Retrieval metrics: did the chain retrieve the case's relevant sources, and how high?

Exact and model-free. They read the case's relevant ``source_ids`` (the golden set's
documents that hold the answer) and the chain's ranked ``sources`` (one entry per
retrieved chunk, best first, so a document can appear several times):

- ``hit_rate``: 1.0 when any retrieved chunk comes from a relevant source, else 0.0.
- ``mrr``: 1/rank of the first chunk from a relevant source (rank 1 = best), 0.0 if none
  (its mean over cases is the mean reciprocal rank).
- ``context_recall``: share of the relevant sources that at least one chunk comes from.
- ``context_precision``: share of the retrieved chunks that come from a relevant source.

All four are higher-is-better and lie in [0, 1]; by construction
``mrr <= hit_rate``, ``context_recall <= hit_rate`` and ``context_precision <= hit_rate``.

Ids are compared after :func:`normalise_source`, so a chain that reports
``"corpus/plans-and-pricing.md#3"`` matches a golden ``"plans-and-pricing"``.

Scope: an unanswerable case (``answerable`` false) has no relevant source, so retrieval
quality is undefined for it. Such a case is *not applicable*: :meth:`applies` says so,
the engine does not assign the metric to it (it is neither scored nor unscored, like a
metric a dataset does not list), and scoring it directly gives an unscored
:class:`Score` whose ``details`` carry ``{"not_applicable": True}``. An answerable case
without ``source_ids``, or an answer with contexts but no ``sources``, is unscored with
a reason that names the missing field (fail closed: the gate's ``max_unscored_share``
decides).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from gates.metrics.base import MetricCase, Score, register, score_each

# File suffixes a chain may leave on a document id (the golden ids are file stems).
_SUFFIX = re.compile(r"\.(md|markdown|txt|rst|html?|pdf|docx?|json|jsonl|csv)$", re.IGNORECASE)


def normalise_source(source: str) -> str:
    """A comparable document id: no chunk anchor (``#3``), query, file suffix, or case;
    forward slashes. ``"Corpus\\\\Plans-and-Pricing.md#2"`` -> ``"corpus/plans-and-pricing"``."""
    value = source.strip().replace("\\", "/")
    value = re.split(r"[#?]", value, maxsplit=1)[0].rstrip("/")
    value = _SUFFIX.sub("", value)
    return value.casefold()


def same_source(retrieved: str, relevant: str) -> bool:
    """Whether two normalised ids name the same document: equal, or one is the other
    with leading folders (``corpus/refund-policy`` and ``refund-policy``) -- matched on
    whole path segments, so ``pro-refund-policy`` never matches ``refund-policy``."""
    if retrieved == relevant:
        return True
    longer, shorter = (retrieved, relevant) if len(retrieved) > len(relevant) else (relevant, retrieved)
    return bool(shorter) and longer.endswith("/" + shorter)


def relevant_ranks(sources: Sequence[str], source_ids: Sequence[str]) -> tuple[list[int], set[str]]:
    """The 1-based ranks of the retrieved chunks that come from a relevant source, and
    which (normalised) relevant sources were found."""
    relevant = {normalise_source(s) for s in source_ids if s.strip()}
    ranks: list[int] = []
    found: set[str] = set()
    for rank, source in enumerate(sources, start=1):
        retrieved = normalise_source(source)
        matches = {r for r in relevant if same_source(retrieved, r)}
        if matches:
            ranks.append(rank)
            found |= matches
    return ranks, found


def _hit_rate(ranks: list[int], found: set[str], relevant: set[str], n: int) -> float:
    return 1.0 if ranks else 0.0


def _mrr(ranks: list[int], found: set[str], relevant: set[str], n: int) -> float:
    return 1.0 / ranks[0] if ranks else 0.0


def _context_recall(ranks: list[int], found: set[str], relevant: set[str], n: int) -> float:
    return len(found) / len(relevant)


def _context_precision(ranks: list[int], found: set[str], relevant: set[str], n: int) -> float:
    return len(ranks) / n if n else 0.0


_FORMULAS: dict[str, Callable[[list[int], set[str], set[str], int], float]] = {
    "hit_rate": _hit_rate,
    "mrr": _mrr,
    "context_recall": _context_recall,
    "context_precision": _context_precision,
}


class RetrievalMetric:
    """One of ``hit_rate``, ``mrr``, ``context_recall``, ``context_precision`` (higher is better)."""

    version = "1.0"
    direction = "higher_is_better"

    def __init__(self, name: str, default_threshold: float) -> None:
        if name not in _FORMULAS:
            raise KeyError(f"unknown retrieval metric {name!r}; known: {', '.join(_FORMULAS)}")
        self.name = name
        self.default_threshold = default_threshold
        self._formula = _FORMULAS[name]

    @staticmethod
    def applies(case: MetricCase) -> bool:
        """False for an unanswerable case: it has no relevant source to retrieve."""
        return case.answerable is not False

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {
            "source_ids": list(case.source_ids or ()),
            "sources": None if case.sources is None else list(case.sources),
            "has_contexts": bool(case.contexts),
            "answerable": case.answerable,
        }

    @staticmethod
    def missing(case: MetricCase) -> str | None:
        """Why the case cannot be scored (naming the missing field), or None."""
        if not [s for s in case.source_ids or () if s.strip()]:
            return "missing field 'source_ids': the case names no relevant source"
        if case.sources is None or (not case.sources and case.contexts):
            return "missing field 'sources': the answer reports no sources for its contexts"
        return None

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        def one(case: MetricCase) -> tuple[float, str, dict[str, Any]]:
            ranks, found = relevant_ranks(case.sources, case.source_ids)
            relevant = {normalise_source(s) for s in case.source_ids if s.strip()}  # (missing() checked both)
            n = len(case.sources)
            value = self._formula(ranks, found, relevant, n)
            if not n:
                reason = "nothing retrieved"
            elif ranks:
                reason = (
                    f"first relevant chunk at rank {ranks[0]} of {n}; {len(ranks)}/{n} chunks from a "
                    f"relevant source; {len(found)}/{len(relevant)} relevant sources retrieved"
                )
            else:
                reason = f"none of the {n} chunks comes from {', '.join(sorted(relevant))}"
            return value, reason, {"ranks": ranks, "retrieved": n, "relevant_found": sorted(found)}

        out: list[Score] = []
        for case in cases:
            if not self.applies(case):
                out.append(not_applicable(self, "unanswerable case: no relevant source to retrieve"))
            elif (why := self.missing(case)) is not None:
                out.append(Score(self.name, self.version, None, why))
            else:
                out.extend(score_each(self, [case], one))
        return out


def not_applicable(metric: Any, why: str) -> Score:
    """The Score of a case outside a metric's scope: unscored, and marked as such in ``details``."""
    return Score(metric.name, metric.version, None, f"not applicable: {why}", {"not_applicable": True})


@register("hit_rate")
def hit_rate() -> RetrievalMetric:
    return RetrievalMetric("hit_rate", 0.5)


@register("mrr")
def mrr() -> RetrievalMetric:
    return RetrievalMetric("mrr", 0.5)


@register("context_recall")
def context_recall() -> RetrievalMetric:
    return RetrievalMetric("context_recall", 0.5)


@register("context_precision")
def context_precision() -> RetrievalMetric:
    return RetrievalMetric("context_precision", 0.5)
