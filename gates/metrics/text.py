"""Small text tools shared by the offline metrics: sentences, claims, tokens, numbers."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9$])|\n+")
# Clause boundaries inside one sentence: a claim per clause lets a faithful answer that
# joins two facts find each fact in its own context sentence.
_CLAUSE = re.compile(
    r";\s+|\s+[—–]\s+|,\s+(?:and|but|while|whereas|although|though|so|which|plus)\s+|\s+(?:but|whereas)\s+"
)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'’-]*|\d+[A-Za-z][A-Za-z0-9]*|\$?\d[\d,]*(?:\.\d+)?%?")
# A number, but not the digit of a name such as "S3" or "MP4".
_NUMBER = re.compile(r"(?<![A-Za-z])\d[\d,]*(?:\.\d+)?")

STOPWORDS = frozenset(
    """
    a an the and or but if then so of to in on at by for from with about as into onto over under is
    are was were be been being am do does did done has have had having this that these those it its
    it's they them their there here we our you your yours i me my he she his her him which who whom
    whose what when where why how all any both each few more most other some such only own same than
    too very can will just should would could may might must shall also per via up down out off
    again further once one's s t don yes please thanks thank let lets get gets got make makes made
    use uses used using
    """.split()
)
# Only words that flip a statement outright: "without" or "unable" are as often a
# paraphrase ("signed out without activity" = "after inactivity") as a contradiction.
NEGATORS = frozenset(
    """
    not no never none nor neither cannot can't won't don't doesn't didn't isn't aren't wasn't
    weren't shouldn't couldn't wouldn't hasn't haven't hadn't n't
    """.split()
)
# Pairs whose swap inverts a statement as surely as a "not" does.
_ANTONYMS = [
    tuple(pair.split("/"))
    for pair in """
    before/after include/exclude included/excluded enable/disable enabled/disabled allow/block
    allowed/blocked increase/decrease more/less minimum/maximum upgrade/downgrade free/paid
    public/private automatic/manual automatically/manually required/optional always/never
    above/below first/last earliest/latest start/end add/remove added/removed open/closed
    accept/reject lower/higher shorter/longer daily/weekly weekly/monthly monthly/annual
    monthly/yearly read/write encrypted/unencrypted supported/unsupported available/unavailable
    refundable/non-refundable inside/outside within/outside earlier/later up/down stop/keep
    stop/continue start/stop pause/continue lose/keep delete/keep deleted/kept succeed/fail
    visible/hidden unlimited/limited immediately/later synchronous/asynchronous
    """.split()
]
ANTONYMS: dict[str, frozenset[str]] = {}
for _a, _b in _ANTONYMS:
    ANTONYMS[_a] = ANTONYMS.get(_a, frozenset()) | {_b}
    ANTONYMS[_b] = ANTONYMS.get(_b, frozenset()) | {_a}

_NUMBER_WORDS = dict(
    pair.split("=")
    for pair in """
    zero=0 two=2 three=3 four=4 five=5 six=6 seven=7 eight=8 nine=9 ten=10 eleven=11 twelve=12
    fifteen=15 twenty=20 thirty=30 forty=40 fifty=50 sixty=60 ninety=90 hundred=100 thousand=1000
    twice=2 half=0.5 dozen=12 thirteen=13 fourteen=14 sixteen=16 seventeen=17 eighteen=18
    nineteen=19 seventy=70 eighty=80 million=1000000
    """.split()
)
# Phrases whose "no" does not deny anything ("no later than", "no more than").
_NOT_A_NEGATION = re.compile(
    r"no (?:later|earlier|more|less|fewer|longer|sooner) than\b|^\s*no\b[,.!:]", re.I
)
_ABSTAIN = re.compile(
    r"\b(i (do not|don't|dont) know|i'm not sure|i am not sure|"
    r"i (do not|don't|dont) have (any |the )?(information|details|data|specifics|documentation)|"
    r"(do|does|did) ?(not|n't) (seem to )?(cover|mention|say|include|specify|contain|list|state)|"
    r"(no|any) information (about|on)|not (covered|mentioned|specified|documented)|"
    r"(can(no|')t|could(n't| not)|unable to|wasn't able to) (find|tell|confirm|say|answer|locate|see)|"
    r"not something i can (confirm|answer|say)|not able to (answer|find|confirm)|isn't (covered|mentioned)|"
    r"there is no (mention|information)|outside (of )?(the|my) (documentation|knowledge))",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    """Split prose into sentences (Markdown headings and list items are their own)."""
    parts = []
    for piece in _SENTENCE_END.split(text):
        piece = re.sub(r"^\s*(?:#+|[-*•]|\d+[.)])\s+", "", piece).strip()
        if piece:
            parts.append(piece)
    return parts


def claims(answer: str) -> list[str]:
    """The answer's factual statements: sentence clauses with at least one content word."""
    out = []
    for sentence in sentences(answer):
        for clause in _CLAUSE.split(sentence):
            for part in _split_and(clause):
                if content_tokens(part):
                    out.append(part.strip())
    return out


