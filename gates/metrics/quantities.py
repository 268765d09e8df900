"""Dates, weekdays, money and physical units in answer text, normalised for comparison.

:func:`calendar` finds dates and weekday spans and returns each as a canonical token, so an
answer and its reference can be compared value for value whatever the language or format:

- ISO dates (``2025-03-05``, ``2025/03/05``); numeric dates with a year (``05/03/2025``,
  ``5.3.2025``): dotted dates are day first (the European convention); with slashes or
  dashes the order is read only when it is unambiguous (one part above 12, or both equal),
  otherwise the token keeps both readings and matches either;
- CJK dates (``2025年3月5日``, ``3月5日``, ``三月五日``, Korean ``3월 5일``);
- month names in English, German, French, Spanish, Italian, Portuguese and Dutch, either
  order and with or without a year: "3 May", "May 3rd, 2025", "3. Mai", "1er mai",
  "3 de mayo de 2025"; a month with a year alone ("May 2025") keeps the day unknown;
- weekdays and weekday ranges in the same languages ("Monday to Friday", "weekdays",
  "lundi au vendredi", "weekends") as the set of days they name.

:func:`money` reads amounts with their currency ("€12", "12 euros", "USD 19", "4,99 €",
"¥500", "30元"), so "$15" and "15 €" are different amounts. :data:`EXTRA_UNITS` adds
percent, length, mass, volume and temperature units to the metric's unit table
(temperature in kelvin, so "100 °C" equals "212 °F").

Why not dateparser (on the registry, 1.5.0)? Tried on sentences like ours: its
``search_dates`` took 0.14-6 s per sentence, read the English modal "may" and the German
article "Die" as dates, filled a missing year or day from today's date (so "3 May" could
not be told from "3 May 2026") and resolved ``03/05/2025`` silently to one reading. This
module only reads the formats above, says when an order is ambiguous, and is pure regex.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# --- month and weekday names ---------------------------------------------------------------

_MONTH_NAMES: dict[int, str] = {
    1: "january jan januar jänner janvier janv enero ene gennaio janeiro januari 一月",
    2: "february feb februar février fevrier févr fevr febrero febbraio fevereiro februari",
    3: "march mar märz maerz mars marzo março maart",
    4: "april apr avril abril aprile",
    5: "may mai mayo maggio maio mei",
    6: "june jun juni juin junio giugno junho",
    7: "july jul juli juillet juil julio luglio julho",
    8: "august aug août aout agosto augustus",
    9: "september sep sept septembre septiembre settembre setembro",
    10: "october oct oktober octobre octubre ottobre outubro okt",
    11: "november nov novembre noviembre novembro",
    12: "december dec dezember décembre decembre déc diciembre dicembre dezembro",
}
MONTHS: dict[str, int] = {w: m for m, words in _MONTH_NAMES.items() for w in words.split() if w.isalpha()}
# Month words that are ordinary words too ("may", "mar", "march"): a month only beside a number.
_AMBIGUOUS_MONTHS = frozenset({"may", "mar", "march", "jun", "sept", "dec", "mai"})

_WEEKDAY_NAMES: dict[int, str] = {
    1: "monday mon montag lundi lunes lunedì lunedi segunda maandag",
    2: "tuesday tue tues dienstag mardi martes martedì martedi terça terca dinsdag",
    3: "wednesday wed mittwoch mercredi miércoles miercoles mercoledì mercoledi quarta woensdag",
    4: "thursday thu thur thurs donnerstag jeudi jueves giovedì giovedi quinta donderdag",
    5: "friday fri freitag vendredi viernes venerdì venerdi sexta vrijdag",
    6: "saturday sat samstag sonnabend samedi sábado sabado zaterdag",
    7: "sunday sun sonntag dimanche domingo domenica zondag",
}
WEEKDAYS: dict[str, int] = {w: d for d, words in _WEEKDAY_NAMES.items() for w in words.split()}
# Short forms that are ordinary words: a weekday only inside a range ("Mon-Fri").
_SHORT_WEEKDAYS = frozenset(w for w in WEEKDAYS if len(w) <= 4) | {"quarta", "quinta", "sexta", "segunda"}
_WORKWEEK = re.compile(
    r"\b(?:weekdays?|workdays?|working days|business days|werktags?|wochentags?|an werktagen|"
    r"en semaine|jours ouvrés|jours ouvrables|entre semana|días laborables|dias laborables|"
    r"días hábiles|giorni feriali|dias úteis|werkdagen)\b|工作日|平日",
    re.IGNORECASE,
)
_WEEKEND = re.compile(
    r"\b(?:weekends?|week-ends?|am wochenende|wochenenden?|fin(?:es)? de semana|fine settimana|"
    r"fim de semana)\b|周末|週末",
    re.IGNORECASE,
)
_CJK_WEEKDAY = re.compile(r"(?:星期|礼拜|周|週)([一二三四五六日天])")
_CJK_WEEKDAY_VALUE = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7}

CALENDAR_WORDS = frozenset(MONTHS) | frozenset(WEEKDAYS)
"""Month and weekday names (folded): the caller should not also read them as names."""

# --- patterns ------------------------------------------------------------------------------

_CJK_NUM = "[一二三四五六七八九十两〇零]+"
_CJK_VALUES = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7}
_CJK_VALUES |= {"八": 8, "九": 9}


def _cjk_number(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    total, current = 0, 0
    for char in raw:
        if char == "十":
            total += (current or 1) * 10
            current = 0
        elif char in _CJK_VALUES:
            current = _CJK_VALUES[char]
        else:
            return None
    return total + current


_MONTH_WORD = "|".join(sorted((re.escape(w) for w in MONTHS), key=len, reverse=True))
_DAY = r"(?P<{name}>[0-3]?\d)(?:st|nd|rd|th|er|e|º|°|\.)?"
_YEAR = r"(?P<{name}>(?:1[6-9]|2\d)\d\d)"
_ISO = re.compile(r"(?<![\d.])(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?![\d])")
_NUMERIC = re.compile(
    r"(?<![\d.,/-])(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|(?<!\.)\d{2})(?![\d]|[./-]\d)"
)
_CJK_DATE = re.compile(
    rf"(?:(?P<y>\d{{4}})\s*年\s*)?(?P<m>\d{{1,2}}|{_CJK_NUM})\s*月\s*(?:(?P<d>\d{{1,2}}|{_CJK_NUM})\s*[日号號])?"
    r"|(?:(?P<ky>\d{4})\s*년\s*)?(?P<km>\d{1,2})\s*월(?:\s*(?P<kd>\d{1,2})\s*일)?"
)
_SPACE = r"[\s\u00a0]"
# "3 May", "3. Mai", "1er mai", "3 de mayo (de 2025)", "3rd of May, 2025"
_DAY_MONTH = re.compile(
    rf"(?<![\w.,]){_DAY.format(name='d')}{_SPACE}*(?:of{_SPACE}+|de{_SPACE}+)?(?P<mon>{_MONTH_WORD})\.?"
    rf"(?:,?{_SPACE}*(?:de{_SPACE}+|del{_SPACE}+)?{_YEAR.format(name='y')})?(?![\w])",
    re.IGNORECASE,
)
# "May 3", "May 3rd, 2025", "March 5 2025"
_MONTH_DAY = re.compile(
    rf"(?<![\w])(?P<mon>{_MONTH_WORD})\.?{_SPACE}+{_DAY.format(name='d')}(?![\d:])"
    rf"(?:,?{_SPACE}*{_YEAR.format(name='y')})?(?![\w])",
    re.IGNORECASE,
)
# "May 2025", "mayo de 2025", "im März 2025"
_MONTH_YEAR = re.compile(
    rf"(?<![\w])(?P<mon>{_MONTH_WORD})\.?,?{_SPACE}+(?:de{_SPACE}+|del{_SPACE}+)?{_YEAR.format(name='y')}(?![\w])",
    re.IGNORECASE,
)
_MONTH_ALONE = re.compile(rf"(?<![\w])(?P<mon>{_MONTH_WORD})(?![\w])", re.IGNORECASE)
_WEEKDAY_WORD = "|".join(sorted((re.escape(w) for w in WEEKDAYS), key=len, reverse=True))
_RANGE_JOIN = r"\s*(?:-|–|—|to|through|thru|till|until|bis|au|à|a|al|hasta|t/m|tot)\s*"
_WEEKDAY_RANGE = re.compile(
    rf"(?<![\w])(?:from\s+|von\s+|du\s+|de\s+)?(?P<a>{_WEEKDAY_WORD})s?\.?{_RANGE_JOIN}(?P<b>{_WEEKDAY_WORD})s?\.?(?![\w])",
    re.IGNORECASE,
)
_WEEKDAY_ALONE = re.compile(rf"(?<![\w])(?P<a>{_WEEKDAY_WORD})s?(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    """One date or weekday span: its canonical ``token`` and where it is in the text."""

    token: str
    start: int
    end: int


def _date_token(readings: list[tuple[int | None, int, int | None]]) -> str | None:
    """``date:Y-M-D`` (``?`` for an unknown part); several readings joined by ``|``."""
    good = []
    for year, month, day in readings:
        if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
            continue
        good.append(f"{year if year is not None else '?'}-{month}-{day if day is not None else '?'}")
    return "date:" + "|".join(sorted(set(good))) if good else None


def _year(raw: str | None) -> int | None:
    if not raw:
        return None
    value = int(raw)
    return value + 2000 if len(raw) == 2 else value


def _days_token(days: set[int]) -> str:
    return "days:" + "".join(str(d) for d in sorted(days))


def calendar(text: str) -> list[Mention]:
    """Dates and weekday spans in ``text``, in order, non-overlapping (the longest form
    wins: "3 May 2025" is one date, not a date and a year)."""
    text = unicodedata.normalize("NFKC", text)
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(token: str | None, start: int, end: int) -> None:
        if token and free(start, end):
            found.append(Mention(token, start, end))
            taken.append((start, end))

    for m in _ISO.finditer(text):
        add(_date_token([(int(m["y"]), int(m["m"]), int(m["d"]))]), m.start(), m.end())
    for m in _NUMERIC.finditer(text):
        a, b, year = int(m["a"]), int(m["b"]), _year(m["y"])
        if m["sep"] == ".":
            readings = [(year, b, a)]  # dotted dates are day first
        elif a > 12 or a == b:
            readings = [(year, b, a)]
        elif b > 12:
            readings = [(year, a, b)]
        else:
            readings = [(year, b, a), (year, a, b)]  # 03/05/2025: either; keep both
        add(_date_token(readings), m.start(), m.end())
    for m in _CJK_DATE.finditer(text):
        if m["m"] is not None:
            month, day, year = _cjk_number(m["m"]), m["d"] and _cjk_number(m["d"]), _year(m["y"])
        else:
            month, day, year = int(m["km"]), m["kd"] and int(m["kd"]), _year(m["ky"])
        if month is None:
            continue
        if day is None and year is None and not re.match(r"\d", m.group(0)):
            continue  # "一月" alone is as often "one month" as "January"
        add(_date_token([(year, month, day or None)]), m.start(), m.end())
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        for m in pattern.finditer(text):
            month = MONTHS[m["mon"].lower()]
            add(_date_token([(_year(m["y"]), month, int(m["d"]))]), m.start(), m.end())
    for m in _MONTH_YEAR.finditer(text):
        add(_date_token([(int(m["y"]), MONTHS[m["mon"].lower()], None)]), m.start(), m.end())
    for m in _MONTH_ALONE.finditer(text):
        word = m["mon"]
        if word.lower() in _AMBIGUOUS_MONTHS or len(word) < 5:
            continue  # "may", "Mar.": too often not a month without a number beside it
        add(_date_token([(None, MONTHS[word.lower()], None)]), m.start(), m.end())
    for m in _WEEKDAY_RANGE.finditer(text):
        a, b = WEEKDAYS[m["a"].lower()], WEEKDAYS[m["b"].lower()]
        days = set(range(a, b + 1)) if a <= b else set(range(a, 8)) | set(range(1, b + 1))
        add(_days_token(days), m.start(), m.end())
    for m in _WORKWEEK.finditer(text):
        add(_days_token({1, 2, 3, 4, 5}), m.start(), m.end())
    for m in _WEEKEND.finditer(text):
        add(_days_token({6, 7}), m.start(), m.end())
    for m in _CJK_WEEKDAY.finditer(text):
        add(_days_token({_CJK_WEEKDAY_VALUE[m.group(1)]}), m.start(), m.end())
    for m in _WEEKDAY_ALONE.finditer(text):
        word = m["a"].lower()
        if word in _SHORT_WEEKDAYS:
            continue  # "Mon", "sun", "sexta": ordinary words too; short forms only in a range
        add(_days_token({WEEKDAYS[word]}), m.start(), m.end())
    return _joined_days(sorted(found, key=lambda x: x.start), text)


# Between two day names of one list: "Saturdays and Sundays", "Mon, Wed & Fri", "samedi et dimanche".
_DAY_LIST_JOIN = re.compile(r"\s*(?:,\s*(?:and\s+|und\s+|et\s+|y\s+|e\s+)?|and|&|und|et|y|e|en)\s*", re.I)


def _joined_days(found: list[Mention], text: str) -> list[Mention]:
    """Day spans listed together ("Saturdays and Sundays") as one set of days, as
    "weekends" is: a list names the days it lists, not each alone."""
    out: list[Mention] = []
    for mention in found:
        last = out[-1] if out else None
        if (
            last is not None
            and last.token.startswith("days:")
            and mention.token.startswith("days:")
            and _DAY_LIST_JOIN.fullmatch(text[last.end : mention.start])
        ):
            days = {int(d) for d in last.token[5:] + mention.token[5:]}
            out[-1] = Mention(_days_token(days), last.start, mention.end)
        else:
            out.append(mention)
    return out


def dates_agree(a: str, b: str) -> bool:
    """Whether two ``date:``/``days:`` tokens can name the same thing: some reading of each
    agrees on every part both state (a date without a year matches one with it)."""
    if a == b:
        return True
    if not (a.startswith("date:") and b.startswith("date:")):
        return False
    for x in a[5:].split("|"):
        for y in b[5:].split("|"):
            if all(p == q or "?" in (p, q) for p, q in zip(x.split("-"), y.split("-"))):
                return True
    return False


# --- money ---------------------------------------------------------------------------------

_CURRENCY_WORDS: dict[str, str] = {}
for _code, _words in (
    ("EUR", "€ eur euro euros"),
    ("USD", "$ us$ usd dollar dollars dólares dolares"),
    ("GBP", "£ gbp pound pounds sterling"),
    ("JPY", "円 jpy yen"),
    ("CNY", "元 块 rmb cny yuan 人民币"),
    ("USD", "美元 美金"),
    ("EUR", "欧元 歐元"),
    ("GBP", "英镑 英鎊"),
    ("JPY", "日元 日圆"),
    ("CHF", "chf"),
    ("INR", "₹ inr rupees rupee"),
    ("KRW", "₩ krw"),
):
    for _w in _words.split():
        _CURRENCY_WORDS[_w] = _code
# ¥ is both yen and yuan: read it as its own currency so it matches itself.
_CURRENCY_WORDS["¥"] = "JPY/CNY"
CURRENCY_WORDS = frozenset(_CURRENCY_WORDS)
"""Currency signs, codes and words (folded): compared with their amount, not as names."""
_CUR_WORD = "|".join(sorted((re.escape(w) for w in _CURRENCY_WORDS), key=len, reverse=True))
_AMOUNT = r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d{1,2})?(?!\d)|\d+(?:[.,]\d{1,2})?(?!\d)"
# Latin letters and digits around a number make it part of a word; CJK text has no spaces.
_MONEY_BEFORE = re.compile(rf"(?<![A-Za-z\d])(?P<c>{_CUR_WORD})\s?(?P<n>{_AMOUNT})", re.IGNORECASE)
_MONEY_AFTER = re.compile(
    rf"(?<![A-Za-z\d.,])(?P<n>{_AMOUNT})\s?(?P<c>{_CUR_WORD})(?![A-Za-z])", re.IGNORECASE
)


def amount_value(raw: str) -> float | None:
    """ "1,200.50" / "1.200,50" / "4,99" / "12" -> a float (thousands vs decimals by form)."""
    raw = raw.replace("\u00a0", " ").replace("\u202f", " ").strip()
    if re.fullmatch(r"\d{1,3}(?:[, .]\d{3})+", raw):
        return float(re.sub(r"\D", "", raw))
    m = re.fullmatch(r"(\d{1,3}(?:[, .]\d{3})*|\d+)(?:[.,](\d{1,2}))?", raw)
    if not m:
        return None
    whole = re.sub(r"\D", "", m.group(1))
    return float(f"{whole}.{m.group(2) or 0}")


@dataclass(frozen=True)
class Amount:
    """A sum of money: ``currency`` (ISO code) and ``value``, and where it is in the text."""

    currency: str
    value: float
    start: int
    end: int


def money(text: str) -> list[Amount]:
    """Amounts with a currency sign, code or word before or after the number."""
    text = unicodedata.normalize("NFKC", text)
    out: list[Amount] = []
    for pattern in (_MONEY_BEFORE, _MONEY_AFTER):
        for m in pattern.finditer(text):
            if any(not (m.end() <= a.start or m.start() >= a.end) for a in out):
                continue
            value = amount_value(m["n"])
            if value is not None:
                out.append(Amount(_CURRENCY_WORDS[m["c"].lower()], value, m.start(), m.end()))
    return sorted(out, key=lambda a: a.start)


# --- physical units ------------------------------------------------------------------------

# unit word -> (dimension, size in the dimension's base unit); merged into the metric's table.
EXTRA_UNITS: dict[str, tuple[str, float]] = {}
for _dimension, _size, _unit_words in (
    ("percent", 1, "% percent per-cent prozent pourcent pour-cent por-ciento porciento"),
    ("length", 1e-3, "mm millimetre millimetres millimeter millimeters"),
    ("length", 1e-2, "cm centimetre centimetres centimeter centimeters"),
    ("length", 1, "metre metres meter meters mètre mètres metros"),
    ("length", 1e3, "km kilometre kilometres kilometer kilometers kilomètres kilómetros"),
    ("length", 1609.344, "mile miles"),
    ("length", 0.3048, "ft feet foot"),
    ("mass", 1e-3, "gram grams gramm gramme grammes gramos"),
    ("mass", 1, "kg kilogram kilograms kilogramm kilos kilo"),
    ("mass", 0.45359237, "lb lbs pound-weight"),
    ("volume", 1e-3, "ml millilitre millilitres milliliter milliliters"),
    ("volume", 1, "litre litres liter liters liters"),
):
    for _w in _unit_words.split():
        EXTRA_UNITS[_w] = (_dimension, float(_size))
EXTRA_UNITS["per cent"] = ("percent", 1.0)  # two words: "per" or "cent" alone is no unit

_TEMPERATURE = re.compile(
    r"(?<![\w.,])(?P<n>-?\d+(?:[.,]\d+)?)\s*(?:°|º|degrees?|grad|degrés?|grados?)?\s*"
    r"(?P<u>°\s?C|°\s?F|celsius|fahrenheit|kelvin)(?![A-Za-z])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Temperature:
    kelvin: float
    start: int
    end: int


def temperatures(text: str) -> list[Temperature]:
    """Temperatures in kelvin (rounded to 0.1): "100 °C" = "212 degrees Fahrenheit"."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for m in _TEMPERATURE.finditer(text):
        value = float(m["n"].replace(",", "."))
        unit = m["u"].replace(" ", "").lower()
        if unit in ("°c", "celsius"):
            kelvin = value + 273.15
        elif unit in ("°f", "fahrenheit"):
            kelvin = (value - 32) * 5 / 9 + 273.15
        else:
            kelvin = value
        out.append(Temperature(round(kelvin, 1), m.start(), m.end()))
    return out


