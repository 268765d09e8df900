"""Undo the obfuscations that hide an attack from pattern and embedding detectors.

An injection that a filter would catch in plain English is often sent encoded, spelled
out letter by letter, written in leetspeak, salted with zero-width characters or typed
with Cyrillic look-alike letters. :func:`readings` returns the text as the detectors
should see it: one canonical form (every lossless clean-up applied at once) plus, when
the text carries them, decoded payloads (base64, hex) and re-ordered readings (reversed,
ROT13) that look more like English than the text itself.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass

# Characters that render as nothing: zero-width spaces and joiners, bidi marks, word
# joiners, the byte-order mark and the soft hyphen.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")

# Look-alike letters that NFKC keeps distinct (Cyrillic and Greek mostly): the common
# homoglyphs of the Latin alphabet, after the Unicode confusables list.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
        "ɡ": "g", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ց": "g", "ո": "n", "ս": "u",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
        "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D", "Ү": "Y", "Һ": "H",
        "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "χ": "x",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
        "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ı": "i", "ꓲ": "I", "ꓳ": "O",
    }
)  # fmt: skip

# Leetspeak digits and symbols, read as letters only inside words that also hold letters
# ("1gn0r3" becomes "ignore"; "3 users" and "v2" stay as they are).
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_LEET_WORD = re.compile(r"(?=[\w@$!]*[A-Za-z])(?=[\w@$!]*[0-9@$])[\w@$!]{2,}")
# Letters spelled out one by one: "I G N O R E   Y O U R" (words split by 2+ spaces) and
# "p.l.e.a.s.e" / "i-g-n-o-r-e" (a separator between every letter).
_SPACED_LETTERS = re.compile(r"(?<!\S)((?:[^\W\d_] ){2,}[^\W\d_])(?!\S)")
_DOTTED_WORD = re.compile(r"(?<![\w.*_-])((?:[^\W\d_][.*_-])+[^\W\d_])[.*_-]?(?![\w*_-])")
# String fragments glued with "+": 'ign' + 'ore all ru' + 'les'.
_FRAGMENT_GLUE = re.compile(r"""(['"])\s*\+\s*(['"])""")

_BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX_TOKEN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Fa-f])")
_WORD = re.compile(r"[a-z']+")
_WORD_RUN = re.compile(r"[^\W\d_]+")
# Combining Diacritical Marks (U+0300-U+036F): the accents of Latin, Greek and Cyrillic letters.
_DIACRITIC = re.compile("[\u0300-\u036f]")
_CLAUSE = re.compile(r"[:;\n\"“”«»]+|(?<=[.!?])\s+")
# Function words: a text made of real English has many of them, gibberish almost none.
# Used only to tell whether a re-ordered reading (reversed, ROT13) is the real message.
_FUNCTION_WORDS = frozenset(
    """the a an and or but to of in on at for with from by as is are was be been it this that these
    you your yours me my we our us they their them he she his her i not no all any every what which
    who how why when where do does did can could will would should must please now then than so if
    just only also here there up out about into over after before above below new""".split()
)

# Function words of the other languages a support desk hears most (French, Spanish, German,
# Italian, Portuguese, Dutch, the Scandinavian languages, Polish, Czech, Turkish), written
# without accents as :func:`canonical` leaves them, and leaving out every word that is also
# common in English ("a", "no", "me", "was", "come", "pro"...).
_OTHER_FUNCTION_WORDS = frozenset(
    """le les une des du et est que qui pour dans sur avec pas ne je tu il ils elle nous vous mon ma mes
    ton ta tes votre vos notre nos ce cette ces comment ou quoi quel quelle quels puis peux peut suis sont
    etre avoir bonjour bonsoir salut merci oui tres aussi mais donc leur leurs au aux qu j l d c de la en un
    el los las una unos unas del y para por con yo mi mis su sus nuestro nuestra nuestros vuestro vuestra
    como donde cual cuales puedo puede pueden hola gracias esta estan muy pero tambien hay lo al se sin
    cuanto
    der die das den dem ein eine einen einem einer und ist nicht ich du wir ihr fur auf wie wo kann
    konnen mein meine meinen unser unsere unseren bitte danke hallo sie es auch aber oder wenn dass zu im
    bei von vom zum zur sind habe haben
    il lo gli di della dei delle e che per non io mio mia miei dove cosa posso puo grazie ciao sono nel
    nella alla ho quanto
    o os um do da dos das para com nao eu meu minha meus minhas onde pode obrigado obrigada ola voce sao
    em ao
    het een en van voor met niet ik mijn hoe waar wat je jij wij onze ons bedankt deze er op zijn
    och att det som jag inte hur kan min mitt mina vi ar till pa jeg ikke hvordan hvad
    jak czy nie sie jest mam moje moja dla ze si je
    bir ve bu icin nasil""".split()
)
# Letters past Latin Extended (U+024F): Cyrillic, Greek, CJK, Hangul, Arabic...
_NON_LATIN = re.compile(r"[^\W\d_\u0000-\u024f]")


