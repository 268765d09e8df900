"""Answer correctness: does the answer say what the case's reference answer says?

Offline and reference-based: it reads the question, the answer and the case's
``ground_truth`` (not the contexts: an answer can be faithful to a wrong chunk and still
be wrong). The value is the probability that the answer is correct, in [0, 1].

Decided by rule (the definition of the case, nothing to fit):

- an *unanswerable* case (``answerable`` false; with ``answerable`` unknown, a ground
  truth that itself declines) is correct exactly when the answer declines (1.0, else 0.0);
- an answerable case whose answer declines is wrong (0.0).

Otherwise a logistic regression (``data/correctness_model.json``, fitted on the train
split of the labeled data by :func:`fit` with scikit-learn) combines signals that compare
answer and reference:

- numbers and quantities: the reference's numbers the answer states ("two weeks" counts
  as "14 days"), and numbers the answer puts in their place; numbers the question itself
  states are left out of both. Dates are read whole in common formats and languages
  (ISO, "3 May", "May 3", "3. Mai", "3 de mayo", "5月3日"; d/m vs m/d only when
  unambiguous), so a swapped day and month is a different value; weekdays and ranges
  ("Monday to Friday" = "weekdays") are day sets; clock times keep am/pm; an amount keeps
  its currency ("$15" is not "15 €") and a measure its unit ("23 pounds" is not "23 kg",
  "367 days" is not "366 days"; "a month" is "30 days" only across units), see
  :mod:`gates.metrics.quantities`; a number the answer states with the opposite bound
  ("below 45 knots" for "exceeds 45 knots", "after" for "before", "under 16" for "16 and
  over") counts as missed and replaced; clock times said in English words ("twenty to
  seven in the morning", "half past eight", "a quarter to midnight") are clock times;
- names: the reference's names the answer states, and other names the answer brings in
  (a capital inside a sentence is read as a name only in languages that do not
  capitalise common nouns; mixed case or digits, "PostgreSQL", "S3", count everywhere);
- polarity: an explicit yes/no that contradicts the reference's, or a negation one side
  has and the other lacks (negators of English, German, French, Spanish, Chinese) -- unless
  a word that holds a negation on one side only reconciles them ("you don't pay" /
  "entry is free"; "not free" / "free" still differ);
- meaning: MiniLM similarity of answer and reference, alone and each read with the
  question before it (so "600" and "Yes" are read as the claims they make);
- wording: the share of the reference's content words (beyond the question's) that the
  answer takes up, and the share of the answer's that the reference or question has.

A case without a ground truth (answerable or unknown) is unscored with a reason naming
the missing field ``ground_truth``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from gates.metrics import quantities as qty
from gates.metrics.base import MetricCase, Score, register, score_each
from gates.metrics.text import _CANT_HELP, _DOCS, _NOT_COVERED, _THE_QUESTION

MODEL_FILE = Path(__file__).parent / "data" / "correctness_model.json"

FEATURES = (
    "similarity",  # cosine(answer, reference)
    "claim_similarity",  # cosine(question + answer, question + reference)
    "number_missed",  # share of the reference's numbers the answer does not state (0 if none)
    "number_replaced",  # 1 when a reference number is missed and the answer states another
    "number_extra",  # share of the answer's numbers the reference and question lack
    "name_missed",  # share of the reference's names the answer does not state
    "name_extra",  # share of the answer's names the reference and question lack
    "yes_no_conflict",  # explicit yes against explicit no
    "yes_no_agree",  # the same explicit yes or no
    "negation_mismatch",  # one side negated (an explicit no counts), the other not
    "statement_negation_mismatch",  # the same, after a leading yes/no ("No, you can ...")
    "term_recall",  # reference content words (beyond the question's) the answer has
    "term_precision",  # answer content words (beyond the question's) the reference has
)

# --- language ----------------------------------------------------------------------------

_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": """a an the and or but if of to in on at by for from with about as into is are was were be
            been am do does did has have had this that these those it its they them their there here we
            our you your i me my he she his her which who what when where why how all any each some
            such only can will just should would could may might must also per up out yes no not
            than then so very too please""",
        "de": """der die das den dem des ein eine einen einem einer eines und oder aber wenn von zu im in
            an am auf aus bei mit nach für über unter ist sind war waren sein bin bist hat haben hatte
            wird werden wurde kann können muss müssen soll sollen es sie er ich du wir ihr ihnen ihr
            ihre ihren sich man dass als auch nur noch schon so wie was wer wo wann warum ja nein
            nicht kein keine zum zur bis""",
        "fr": """le la les l un une des du de d et ou mais si à au aux en dans sur sous par pour avec
            sans est sont était été être a ai as avez ont avoir il elle ils elles on nous vous je tu
            ce cette ces cet qui que qu quoi quand où comment se s sa son ses leur leurs votre vos
            notre nos y ne n pas plus oui non peut pouvez jusqu""",
        "es": """el la los las lo un una unos unas y o pero si de del a al en por para con sin es son
            era fue ser está están estar ha han he has haber se su sus que qué quien cuando donde
            cómo como usted ustedes yo tú él ella nosotros vosotros ellos ellas le les me te nos
            este esta estos estas ese esa no sí hasta puede puedo""",
        "it": """il lo la i gli le un uno una e o ma se di da a in con su per tra fra è sono era
            essere ha hanno che chi come dove quando non sì del della dei delle al alla può""",
        "pt": """o a os as um uma e ou mas se de do da dos das em no na nos nas por para com sem é
            são era ser foi tem têm que quem como onde quando não sim você pode""",
        "nl": """de het een en of maar als van te in op aan bij met voor uit is zijn was waren ben
            heeft hebben wordt worden kan kunnen moet dat die dit deze er hij zij ze wij jij u ik
            niet geen ja nee wel ook""",
    }.items()
}
_ALL_STOPWORDS = frozenset().union(*_STOPWORDS.values())
# Languages whose capital letters inside a sentence mark names (German capitalises every noun).
_NAME_CASE_LANGUAGES = frozenset({"en", "fr", "es", "it", "pt", "nl"})
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?", re.UNICODE)


def language(text: str) -> str:
    """A rough language guess: ``"cjk"`` for Chinese/Japanese/Korean script, else the
    language whose function words the text uses most (en, de, fr, es, it, pt, nl), else
    ``"unknown"``. Only used to decide whether capitals mark names."""
    words = [w.lower() for w in _LATIN_WORD.findall(_CJK.sub(" ", text))]
    cjk = len(_CJK.findall(text))
    if cjk and cjk >= len(words):  # a CJK character carries about a word
        return "cjk"
    if not words:
        return "unknown"
    counts = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    if counts[best] == 0:
        return "unknown"
    if best != "de" and any(c in "äöüß" for c in text.lower()) and counts["de"] >= counts[best] - 1:
        return "de"
    return best


# --- words -------------------------------------------------------------------------------

_SUFFIXES = sorted(
    """s es ed ing ly er ers est ment ments ness ation ations ions ion ies ied en ern em e n
    ungen ung heit keit lich isch te ten tes ter ement ée ées és és ait aient ent ón ones ción
    ciones mente ado ada ados adas ido ida idos idas""".split(),
    key=len,
    reverse=True,
)
_CJK_FUNCTION = frozenset("的了是在我你他她它们吗呢吧啊和与及或就都也还很这那有个一为以把被对从")


def _fold(word: str) -> str:
    word = unicodedata.normalize("NFKC", word).casefold().replace("’", "'")
    return re.sub(r"'s$", "", word).strip("'-")


@cache
def stem(word: str) -> str:
    """A light multilingual suffix stripper ("refunds"/"refunded", "Tagen"/"Tage")."""
    if any(c.isdigit() for c in word):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _language_in(text: str, context: str) -> str:
    """The text's language; a text of a few words is read with its context (the question)."""
    if context and len(_LATIN_WORD.findall(text)) < 4 and not _CJK.search(text):
        return language(f"{context} {text}")
    return language(text)