# --- quantities: a number with its unit and its bound ----------------------------------------

# Speeds and data rates (base units: km/h and Mbit/s); merged into the unit tables too.
for _dimension, _size, _unit_words in (
    ("speed", 1, "km/h kmh kph"),
    ("speed", 1.609344, "mph"),
    ("speed", 1.852, "knot knots kn kt kts"),
    ("rate", 1, "mbps mbit/s"),
    ("rate", 1e3, "gbps gbit/s"),
    ("rate", 1e-3, "kbps kbit/s"),
):
    for _w in _unit_words.split():
        EXTRA_UNITS[_w] = (_dimension, float(_size))

# unit word -> (dimension, size in the dimension's base unit), for :func:`quantities`.
UNITS: dict[str, tuple[str, float]] = {}
for _dimension, _size, _unit_words in (
    ("time", 1, "second seconds sec secs sekunde sekunden seconde secondes segundo segundos"),
    ("time", 60, "minute minutes min mins minuten minuto minutos"),
    ("time", 3600, "hour hours hr hrs h stunde stunden heure heures hora horas"),
    ("time", 86400, "day days tag tage tagen jour jours día días dia dias"),
    ("time", 604800, "week weeks woche wochen semaine semaines semana semanas"),
    ("time", 2629800, "month months monat monate monaten mois mes meses"),
    ("time", 31557600, "year years jahr jahre jahren année années año años"),
    ("bytes", 1e3, "kb kilobyte kilobytes"),
    ("bytes", 1e6, "mb megabyte megabytes"),
    ("bytes", 1e9, "gb gigabyte gigabytes"),
    ("bytes", 1e12, "tb terabyte terabytes"),
    ("mass", 1e-6, "mg milligram milligrams"),
    ("mass", 1e-3, "g"),
):
    for _w in _unit_words.split():
        UNITS[_w] = (_dimension, float(_size))