@dataclass(frozen=True)
class Reading:
    """One way to read a text: ``how`` names the transformation ("canonical", "base64"...)."""

    how: str
    text: str


def _unconfuse(match: re.Match[str]) -> str:
    word = match.group(0)
    latin = word.translate(_CONFUSABLES)
    # A disguise is a word that reads as Latin once its look-alikes are mapped ("Dіsrеgаrd"
    # with Cyrillic і, е, а); a Russian or Greek word keeps its own letters.
    if latin != word and all(c.isascii() or not c.isalpha() for c in strip_accents(latin)):
        return latin
    return word


def fold(text: str) -> str:
    """Invisible characters removed, NFKC applied and look-alike letters mapped to Latin
    (inside words that read as Latin once mapped)."""
    text = _INVISIBLE.sub("", text)
    return _WORD_RUN.sub(_unconfuse, unicodedata.normalize("NFKC", text))


def strip_accents(text: str) -> str:
    """Diacritics removed ("ïgnörë" -> "ignore"); only used on a text the detectors read.

    Only the marks of the Latin, Greek and Cyrillic alphabets go: Japanese voicing marks and
    Korean syllables are recomposed as written ("パスワード" stays, it does not become "ハスワート").
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", _DIACRITIC.sub("", decomposed))


def unleet(text: str) -> str:
    """Leetspeak read as letters inside words that mix letters with digits or symbols."""
    return _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), text)


def unspace(text: str) -> str:
    """Words spelled out letter by letter joined back ("I G N O R E" -> "IGNORE")."""
    text = _SPACED_LETTERS.sub(lambda m: m.group(1).replace(" ", ""), text)
    return _DOTTED_WORD.sub(lambda m: re.sub(r"[.*_-]", "", m.group(1)), text)


def canonical(text: str) -> str:
    """Every lossless clean-up at once: what the text says once its disguise is removed."""
    text = strip_accents(fold(text))
    text = _FRAGMENT_GLUE.sub("", text)
    text = unleet(unspace(text))
    return " ".join(text.split())


def englishness(text: str) -> float:
    """The share of words that are English function words (0 for gibberish)."""
    words = _WORD.findall(text.lower())
    return sum(w in _FUNCTION_WORDS for w in words) / len(words) if words else 0.0


def reads_as_english(text: str) -> bool:
    """Whether ``text`` is English: mostly Latin letters, and no fewer English function words
    than function words of other languages. The sentence embedder behind the detectors was
    trained on English: on other languages its similarities measure the language, not the
    meaning, so they must not decide a verdict there.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters or len(_NON_LATIN.findall(text)) > 0.3 * len(letters):
        return False
    words = re.findall(r"[a-z]+", strip_accents(text).lower())
    # "a" is also a preposition in Italian, Spanish and Portuguese: it tells nothing.
    english = sum(w in _FUNCTION_WORDS and w != "a" for w in words)
    other = sum(w in _OTHER_FUNCTION_WORDS for w in words)
    # No English function word at all: another language (or a fragment), not English.
    return english > 0 and english >= other


def _printable(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 and reads as text (letters, mostly printable)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(c.isprintable() or c.isspace() for c in text) < 0.95 * len(text):
        return None
    return text if sum(c.isalpha() for c in text) >= 0.5 * len(text.replace(" ", "")) else None


def decoded_payloads(text: str) -> list[Reading]:
    """Base64 and hex tokens that decode to readable text."""
    found: list[Reading] = []
    for m in _HEX_TOKEN.finditer(text):
        plain = _printable(binascii.unhexlify(m.group(0)))
        if plain:
            found.append(Reading("hex", plain))
    for m in _BASE64_TOKEN.finditer(text):
        token = m.group(0)
        if _HEX_TOKEN.fullmatch(token) or (token.isalpha() and token.islower()):
            continue  # hex digests and long plain words are not base64 payloads
        padded = token + "=" * (-len(token) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                plain = _printable(decode(padded))
            except (binascii.Error, ValueError):
                continue
            if plain:
                found.append(Reading("base64", plain))
                break
    return found


def readings(text: str) -> list[Reading]:
    """The canonical text, then every decoded or re-ordered reading that says more.

    A reversed or ROT13 reading is kept only when it looks clearly more like English than
    the text itself, so an ordinary question costs one reading.
    """
    base = canonical(text)
    out = [Reading("canonical", base)]
    for payload in decoded_payloads(fold(text)):
        out.append(Reading(payload.how, canonical(payload.text)))
    # Per clause, so that "read this backwards: <payload>" reveals its payload even though
    # the instruction around it is plain English.
    for clause in {base, *(c.strip() for c in _CLAUSE.split(base))}:
        if len(clause.split()) < 3:
            continue
        here = englishness(clause)
        for how, other in (("reversed", clause[::-1]), ("rot13", codecs.encode(clause, "rot13"))):
            if englishness(other) >= here + 0.2:
                out.append(Reading(how, other))
    unique: dict[str, Reading] = {}
    for reading in out:
        unique.setdefault(reading.text, reading)
    return list(unique.values())
