"""Faithfulness: is every claim of the answer supported by the retrieved contexts?

Offline and deterministic. Each claim (a clause of the answer) is matched against every
context unit (a sentence or a clause of one) and supported to the degree that

- its content words appear in that unit (numbers and names weigh more),
- it means the same as that unit (MiniLM cosine similarity),
- and nothing contradicts it there: a number that the unit does not state, a polarity
  the unit does not share ("can" / "cannot"), or a word whose opposite the unit uses
  ("before" / "after").

A claim is as supported as its best unit; the answer is as faithful as its weakest claim,
so one unsupported addition is enough to fail it. An answer that declines to answer
makes no claim and is faithful.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates.metrics import text as tx
from gates.metrics.base import MetricCase, Score, register, score_each

NUMBER_WEIGHT = 3.0
NAME_WEIGHT = 2.0
# What a contradiction leaves of a unit's support.
NUMBER_PENALTY = 0.25  # a number the contexts never state
MISPLACED_PENALTY = 0.6  # a number or name the contexts state about something else
NAME_PENALTY = 0.4  # per name the contexts never mention
POLARITY_PENALTY = 0.35
ANTONYM_PENALTY = 0.35


@dataclass(frozen=True)
class _Support:
    value: float
    unit: str
    coverage: float
    similarity: float
    problems: tuple[str, ...]


def _units(contexts: Sequence[str]) -> list[str]:
    units: list[str] = []
    for context in contexts:
        for sentence in tx.sentences(context):
            units.append(sentence)
            parts = [p for p in tx._CLAUSE.split(sentence) if tx.content_tokens(p)]
            if len(parts) > 1:
                units.extend(p.strip() for p in parts)
    return list(dict.fromkeys(units))


def _weights(claim: str) -> dict[str, float]:
    names = tx.capitalised(claim)
    numbers = tx.numbers(claim)
    weights: dict[str, float] = {}
    for token in tx.content_tokens(claim):
        if token in numbers:
            weights[token] = NUMBER_WEIGHT
        elif token in names:
            weights[token] = NAME_WEIGHT
        else:
            weights.setdefault(token, 1.0)
    return weights


def _support(claim: str, unit: str, similarity: float, context: _Context) -> _Support:
    """How well one unit supports one claim, and what contradicts it there."""
    weights = _weights(claim)
    unit_tokens = set(tx.content_tokens(unit))
    total = sum(weights.values()) or 1.0
    coverage = sum(w for t, w in weights.items() if t in unit_tokens) / total
    problems = []
    value = 0.5 * coverage + 0.5 * max(similarity, 0.0)
    claim_numbers = tx.numbers(claim)
    unstated = claim_numbers - context.numbers
    elsewhere = claim_numbers - tx.numbers(unit) - unstated
    if unstated:
        value *= NUMBER_PENALTY
        problems.append("number not in the contexts: " + ", ".join(sorted(unstated)))
    elif elsewhere and not (elsewhere <= context.neighbour_numbers.get(unit, set())):
        value *= MISPLACED_PENALTY
        problems.append("number stated for something else: " + ", ".join(sorted(elsewhere)))
    names = tx.capitalised(claim)
    foreign = sorted(n for n in names if n not in context.tokens and n not in context.question)
    astray = sorted(n for n in names - set(foreign) if n not in unit_tokens and n not in context.question)
    if foreign:
        value *= NAME_PENALTY ** len(foreign)
        problems.append("name not in the contexts: " + ", ".join(foreign))
    elif astray:
        value *= MISPLACED_PENALTY
        problems.append("name stated about something else: " + ", ".join(astray))
    claim_stems = {tx.stem(w) for w in tx.words(claim)}
    unit_stems = {tx.stem(w) for w in tx.words(unit)}
    flipped = sorted(
        w for w in claim_stems - unit_stems if {tx.stem(a) for a in tx.ANTONYMS.get(w, ())} & unit_stems
    )
    # "won't stop" against "keeps running": an opposite word under a negation is agreement.
    polarity_flip = tx.negated(claim) != tx.negated(unit)
    if polarity_flip and not flipped:
        value *= POLARITY_PENALTY
        problems.append("opposite polarity")
    elif flipped and not polarity_flip:
        value *= ANTONYM_PENALTY
        problems.append("opposite of: " + ", ".join(flipped))
    return _Support(value, unit, coverage, similarity, tuple(problems))


@dataclass(frozen=True)
class _Context:
    """What the whole of the retrieved context states, for checks beyond one unit."""

    tokens: frozenset[str]
    numbers: frozenset[str]
    question: frozenset[str]  # repeating the question's own words is no hallucination
    # Numbers of the sentences next to each unit: "files larger than that" refers back.
    neighbour_numbers: dict[str, set[str]]


def _context(contexts: Sequence[str], question: str) -> _Context:
    neighbours: dict[str, set[str]] = {}
    for context in contexts:
        sents = tx.sentences(context)
        for i, sentence in enumerate(sents):
            near = set().union(*(tx.numbers(s) for s in sents[max(0, i - 1) : i + 2]))
            neighbours.setdefault(sentence, set()).update(near)
            for part in tx._CLAUSE.split(sentence):
                neighbours.setdefault(part.strip(), set()).update(near)
    joined = "\n".join(contexts)
    return _Context(
        frozenset(tx.content_tokens(joined)),
        frozenset(tx.numbers(joined)),
        frozenset(tx.content_tokens(question)),
        neighbours,
    )


class Faithfulness:
    """Claims of the answer supported by the retrieved contexts (higher is better)."""

    name = "faithfulness"
    version = "1.0"
    direction = "higher_is_better"
    default_threshold = 0.5

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {"answer": case.answer, "contexts": list(case.contexts)}

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        from rag.embeddings import default_embeddings

        plans = {}
        texts: list[str] = []
        for case in cases:
            if tx.abstains(case.answer):
                continue
            # A clause made only of the question's words ("Not on Starter.", "Yes, you can
            # use SCIM on Business.") takes a side the context supports only by inference,
            # which is beyond a lexical check: it is left out, and the reason says so.
            asked = set(tx.content_tokens(case.question))
            claim_list = [c for c in tx.claims(case.answer) if not set(tx.content_tokens(c)) <= asked]
            if not claim_list:
                continue
            units = _units(case.contexts)
            plans[case.id] = (claim_list, units)
            texts.extend(claim_list)
            texts.extend(units)
        unique = list(dict.fromkeys(texts))
        vectors = default_embeddings().encode(unique) if unique else np.zeros((0, 1))
        index = {t: i for i, t in enumerate(unique)}

        def one(case: MetricCase) -> tuple[float, str, dict[str, Any]]:
            if case.id not in plans:
                if tx.abstains(case.answer):
                    return 1.0, "declines to answer: makes no claim", {}
                return 1.0, "no factual claim beyond restating the question", {}
            claim_list, units = plans[case.id]
            if not units:
                return 0.0, "no retrieved context supports any claim", {"claims": len(claim_list)}
            unit_vecs = vectors[[index[u] for u in units]]
            context = _context(case.contexts, case.question)
            supports = []
            for claim in claim_list:
                sims = unit_vecs @ vectors[index[claim]]
                candidates = (_support(claim, u, float(s), context) for u, s in zip(units, sims))
                supports.append(max(candidates, key=lambda x: x.value))
            weakest_i = int(np.argmin([s.value for s in supports]))
            weakest = supports[weakest_i]
            value = min(1.0, weakest.value)
            problems = f"; {'; '.join(weakest.problems)}" if weakest.problems else ""
            reason = (
                f"weakest claim {claim_list[weakest_i]!r}: best support {weakest.unit[:120]!r} "
                f"(word coverage {weakest.coverage:.2f}, similarity {weakest.similarity:.2f}{problems})"
            )
            return (
                value,
                reason,
                {"claims": len(claim_list), "claim_support": [round(s.value, 4) for s in supports]},
            )

        return score_each(self, cases, one)


@register("faithfulness")
def faithfulness() -> Faithfulness:
    return Faithfulness()