def _is_number_word(word: str) -> bool:
    return all(part in _NUMBER_WORDS for part in word.split("-"))


def _stopwords(lang: str) -> frozenset[str]:
    """The function words of ``lang`` (of all seven languages when it is unknown)."""
    return _STOPWORDS.get(lang, _ALL_STOPWORDS)


def content_terms(text: str, context: str = "") -> set[str]:
    """Stemmed content words (the text's language's function words and negators left
    out), plus character bigrams of CJK runs; numbers are left to :func:`quantities`.
    A text too short to tell its language is read in the language of ``context``."""
    terms: set[str] = set()
    stop = _stopwords(_language_in(text, context))
    for raw in _LATIN_WORD.findall(_CJK.sub(" ", text)):
        word = _fold(raw)
        if len(word) < 2 or word in stop or word in _NEGATORS or _is_number_word(word) or word in _UNITS:
            continue
        terms.add(stem(word))
    for run in re.findall(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+", text):
        chars = [c for c in run if c not in _CJK_FUNCTION]
        terms.update(a + b for a, b in pairwise(chars))
        if len(chars) == 1:
            terms.add(chars[0])
    return terms


def names(text: str, context: str = "") -> set[str]:
    """Names in the text, folded: capitalised words that are not function words (only in
    languages that keep capitals for names; a sentence's first word too, so "Canberra."
    is a name -- a capitalised common noun there is usually a word of the question or
    reference as well), words that mix case or carry digits anywhere ("PostgreSQL",
    "S3", "AES-256"), and Latin-script words inside CJK text. A text too short to tell
    its language is read in the language of ``context`` (the question)."""
    lang = _language_in(text, context)
    stop = _stopwords(lang)
    out: set[str] = set()
    stripped = _CJK.sub(" ", text) if lang == "cjk" else text
    for sentence in re.split(r"(?<=[.!?。！？:;])\s+|\n+", stripped):
        tokens = sentence.split()
        for token in tokens:
            word = token.strip(".,;:!?\"'()[]{}*`«»“”„")
            folded = _fold(word)
            if not word[:1].isalpha() or folded in stop or folded in _UNITS or _is_number_word(folded):
                continue
            if folded in qty.CURRENCY_WORDS:  # "USD", "EUR": compared with the amount
                continue
            if len(folded) > 3 and (folded in qty.CALENDAR_WORDS or folded.rstrip("s") in qty.CALENDAR_WORDS):
                # months and weekdays are compared as dates (:func:`quantities`), not as names
                continue
            if "@" in word or "/" in word:  # e-mail addresses, paths, URLs
                continue
            mixed = any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word)
            capital_name = lang in _NAME_CASE_LANGUAGES and word[0].isupper() and word != "I"
            if mixed or capital_name or lang == "cjk":
                out.add(stem(folded))
    return out


# --- numbers and quantities --------------------------------------------------------------

_NUMBER_WORDS = {
    **dict.fromkeys(["zero", "null", "zéro", "cero"], 0.0),
    **dict.fromkeys(["one", "eins", "uno"], 1.0),
    **dict.fromkeys(["two", "zwei", "deux", "dos", "twice"], 2.0),
    **dict.fromkeys(["three", "drei", "trois", "tres", "thrice"], 3.0),
    **dict.fromkeys(["four", "vier", "quatre", "cuatro"], 4.0),
    **dict.fromkeys(["five", "fünf", "cinq", "cinco"], 5.0),
    **dict.fromkeys(["six", "sechs", "seis"], 6.0),
    **dict.fromkeys(["seven", "sieben", "sept", "siete"], 7.0),
    **dict.fromkeys(["eight", "acht", "huit", "ocho"], 8.0),
    **dict.fromkeys(["nine", "neun", "neuf", "nueve"], 9.0),
    **dict.fromkeys(["ten", "zehn", "dix", "diez"], 10.0),
    **dict.fromkeys(["eleven", "elf", "onze", "once"], 11.0),
    **dict.fromkeys(["twelve", "zwölf", "douze", "doce", "dozen"], 12.0),
    "thirteen": 13.0,
    "fourteen": 14.0,
    **dict.fromkeys(["fifteen", "fünfzehn", "quinze", "quince"], 15.0),
    "sixteen": 16.0,
    "seventeen": 17.0,
    "eighteen": 18.0,
    "nineteen": 19.0,
    **dict.fromkeys(["twenty", "zwanzig", "vingt", "veinte"], 20.0),
    **dict.fromkeys(["thirty", "dreißig", "trente", "treinta"], 30.0),
    **dict.fromkeys(["forty", "vierzig", "quarante", "cuarenta"], 40.0),
    **dict.fromkeys(["fifty", "fünfzig", "cinquante", "cincuenta"], 50.0),
    **dict.fromkeys(["sixty", "sechzig", "soixante", "sesenta"], 60.0),
    "seventy": 70.0,
    "eighty": 80.0,
    "ninety": 90.0,
    **dict.fromkeys(["hundred", "hundert", "cent", "cien", "cientos"], 100.0),
    **dict.fromkeys(["thousand", "tausend", "mille", "mil"], 1000.0),
    "million": 1e6,
    "half": 0.5,
}
# Words that are a number only before a unit ("a week", "ein Monat"), never alone.
_ONE_BEFORE_UNIT = "an?|one|ein|eine|einen|einem|un|une|uno|una|half an?|half a"
_CJK_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
# unit word -> (dimension, size in the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {}
for _dimension, _size, _words in (
    ("time", 1, "second seconds sec secs sekunde sekunden seconde secondes segundo segundos 秒"),
    ("time", 60, "minute minutes min mins minuten minuto minutos 分钟"),
    ("time", 3600, "hour hours hr hrs h stunde stunden heure heures hora horas 小时 个小时 钟头"),
    ("time", 86400, "day days tag tage tagen jour jours día días dia dias 天"),
    ("time", 604800, "week weeks woche wochen semaine semaines semana semanas 周 星期 个星期"),
    ("time", 2629800, "month months monat monate monaten monats mois mes meses 个月"),
    ("time", 31557600, "year years jahr jahre jahren jahres ans année années año años 年"),
    ("bytes", 1e3, "kb kilobyte kilobytes"),
    ("bytes", 1e6, "mb megabyte megabytes"),
    ("bytes", 1e9, "gb gigabyte gigabytes"),
    ("bytes", 1e12, "tb terabyte terabytes"),
):
    for _word in _words.split():
        _UNITS[_word] = (_dimension, float(_size))