def _split_and(clause: str) -> list[str]:
    """Split "X costs $9 and includes phone support" into its two statements, so an
    addition joined by a bare "and" is checked on its own. Both sides must say something
    (two content words each); "view and comment" stays whole."""
    parts = re.split(r"\s+and\s+(?=(?:also |then |it |they |you |we )?[a-z]+s?\b)", clause)
    if len(parts) < 2 or any(len(content_tokens(p)) < 2 for p in parts):
        return [clause]
    return parts


def words(text: str) -> list[str]:
    return [t.lower().replace("’", "'") for t in _TOKEN.findall(text)]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match "refunds" with "refunded"."""
    if _NUMBER.fullmatch(word):
        return word
    for suffix in (
        "ational",
        "ations",
        "ation",
        "ingly",
        "ments",
        "ment",
        "ness",
        "ings",
        "ing",
        "ies",
        "ied",
        "ers",
        "est",
        "ed",
        "es",
        "ly",
        "er",
        "s",
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def numbers(text: str) -> set[str]:
    """Numbers written as digits or words, normalised ("1,000" -> "1000", "19.00" -> "19")."""
    found = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        found.add(value)
    for word in words(text):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return found


def content_tokens(text: str) -> list[str]:
    """Stemmed content words (stop words and negators left out), numbers kept."""
    out = []
    for word in words(text):
        word = re.sub(r"'s$", "", word).strip("'-")
        if not word or word in STOPWORDS or word in NEGATORS or word in _NUMBER_WORDS:
            continue
        out.append(stem(word.replace("$", "").rstrip("%")))
    return out


_WORDLIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


def capitalised(text: str) -> set[str]:
    """Names: words with a capital inside a sentence (plans, products, places, days),
    and anywhere when they mix case or carry digits ("PostgreSQL", "S3")."""
    out = set()
    for sentence in sentences(text):
        for i, token in enumerate(sentence.split()):
            word = token.strip(".,;:!?\"'()[]*`")
            if not _WORDLIKE.fullmatch(word) or word.lower() in STOPWORDS:
                continue  # URLs, paths, e-mail addresses: not names
            mixed = any(c.isupper() for c in word[1:]) or (
                any(c.isdigit() for c in word) and word[:1].isalpha()
            )
            if (i > 0 and word[:1].isupper()) or mixed:
                out.add(stem(re.sub(r"'s$", "", word.lower().replace("’", "'")).strip("'")))
    return out


def negated(text: str) -> bool:
    """Whether the statement is negated. A leading "No," answers a yes/no question and
    is not part of the statement; double negation is rare enough to ignore."""
    lowered = _NOT_A_NEGATION.sub(" ", text.lower().replace("’", "'"))
    return any(w in NEGATORS or w.endswith("n't") for w in re.findall(r"[a-z']+", lowered))


def abstains(answer: str) -> bool:
    """Whether the answer declines to answer ("I don't know", "the docs do not cover it")."""
    return bool(_ABSTAIN.search(answer))


_WORD_VECTORS: dict[str, Any] = {}


def word_similarity(words: list[str], candidates: list[str]) -> list[float]:
    """For each word, its best MiniLM cosine similarity to any candidate word.

    Word vectors are memoised for the process: the vocabulary of a gate run is small.
    """
    from rag.embeddings import default_embeddings

    if not candidates:
        return [0.0] * len(words)
    todo = [w for w in dict.fromkeys(words + candidates) if w not in _WORD_VECTORS]
    if todo:
        for word, vector in zip(todo, default_embeddings().encode(todo)):
            _WORD_VECTORS[word] = vector
    matrix = np.stack([_WORD_VECTORS[c] for c in candidates])
    return [float((matrix @ _WORD_VECTORS[w]).max()) for w in words]