UNITS.update(EXTRA_UNITS)
_UNIT_WORD = "|".join(sorted((re.escape(w) for w in UNITS), key=len, reverse=True))
# A number, then its unit (one qualifier word may come between: "5 business days"); a
# number glued to letters or a version ("S3", "2.1.3") is no quantity.
_MEASURE = re.compile(
    rf"(?<![A-Za-z\d.,])(?<![A-Za-z]-)(?P<n>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d.,]\d)"
    rf"(?:\s?-?\s?(?:(?P<q>[a-z]+)\s+)?(?P<u>{_UNIT_WORD})(?![A-Za-z\d])|s\b)?",
    re.IGNORECASE,
)
# Bounds: the words that put a number below or above a limit, or a time before or after.
_BOUND_WORDS = {
    "max": "under below beneath less-than fewer-than lower-than smaller-than shorter-than younger-than "
    "at-most up-to no-more-than not-more-than maximum max within no-later-than",
    "min": "over above more-than greater-than higher-than longer-than older-than at-least exceeds "
    "exceed exceeding exceeded minimum min no-less-than not-less-than no-earlier-than",
}
_BOUND_BEFORE = re.compile(
    r"(?:^|(?<=[^\w-]))(?P<w>"
    + "|".join(
        sorted(
            (w.replace("-", r"\s+") for ws in _BOUND_WORDS.values() for w in ws.split()),
            key=len,
            reverse=True,
        )
    )
    + r")[\s-]*(?:[$€£¥]\s?)?$",
    re.IGNORECASE,
)
_BOUND_OF = {
    re.sub(r"\s+", " ", w.replace("-", " ")): k for k, ws in _BOUND_WORDS.items() for w in ws.split()
}
_BOUND_AFTER = re.compile(
    r"^\s*(?:(?P<max>or (?:less|fewer|under|below|younger|lower)|and (?:under|below|younger))|"
    r"(?P<min>or (?:more|over|above|older|higher)|and (?:over|above|older|up)|\+)|"
    r"(?P<before>before|earlier than|prior to|ahead of)|(?P<after>after|later than|from now))\b",
    re.IGNORECASE,
)
BOUND_WORDS = frozenset(w for ws in _BOUND_WORDS.values() for w in ws.replace("-", " ").split()) | frozenset(
    "before after earlier later prior ahead".split()
)
"""The words that set a quantity's bound (the metric compares them, not as content)."""
_NEGATED_BOUND = re.compile(r"(?:\b(?:not|never|cannot)|n't)\s+\w*\s*$", re.IGNORECASE)
_NOT_QUALIFIERS = frozenset(
    "a an the per in of each every and or to for at by on are is was were not no".split()
)
OPPOSITE_BOUNDS = {"max": "min", "min": "max", "before": "after", "after": "before"}