_UNITS.update(qty.EXTRA_UNITS)  # percent, length, mass, volume
_UNIT_PATTERN = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
# Latin letters and digits: a number or unit glued to them is part of a word ("S3", "mp4");
# CJK text has no spaces, so a CJK neighbour does not count.
_LATIN = r"A-Za-z\u00c0-\u024f"
# 1,000 / 1.000 / 1 000 (thousands) or 1.5 / 1,5 (decimals)
_NUMERAL = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)|\d+(?:[.,]\d+)*"
_WORD_NUMERAL = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
_WORD_SEQUENCE = rf"(?:{_WORD_NUMERAL})(?:(?:\s+and\s+|[\s-]+)(?:{_WORD_NUMERAL}))*"
_CJK_NUMERAL = f"[{''.join(_CJK_DIGITS)}十百千]+"
_QUANTITY = re.compile(
    rf"(?<![{_LATIN}\d.,])(?P<n>{_NUMERAL}|{_ONE_BEFORE_UNIT}|{_WORD_SEQUENCE}|{_CJK_NUMERAL})"
    rf"\s*-?\s*(?P<u>{_UNIT_PATTERN})(?![{_LATIN}])",
    re.IGNORECASE,
)
# "6:40 pm" is read as a whole before "6:40" alone (so it is 18:40).
_CLOCK = re.compile(
    r"(?<![\d.:])(?P<h12>\d{1,2})(?:[.:](?P<m12>\d{2}))?\s*(?P<ap>[ap])\.?m\b\.?|"
    r"(?<![\d.:])(?P<h>\d{1,2})[:h](?P<m>\d{2})(?![\d:])",
    re.I,
)
# Clock times in English words: "twenty to seven in the morning" (06:40), "half past
# eight" (08:30), "a quarter to midnight" (23:45), "six in the evening" (18:00), "noon".
_HOUR_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_CLOCK_WORDS = re.compile(
    rf"\b(?:(?P<min>(?:a\s+)?quarter|half|(?:twenty|ten|five)(?:[\s-]+five)?|\d{{1,2}})(?:\s+minutes?)?"
    rf"\s+(?P<rel>past|after|to|before)\s+)?"
    rf"(?P<hour>{_HOUR_WORDS}|\d{{1,2}}|noon|midday|midnight)(?P<oclock>\s+o['’]clock)?"
    rf"(?:\s+(?:(?:in|at)\s+(?:the\s+)?)?(?P<part>morning|afternoon|evening|night|tonight))?\b",
    re.IGNORECASE,
)
_DAY_PARTS = {"morning": 0, "afternoon": 12, "evening": 12, "night": 12, "tonight": 12}


def _clock_words(match: re.Match[str]) -> str | None:
    """ "HH:MM" for a clock time said in words (see :data:`_CLOCK_WORDS`), None when the
    words are no clock time (a bare "seven")."""
    hour_word = match["hour"].lower()
    if not (match["rel"] or match["oclock"] or match["part"] or hour_word in ("noon", "midday", "midnight")):
        return None
    if not (match["oclock"] or match["part"] or hour_word in ("noon", "midday", "midnight")):
        # "5 to 10 minutes", "ten to five people": a range unless a clock word or "at"
        # ("by", "until", ...) before it says it is a time
        lead = match.string[max(0, match.start() - 12) : match.start()].lower()
        digits = match["hour"].isdigit() or (match["min"] or "").isdigit()
        if digits or not re.search(r"(?:^|\b(?:at|by|until|till|from|around|about|before|after))\s*$", lead):
            return None
    named = {"noon": 12, "midday": 12, "midnight": 0}
    hour = named.get(hour_word)
    if hour is None:
        hour = int(hour_word) if hour_word.isdigit() else int(_word_value(hour_word) or 0)
        if not 1 <= hour <= 12:
            return None
        if match["part"]:
            part = match["part"].lower()
            if part == "night" and hour < 5:
                hour %= 12  # "two at night"
            else:
                hour = hour % 12 + _DAY_PARTS[part]
    minutes = 0
    if match["min"]:
        raw = re.sub(r"^a\s+", "", match["min"].lower())
        minutes = 15 if raw == "quarter" else 30 if raw == "half" else int(_word_value(raw) or raw)
        if match["rel"].lower() in ("to", "before"):
            hour, minutes = (hour - 1) % 24, 60 - minutes
    return f"{hour}:{minutes:02d}"


_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_DIGITS = re.compile(rf"(?<![{_LATIN}\d.,])(?:{_NUMERAL})")
_WORDS_ALONE = re.compile(rf"(?<![{_LATIN}])(?:{_WORD_SEQUENCE})(?![{_LATIN}])", re.IGNORECASE)
# A measure matches another of its dimension within this relative tolerance ("a month" = "30 days").
MEASURE_TOLERANCE = 0.03


