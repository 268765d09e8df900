"""Scoring one metric over many cases: the one loop every path uses.

The gate engine, ``ragate score``, :func:`gates.evaluate` and the Spark engine all score
through these functions, so the same rows give the same numbers everywhere: cases go to a
metric in fixed batches of :data:`SCORE_BATCH` in input order (batch composition can move
an embedding by ~1e-7), a batch that raises leaves each of its cases unscored with the
error as the reason (counted, never dropped), and errors are never cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gates.metrics.base import Metric, MetricCase, Score, judgment_key

SCORE_BATCH = 64


def metric_case(fields: Mapping[str, Any]) -> MetricCase:
    """The :class:`MetricCase` of one row (a mapping such as a ``ragate score`` input row).

    Every field the row has that ``MetricCase`` reads is taken (lists become tuples); others
    are ignored. ``answerable`` defaults to whether ``source_ids`` is non-empty when only
    ``source_ids`` is given (the golden set's convention).
    """
    names = {f.name for f in dataclasses.fields(MetricCase)}
    # A field the row leaves empty (None) keeps MetricCase's default: () for the list fields.
    data = {
        k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in names and v is not None
    }
    if data.get("answerable") is None and fields.get("source_ids") is not None:
        data["answerable"] = bool(fields["source_ids"])
    return MetricCase(**data)


def score_batches(metric: Metric, cases: Sequence[MetricCase], batch: int = SCORE_BATCH) -> list[Score]:
    """One :class:`Score` per case, in order; a failing batch makes its cases unscored."""
    out: list[Score] = []
    for start in range(0, len(cases), batch):
        chunk = list(cases[start : start + batch])
        try:
            scores = metric.score_batch(chunk)
            if len(scores) != len(chunk):
                raise RuntimeError(f"returned {len(scores)} scores for {len(chunk)} cases")
        except Exception as exc:  # the whole batch failed: every case unscored, not lost
            error = Score(metric.name, metric.version, None, f"error: {type(exc).__name__}: {exc}")
            scores = [error] * len(chunk)
        out.extend(scores)
    return out


def score_through_cache(
    metric: Metric,
    cases: Sequence[MetricCase],
    cache: Any,
    on_lookup: Callable[[int, int], None] | None = None,
) -> tuple[list[Score], int]:
    """Scores for ``cases`` (in order) reading and filling ``cache``'s judgments.

    Returns the scores and how many came from the cache. ``cache`` is a
    :class:`gates.cache.Cache` or ``NoCache`` (``get_many``/``put_many``); ``on_lookup``
    hears ``(to_score, cached)`` before any case is scored. The metric's ``score_batch`` runs
    only on misses: a warm run loads no model.
    """
    keys = [judgment_key(metric, case) for case in cases]
    entries: dict[str, dict[str, Any]] = cache.get_many("judgment", keys)
    hits = sum(key in entries for key in keys)
    todo = [i for i, key in enumerate(keys) if key not in entries]
    if on_lookup is not None:
        on_lookup(len(todo), hits)
    fresh: dict[str, dict[str, Any]] = {}
    for i, score in zip(todo, score_batches(metric, [cases[i] for i in todo])):
        entry = {"value": score.value, "reason": score.reason, "details": score.details}
        entries[keys[i]] = entry
        if score.scored:  # errors are retried next run, never cached
            fresh[keys[i]] = entry
    cache.put_many("judgment", fresh)
    scores = [
        Score(metric.name, metric.version, e["value"], e["reason"], e.get("details", {}))
        for e in (entries[key] for key in keys)
    ]
    return scores, hits
