"""Faithfulness: is every claim of the answer supported by the retrieved contexts?

Offline and deterministic. The answer is read in its language (English, German, French,
Spanish, Chinese; other languages get only the language-neutral signals) and turned into
claims: its clauses, and, when the answer is short ("600", "Arthur's Magazine") or a yes or
a no, the question's proposition joined to it, so that "Yes" to "Is the window 60 days?"
claims a 60-day window. Each case then yields a handful of signals:

- ``lexical_share``: the share of the answer's content words found in the contexts;
- ``new_share``: the same for the words the answer adds to the question;
- ``claim_coverage``: the weakest claim's share of words found in its best context window
  (a sentence or two adjacent sentences);
- ``similarity``: the weakest claim's best MiniLM cosine similarity to a context unit
  (split into English and other languages: the model is English-centric);
- ``unsupported_number`` / ``unsupported_name``: a number (any language) or a name
  (capitalised words only in English; mixed-case or digit-bearing words everywhere) that
  the contexts never state, or a number they state only in another unit or currency ("62
  dollars" where they say 62 euros, "24 minutes" for 24 hours; :func:`qty.quantities`);
- ``misbound_value``: a number (or the name a short answer gives) that the contexts state
  only about another subject ("Free plan 60 requests" when the claim is about the Pro plan),
  with the opposite bound ("below 45 knots" where they say "exceeds", "after" for "before",
  "at most" for "at least"), or that the context unit saying most of what the claim says
  gives as another value of the same kind ("under 12 travel free" where "under 4 travel
  free" and "under 12 pay 7 euros"); "under-12s" and "4-year-olds" are read as numbers;
- ``name_astray``: a name the contexts use, but not in the unit that best supports the claim;
- ``polarity_mismatch`` / ``antonym``: the claim and its best context unit disagree in
  negation, or use opposite words (English list); ``polarity_elsewhere``: the share of the
  claim's words in another unit, about a word the best unit lacks, that disagrees in negation;
- ``comparison_conflict``: a comparison ("A started before B", "the cheapest plan", "Which is
  larger, A or B?", a yes to "Is A larger than B?") that the values the contexts give
  contradict (English wording);
- ``premise_conflict``: the yes or no contradicts what the contexts say about the question's
  proposition (by negation, an opposite word in en/de/fr/es, or the values); a denial with
  an exception ("cannot be returned unless defective") agrees with "No" and "only if";
- ``role_swap``: a name written in full that the contexts bind, in another clause, to another
  role or place ("Lars Berg is the CEO" where "the CFO is Lars Berg").

Numbers written as words are read as digits first (text2num, en/de/fr/es), and a duration
the contexts state in other units counts as stated ("two years" for a "24-month" warranty;
"five years after" for 1998 and 2003).

A logistic regression fitted on labeled pairs and real chain outputs (train splits only;
``ragate calibrate --fit``) turns the signals into the probability that the answer is
faithful; its coefficients live in ``gates/metrics/data/faithfulness_model.json``. An
answer that declines to answer makes no claim and is faithful (1.0).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gates.metrics import quantities as qty
from gates.metrics import text as tx
from gates.metrics.base import MetricCase, Score, register, score_each

MODEL_PATH = Path(__file__).parent / "data" / "faithfulness_model.json"
FEATURES = (
    "lexical_share",
    "new_share",
    "claim_coverage",
    "similarity_en",
    "similarity_other",
    "unsupported_number",
    "misbound_value",
    "unsupported_name",
    "name_astray",
    "polarity_mismatch",
    "polarity_elsewhere",
    "antonym",
    "comparison_conflict",
    "short_answer",
    "premise_conflict",
    "role_swap",
)
# A short answer ("600", "Die Zugspitze.") is read together with its question.
SHORT_ANSWER_KEYS = 3
SHORT_ANSWER_WORDS = 6
# Candidate inverse L2 strengths (scikit-learn's C) of the combiner: the fit picks one by
# 5-fold cross-validated log-loss on the train rows (never on a validation split).
REGULARISATION = (0.03, 0.1, 0.3, 1.0, 3.0)


@dataclass
class Evidence:
    """The signals of one case and what they found (for the reason)."""

    features: dict[str, float]
    problems: list[str] = field(default_factory=list)
    weakest_claim: str = ""
    best_unit: str = ""


@dataclass(frozen=True)
class _Segment:
    text: str
    keys: frozenset[str]
    numbers: tuple[str, ...]  # in order of appearance
    signatures: tuple[tuple[str, str], ...]  # (currency, next word) per number
    names: frozenset[str]
    full_names: frozenset[str] = frozenset()  # words of names written in full ("Lars Berg")


@dataclass
class _Claim:
    text: str
    keys: set[str]
    numbers: set[str]  # the numbers it asserts
    names: set[str]
    negated: bool
    premise: bool = False  # the question's proposition under a yes/no answer
    signatures: dict[str, tuple[str, str]] = field(default_factory=dict)  # number -> (currency, next word)
    values: set[str] = field(default_factory=set)  # non-number keys that must be bound (names, short answers)


@dataclass
class _Plan:
    lang: str
    claims: list[_Claim]
    answer_keys: list[str]
    question_keys: set[str]
    short: bool
    units: list[str]
    unit_keys: list[frozenset[str]]
    windows: list[frozenset[str]]
    segments: list[_Segment]
    clauses: list[_Segment]
    context_keys: set[str]
    context_numbers: set[str]
    body: str
    question: str
    polarity: int
    durations: list[float] = field(default_factory=list)  # the contexts' durations, in days
    years: set[float] = field(default_factory=set)  # the contexts' numbers that read as years
    question_names: set[str] = field(default_factory=set)


_NUM_WITH_SIGNATURE = re.compile(
    r"([$€£¥]?)\s?(?<![A-Za-z\d.,])(?<![A-Za-z]-)(\d[\d,]*(?:\.\d+)?)\s*([^\W\d_]*)"
)


@lru_cache(maxsize=65536)
def _segment(text: str, lang: str) -> _Segment:
    nums: list[str] = []
    sigs: list[tuple[str, str]] = []
    for cur, raw, nxt in _NUM_WITH_SIGNATURE.findall(text):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        nums.append(value)
        sigs.append((cur, tx.key(nxt.lower(), lang) if nxt else ""))
    return _Segment(
        text,
        frozenset(tx.keys(text, lang)),
        tuple(nums),
        tuple(sigs),
        frozenset(tx.names_in(text, lang)),
        frozenset(tx.full_names(text, lang)),
    )


@dataclass(frozen=True)
class _ContextPart:
    units: tuple[str, ...]  # sentences, and the segments of sentences with several
    windows: tuple[frozenset[str], ...]  # keys of each sentence and of each adjacent pair
    segments: tuple[_Segment, ...]
    keys: frozenset[str]
    numbers: frozenset[str]
    clauses: tuple[_Segment, ...] = ()  # one per clause: who is bound to which role
    durations: tuple[float, ...] = ()
    years: frozenset[float] = frozenset()  # its numbers that read as years


@lru_cache(maxsize=4096)
def _context_part(context: str, lang: str) -> _ContextPart:
    """What one retrieved context offers (contexts repeat across a batch: read once)."""
    units: list[str] = []
    windows: list[frozenset[str]] = []
    segments: list[_Segment] = []
    clauses: list[_Segment] = []
    sents = tx.sentences_any(context)
    sent_keys = [frozenset(_unit_keys(s, lang)) for s in sents]
    for i, sentence in enumerate(sents):
        units.append(sentence)
        windows.append(sent_keys[i])
        if i + 1 < len(sents):
            windows.append(sent_keys[i] | sent_keys[i + 1])
        parts = tx.segments(sentence)
        if len(parts) > 1:
            units.extend(parts)
        segments.extend(_segment(p, lang) for p in parts)
        clauses.extend(_segment(c, lang) for c in _binding_clauses(sentence, lang))
    return _ContextPart(
        tuple(units),
        tuple(windows),
        tuple(segments),
        frozenset(tx.keys(context, lang)),
        frozenset(tx.numbers_in(context, lang)),
        tuple(clauses),
        tuple(days for _, _, days in tx.durations(context, lang)),
        frozenset(float(n) for n in tx.numbers_in(context, lang) if _is_year(float(n))),
    )


def _binding_clauses(sentence: str, lang: str) -> list[str]:
    """The clauses that bind names to roles: :func:`tx.clauses_any`, but a piece that only
    names ("Tomasz Kowal in Leeds" after "founded by Priya Raman and") stays with the clause
    before it. Acronyms ("the CFO is Ben") say something."""
    stops = tx.STOPWORDS | tx._STOP_LISTS.get(lang, frozenset())
    out: list[str] = []
    for piece in tx.clauses_any(sentence):
        said = [
            w
            for w in re.findall(r"[^\W\d_]+", piece)
            if (w.isupper() or not w[:1].isupper()) and w.lower() not in stops
        ]
        if out and not said:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


@lru_cache(maxsize=65536)
def _unit_keys(unit: str, lang: str) -> frozenset[str]:
    return frozenset(tx.keys(unit, lang))


def _plan(case: MetricCase) -> _Plan:
    lang = tx.language(f"{case.question} {case.answer}")
    if lang == "und":
        lang = tx.language(" ".join(case.contexts))
    # Numbers written as words are compared as digits: "zehn Werktage" against "drei bis
    # fünf Werktage" is a changed number like "10" against "3 to 5".
    # "under-12s" and "4-year-olds" are read as the numbers they hold (qty.hyphen_forms).
    question = qty.hyphen_forms(tx.with_digits(case.question, lang))
    answer = qty.hyphen_forms(tx.with_digits(case.answer, lang))
    contexts = [qty.hyphen_forms(tx.with_digits(c, lang)) for c in case.contexts]
    polarity, body = tx.strip_yes_no(answer, lang)
    polar = tx.polar_question(question, lang)
    if not polar:
        polarity = 0
        body = answer
    answer_keys = tx.keys(body, lang)
    question_keys = set(tx.keys(question, lang))
    # Short or elliptical ("600", "10 API calls per minute."): read with its question.
    short = not polar and (
        len(set(answer_keys)) <= SHORT_ANSWER_KEYS
        or (len(tx.sentences_any(body)) == 1 and len(tx.raw_tokens(body)) <= SHORT_ANSWER_WORDS)
    )
    claims: list[_Claim] = []
    if short:
        text = f"{question.strip()} {body.strip()}"
        claims.append(
            _Claim(
                text,
                set(tx.keys(text, lang)),
                tx.numbers_in(text, lang),
                tx.names_in(body, lang),
                tx.negated_in(body, lang),
                signatures=_claim_signatures(text, lang),
                # A short answer that gives a name ("Helena Brandt") must give the one the
                # contexts bind to the question's subject; a number answer binds its number.
                values=(
                    set()
                    if tx.numbers_in(body, lang)
                    else (tx.names_in(body, lang) if lang == "en" else set(answer_keys)) - question_keys
                ),
            )
        )
    else:
        for sentence in tx.sentences_any(body):
            parts = (
                [p for clause in tx._CLAUSE.split(sentence) for p in tx._split_and(clause)]
                if lang == "en"
                else re.split(r"[;；]\s*", sentence)
            )
            for part in parts:
                part = part.strip()
                part_keys = tx.keys(part, lang)
                if not part_keys:
                    continue
                neg = tx.negated_in(part, lang)
                names = set() if neg else tx.names_in(part, lang)
                claims.append(
                    _Claim(
                        part,
                        set(part_keys),
                        set() if neg else tx.numbers_in(part, lang),
                        names,
                        neg,
                        signatures=_claim_signatures(part, lang),
                        # The people (and places, firms) it names in full beside the question's
                        # own must be the ones the contexts bind to its subject ("Lars Berg is
                        # the CEO" where the contexts make him the CFO).
                        values=set() if neg else tx.full_names(part, lang) - question_keys,
                    )
                )
    if polar and polarity == 0 and claims and claims[0].keys <= question_keys:
        # "Not on Starter." / "You can, on Business." answers the question by restating it.
        polarity = -1 if claims[0].negated != tx.negated_in(question, lang) else 1
        claims.pop(0)
    if polar and polarity != 0:
        q_neg = tx.negated_in(question, lang)
        claims.append(
            _Claim(
                question,
                set(question_keys),
                tx.numbers_in(question, lang),
                tx.names_in(question, lang),
                q_neg != (polarity < 0),
                premise=True,
                signatures=_claim_signatures(question, lang),
            )
        )
    units: list[str] = []
    windows: list[set[str]] = []
    segments: list[_Segment] = []
    clauses: list[_Segment] = []
    durations: list[float] = []
    context_keys: set[str] = set()
    context_numbers: set[str] = set()
    years: set[float] = set()
    for context in contexts:
        part = _context_part(context, lang)
        units.extend(part.units)
        windows.extend(part.windows)
        segments.extend(part.segments)
        clauses.extend(part.clauses)
        durations.extend(part.durations)
        context_keys |= part.keys
        context_numbers |= part.numbers
        years |= part.years
    unique_units = list(dict.fromkeys(units))
    return _Plan(
        lang=lang,
        claims=claims,
        answer_keys=answer_keys or sorted(question_keys),
        question_keys=question_keys,
        short=short,
        units=unique_units,
        unit_keys=[_unit_keys(u, lang) for u in unique_units],
        windows=windows,
        segments=segments,
        clauses=clauses,
        context_keys=context_keys,
        context_numbers=context_numbers,
        body=body,
        question=question,
        polarity=polarity,
        durations=durations,
        years=years,
        question_names=tx.names_in(question, lang),
    )


def _claim_signatures(text: str, lang: str) -> dict[str, tuple[str, str]]:
    seg = _segment(text, lang)
    return dict(zip(seg.numbers, seg.signatures))


def _parallel(
    other: _Segment, seg: _Segment, own_sigs: set[tuple[str, str]], claim: _Claim, is_number: bool
) -> bool:
    """Whether ``other`` states another value of the same kind as ``seg``, said the same way
    (same unit, or two shared words): "Free plan 60 requests" and "Pro plan 600 requests"."""
    if not is_number:
        return bool((other.names | other.full_names) - claim.keys - seg.keys)
    others = [sig for n, sig in zip(other.numbers, other.signatures) if n not in claim.numbers]
    units = {s[1] for s in own_sigs if s[1]}
    shared = (other.keys & seg.keys) - set(other.numbers) - set(seg.numbers)
    return bool(others) and (any(sig in own_sigs or sig[1] in units for sig in others) or len(shared) >= 2)


@lru_cache(maxsize=65536)
def _quantities(text: str) -> tuple[qty.Quantity, ...]:
    return tuple(qty.quantities(text))


@cache
def _bound_keys(lang: str) -> frozenset[str]:
    return frozenset(tx.keys(" ".join(qty.BOUND_WORDS), lang))


def _said(q: qty.Quantity, text: str) -> str:
    return repr(qty.hyphen_forms(text)[q.start : q.end].strip())


def _quantity_problems(claim: _Claim, plan: _Plan) -> tuple[list[str], list[str]]:
    """(wrong unit, wrong binding) problems of the claim's quantities that the contexts state.

    A number is the quantity it measures: "62 dollars" is unsupported where the contexts
    give 62 only in euros, "24 minutes" where they give 24 hours (a quantity the contexts
    state in another unit of the same size counts as stated: "2 h" for "120 minutes").
    A bound must agree: "below 45 knots" where the contexts give 45 knots only as a lower
    bound ("exceeds", "over", "at least"), "after" where they say "before". And the number
    must be the one the contexts bind to what the claim says: among the context units that
    state a quantity of the same kind (same unit and bounds: "under 4", "under 12"), the one
    sharing most of the claim's words must state the claim's value ("Children under 12
    travel free" where "Children under 4 travel free" and "under 12 pay 7 euros").
    """
    wrong_unit: list[str] = []
    wrong_binding: list[str] = []
    stated = [(u, k, _quantities(u)) for u, k in zip(plan.units, plan.unit_keys)]
    every = [q for _, _, qs in stated for q in qs]
    # The claim's words but its numbers and bound words: what the quantity is about.
    words = {k for k in claim.keys if not k[:1].isdigit()} - _bound_keys(plan.lang)
    for q in _quantities(claim.text):
        same_value = [c for c in every if math.isclose(c.value, q.value)]
        if not same_value:
            continue  # a number the contexts never state: unsupported_number says so
        if q.unit:
            # Currencies do not convert; other units do ("2 h" states "120 minutes").
            same_measure = [
                c
                for c in every
                if c.unit == q.unit
                or (
                    q.dimension != "money"
                    and c.dimension == q.dimension
                    and math.isclose(c.base, q.base, rel_tol=0.015)
                )
            ]
            if not same_measure and all(c.unit for c in same_value):
                units = sorted({c.unit for c in same_value})
                wrong_unit.append(
                    f"{_said(q, claim.text)} is not in the contexts, which give {q.value:g} "
                    f"only as {', '.join(units)}"
                )
                continue
        comparable = [c for c in same_value if not (c.unit and q.unit) or c.unit == q.unit]
        if comparable and all(qty.opposed(q.bounds, c.bounds) for c in comparable):
            wrong_binding.append(f"{_said(q, claim.text)}: the contexts bound {q.value:g} the other way")
            continue
        if not (q.unit or q.bounds) or not words:
            continue
        own = other = 0
        other_unit = ""
        for unit, keys_, qs in stated:
            share = len(words & keys_)
            kind = [c for c in qs if c.unit == q.unit]
            if any(
                math.isclose(c.value, q.value) and not qty.opposed(c.bounds, q.bounds)
                for c in same_value
                if c in qs
            ):
                own = max(own, share)
            elif share > other and any(
                not math.isclose(c.value, q.value) or qty.opposed(c.bounds, q.bounds) for c in kind
            ):
                other, other_unit = share, unit
        if other > own:
            wrong_binding.append(
                f"{_said(q, claim.text)} is stated for something else ({other_unit[:80]!r} says it)"
            )
    return wrong_unit, wrong_binding


def _misbound(value: str, claim: _Claim, plan: _Plan) -> _Segment | None:
    """The segment that states ``value`` (a number or a name) about another subject, or
    None when some occurrence of it fits the claim.

    An occurrence is about another subject when a subject word of the claim (a word of the
    question that the contexts use: say "Pro") is missing from its segment but appears in
    a parallel segment, one that states another value of the same kind (a number with the
    same unit, another name), while the occurrence's own segment has a word (say "Free")
    that the parallel one lacks: the contexts contrast two subjects, and the claim took
    the value of the wrong one.
    """
    is_number = value in claim.numbers
    # The subject is what the question asks about: "Pro" in "The Pro plan allows 10
    # requests" is one, "allows" is not, nor is a product name the contexts repeat.
    subject = {
        k
        for k in claim.keys & plan.question_keys
        if k in plan.context_keys and k not in claim.numbers and k != value
    }
    # Numbers are bound within a segment; names written in full within a clause ("The CEO
    # is Ana Lima, the CFO is Ben Ode" binds Ben Ode to CFO, not CEO).
    person = not is_number and value in tx.full_names(claim.text, plan.lang)
    pool = plan.clauses if person else plan.segments
    found = [s for s in pool if (value in s.numbers if is_number else value in s.keys)]
    if not found:
        return None
    claim_sig = claim.signatures.get(value)
    wrong = None
    for seg in found:
        missing = subject - seg.keys
        if not missing:
            return None
        extra = seg.keys - claim.keys - set(seg.numbers)
        own_sigs = {sig for n, sig in zip(seg.numbers, seg.signatures) if n == value}
        if claim_sig:
            own_sigs.add(claim_sig)

        # A name needs two subject words to move to the other segment ("composed", "music"
        # for Oskar Lind, not Helena Brandt); a number, or a full name bound per clause,
        # one ("Oslo" in "Who manages the Oslo office?", "lyrics" for Lotte Kramer).
        contrasted = any(
            len(missing & other.keys) >= (1 if is_number or person else 2)
            and extra - other.keys
            and _parallel(other, seg, own_sigs, claim, is_number)
            for other in pool
            if other is not seg
        )
        if not contrasted:
            return None
        wrong = seg
    return wrong


# --- comparisons (English wording) ---------------------------------------------------------
_MIN_WORDS = frozenset(
    "first earlier earliest before older oldest cheaper cheapest less least fewer fewest smaller "
    "smallest shorter shortest lower lowest sooner".split()
)
_MAX_WORDS = frozenset(
    "later latest after newer newest younger youngest more most larger largest bigger biggest longer "
    "longest higher highest taller tallest expensive greater".split()
)
_SUPERLATIVES = frozenset(
    "cheapest oldest newest youngest earliest latest largest smallest biggest longest shortest highest "
    "lowest tallest fewest".split()
)
_COMPARATIVE = re.compile(
    r"^(.*?)\b((?:was |were |is |are )?(?:(?:more|less) expensive|before|after|earlier|later|more|less|"
    r"fewer|cheaper|older|younger|larger|bigger|smaller|longer|shorter|higher|lower|taller|greater)"
    r"(?: than)?)\b(.*)$",
    re.IGNORECASE,
)
_OPTIONS = re.compile(r"[,:]\s*(?:the\s+)?(.+?)\s+or\s+(?:the\s+)?(.+?)\s*\?\s*$", re.IGNORECASE)


def _direction(text: str, years: bool) -> int | None:
    """-1 when the text asks for the smaller value, +1 for the larger, None when neither."""
    low = text.lower()
    if re.search(r"\b(?:less|least) expensive\b", low):
        return -1
    for word in re.findall(r"[a-z]+", low):
        if word in ("older", "oldest"):
            return -1 if years else 1
        if word in ("younger", "youngest"):
            return 1 if years else -1
        if word in _MIN_WORDS:
            return -1
        if word in _MAX_WORDS:
            return 1
    return None


def _value(entity: set[str], plan: _Plan) -> tuple[float, tuple[str, str], frozenset[str]] | None:
    """The first number of the segment that names ``entity`` best, with its signature and
    the segment's keys."""
    if not entity:
        return None
    best, best_overlap = None, 0
    for seg in plan.segments:
        overlap = len(entity & seg.keys)
        if overlap > best_overlap and seg.numbers:
            best, best_overlap = seg, overlap
    if best is None or best_overlap * 2 < len(entity):
        return None
    return float(best.numbers[0]), best.signatures[0], best.keys


def _is_year(*values: float) -> bool:
    return all(1000 <= v <= 2100 and v == int(v) for v in values)


def _comparison(plan: _Plan) -> tuple[str | None, set[str]]:
    """A comparison of the answer that the contexts' values contradict, described, and the
    claims whose comparison the values bear out (their wording is then not checked for
    opposite words: "Vega launched before Orion" against "Orion came after Vega")."""
    checked: set[str] = set()
    if plan.lang != "en":
        return None, checked
    options = _OPTIONS.search(plan.question)
    if options:
        a, b = (set(tx.keys(o, "en")) for o in options.groups())
        a, b = a - b, b - a
        picked = set(tx.keys(plan.body, "en"))
        va, vb = _value(a, plan), _value(b, plan)
        # "the Alpha or the Beta tank": "tank" names both; the picked option is told by
        # the words only its own value's segment has.
        if va and vb:
            a, b = a - vb[2], b - va[2]
        if a and b and va and vb and va[0] != vb[0] and bool(picked & a) != bool(picked & b):
            direction = _direction(plan.question, _is_year(va[0], vb[0]))
            if direction is not None:
                winner_a = (va[0] < vb[0]) == (direction < 0)
                chose_a = bool(picked & a)
                if chose_a != winner_a:
                    loser = options.group(1) if chose_a else options.group(2)
                    return f"comparison contradicts the contexts' values: {loser.strip()}", checked
                # Borne out: the answer names both options, which no one unit does.
                checked.update(c.text for c in plan.claims if not c.premise)
    for claim in plan.claims:
        match = _COMPARATIVE.match(claim.text)
        # "more than 100 items" bounds a number; "before Orion in 2011" compares two subjects.
        if (
            match
            and match.group(1).strip()
            and match.group(3).strip()
            and not re.match(r"\s*[$€£]?\d", match.group(3))
        ):
            left = set(tx.keys(match.group(1), "en"))
            right = set(tx.keys(match.group(3), "en"))
            left, right = left - right, right - left
            vl, vr = _value(left, plan), _value(right, plan)
            if vl and vr and vl[0] != vr[0] and not (claim.numbers - {str(int(vl[0])), str(int(vr[0]))}):
                direction = _direction(match.group(2), _is_year(vl[0], vr[0]))
                if direction is not None:
                    # "A is not larger than B" holds where "A is larger than B" fails; a
                    # "No" to "Is A larger than B?" denies the question's comparison.
                    if ((vl[0] < vr[0]) != (direction < 0)) != claim.negated:
                        return f"comparison contradicts the contexts' values: {claim.text!r}", checked
                    checked.add(claim.text)
        if claim.premise:
            continue
        words_ = set(re.findall(r"[a-z]+", claim.text.lower()))
        superlative = words_ & _SUPERLATIVES or ({"most", "least"} & words_ and "expensive" in words_)
        if superlative:
            entity = set(tx.keys(plan.body if plan.short else claim.text, "en")) - plan.question_keys
            entity -= {tx.key(w, "en") for w in words_ & (_MIN_WORDS | _MAX_WORDS)}
            own = _value(entity, plan)
            if own is None:
                continue
            peers = [
                float(n)
                for seg in plan.segments
                for n, sig in zip(seg.numbers, seg.signatures)
                if sig == own[1]
            ]
            direction = _direction(claim.text, _is_year(own[0], *peers))
            if len(peers) >= 2 and direction is not None:
                extreme = min(peers) if direction < 0 else max(peers)
                if own[0] != extreme:
                    return f"superlative contradicts the contexts' values: {claim.text!r}", checked
                checked.add(claim.text)
    return None, checked


def _negated_about(unit: str, claim: _Claim, lang: str) -> bool:
    """Whether ``unit`` is negated where it speaks about the claim: in its clauses that
    share most of the claim's words ("retries up to 5 times if the server does not
    respond" affirms the retries)."""
    parts = tx.clause_polarities(unit, lang)
    overlaps = [len(claim.keys & set(tx.keys(c, lang))) for c, _ in parts]
    top = max(overlaps, default=0)
    if top == 0:
        return tx.negated_in(unit, lang)
    return any(negated for (_, negated), o in zip(parts, overlaps) if o == top)


def _same_durations(text: str, plan: _Plan) -> set[str]:
    """The numbers of ``text`` that state a duration the contexts state in other units ("2
    years" for a "24-month warranty") or that is the span between two years the contexts
    give ("5 years after construction began" for 1998 and 2003)."""
    return {number for number, _ in _durations_stated(text, plan)}


def _durations_stated(text: str, plan: _Plan) -> list[tuple[str, str]]:
    """(number, unit key) of each duration of ``text`` that :func:`_same_durations` accepts."""
    out = []
    for number, unit, days in tx.durations(text, plan.lang):
        if any(tx.same_duration(days, d) for d in plan.durations) or (
            tx.same_duration(days, float(number) * 365.25)
            and any(abs(a - b) == float(number) for a in plan.years for b in plan.years)
        ):
            out.append((number, tx.key(unit, plan.lang)))
    return out


def _top_clauses(unit: str, claim: _Claim, lang: str) -> list[str]:
    """The clauses of ``unit`` that share the most of the claim's words (all, when none)."""
    parts = tx.clauses_any(unit)
    overlaps = [len(claim.keys & set(tx.keys(c, lang))) for c in parts]
    top = max(overlaps, default=0)
    return [c for c, o in zip(parts, overlaps) if o == top] if top else parts


def _flipped(claim: _Claim, unit: str, lang: str) -> list[str]:
    """The claim's words whose opposite the unit uses where it speaks about the claim, and
    that the unit does not use there itself: "open" against "closed on Sundays", "ouvert"
    against "fermé le dimanche" (though the unit goes on "ouvert du lundi au samedi")."""
    if not tx.antonym_forms(lang):
        return []
    there = set().union(*(tx.word_keys(c, lang) for c in _top_clauses(unit, claim, lang)))
    out = set()
    for word in tx.word_forms(claim.text):
        opposite = {tx.key(a, lang) for a in tx.opposites_of(word, lang)}
        if opposite & there and tx.key(word, lang) not in there:
            out.add(word)
    return sorted(out)


def _restriction_agrees(claim: _Claim, unit: str, plan: _Plan) -> bool:
    """Whether a claim and a unit of opposite negation say the same under a condition: a
    denial with an exception ("cannot ... unless defective") against an allowance under a
    condition ("can only ... if defective", "Yes, if it is defective"), either way round."""
    said = tx.restriction(plan.body if claim.premise else claim.text)
    there = tx.restriction(unit)
    return {said, there} in ({"exception", "only"}, {"exception", "condition"})


def _evidence(plan: _Plan, vectors: np.ndarray, index: dict[str, int]) -> Evidence:
    # A duration the contexts state in other units counts as found ("2 years" for "24-month").
    restated = {k for pair in _durations_stated(plan.body, plan) for k in pair}
    ctx_keys = plan.context_keys | restated
    answer_keys = plan.answer_keys
    lexical = sum(k in ctx_keys for k in answer_keys) / len(answer_keys) if answer_keys else 0.0
    new = [k for k in answer_keys if k not in plan.question_keys]
    new_share = sum(k in ctx_keys for k in new) / len(new) if new else 1.0
    unit_vecs = vectors[[index[u] for u in plan.units]] if plan.units else np.zeros((0, vectors.shape[1]))
    problems: list[str] = []
    coverages, sims = [], []
    unsupported_number = misbound = unsupported_name = misbound_name = polarity = antonym = elsewhere = 0.0
    name_astray = premise_conflict = role_swap = 0.0
    comparison, checked = _comparison(plan)
    comparison_premise = bool(comparison) and any(c.premise and c.text in comparison for c in plan.claims)
    weakest_i, weakest_value = 0, math.inf
    best_units = []
    for i, claim in enumerate(plan.claims):
        keys_ = claim.keys or {""}
        found = keys_ & restated
        cov = max((len((keys_ & w) | found) / len(keys_) for w in plan.windows), default=0.0)
        sim_row = unit_vecs @ vectors[index[claim.text]] if len(plan.units) else np.zeros(0)
        sim = float(sim_row.max()) if sim_row.size else 0.0
        # The unit that best supports the claim, by words and meaning together.
        if sim_row.size:
            unit_cov = np.array([len(keys_ & k) / len(keys_) for k in plan.unit_keys])
            best = plan.units[int(np.argmax(0.5 * unit_cov + 0.5 * sim_row))]
        else:
            best = ""
        best_units.append(best)
        denied = claim.premise and claim.negated != tx.negated_in(plan.question, plan.lang)
        unstated = {n for n in claim.numbers if n not in plan.context_numbers}
        if unstated:
            unstated -= _same_durations(claim.text, plan)
        premise_false = False  # a "No" to a premise the contexts do not bear out is right
        if unstated:
            if denied:
                premise_false = True
            else:
                unsupported_number = 1.0
                problems.append("number not in the contexts: " + ", ".join(sorted(unstated)))
        for number in sorted(claim.numbers - unstated):
            seg = _misbound(number, claim, plan)
            if seg is not None:
                if denied:
                    premise_false = True
                else:
                    misbound = 1.0
                    problems.append(f"number stated for something else: {number} ({seg.text[:80]!r})")
        if not denied:
            wrong_unit, wrong_binding = _quantity_problems(claim, plan)
            if wrong_unit:
                unsupported_number = 1.0
                problems.extend(wrong_unit)
            if wrong_binding:
                misbound = 1.0
                problems.extend(wrong_binding)
        foreign = {n for n in claim.names if n not in ctx_keys}
        if foreign:
            if denied:
                premise_false = True
            else:
                unsupported_name = 1.0
                problems.append("name not in the contexts: " + ", ".join(sorted(foreign)))
        if best and not denied and claim.text not in checked:
            # A name the contexts use, but not in the unit that supports the claim best:
            # "Editors can handle members" where the contexts give that right to Admins;
            # "Yes" to "Can I invite guests on Starter?" where guests come with Pro. The
            # question's names count only where the claim asserts the question.
            asked = set() if (claim.premise or (plan.short and i == 0)) else plan.question_keys
            astray = sorted(
                n for n in claim.names - foreign - asked if n not in plan.unit_keys[plan.units.index(best)]
            )
            if astray:
                name_astray = 1.0
                problems.append(f"name stated about something else: {', '.join(astray)}")
        for value in sorted(claim.values - foreign - claim.numbers):
            seg = _misbound(value, claim, plan)
            if seg is not None and not denied:
                # A short answer's name is the answer itself; in a sentence, a role swap.
                if plan.short and i == 0:
                    misbound_name = 1.0
                else:
                    role_swap = 1.0
                problems.append(f"{value!r} is stated about something else ({seg.text[:80]!r})")
        flipped: list[str] = []
        if best and claim.text not in checked:
            # A "No" whose premise the contexts deny with an opposite word is right:
            # "Is it open on Mondays?" - "No" against "closed on Mondays".
            flipped = _flipped(claim, best, plan.lang)
        opposite = claim.negated != _negated_about(best, claim, plan.lang) if best else False
        if opposite and _restriction_agrees(claim, best, plan):
            # "can only be returned if defective" says what "cannot be returned unless
            # defective" says; "Yes, if it is defective" too.
            opposite = False
        # A "No" is checked only against a unit that states the whole premise: "Is SCIM on
        # Business?" - "No" is not contradicted by "SCIM is only available on Enterprise".
        if denied and not (claim.keys <= plan.unit_keys[plan.units.index(best)] if best else False):
            opposite = False
        if denied and flipped:
            # The contexts deny the premise with an opposite word: the "No" agrees.
            opposite, flipped = False, []
        # A unit about the claim's own words that the best unit lacks ("Linux") and that
        # says the opposite: "Ja, auch für Linux" against "Eine Linux-Version ist nicht geplant".
        if best and not premise_false and not denied:
            own = claim.keys - plan.unit_keys[plan.units.index(best)] - claim.numbers
            for unit, unit_keys in zip(plan.units, plan.unit_keys):
                if own & unit_keys and claim.negated != tx.negated_in(unit, plan.lang):
                    # As strong as the share of the claim's words that unit shares.
                    share = len(claim.keys & unit_keys) / len(claim.keys)
                    if share > elsewhere:
                        elsewhere = share
                        about = ", ".join(sorted(own & unit_keys))
                        problems.append(f"opposite polarity about {about}: {unit[:80]!r}")
        # "won't stop" against "keeps running": an opposite word under a negation agrees.
        # The question's proposition under a yes or no counts on its own (premise_conflict):
        # the answer's own sentences carry polarity_mismatch and antonym.
        if opposite and not flipped and not premise_false:
            problems.append(f"opposite polarity to {best[:80]!r}")
            if claim.premise:
                premise_conflict = 1.0
            else:
                # As strong as the share of the claim's words the opposite unit states: a
                # sentence negated word for word is a plain contradiction.
                share = len(claim.keys & plan.unit_keys[plan.units.index(best)]) / len(claim.keys or {""})
                polarity = max(polarity, share)
        elif flipped and not opposite:
            problems.append("opposite of: " + ", ".join(flipped))
            if claim.premise:
                premise_conflict = 1.0
            else:
                antonym = 1.0
        coverages.append(cov)
        sims.append(sim)
        if 0.5 * cov + 0.5 * sim < weakest_value:
            weakest_i, weakest_value = i, 0.5 * cov + 0.5 * sim
    if comparison:
        problems.append(comparison)
    similarity = min(sims) if sims else 0.0
    features = {
        "lexical_share": lexical,
        "new_share": new_share,
        "claim_coverage": min(coverages) if coverages else 0.0,
        "similarity_en": similarity if plan.lang == "en" else 0.0,
        "similarity_other": similarity if plan.lang != "en" else 0.0,
        "unsupported_number": unsupported_number,
        "misbound_value": max(misbound, misbound_name),
        "unsupported_name": unsupported_name,
        "name_astray": name_astray,
        "polarity_mismatch": polarity,
        "polarity_elsewhere": elsewhere,
        "antonym": antonym,
        "comparison_conflict": 1.0 if comparison else 0.0,
        "short_answer": 1.0 if plan.short else 0.0,
        # The answer's yes or no to the question's proposition is what the contexts deny
        # (a "Yes" to "Can I return opened software?" where it cannot be returned).
        "premise_conflict": max(premise_conflict, 1.0 if comparison and comparison_premise else 0.0),
        "role_swap": role_swap,
    }
    return Evidence(
        features,
        list(dict.fromkeys(problems)),
        plan.claims[weakest_i].text if plan.claims else "",
        best_units[weakest_i] if best_units else "",
    )


def analyse(cases: Sequence[MetricCase]) -> list[Evidence | None]:
    """The signals of every case (None for an answer that declines or claims nothing).

    All claims and context units of the batch are embedded in one encoder call, each
    distinct text once.
    """
    plans: list[_Plan | None] = []
    texts: list[str] = []
    for case in cases:
        if case.blocked or tx.abstains_any(case.answer):
            plans.append(None)
            continue
        plan = _plan(case)
        if not plan.claims:
            plans.append(None)
            continue
        plans.append(plan)
        texts.extend(c.text for c in plan.claims)
        texts.extend(plan.units)
    unique = list(dict.fromkeys(texts))
    if unique:
        from ragate_core.embeddings import default_encoder

        vectors = np.asarray(default_encoder().encode(unique), dtype=float)
    else:
        vectors = np.zeros((0, 1))
    index = {t: i for i, t in enumerate(unique)}
    return [None if p is None else _evidence(p, vectors, index) for p in plans]


def feature_matrix(evidence: Sequence[Evidence]) -> np.ndarray:
    """Rows of :data:`FEATURES`, in that order, for fitting and scoring."""
    return np.array([[e.features[name] for name in FEATURES] for e in evidence], dtype=float).reshape(
        -1, len(FEATURES)
    )


@dataclass(frozen=True)
class Combiner:
    """The fitted logistic regression: standardised features -> P(faithful)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    meta: dict[str, Any]

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Combiner:
        names = tuple(data["features"])
        if names != FEATURES:
            raise ValueError(
                f"{MODEL_PATH}: the model's features {list(names)} differ from the metric's "
                f"{list(FEATURES)}; refit it with `ragate calibrate --fit`"
            )
        return cls(
            names,
            np.array(data["mean"], dtype=float),
            np.array(data["scale"], dtype=float),
            np.array(data["coefficients"], dtype=float),
            float(data["intercept"]),
            {k: v for k, v in data.items() if k not in ("mean", "scale", "coefficients", "intercept")},
        )


@cache
def combiner(path: Path = MODEL_PATH) -> Combiner:
    """The shipped combiner (read once per process)."""
    return Combiner.from_dict(json.loads(path.read_text(encoding="utf-8")))


def fit_combiner(x: np.ndarray, y: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    """Fit the logistic regression on feature rows ``x`` and labels ``y`` (1 = faithful).

    Balanced class weights; L2 strength chosen among :data:`REGULARISATION` by 5-fold
    cross-validated log-loss on these rows. Returns the JSON-able
    model (features, standardisation, coefficients, intercept and ``meta``).
    """
    from sklearn.linear_model import LogisticRegressionCV

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegressionCV(
        Cs=list(REGULARISATION),
        cv=5,
        # The value is read as a probability against a threshold: choose C for calibrated
        # probabilities (log-loss), not only for ranking.
        scoring="neg_log_loss",
        class_weight="balanced",
        max_iter=1000,
        l1_ratios=(0.0,),  # plain L2
        use_legacy_attributes=False,
    )
    model.fit((x - mean) / scale, y)
    return {
        "features": list(FEATURES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coefficients": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
        "C": float(np.ravel(model.C_)[0]),
        **meta,
    }


class Faithfulness:
    """Claims of the answer (and of its question, for short and yes/no answers) supported
    by the retrieved contexts: P(faithful) from a fitted combination of signals (higher is
    better)."""

    name = "faithfulness"
    version = "3.1.2"
    direction = "higher_is_better"
    default_threshold = 0.5

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {"question": case.question, "answer": case.answer, "contexts": list(case.contexts)}

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        evidence = analyse(cases)
        model = combiner()
        found = [e for e in evidence if e is not None]
        probs = iter(model.probability(feature_matrix(found)) if found else [])
        # Keyed by object: a batch may hold the same case id twice (repeated sampling).
        values = {id(case): (e, float(next(probs))) for case, e in zip(cases, evidence) if e is not None}

        def one(case: MetricCase) -> tuple[float, str, dict[str, Any]]:
            if id(case) not in values:
                if case.blocked:
                    return 1.0, f"blocked by a guardrail ({case.rail or 'rail'}): makes no claim", {}
                if tx.abstains_any(case.answer):
                    return 1.0, "declines to answer: makes no claim", {}
                if not case.contexts:
                    return 0.0, "no retrieved context supports any claim", {}
                return 1.0, "no content words to check", {}
            e, value = values[id(case)]
            if not case.contexts:
                return 0.0, "no retrieved context supports any claim", {"features": e.features}
            problems = "; ".join(e.problems) if e.problems else "no contradiction found"
            reason = (
                f"P(faithful) {value:.2f}: {problems}; weakest claim {e.weakest_claim[:120]!r}, "
                f"best support {e.best_unit[:120]!r} (word share {e.features['lexical_share']:.2f})"
            )
            return value, reason, {"features": {k: round(v, 4) for k, v in e.features.items()}}

        return score_each(self, cases, one)


@register("faithfulness")
def faithfulness() -> Faithfulness:
    return Faithfulness()