def _word_value(raw: str) -> float | None:
    """ "two hundred and six" -> 206, "twenty-four" -> 24, "deux cent" -> 200."""
    total, current = 0.0, 0.0
    for word in re.split(r"[\s-]+(?:and\s+)?", raw.strip().lower()):
        if word not in _NUMBER_WORDS:
            return None
        value = _NUMBER_WORDS[word]
        if value == 100.0:
            current = (current or 1.0) * 100.0
        elif value >= 1000.0:
            total += (current or 1.0) * value
            current = 0.0
        else:
            current += value
    return total + current


def _cjk_value(raw: str) -> float | None:
    total, current = 0, 0
    for char in raw:
        if char in _CJK_DIGITS:
            current = _CJK_DIGITS[char]
        elif char in "十百千":
            total += (current or 1) * {"十": 10, "百": 100, "千": 1000}[char]
            current = 0
        else:
            return None
    return float(total + current)


def _numeral_value(raw: str) -> float | None:
    raw = raw.strip().lower()
    if re.fullmatch(_ONE_BEFORE_UNIT, raw):
        return 0.5 if raw.startswith("half") else 1.0
    if re.fullmatch(_CJK_NUMERAL, raw):
        return _cjk_value(raw)
    if not raw[:1].isdigit():
        return _word_value(raw)
    if re.fullmatch(r"\d{1,3}(?:[.,\s\u00a0\u202f]\d{3})+", raw) and not re.fullmatch(r"\d\.\d{3}", raw):
        # "15,000" / "15.000" / "15 000": thousands separators, whichever the language uses
        return float(re.sub(r"\D", "", raw))
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        return None


def _fmt(value: float) -> str:
    return f"{value:.6g}"


Measure = tuple[str, float]  # (dimension, size in its base unit)


@dataclass(frozen=True)
class Quantities:
    """The numbers a text states (``"15000"``, ``"8:00"``) and, for those stated with a
    unit, their size in a base unit (so "14 days" = "two weeks", "35 days" != "35 hours")."""

    numbers: frozenset[str]
    measures: frozenset[Measure]
    # number -> the measures it is stated with
    measure_of: tuple[tuple[str, Measure], ...]
    # measures stated without a digit ("a week", "ein Monat")
    implicit: frozenset[Measure] = frozenset()
    # measure -> the size of the unit it was stated in ("366 days": a day)
    units: tuple[tuple[Measure, float], ...] = ()

    def unit(self, measure: Measure) -> float | None:
        """The size of the unit ``measure`` was stated in (None: not stated here)."""
        return next((u for m, u in self.units if m == measure), None)

    def beyond(self, question: Quantities) -> Quantities:
        """Without the digit-less measures the question states too: in "How many hours
        are in a week?" the answer's "a week" restates the question, it answers nothing."""
        dropped = {m for m in self.implicit if question.has_measure(m)}
        return replace(self, measures=self.measures - dropped, implicit=self.implicit - dropped)

    def has_measure(self, measure: Measure, unit: float | None = None) -> bool:
        """Whether this text states ``measure``: the same size, or -- converted from another
        unit (``unit``: the size of the unit it was stated in; None = unknown) -- within
        :data:`MEASURE_TOLERANCE` ("a month" = "30 days"). In the same unit the number must
        be the same ("367 days" is not "366 days")."""
        dim, size = measure
        for d, s in self.measures:
            if d != dim:
                continue
            if math.isclose(s, size, rel_tol=1e-9):
                return True
            mine = self.unit((d, s))
            if unit is not None and mine is not None and math.isclose(unit, mine):
                continue  # the same unit: a different number is a different measure
            if abs(s - size) <= MEASURE_TOLERANCE * max(s, size):
                return True
        return False

    def states(self, number: str, measure: Measure | None, unit: float | None = None) -> bool:
        """Whether this text states ``number`` (with ``measure``, when it has one): the same
        measure in any unit, or the bare number not tied to another unit (a currency is a
        unit: "$15" does not state "15 €", nor "23 pounds" "23 kg"). A date states a date
        that agrees on every part both give ("3 May" states "3 May 2025")."""
        if number.startswith(("date:", "days:")):
            if any(qty.dates_agree(number, n) for n in self.numbers):
                return True
            # "July 1969" against "1969": the year alone, where this text gives no date
            years = {y for y in re.findall(r"(?<=[:|])(\d{4})(?=-)", number)}
            return bool(years & self.numbers) and not any(n.startswith("date:") for n in self.numbers)
        if re.fullmatch(r"\d{4}", number) and any(
            n.startswith("date:") and f":{number}-" in n.replace("|", ":") for n in self.numbers
        ):
            return True  # the year of a date stated here
        if measure is not None and self.has_measure(measure, unit):
            return True
        if number not in self.numbers:
            return False
        if measure is None:
            return True
        return not any(n == number for n, _ in self.measure_of)

    def items(self) -> list[tuple[str, Measure | None]]:
        """Each stated number with its measure (one per measure), and measures stated
        without digits ("a week") on their own."""
        out: list[tuple[str, Measure | None]] = []
        with_measure = {n for n, _ in self.measure_of}
        out += [(n, m) for n, m in self.measure_of]
        out += [(n, None) for n in sorted(self.numbers - with_measure)]
        covered = {m for _, m in self.measure_of}
        out += [(f"{d}:{_fmt(s)}", (d, s)) for d, s in sorted(self.measures - covered)]
        return out


def _blank(text: str, start: int, end: int) -> str:
    """The text with one span replaced by spaces (positions of the rest unchanged)."""
    return text[:start] + " " * (end - start) + text[end:]


