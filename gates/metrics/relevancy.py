"""Answer relevancy: does the answer address the question that was asked?

Offline. An answer that declines ("I don't know") is right exactly when the case is
unanswerable: known from the case (``answerable``, or a ground truth that itself
declines), else estimated from how well the retrieved contexts match the question.
Any other answer is scored by how closely it answers this question (MiniLM
question-answer similarity, trained on question/answer pairs), and marked down when it
only restates the question or talks around it (pleasantries, "our team is working on
it") without saying anything the question asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from gates.metrics import text as tx
from gates.metrics.base import MetricCase, Score, register, score_each

# value = logistic(STEEPNESS * (blend - MIDPOINT)), blend of the three signals below.
MIDPOINT = 0.45
STEEPNESS = 10.0
SIMILARITY_WEIGHT, FOCUS_WEIGHT, FORM_WEIGHT = 0.45, 0.35, 0.20
# A question word counts as addressed by an answer word this similar (MiniLM, one word each).
WORD_MATCH = 0.62
# Contexts this similar to the question are taken to hold its answer.
ANSWERABLE_SIMILARITY = 0.55

_EVASIVE = re.compile(
    r"\b(great question|good question|thanks? (you )?for (reaching out|asking|your (question|patience))|"
    r"we('re| are) (always|constantly|continuously) (working|improving|looking)|always working|we value|"
    r"happy to help|glad to help|stay tuned|in the future|our (team|engineers) (is|are|will)|"
    r"(reach out|contact|talk|get in touch) (to|with) (our |the )?(support|team|sales|account manager)|"
    r"(it )?(really )?depends|many (factors|options)|various (factors|options)|hard to say|keep an eye|"
    r"anything else i can help|let me know if|can be (really )?frustrating|i understand how|"
    r"is an important consideration|one of our most popular)",
    re.IGNORECASE,
)
_MONEY = re.compile(r"[$€£]\s?\d|\d\s?(usd|eur|gbp|dollars|euros|cents)\b|\bfree\b", re.I)
_QUANTITY = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|"
    r"hundred|thousand|unlimited|no limit|single|a day|a week|a month|a year|an hour)\b",
    re.I,
)
_STEPS = re.compile(
    r">|\b(go to|open|click|choose|select|pick|use|run|enable|turn on|set|visit|navigate|"
    r"tap|press|contact|ask|email|call|sign in|log in|from the|under)\b",
    re.I,
)
_YES_NO = re.compile(
    r"^\s*(yes|no|yep|nope|sure|not)\b|\b(can|can't|cannot|doesn't|isn't|aren't|won't|only|"
    r"not|never|included|includes|available|supported|supports|allowed|allows|required)\b",
    re.I,
)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _expected_form(question: str) -> re.Pattern[str] | None:
    """What shape a direct answer to this question has, when the question says."""
    q = question.lower()
    if re.search(r"\bhow much\b|\b(cost|price|pricing|charge|fee)s?\b", q):
        return _MONEY
    if re.search(r"\bhow (long|many|often|big|large|soon|fast)\b|\b(limit|maximum|minimum|max|min)\b", q):
        return _QUANTITY
    if re.search(r"^\s*(how (do|can|should) (i|we|you)|where (do|can) (i|we)|what (do|should) i do)\b", q):
        return _STEPS
    if re.search(r"^\s*(can|could|does|do|is|are|will|would|should|has|have)\b", q):
        return _YES_NO
    return None


class AnswerRelevancy:
    """Whether the answer addresses the question (higher is better)."""

    name = "answer_relevancy"
    version = "1.0"
    direction = "higher_is_better"
    default_threshold = 0.5

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {
            "question": case.question,
            "answer": case.answer,
            "contexts": list(case.contexts),
            "answerable": self._known_answerable(case),
        }

    @staticmethod
    def _known_answerable(case: MetricCase) -> bool | None:
        if case.answerable is not None:
            return case.answerable
        if case.ground_truth:
            return not tx.abstains(case.ground_truth)
        return None

    @staticmethod
    def _focus(question: str, answer: str) -> tuple[float, list[str]]:
        """Share of the question's content words (names aside) that the answer takes up,
        literally or with a close word ("teammate" / "member")."""
        names = tx.capitalised(question)
        wanted = [t for t in dict.fromkeys(tx.content_tokens(question)) if t not in names and not t.isdigit()]
        if not wanted:
            return 1.0, []
        have = set(tx.content_tokens(answer))
        unmatched = [t for t in wanted if t not in have]
        if unmatched and have:
            close = tx.word_similarity(unmatched, sorted(have))
            unmatched = [t for t, best in zip(unmatched, close) if best < WORD_MATCH]
        return 1.0 - len(unmatched) / len(wanted), unmatched

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        from ragate_core.embeddings import default_embeddings

        texts: list[str] = []
        for case in cases:
            texts.append(case.question)
            texts.append(case.answer)
            texts.extend(u for c in case.contexts for u in tx.sentences(c))
        unique = list(dict.fromkeys(texts))
        vectors = default_embeddings().encode(unique) if unique else None
        index = {t: i for i, t in enumerate(unique)}

        def sim(a: str, b: str) -> float:
            return float(vectors[index[a]] @ vectors[index[b]])

        def one(case: MetricCase) -> tuple[float, str, dict[str, Any]]:
            answerable = self._known_answerable(case)
            if tx.abstains(case.answer):
                if answerable is None:
                    units = [u for c in case.contexts for u in tx.sentences(c)]
                    best = max((sim(case.question, u) for u in units), default=0.0)
                    answerable = best >= ANSWERABLE_SIMILARITY
                    how = f"estimated from context similarity {best:.2f}"
                else:
                    how = "from the case"
                if answerable:
                    return 0.0, f"declines, but the question is answerable ({how})", {"abstains": True}
                return 1.0, f"declines, and the question is unanswerable ({how})", {"abstains": True}
            similarity = sim(case.question, case.answer)
            focus, missing = self._focus(case.question, case.answer)
            form = _expected_form(case.question)
            form_ok = 0.5 if form is None else float(bool(form.search(case.answer)))
            blend = SIMILARITY_WEIGHT * similarity + FOCUS_WEIGHT * focus + FORM_WEIGHT * form_ok
            value = _logistic(STEEPNESS * (blend - MIDPOINT))
            notes = [f"question-answer similarity {similarity:.2f}, question words addressed {focus:.2f}"]
            if missing:
                notes.append("not addressed: " + ", ".join(missing[:4]))
            if form_ok == 0.0:
                notes.append("no direct answer of the kind asked")
            answer_tokens = set(tx.content_tokens(case.answer))
            new = answer_tokens - set(tx.content_tokens(case.question))
            if answer_tokens and len(new) <= 1 and form_ok < 1.0:  # "Yes, you can ..." does answer
                value *= 0.3
                notes.append("only restates the question")
            if _EVASIVE.search(case.answer) and form_ok < 1.0:
                value *= 0.4
                notes.append("talks around the question")
            return value, "; ".join(notes), {"similarity": round(similarity, 4), "focus": round(focus, 4)}

        return score_each(self, cases, one)


@register("answer_relevancy")
def answer_relevancy() -> AnswerRelevancy:
    return AnswerRelevancy()
