"""Scoring one metric over many cases: the one loop every path uses.

The gate engine, ``ragate score``, :func:`gates.evaluate` and the Spark engine all score
through these functions, so the same rows give the same numbers everywhere: cases go to a
metric in batches in input order (:func:`batch_slices`: a first batch of :data:`FIRST_BATCH`,
then :data:`SCORE_BATCH` at a time), a batch that raises leaves each of its cases unscored
with the error as the reason (counted, never dropped), and errors are never cached. A
case's score does not depend on which batch it is in (the encoder gives a text the same
vector whatever it is encoded with; ``tests/test_first_score_batches.py`` checks the
metrics on their labeled files), so the cut only decides when the first scores appear.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gates.metrics.base import Metric, MetricCase, Score, judgment_key_and_reads

SCORE_BATCH = 64
# The first batch is smaller: a run's first scores (and the error of a model that fails to
# load) come after 16 cases' work instead of 64's, which is most of the time to the first
# score once the models are loaded (benchmarks/bench_metrics.py --first-score-only).
FIRST_BATCH = 16
# The longest answer a metric that reads the answer is given: about 3,000 English words, far
# beyond a chat answer. A longer one is left unscored with an error (which fails the gate, as
# every unscored case does) instead of being scored: every offline metric's cost grows with
# the answer's length (an answer of 20,000 characters already takes ~9 CPU-s and ~1 GB over
# the five offline metrics; one of 215,000 took 78 CPU-s and 1.45 GB), and scoring only its
# start would pass a tail that was never read (a leak or an insult at the end).
MAX_ANSWER_CHARS = 20_000


def metric_case(fields: Mapping[str, Any]) -> MetricCase:
    """The :class:`MetricCase` of one row (a mapping such as a ``ragate score`` input row).

    Every field the row has that ``MetricCase`` reads is taken (lists become tuples); others
    are ignored. ``answerable`` defaults to whether ``source_ids`` is non-empty when only
    ``source_ids`` is given (the golden set's convention).
    """
    # answer_sha256 is the engine's own mark of a masked cached answer, never a row's field.
    names = {f.name for f in dataclasses.fields(MetricCase)} - {"answer_sha256"}
    # A field the row leaves empty (None) keeps MetricCase's default: () for the list fields.
    data = {
        k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in names and v is not None
    }
    if data.get("answerable") is None and fields.get("source_ids") is not None:
        data["answerable"] = bool(fields["source_ids"])
    return MetricCase(**data)


def batch_slices(n: int, batch: int = SCORE_BATCH, first: int | None = None) -> list[slice]:
    """The batches of ``n`` cases, in order: ``first`` cases, then ``batch`` at a time.

    ``first`` defaults to :data:`FIRST_BATCH` with the default ``batch`` and to ``batch``
    otherwise (a caller that sizes its own batches, such as a Spark task handing over one
    group, gets exactly those). Both must be >= 1.
    """
    if first is None:
        first = FIRST_BATCH if batch == SCORE_BATCH else batch
    if batch < 1 or first < 1:
        raise ValueError(f"batch sizes must be >= 1, got batch={batch}, first={first}")
    bounds = [0, *range(min(first, n), n, batch)] if n else []
    return [slice(start, end) for start, end in zip(bounds, [*bounds[1:], n])]


def score_batches(
    metric: Metric, cases: Sequence[MetricCase], batch: int = SCORE_BATCH, first: int | None = None
) -> list[Score]:
    """One :class:`Score` per case, in order; a failing batch makes its cases unscored.

    Cases go to ``metric.score_batch`` in the batches of :func:`batch_slices`. A case whose
    answer is over :data:`MAX_ANSWER_CHARS`, or blank and not blocked, and read by ``metric``
    is not given to it: it is unscored, with the reason (:func:`_unscorable_answer`).
    """
    refused = [_unscorable_answer(metric, case) for case in cases]
    if any(refused):
        rest = [case for case, why in zip(cases, refused) if not why]
        scored = iter(score_batches(metric, rest, batch, first))
        return [Score(metric.name, metric.version, None, why) if why else next(scored) for why in refused]
    out: list[Score] = []
    for part in batch_slices(len(cases), batch, first):
        chunk = list(cases[part])
        try:
            scores = metric.score_batch(chunk)
            if len(scores) != len(chunk):
                raise RuntimeError(f"returned {len(scores)} scores for {len(chunk)} cases")
        except Exception as exc:  # the whole batch failed: every case unscored, not lost
            error = Score(metric.name, metric.version, None, f"error: {type(exc).__name__}: {exc}")
            scores = [error] * len(chunk)
        out.extend(scores)
    return out


def _unscorable_answer(metric: Metric, case: MetricCase) -> str:
    """The error of a case whose answer ``metric`` must not score ('' when it may): one over
    :data:`MAX_ANSWER_CHARS`, or a blank one that no rail blocked (as in a gate run, where
    such an answer is a failed generation: an empty string says nothing, not "I don't know").

    Only a metric that reads the answer (its ``reads`` has the answer as a value) refuses it:
    latency or retrieval scores are unaffected.
    """
    answer = case.answer
    blank = isinstance(answer, str) and not answer.strip() and not case.blocked
    if not isinstance(answer, str) or (len(answer) <= MAX_ANSWER_CHARS and not blank):
        return ""
    try:
        reads = any(isinstance(v, str) and v == answer for v in metric.reads(case).values())
    except Exception:  # a metric whose reads fails would fail on the case anyway
        reads = True
    if not reads:
        return ""
    if blank:
        return "error: the answer is empty; a chain that cannot answer should say so (or a rail block it)"
    return (
        f"error: the answer has {len(answer):,} characters, over the {MAX_ANSWER_CHARS:,} a metric "
        "scores (gates.scoring.MAX_ANSWER_CHARS); an answer this long is a defect of the chain "
        "(limit its output, e.g. max_tokens), not something to score"
    )


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
    only on misses: a warm run loads no model. A fresh judgment is returned as it is cached
    (:func:`judgment_entries`: reasons masked where the answer holds personal data), so a
    warm run gives exactly what the cold one gave.
    """
    keyed = [judgment_key_and_reads(metric, case) for case in cases]
    keys = [key for key, _ in keyed]
    entries: dict[str, dict[str, Any]] = cache.get_many("judgment", keys)
    hits = sum(key in entries for key in keys)
    todo = [i for i, key in enumerate(keys) if key not in entries]
    if on_lookup is not None:
        on_lookup(len(todo), hits)
    scored = score_batches(metric, [cases[i] for i in todo])
    made = judgment_entries([cases[i] for i in todo], scored, [keyed[i][1] for i in todo], cache)
    fresh: dict[str, dict[str, Any]] = {}
    for i, score, entry in zip(todo, scored, made):
        entries[keys[i]] = entry
        if score.scored:  # errors are retried next run, never cached
            fresh[keys[i]] = entry
    cache.put_many("judgment", fresh)
    scores = [
        Score(metric.name, metric.version, e["value"], e["reason"], e.get("details", {}))
        for e in (entries[key] for key in keys)
    ]
    return scores, hits


def judgment_entries(
    cases: Sequence[MetricCase], scores: Sequence[Score], reads_answer: Sequence[bool], cache: Any
) -> list[dict[str, Any]]:
    """The judgment cache's entry (``value``, ``reason``, ``details``) of each fresh score.

    A reason (and any string in ``details``) may quote the answer it judged; when the metric
    read the answer (``reads_answer``, from :func:`gates.metrics.base.judgment_key_and_reads`)
    and the answer holds personal data (its mask, names included, differs from it), they are
    masked before they are cached, by the reports' rule (:func:`gates.engine.masked_with_answer`,
    the pieces of masked values included). The question a metric reads is already masked and
    the contexts are the team's documents, so no other judgment is masked. Masks come from
    (and go to) ``cache``'s mask entries; with ``NoCache`` nothing is written and nothing is
    masked here.
    """
    from gates.cache import NoCache

    entries = [{"value": s.value, "reason": s.reason, "details": s.details} for s in scores]
    if isinstance(cache, NoCache):
        return entries
    chosen = [i for i, (c, read) in enumerate(zip(cases, reads_answer)) if read and isinstance(c.answer, str)]
    if not chosen:
        return entries
    from gates.engine import masked_with_answer, prefetch_masks

    prefetch_masks([(cases[i].answer, True, tuple(cases[i].contexts)) for i in chosen], cache)
    for i in chosen:
        _, (reason, details) = masked_with_answer(
            cases[i].answer, tuple(cases[i].contexts), [entries[i]["reason"], entries[i]["details"]], cache
        )
        entries[i] = {"value": entries[i]["value"], "reason": reason, "details": details}
    return entries


def strings_in(*values: Any) -> list[str]:
    """Every string in ``values`` (nested in dicts, lists and tuples)."""
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            out.extend(strings_in(*value.values()))
        elif isinstance(value, list | tuple):
            out.extend(strings_in(*value))
    return out


def masked_strings(value: Any, keep: tuple[str, ...], fragments: frozenset[str] = frozenset()) -> Any:
    """``value`` with every string in it (nested in dicts, lists and tuples) masked, names
    included and values quoted from ``keep`` spared; lists come back as lists. ``fragments``
    (:func:`ragate_core.pii.removed_fragments` of the answer the value quotes) are masked
    too: the pieces a masked value can be quoted in ("171, 2345678" of a phone number)."""
    from gates.engine import mask_text
    from ragate_core.pii import mask_fragments

    if isinstance(value, str):
        return mask_fragments(mask_text(value, names=True, keep=keep), fragments)
    if isinstance(value, dict):
        return {k: masked_strings(v, keep, fragments) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked_strings(v, keep, fragments) for v in value]
    return value