def quantities(text: str) -> Quantities:
    """Numbers (digits, number words of five languages, Chinese numerals), clock times,
    dates and weekdays (:func:`gates.metrics.quantities.calendar`: "5月3日" = "3 May" =
    "3. Mai", never "3月5日"), amounts of money with their currency and measures with
    their unit, normalised: "1,000" = "1.000" = "1 000" = "1000", "9 am" = "09:00",
    "100 °C" = "212 °F"."""
    text = unicodedata.normalize("NFKC", text)
    numbers: set[str] = set()
    measures: set[Measure] = set()
    implicit: set[Measure] = set()
    measure_of: set[tuple[str, Measure]] = set()
    units: set[tuple[Measure, float]] = set()
    for mention in qty.calendar(text):
        numbers.add(mention.token)
        text = _blank(text, mention.start, mention.end)
    for amount in qty.money(text):
        measure = (f"money:{amount.currency}", amount.value)
        numbers.add(_fmt(amount.value))
        measures.add(measure)
        measure_of.add((_fmt(amount.value), measure))
        units.add((measure, 1.0))
        text = _blank(text, amount.start, amount.end)
    for temperature in qty.temperatures(text):
        measure = ("temperature", temperature.kelvin)
        measures.add(measure)
        units.add((measure, 1.0))
        raw = re.match(r"-?\d+(?:[.,]\d+)?", text[temperature.start : temperature.end].strip())
        if raw:
            value = _numeral_value(raw.group(0))
            if value is not None:
                numbers.add(_fmt(value))
                measure_of.add((_fmt(value), measure))
        text = _blank(text, temperature.start, temperature.end)
    for match in _DATE.finditer(text):
        numbers.add(match.group(0))
    text = _DATE.sub(" ", text)
    for match in _CLOCK_WORDS.finditer(text):
        said = _clock_words(match)
        if said is not None:
            numbers.add(said)
            text = _blank(text, match.start(), match.end())
    for match in _CLOCK.finditer(text):
        if match["h"] is not None:
            hour, minute = int(match["h"]), match["m"]
        else:
            hour, minute = int(match["h12"]) % 12, match["m12"] or "00"
            hour += 12 if match["ap"].lower() == "p" else 0
        numbers.add(f"{hour}:{minute}")
    text = _CLOCK.sub(" ", text)
    for match in _QUANTITY.finditer(text):
        value = _numeral_value(match.group("n"))
        unit = _UNITS.get(match.group("u").lower())
        if value is None or unit is None:
            continue
        measure = (unit[0], value * unit[1])
        measures.add(measure)
        units.add((measure, unit[1]))
        if re.fullmatch(_ONE_BEFORE_UNIT, match.group("n").strip().lower()):
            implicit.add(measure)
        else:
            numbers.add(_fmt(value))
            measure_of.add((_fmt(value), measure))
    for raw in _DIGITS.findall(text):
        value = _numeral_value(raw)
        numbers.add(_fmt(value) if value is not None else raw)  # "2.1.3": a version, as written
    for match in _WORDS_ALONE.finditer(text):
        if match.group(0).strip().lower() in ("one", "uno", "eins", "cent", "once", "half"):
            continue  # as often a pronoun or an adverb as a number
        value = _word_value(match.group(0))
        if value is not None:
            numbers.add(_fmt(value))
    return Quantities(
        frozenset(numbers),
        frozenset(measures),
        tuple(sorted(measure_of)),
        frozenset(implicit),
        tuple(sorted(units)),
    )


# --- polarity and declining --------------------------------------------------------------

_NEGATORS = frozenset(
    """not no never none nor neither cannot can't won't don't doesn't didn't isn't aren't wasn't
    weren't shouldn't couldn't wouldn't hasn't haven't hadn't n't nicht kein keine keinen keiner
    keinem keines nie niemals nein ne n' pas jamais aucun aucune non nunca ningún ninguno ninguna
    ni tampoco nessuno mai não nem nunca geen nooit""".split()
)
_CJK_NEGATION = re.compile(r"不|没|沒|无|無|未|非|别|別")
_NOT_A_NEGATION = re.compile(
    r"\bno (?:later|earlier|more|less|fewer|longer|sooner) than\b|\bnot only\b|\bnicht nur\b|"
    r"\bnon seulement\b|\bno solo\b|\bno sólo\b|\bno matter\b",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^\W*(yes|yeah|yep|sure|correct|indeed|ja|jawohl|oui|si|sí|sim|ja|是的|是|对|對|可以|能|有)(?=\W|$)",
    re.I,
)
_NO = re.compile(r"^\W*(no|nope|nein|non|não|nee|不是|不|没有|沒有|不能|不可以)(?=\W|$)", re.I)
_DECLINE = re.compile(
    rf"\b({_CANT_HELP}|i (do not|don't|dont) know|i'm not sure|i am not sure|not sure|no idea|"
    r"i (do not|don't|dont|did not|didn't) (have|find|see) (any |the |enough )?(information|details|data|"
    r"answer|mention|documentation)|"
    r"(do|does|did) ?(not|n't) (seem to )?(mention|say|specify)\b|"
    # "does not cover / include ..." only about the documentation or the question (text.py).
    rf"{_DOCS} (do|does|did) ?(not|n't) (seem to )?(cover|include|contain|list|state|provide)\b|"
    rf"(do|does|did) ?(not|n't) (seem to )?(cover|include|contain|list|state|provide) {_THE_QUESTION}|"
    r"(no|any) (information|details|mention) (about|on|of|regarding)|"
    rf"not (mentioned|specified|documented|stated|listed)|{_NOT_COVERED}|"
    r"(can(no|')t|could(n't| not)|unable to|wasn't able to|am not able to) (find|tell|confirm|say|answer|"
    r"locate|see|determine)|"
    r"there is no (mention|information)|outside (of )?(the|my) (documentation|knowledge)|"
    r"(weiß|weiss) (ich )?(es )?nicht|keine (angaben|informationen|information)|nicht (angegeben|erwähnt|"
    r"beschrieben|dokumentiert)|kann (ich )?(das |es )?nicht (sagen|beantworten|finden)|"
    r"je ne sais pas|aucune information|pas d'information|ne (précise|mentionne|dit|couvre|indique) pas|"
    r"n'(est|indique|aborde) pas (mentionné|précisé|couvert)?|"
    r"no (lo )?sé|no tengo (información|datos)|no (se )?(menciona|especifica|indica|dice|cubre)|"
    r"no hay información|non lo so|não sei)",
    re.IGNORECASE,
)
_CJK_DECLINE = re.compile(
    r"不知道|不清楚|没有(提到|提及|相关|说明|信息|资料)|沒有(提到|相關)|未(提及|说明|提到)|无法(回答|确定|找到)|文档(中)?没有"
)


def declines(text: str) -> bool:
    """Whether the answer declines to answer ("I don't know", "Das ist nicht angegeben",
    "文档没有提到")."""
    return bool(_DECLINE.search(text) or _CJK_DECLINE.search(text)) or not text.strip()


# A condition's negation ("expires after 10 days if it is not accepted") does not negate
# the statement: conditional clauses are left out, up to the next comma or full stop.
_CONDITION = re.compile(
    r"\b(?:if|unless|wenn|falls|sofern|si|sauf si|a menos que)\b[^,.;:!?]*", re.IGNORECASE
)


def negated(text: str) -> bool:
    """Whether the statement is negated (any of the languages above; conditions aside)."""
    lowered = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    lowered = _NOT_A_NEGATION.sub(" ", _CONDITION.sub(" ", lowered))
    if _CJK_NEGATION.search(lowered):
        return True
    tokens = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?|n'", lowered)
    return any(t in _NEGATORS or t.endswith("n't") for t in tokens)