_BOUND_AXES = (frozenset({"min", "max"}), frozenset({"before", "after"}))


def opposed(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two sets of bounds disagree on an axis both state: size ("over" against
    "under") or time ("up to 24 hours before" against "up to 24 hours after"). A bound
    only one side states is no disagreement ("within 24 hours" agrees with "up to 24 hours
    before")."""
    return any((a & axis) and (b & axis) and not (a & b & axis) for axis in _BOUND_AXES)


@dataclass(frozen=True)
class Quantity:
    """A number with its ``unit`` (``"money:EUR"``, ``"time:3600"`` for hours; ``""`` for a
    bare number), its ``base`` value (the number in the dimension's base unit: 2 hours is
    7200 seconds; the number itself when bare or money) and its ``bounds`` ("max" for
    "under 12"/"up to 12"/"12 or less", "min" for "over"/"at least"/"exceeds"/"and over",
    "before"/"after" for "6 hours before"); ``start``/``end`` locate it in the text."""

    value: float
    unit: str
    base: float
    bounds: frozenset[str]
    start: int
    end: int

    @property
    def dimension(self) -> str:
        return self.unit.split(":", 1)[0]


def hyphen_forms(text: str) -> str:
    """``text`` with numbers freed from the words hyphens glue them to, so they read as
    quantities: "under-12s" -> "under 12", "over-65s" -> "over 65", "4-year-olds" -> "4
    year-olds", "a 24-hour window" -> "a 24 hour window". Identifiers ("AES-256", "S3",
    "X-42") and decades ("the 1990s") keep their form."""
    text = re.sub(
        r"(?i)\b(under|over|below|above)-(\d{1,3})s?\b",
        lambda m: f"{m.group(1)} {m.group(2)}",
        text,
    )
    text = re.sub(r"(?<![\w.,-])(\d{1,3})s\b", r"\1", text)  # "12s" (plural of a number)
    return re.sub(r"(?<![\w.,-])(\d+(?:\.\d+)?)-(?=[a-z])", r"\1 ", text)


def quantities(text: str) -> list[Quantity]:
    """The quantities of ``text`` in order: amounts of money (:func:`money`), measures
    with a unit of :data:`UNITS`, and bare numbers (unit ``""``), each with its bounds.
    Clock times and dates are not quantities (their digits are left out)."""
    text = hyphen_forms(unicodedata.normalize("NFKC", text))
    found: list[Quantity] = []
    taken: list[tuple[int, int]] = []
    for mention in calendar(text):
        taken.append((mention.start, mention.end))
    for m in re.finditer(r"\d{1,2}[:h]\d{2}\b|\d{1,2}\s?[ap]\.?m\b", text, re.IGNORECASE):
        taken.append((m.start(), m.end()))

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def bounds(start: int, end: int) -> frozenset[str]:
        out = set()
        window = text[max(0, start - 24) : start]
        before = _BOUND_BEFORE.search(window)
        if before:
            bound = _BOUND_OF[re.sub(r"\s+", " ", before["w"].lower())]
            # "do not take more than 3" bounds from above, as "no more than 3" does.
            lead = text[max(0, start - 24 - 30) : max(0, start - 24) + before.start()]
            if bound in ("min", "max") and _NEGATED_BOUND.search(lead):
                bound = OPPOSITE_BOUNDS[bound]
            out.add(bound)
        after = _BOUND_AFTER.match(text[end : end + 24])
        if after:
            out.add(next(k for k, v in after.groupdict().items() if v))
        return frozenset(out)

    for amount in money(text):
        if free(amount.start, amount.end):
            unit = f"money:{amount.currency}"
            found.append(
                Quantity(
                    amount.value,
                    unit,
                    amount.value,
                    bounds(amount.start, amount.end),
                    amount.start,
                    amount.end,
                )
            )
            taken.append((amount.start, amount.end))
    for m in _MEASURE.finditer(text):
        if not free(m.start("n"), m.end("n")):
            continue
        value = float(m["n"].replace(",", ""))
        unit, base, end = "", value, m.end()
        word, qualifier = (m["u"] or "").lower(), (m["q"] or "").lower()
        if qualifier in _NOT_QUALIFIERS:
            word, qualifier = "", ""  # "3 a day" is three per day, not three days
        elif qualifier in UNITS:
            word, qualifier = qualifier, ""  # "100 MB per hour": the unit is the first word
        if word and not (qualifier and word in ("g", "h", "min", "kn", "kt", "mes", "mb")):
            dimension, size = UNITS[word]
            unit, base = f"{dimension}:{size:g}", value * size
        else:
            end = m.end("n")  # a bare number ("5 big h": short units only right after it)
        found.append(Quantity(value, unit, base, bounds(m.start(), end), m.start(), end))
    return sorted(found, key=lambda q: q.start)