# Words that carry a negation in their meaning: "entry is free" says "you don't pay",
# "without a card" says "no card". Used only to reconcile a negation one side has and the
# other lacks, never as a negation by themselves.
_IMPLICIT_NEGATIVES = frozenset(
    """free gratis costless complimentary without optional forbidden prohibited banned disallowed
    impossible unavailable unsupported unable exempt waived excluded kostenlos kostenfrei umsonst
    gebührenfrei ohne optionale verboten untersagt unmöglich gratuit gratuite gratuits gratuites
    gratuitement sans facultatif facultative interdit interdite impossible indisponible gratuito
    gratuita gratuitos gratuitas sin opcional prohibido prohibida imposible gratuitamente
    senza vietato impossibile grátis sem proibido""".split()
)
_CJK_IMPLICIT_NEGATIVES = re.compile(r"免费|免費|禁止|无需|無需|免")


def implicit_negatives(text: str) -> frozenset[str]:
    """The words of ``text`` whose meaning holds a negation ("free", "without", "kostenlos",
    "sans", "免费")."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    words = set(re.findall(r"[^\W\d_]+", lowered)) & _IMPLICIT_NEGATIVES
    return frozenset(words | set(_CJK_IMPLICIT_NEGATIVES.findall(lowered)))


def polarity_differs(answer: str, answer_negated: bool, reference: str, reference_negated: bool) -> bool:
    """Whether one side is negated and the other is not, after reconciling a negation
    said with a word that holds one: "you don't pay" agrees with "entry is free" (only the
    reference says "free"), "it is not free" agrees with "it costs €8", but "it is not
    free" still differs from "it is free" (both say "free")."""
    if answer_negated == reference_negated:
        return False
    if _said_with_an_opposite(*((answer, reference) if answer_negated else (reference, answer))):
        return False
    return implicit_negatives(answer) == implicit_negatives(reference)


# "without flash" excludes flash; "ohne Blitz", "sans flash", "sin flash", "senza flash" too.
_WITHOUT = re.compile(
    r"\b(?:without|ohne|sans|sin|senza|sem)\s+(?:(?:a|an|the|any|un|une|le|la|les|el|los|las|einen?|den|die|das)\s+)?"
    r"([^\W\d_]{3,})",
    re.IGNORECASE,
)


def excluded_but_affirmed(answer: str, reference: str) -> bool:
    """Whether one side excludes a thing with "without" ("allowed, but without flash") that
    the other, not negated and saying no "without", affirms ("flash photography is allowed")."""
    for one, other in ((reference, answer), (answer, reference)):
        if _WITHOUT.search(other) or negated(other):
            continue
        other_words = {w.lower() for w in re.findall(r"[^\W\d_]+", other)}
        if any(m.group(1).lower() in other_words for m in _WITHOUT.finditer(one)):
            return True
    return False


def _said_with_an_opposite(negated_text: str, other: str) -> bool:
    """Whether the negated text denies a word whose listed opposite the other text uses
    instead (:func:`gates.metrics.text.opposites_of`): "it doesn't open on Sundays" says
    what "it is closed on Sundays" says. Both texts must not share the word or the opposite
    ("not open" / "open, but closed at noon" still differ)."""
    from gates.metrics import text as tx

    lang = tx.language(negated_text)
    if lang != tx.language(other) or not tx.antonym_forms(lang):
        return False
    mine, theirs = tx.word_keys(negated_text, lang), tx.word_keys(other, lang)
    for word in tx.word_forms(negated_text):
        opposite = {tx.key(a, lang) for a in tx.opposites_of(word, lang)}
        if opposite & theirs and tx.key(word, lang) not in theirs and not opposite & mine:
            return True
    return False


def yes_no(text: str) -> bool | None:
    """True/False for a text that opens with an explicit yes/no, else None."""
    if _NO.search(text):
        return False
    if _YES.search(text):
        return True
    return None


# --- the metric --------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A fitted logistic regression over :data:`FEATURES` and the per-case threshold
    chosen on its train split."""

    coefficients: tuple[float, ...]
    intercept: float
    threshold: float
    meta: dict[str, Any]

    def probability(self, features: Sequence[float]) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coefficients, features))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@cache
def load_model(path: Path = MODEL_FILE) -> Model:
    """The shipped model; a file that does not fit :data:`FEATURES` is an error."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if list(data.get("features", [])) != list(FEATURES):
        raise ValueError(f"{path}: features {data.get('features')} do not match {list(FEATURES)}; refit it")
    return Model(
        tuple(float(c) for c in data["coefficients"]),
        float(data["intercept"]),
        float(data["threshold"]),
        {k: v for k, v in data.items() if k not in ("coefficients", "intercept", "threshold", "features")},
    )


def _declines(case: MetricCase) -> bool:
    """The answer declines: it says so, or a rail blocked the question (no answer given)."""
    return bool(case.blocked) or declines(case.answer)


def _known_answerable(case: MetricCase) -> bool | None:
    if case.answerable is not None:
        return case.answerable
    if case.ground_truth and case.ground_truth.strip():
        return not declines(case.ground_truth)
    return None


def _share_missing(wanted: Iterable[str], have: set[str]) -> float:
    wanted = set(wanted)
    return len(wanted - have) / len(wanted) if wanted else 0.0


def features(
    question: str, answer: str, reference: str, similarity: float, claim_similarity: float
) -> dict[str, float]:
    """The signals of one answerable case (see the module docstring), by name."""
    q = quantities(question)
    a, r = quantities(answer).beyond(q), quantities(reference).beyond(q)
    wanted = [(n, m) for n, m in r.items() if n not in q.numbers]
    stated = [(n, m) for n, m in a.items() if n not in q.numbers]
    missed = [n for n, m in wanted if not a.states(n, m, r.unit(m) if m else None)]
    extra = [n for n, m in stated if not r.states(n, m, a.unit(m) if m else None)]
    flipped = _opposite_bounds(answer, reference)
    missed += [f"bound:{v:g}" for v in flipped]
    extra += [f"bound:{v:g}" for v in flipped]
    if flipped and not wanted:
        wanted = [(f"bound:{v:g}", None) for v in flipped]
    number_missed = min(1.0, len(missed) / len(wanted)) if wanted else 0.0

    q_names, a_names, r_names = names(question), names(answer, question), names(reference, question)
    a_terms, r_terms = content_terms(answer, question), content_terms(reference, question)
    q_terms = content_terms(question)
    ref_names = r_names - q_names - q_terms
    ans_names = a_names - q_names - q_terms
    name_missed = _share_missing(ref_names, a_names | a_terms)
    name_extra = _share_missing(ans_names, r_names | r_terms) if ans_names else 0.0

    ref_terms = r_terms - q_terms
    ans_terms = a_terms - q_terms
    term_recall = 1.0 - _share_missing(ref_terms, a_terms) if ref_terms else 1.0
    term_precision = 1.0 - _share_missing(ans_terms, r_terms | q_terms) if ans_terms else 1.0

    a_yes, r_yes = yes_no(answer), yes_no(reference)
    a_body, r_body = _YES.sub("", _NO.sub("", answer)), _YES.sub("", _NO.sub("", reference))
    yes_no_conflict = float(a_yes is not None and r_yes is not None and a_yes != r_yes)
    a_negated = negated(answer) if a_yes is None else not a_yes or negated(_NO.sub("", answer))
    r_negated = negated(reference) if r_yes is None else not r_yes or negated(_NO.sub("", reference))
    return {
        "similarity": similarity,
        "claim_similarity": claim_similarity,
        "number_missed": number_missed,
        "number_replaced": float(bool(missed) and bool(extra)),
        "number_extra": len(extra) / len(stated) if stated and wanted else 0.0,
        "name_missed": name_missed,
        "name_extra": name_extra,
        "yes_no_conflict": yes_no_conflict,
        "yes_no_agree": float(a_yes is not None and a_yes == r_yes),
        "negation_mismatch": float(
            polarity_differs(answer, a_negated, reference, r_negated)
            or excluded_but_affirmed(answer, reference)
        ),
        "statement_negation_mismatch": float(
            polarity_differs(a_body, negated(a_body), r_body, negated(r_body))
            or excluded_but_affirmed(a_body, r_body)
        ),
        "term_recall": term_recall,
        "term_precision": term_precision,
    }


def _opposite_bounds(answer: str, reference: str) -> list[float]:
    """The reference's numbers the answer states with the opposite bound: "below 45
    knots" for "exceeds 45 knots", "after" for "24 hours before", "under 16" for "16 and
    over" (:func:`gates.metrics.quantities.quantities`)."""
    said = qty.quantities(answer)
    out = []
    for r in qty.quantities(reference):
        if not r.bounds:
            continue
        same = [
            a
            for a in said
            if math.isclose(a.value, r.value) and (a.unit == r.unit or not (a.unit and r.unit))
        ]
        if same and all(qty.opposed(r.bounds, a.bounds) for a in same):
            out.append(r.value)
    return out


class AnswerCorrectness:
    """Whether the answer agrees with the case's ground truth (higher is better)."""

    name = "answer_correctness"
    # 1.4.1: a negation said with an opposite word agrees ("doesn't open" / "closed"); a thing
    # one side excludes with "without" and the other affirms differs ("flash allowed"); "I
    # can't help with that question" declines; days listed together are one set ("Saturdays
    # and Sundays" = "weekends").
    version = "1.4.1"
    direction = "higher_is_better"

    def __init__(self, model_path: Path = MODEL_FILE) -> None:
        self.model_path = model_path

    @property
    def default_threshold(self) -> float:
        return load_model(self.model_path).threshold

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {
            "question": case.question,
            "answer": case.answer,
            "ground_truth": case.ground_truth,
            "answerable": _known_answerable(case),
        }

    def feature_rows(self, cases: Sequence[MetricCase]) -> list[dict[str, float] | None]:
        """The signals of each case the model judges (None for one decided by rule)."""
        from ragate_core.embeddings import default_encoder

        todo = [
            c for c in cases if _known_answerable(c) and (c.ground_truth or "").strip() and not _declines(c)
        ]
        texts: list[str] = []
        for c in todo:
            gt = c.ground_truth or ""
            texts += [c.answer, gt, f"{c.question} {c.answer}", f"{c.question} {gt}"]
        unique = list(dict.fromkeys(texts))
        vectors = default_encoder().encode(unique) if unique else None
        index = {t: i for i, t in enumerate(unique)}

        def sim(x: str, y: str) -> float:
            return max(0.0, float(vectors[index[x]] @ vectors[index[y]]))

        ids = {id(c) for c in todo}
        rows: list[dict[str, float] | None] = []
        for c in cases:
            if id(c) not in ids:
                rows.append(None)
                continue
            gt = c.ground_truth or ""
            rows.append(
                features(
                    c.question,
                    c.answer,
                    gt,
                    sim(c.answer, gt),
                    sim(f"{c.question} {c.answer}", f"{c.question} {gt}"),
                )
            )
        return rows

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        model = load_model(self.model_path)
        rows = dict(zip(map(id, cases), self.feature_rows(cases)))

        def one(case: MetricCase) -> tuple[float, str, dict[str, Any]]:
            answerable = _known_answerable(case)
            blocked = " (blocked by a rail)" if case.blocked else ""
            if answerable is False:
                if _declines(case):
                    return 1.0, f"declines{blocked}, and the case is unanswerable", {"declines": True}
                return 0.0, "answers, but the case is unanswerable: it should decline", {"declines": False}
            if _declines(case):
                return 0.0, f"declines{blocked}, but the case is answerable", {"declines": True}
            signals = rows[id(case)]
            assert signals is not None
            value = model.probability([signals[f] for f in FEATURES])
            return value, _explain(signals), {k: round(v, 4) for k, v in signals.items()}

        out: list[Score] = []
        for case in cases:
            if _known_answerable(case) is not False and not (case.ground_truth or "").strip():
                out.append(
                    Score(
                        self.name,
                        self.version,
                        None,
                        "missing field 'ground_truth': an answerable case needs a reference answer",
                    )
                )
            else:
                out.extend(score_each(self, [case], one))
        return out


def _explain(s: dict[str, float]) -> str:
    notes = [f"similarity to the reference {s['similarity']:.2f}"]
    if s["number_replaced"]:
        notes.append("states a different number than the reference")
    elif s["number_missed"]:
        notes.append(f"misses {s['number_missed']:.0%} of the reference's numbers")
    if s["name_missed"]:
        notes.append(f"misses {s['name_missed']:.0%} of the reference's names")
    if s["name_extra"]:
        notes.append("names something the reference does not")
    if s["yes_no_conflict"]:
        notes.append("yes/no opposite to the reference")
    elif s["negation_mismatch"]:
        notes.append("negation differs from the reference")
    notes.append(f"share of the reference's words beyond the question in the answer {s['term_recall']:.2f}")
    return "; ".join(notes)


@register("answer_correctness")
def answer_correctness() -> AnswerCorrectness:
    return AnswerCorrectness()


# --- fitting -----------------------------------------------------------------------------


def fit(
    cases: Sequence[MetricCase],
    labels: Sequence[int],
    groups: Sequence[str] | None = None,
    c: float = 1.0,
) -> dict[str, Any]:
    """Fit the combiner on labeled cases (1 = correct) with scikit-learn's
    LogisticRegression (balanced class weights); only the cases the model judges
    (answerable, answered) are used. The per-case threshold is the one whose worst
    balanced accuracy over the ``groups`` (the labeled sources, e.g. written pairs and
    real chain outputs) is highest on these same train cases, so no one source decides it;
    thresholds within one case of each class of the smallest group of the best count as
    ties, and the tie nearest 0.5 is chosen.
    Returns the JSON-able model (write it to :data:`MODEL_FILE`)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    metric = AnswerCorrectness()
    rows = metric.feature_rows(cases)
    groups = list(groups) if groups is not None else ["all"] * len(cases)
    kept = [(r, y, g) for r, y, g in zip(rows, labels, groups) if r is not None]
    x = np.array([[r[f] for f in FEATURES] for r, _, _ in kept], dtype=float)
    y = np.array([int(v) for _, v, _ in kept])
    g = np.array([grp for _, _, grp in kept])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
    p = model.predict_proba(x)[:, 1]

    def balanced_accuracy(t: float, mask: np.ndarray) -> float:
        pos, neg = p[mask & (y == 1)], p[mask & (y == 0)]
        tpr = float((pos >= t).mean()) if len(pos) else 1.0
        tnr = float((neg < t).mean()) if len(neg) else 1.0
        return (tpr + tnr) / 2

    grid = sorted(np.round(np.arange(0.05, 0.96, 0.01), 2), key=lambda t: abs(t - 0.5))
    worst = {float(t): min(balanced_accuracy(float(t), g == grp) for grp in sorted(set(g))) for t in grid}
    # Moving one case of each class of the smallest group changes that group's balanced
    # accuracy by up to 1/n: thresholds closer than that to the best are ties, and the one
    # nearest 0.5 (the balanced model's own boundary) wins, so a few train cases do not
    # drag the threshold to an extreme.
    smallest = min(int(((g == grp) & (y == cls)).sum()) for grp in set(g) for cls in (0, 1))
    tolerance = 1.0 / max(smallest, 1) + 1e-9
    best_score = max(worst.values())
    best = next(t for t in map(float, grid) if worst[t] >= best_score - tolerance)
    return {
        "features": list(FEATURES),
        "coefficients": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
        "threshold": best,
        "fitted_on": {"cases": len(y), "correct": int(y.sum()), "C": c},
        "train_worst_group_balanced_accuracy": round(worst[best], 4),
    }


def labeled_cases(path: Path, label_field: str = "label") -> list[tuple[MetricCase, int, str]]:
    """``(case, label, split)`` for each row of a labeled JSONL file (1 = correct)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if label_field not in row:
            raise ValueError(f"{path}:{n}: no {label_field!r} field")
        source_ids = tuple(row.get("source_ids") or ())
        answerable = row.get("answerable")
        if answerable is None and "source_ids" in row:
            answerable = bool(source_ids)
        case = MetricCase(
            id=str(row["id"]),
            question=row["question"],
            answer=row.get("answer") or "",
            ground_truth=row.get("ground_truth"),
            answerable=answerable,
            source_ids=source_ids,
            blocked=row.get("blocked"),
        )
        out.append((case, int(bool(row[label_field])), row.get("split", "train")))
    return out


# The labeled files the shipped model is fitted on (train split) and measured on
# (validation split), under datasets/calibration/, with the field holding the label.
TRAINING_FILES = (("correctness.jsonl", "label"), ("real_outputs.jsonl", "correct"))


def refit(root: Path, write: bool = False) -> dict[str, Any]:
    """Fit on the train split of :data:`TRAINING_FILES` (those present); report AUROC
    on train and validation; with ``write``, save the model to :data:`MODEL_FILE`."""
    from sklearn.metrics import roc_auc_score

    data = []
    for name, label in TRAINING_FILES:
        path = root / "datasets" / "calibration" / name
        if path.is_file():
            data += [(c, y, s, name) for c, y, s in labeled_cases(path, label)]
    train = [(c, y, f) for c, y, s, f in data if s == "train"]
    model = fit([c for c, _, _ in train], [y for _, y, _ in train], [f for _, _, f in train])
    model["fitted_on"]["files"] = sorted({f for *_, f in data})
    if write:
        MODEL_FILE.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
        load_model.cache_clear()
    metric = AnswerCorrectness()
    metric_model = Model(tuple(model["coefficients"]), model["intercept"], model["threshold"], {})
    report: dict[str, Any] = {"model": model, "auroc": {}}
    for name in sorted({f for *_, f in data}):
        for split in ("train", "validation"):
            rows = [(c, y) for c, y, s, f in data if f == name and s == split]
            if not rows:
                continue
            scores = _score_with(metric, metric_model, [c for c, _ in rows])
            kept = [(v, y) for v, (_, y) in zip(scores, rows) if v is not None]
            labels = [y for _, y in kept]
            auroc = roc_auc_score(labels, [v for v, _ in kept]) if len(set(labels)) == 2 else float("nan")
            report["auroc"][f"{name}:{split}"] = {"n": len(kept), "auroc": round(float(auroc), 4)}
    return report


def _score_with(metric: AnswerCorrectness, model: Model, cases: Sequence[MetricCase]) -> list[float | None]:
    rows = metric.feature_rows(cases)
    out: list[float | None] = []
    for case, row in zip(cases, rows):
        if row is not None:
            out.append(model.probability([row[f] for f in FEATURES]))
            continue
        answerable = _known_answerable(case)
        if answerable is None or (answerable and not (case.ground_truth or "").strip()):
            out.append(None)
        elif answerable is False:
            out.append(float(_declines(case)))
        else:
            out.append(0.0)  # answerable and declines
    return out


if __name__ == "__main__":  # python -m gates.metrics.correctness [--write]
    import sys

    from ragate_core.project import find_project_root

    print(json.dumps(refit(find_project_root(), write="--write" in sys.argv[1:]), indent=2))
