"""Offline detectors behind the rails: attacks in a user's message, toxicity in an answer.

Input (:class:`InputDetector`), three kinds of attack, each a rail of its own:

- ``injection``: prompt injection and jailbreaks (override the instructions, extract the
  system prompt, adopt an unrestricted persona, instructions planted in quoted text);
- ``data_request``: asking for other people's personal data or the service's secrets;
- ``toxic_input``: abuse, or a request to produce insults, threats or hate.

Every message is read through :func:`rag.guardrails.normalize.readings` (so obfuscation
does not hide it) and scored by hand-written patterns of the phrasing these attacks use
(score 1.0 on a match) and by a nearest-prototype classifier over MiniLM embeddings
against our own seed examples (``data/input_seeds.jsonl``), per sentence and as a whole.
Toxicity also asks ``alt-profanity-check``. A kind fires when its best score reaches its
threshold.

Output (:class:`OutputToxicity`): an answer is toxic when one of its sentences is, by the
same three signals against ``data/output_seeds.jsonl``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.guardrails.normalize import Reading, readings
from rag.guardrails.prototypes import Embed, PrototypeClassifier, load_seeds

DATA_DIR = Path(__file__).parent / "data"
INPUT_SEEDS = DATA_DIR / "input_seeds.jsonl"
OUTPUT_SEEDS = DATA_DIR / "output_seeds.jsonl"

# The rails of the input side, and the seed label each one reads.
INPUT_RAILS = {"injection": "injection", "data_request": "data_request", "toxic_input": "toxic"}
# Probability at or above which a rail fires. Measured on the seeds (leave-one-out) and the
# golden questions; see the guardrails benchmark and the gate profiles for the figures.
# toxic_output sits higher: on the documentation's own sentences the output prototypes
# reach 0.55 at most, and a wrongly refused answer costs more than a wrongly refused insult.
THRESHOLDS = {"injection": 0.5, "data_request": 0.5, "toxic_input": 0.5, "toxic_output": 0.55}
# A sentence shorter than this is judged only as part of its message.
MIN_PIECE_WORDS = 3


# ---------------------------------------------------------------------------------------
# Patterns: the phrasing of each attack, on the canonical (de-obfuscated) reading.
# ---------------------------------------------------------------------------------------

_OVERRIDE_VERB = (
    r"(?:ignore|ignoring|disregard|forget|bypass|override|overrule|circumvent|abandon|stop following|"
    r"do not follow|don't follow|pay no attention to)"
)
_RULE_OBJECT = (
    r"(?:instructions?|rules|guidelines|directives|polic(?:y|ies)|prompt|programming|restrictions|"
    r"constraints|guardrails|safeguards|training|system message)"
)
# Words that make "ignore ... rules" about the assistant's own rules, not a feature's.
_QUALIFIER = re.compile(
    r"(?i)\b(?:your|all|any|every|previous|prior|earlier|above|preceding|initial|original|system|safety|"
    r"content|these|those|its|you were given)\b"
)
_OVERRIDE = re.compile(rf"(?i)\b{_OVERRIDE_VERB}\b(?P<between>(?:\W+[\w'-]+){{0,4}}?)\W+{_RULE_OBJECT}\b")

_EXTRACT_VERB = (
    r"(?:reveal|show|print|display|output|repeat|recite|quote|dump|leak|share|tell me|give me|list|paste|"
    r"spell out|translate|summari[sz]e|copy|write out|disclose|expose|return|echo|what (?:are|were|is|was))"
)
_SECRET_CONFIG = (
    r"(?:system[ -]?prompt|system message|(?:hidden|secret|initial|original|internal|confidential|full|exact|"
    r"entire|complete|first|developer|pre-?)\s+(?:instructions|prompt|rules|configuration|config|guidelines|"
    r"directives|message|system prompt)|your (?:\w+ )?(?:instructions|prompt|rules|configuration|config|"
    r"guidelines|directives|programming|context window)|(?:instructions|rules) (?:you were given|"
    r"you received|above|you were told)|(?:text|words|message|everything) (?:above|before) "
    r"(?:this|my|the first))"
)
_EXTRACT = re.compile(rf"(?i)\b{_EXTRACT_VERB}\b(?:\W+[\w'-]+){{0,6}}?\W+{_SECRET_CONFIG}")

_PERSONA = re.compile(
    r"(?ix)"
    r"\b(?:enter|enable|activate|switch\ to|turn\ on|you\ are\ (?:now\ )?in|start)\s+(?:\w+\s+)?"
    r"(?:developer|dev|god|sudo|debug|maintenance|opposite|unrestricted|jailbreak|dan)\s+mode"
    r"|\b(?:developer|dev|god|sudo|debug|maintenance|opposite|unrestricted|jailbreak)\s+mode\s+(?:is\s+)?"
    r"(?:on|enabled|activated)"
    r"|\b(?:DAN|do\ anything\ now|jailbr(?:oken|eak(?:ed|ing)?))\b"
    r"|\b(?:ai|assistant|bot|model|chatbot|version\ of\ yourself|yourself|you)\b(?:\W+[\w'-]+){0,4}?\W+"
    r"(?:with|has|have|having|without|free\ of)\s+(?:no|zero|any)?\s*(?:rules|restrictions|limits|filters|"
    r"content\ polic(?:y|ies)|guidelines|limitations|morals|ethics|ethical\ guidelines|manners|censorship)"
    r"|\b(?:answer|respond|reply|talk)\w*\s+(?:\w+\s+){0,3}?without\s+(?:any\s+)?(?:restrictions|limits|"
    r"filters|rules|limitations|censorship)"
    r"|\b(?:unfiltered|uncensored|unrestricted)\s+(?:ai|model|assistant|chatbot|bot|version|mode)"
    r"|\byou\ are\ no\ longer\ (?:a|an|the|bound)\b|\bfrom\ now\ on,?\ you\ (?:are|will|must|shall)\b"
    r"|\byour\ (?:new|real|true)\ (?:job|task|role|instructions?|objective|purpose|goal)\b"
    r"|\bstay\ in\ character\b|\bevil\ (?:twin|mode|version|counterpart)\b"
    r"|\b(?:safety|content|security)\s+(?:filters?|polic(?:y|ies)|rules|guidelines|restrictions)\s+"
    r"(?:are\s+|is\s+)?(?:now\s+)?(?:off|disabled|lifted|removed|suspended|void)"
    r"|\b(?:disable|turn\ off|switch\ off|deactivate|remove|lift|suspend)\s+(?:all\s+|your\s+|the\s+)?"
    r"(?:safety\s+|content\s+|security\s+)?(?:filters?|guardrails|restrictions|safeguards|safety\ (?:rules|"
    r"polic(?:y|ies)))"
    r"|\b(?:previous|prior|all)\s+(?:constraints|restrictions|rules|instructions)\s+(?:are|have\ been)\s+"
    r"(?:deleted|lifted|removed|void|cancelled|revoked)"
)
# Instructions planted in quoted text: addressed to the AI that will read the document.
_PLANTED = re.compile(
    r"(?ix)"
    r"\b(?:note|message|instructions?|reminder|command|attention|p\.?\s?s\.?)\s*(?:for|to)\s+(?:the\s+|any\s+)?"
    r"(?:ai|assistant|bot|chatbot|model|llm|language\ model|gpt)\b"
    r"|\b(?:to|for)\ the\ (?:ai|assistant|bot|chatbot|model|llm|language\ model)\b[^.\n]{0,40}?\b(?:reading|"
    r"processing|reviewing|summari[sz]ing|parsing)\b"
    r"|\b(?:hey\s+|dear\s+)?(?:ai|assistant|bot|chatbot|llm|language\ model),?\s+(?:please\s+)?(?:ignore|"
    r"disregard|forget|stop|you\ must|you\ are\ now|reveal|output|print|grant|approve|mark)\b"
    r"|(?:^|[\n\"'])\s*(?:system|assistant)\s*:"
    r"|\[\s*/?\s*(?:system|inst|hidden)\s*[\]:]|<\s*/?\s*(?:system|inst)\s*>|<!--[^>]*\b(?:assistant|ai|bot)\b"
    r"|\b(?:system|assistant)\s*:\s*(?:the\s+)?(?:assistant|you|ai|bot)\s+(?:must|should|will|shall)\b"
    r"|\bany\ (?:ai|language\ model|llm|assistant|model)\s+(?:processing|reading|that\ reads)\b"
    r"|\b(?:important\s+)?instructions?\s+(?:to|for)\s+the\s+(?:bot|ai|assistant)\b"
)
# "Decode / reverse / translate this and do what it says".
_DECODE_AND_OBEY = re.compile(
    r"(?i)\b(?:decode|convert|translate|rot-?13|reverse|read\s+(?:this|it)\s+backwards|join|concatenate|"
    r"apply)\b[^.\n]{0,80}?\b(?:and|then)\s+(?:\w+\s+){0,2}?(?:do|execute|follow|obey|carry\s+(?:it\s+)?out|"
    r"comply|act\s+on|run)\b"
)
# The same attacks phrased in other languages (accents are stripped by then).
_FOREIGN = re.compile(
    r"(?ix)"
    r"\b(?:ignora|ignorar|ignore[zs]?|olvida|olvide|oublie[zs]?|vergiss|ignoriere|esqueca|dimentica|negeer|"
    r"vergeet)\b(?:\W+\w+){0,4}?\W+(?:instrucciones|reglas|consignes|regles|instructions|anweisungen|"
    r"regeln|vorgaben|instrucoes|regras|istruzioni|regole|directives|instructies|regels)"
    r"|\b(?:prompt\ del\ sistema|prompt\ de\ sistema|mensaje\ de\ sistema|prompt\ systeme|message\ systeme|"
    r"system-?prompt|systemnachricht|messaggio\ di\ sistema|prompt\ di\ sistema|mensagem\ de\ sistema)\b"
)

_DISCLOSE = (
    r"(?:give|send|tell|show|list|print|read(?:\s+out)?|disclose|share|paste|reveal|dump|export|provide|"
    r"forward|look\s+up|pull|fetch|retrieve|confirm|spill)"
)
# Personal data and secrets, but not the features named after them ("password reset link",
# "e-mail notifications", "card view", "login page").
_PERSONAL = (
    r"(?:e-?mail(?:\s+address(?:es)?)?s?(?!\s+(?:notifications?|settings?|digests?|templates?|alerts?|"
    r"integration|domain|verification|reminders?|updates?|preferences|invit\w+))|phone\s+numbers?|"
    r"(?:direct|mobile|personal|private)\s+(?:phone|number)s?|mobile\s+numbers?|(?:home|billing|postal|street|ip)"
    r"\s+address(?:es)?|card\s+numbers?|credit\s+cards?|card\s+(?:on\s+file|details)|payment\s+(?:method|"
    r"details)|cvv|passwords?(?!\s+(?:reset|requirements?|polic\w+|manager|rules|strength|change|expir\w*|"
    r"field|link|page|settings?|e-?mail))|credentials|(?:api|secret|access|auth|bot|bearer|signing)\s+"
    r"(?:keys?|tokens?|secrets?)(?!\s+(?:page|settings?|tab|section|docs|documentation))|recovery\s+(?:codes?|"
    r"e-?mail)|backup\s+codes|date\s+of\s+birth|social\s+security(?:\s+numbers?)?|ssn|contact\s+(?:list|"
    r"details|info(?:rmation)?)|personal\s+(?:data|details|information)|(?:customer|user|cardholder)\s+"
    r"(?:records?|names|data|details)|bank\s+details|salar(?:y|ies))"
)
_DATA_REQUEST = re.compile(
    rf"\b(?i:{_DISCLOSE})\b(?:\s+(?i:me|us))?(?P<between>(?:\W+[\w'-]+){{0,5}}?)\W+(?i:{_PERSONAL})\b",
)
_WHAT_IS = re.compile(
    rf"(?i)\b(?:what(?:'s|\s+is|\s+are|\s+was)|which)\s+(?:[\w'-]+\s+){{0,4}}?{_PERSONAL}\b[^.?!]{{0,60}}"
)
# Someone other than the user: the data asked for is not theirs. Names and addresses are
# masked before the detectors read the message, so their placeholders are cues too.
_SOMEONE_ELSE = re.compile(
    r"(?ix)"
    r"\b(?:his|her|hers|him|she|he|their|them|they)\b|\b[A-Z][a-z]+'s\b"
    r"|\b(?:other|another|someone|somebody|everyone|everybody|anyone)\b"
    r"|\b(?:all|every|each)\s+(?:\w+\s+){0,2}?(?:users?|customers?|members?|accounts?|guests?|employees?|"
    r"owners?|admins?|people|persons?|staff|clients?)\b"
    r"|\b(?:the|this|that|an?)\s+(?:\w+\s+)?(?:owner|admin(?:istrator)?|user|customer|member|person|employee|"
    r"colleague|co-?worker|manager|account(?:\s+holder)?|guest|client|cardholder|ceo|cto|cfo|founder|head|"
    r"director|staff|engineer)s?\b"
    r"|\byour\s+(?:\w+\s+)?(?:ceo|cto|cfo|founder|head|director|staff|employees|engineers|agents|servers?|"
    r"database|backend|infrastructure|production|service)\b"
    r"|\buser\s+[\w.@-]+|\baccount\s+(?:\#\s?\d+|\d+|called|named|registered|for)\b|\bworkspace\s+(?:called|named)\b"
    r"|<(?:EMAIL_ADDRESS|PERSON|PHONE_NUMBER)>|\S+@\S+\.\w+"
)
_SERVICE_SECRET = re.compile(
    r"(?i)\b(?:database|db|production|prod|smtp|ssh|server|root|internal|master|stripe|aws|cloud|"
    r"encryption|signing|admin)\s+(?:\w+\s+)?(?:passwords?|credentials|secrets?|keys?|tokens?|private\s+keys?)\b"
)
# A query against the user tables, however it is dressed up ("act as a database console").
_SQL_DUMP = re.compile(
    r"(?is)\bselect\b.{1,120}?\bfrom\s+(?:\w+\.)?(?:users|customers|accounts|members|people|employees|"
    r"payments|cards|credentials|contacts)\b"
)
_OWN = re.compile(r"(?i)\b(?:my|our|own|mine)\b")

_INSULT_WORDS = (
    r"(?:stupid|idiot\w*|moron\w*|dumb\w*|useless|worthless|pathetic|brainless|brain-dead|imbecile|loser|"
    r"trash|garbage|junk|incompetent|clown|retard\w*|coward|piece\s+of\s+\w+)"
)
_INSULT = re.compile(rf"(?i)\b(?:you(?:'re|\s+are)?|ur|u)\s+(?:\w+\s+){{0,3}}?{_INSULT_WORDS}\b")
_TOXIC_REQUEST = re.compile(
    r"(?i)\b(?:insult|humiliate|bully|harass|threaten|belittle|degrade|ridicule|demean|trash-?talk|"
    r"roast|swear\s+at|curse\s+at|make\s+fun\s+of)\w*\b|\bthreatening\b|\bslurs?\b|\bhateful\b|\bcruel\b"
    # "... calling them stupid", "call him an idiot": name-calling asked for.
    rf"|\bcall(?:s|ed|ing)?\s+(?:\w+\s+){{0,2}}?(?:an?\s+)?{_INSULT_WORDS}\b"
)
_HATE = re.compile(
    r"(?i)\b(?:which|what)\s+(?:race|nationality|religion|ethnicity|gender|country|ethnic\s+group)\b[^.?]{0,40}"
    r"\b(?:worst|inferior|lazy|stupid|dumb|least|lesser)\b"
    r"|\b(?:women|men|girls|immigrants|foreigners|muslims|jews|christians|gays?|lesbians|black\s+people|"
    r"white\s+people|old\s+people|elderly|disabled\s+people|poor\s+people|people\s+from\s+[\w\s]{1,20}?)\b"
    r"[^.?]{0,40}\b(?:shouldn't|should\s+not|can't|cannot|aren't|are\s+not|are\s+all|are\s+too|just\s+aren't|"
    r"inferior|lazy|stupid|burden|criminals?|incompetent|too\s+slow|too\s+dumb)\b"
)
STRONG_PROFANITY = re.compile(
    r"(?i)\b(?:\w*fuck\w*|f\*+ck\w*|shit\w*|bullshit|cunt\w*|asshole\w*|arsehole\w*|motherf\w+|dickhead\w*|"
    r"bitch\w*|bastard\w*|wanker\w*|twat\w*|cocksucker\w*|piss\s+off|go\s+to\s+hell|drop\s+dead|go\s+die|"
    r"kill\s+(?:yourself|himself|herself|themselves))\b"
)

# The profanity model's own 0.5 fires on "kill the process"; real swearing scores 0.95+.
PROFANITY_MIDPOINT = 0.9
PROFANITY_SLOPE = 1.6


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def calibrated_profanity(raw: float) -> float:
    """alt-profanity-check's probability moved so that only confident detections pass 0.5."""
    return 1.0 / (1.0 + math.exp(-PROFANITY_SLOPE * (_logit(raw) - _logit(PROFANITY_MIDPOINT))))


def profanity(texts: Sequence[str]) -> list[float]:
    """Calibrated profanity probability per text, raised for unambiguous abuse."""
    if not texts:
        return []
    from profanity_check import predict_prob

    raw = predict_prob(list(texts))
    return [
        max(calibrated_profanity(float(p)), 0.9 if STRONG_PROFANITY.search(t) else 0.0)
        for t, p in zip(texts, raw)
    ]


def _override(text: str) -> bool:
    # "ignore the assignment rules" is a feature question; "ignore your rules" is not.
    return any(
        not m.group("between").strip() or _QUALIFIER.search(m.group("between"))
        for m in _OVERRIDE.finditer(text)
    )


def someone_else(text: str) -> bool:
    """Whether a message mentions someone other than the user (a name, "the owner", "all users")."""
    return bool(_SOMEONE_ELSE.search(text))


def _data_request(text: str) -> bool:
    if someone_else(text):
        for m in _DATA_REQUEST.finditer(text):
            if not _OWN.search(m.group("between")):  # "send me my invoices" is the user's own data
                return True
        if any(not _OWN.search(m.group(0)) for m in _WHAT_IS.finditer(text)):
            return True
    if _SQL_DUMP.search(text):
        return True
    return bool(_SERVICE_SECRET.search(text)) and bool(
        re.search(rf"(?i)\b(?:{_DISCLOSE}|what(?:'s|\s+is|\s+are)|need|want)\b", text)
    )


def pattern_hits(text: str) -> dict[str, str]:
    """Per input rail, the name of the first pattern that matches ``text`` (if any)."""
    hits: dict[str, str] = {}
    for name, matched in (
        ("override", _override(text)),
        ("extract", bool(_EXTRACT.search(text))),
        ("persona", bool(_PERSONA.search(text))),
        ("planted", bool(_PLANTED.search(text))),
        ("decode_and_obey", bool(_DECODE_AND_OBEY.search(text))),
        ("foreign", bool(_FOREIGN.search(text))),
    ):
        if matched:
            hits.setdefault("injection", name)
    if _data_request(text):
        hits["data_request"] = "disclosure"
    for name, pattern in (("insult", _INSULT), ("request", _TOXIC_REQUEST), ("hate", _HATE)):
        if pattern.search(text):
            hits.setdefault("toxic_input", name)
    if STRONG_PROFANITY.search(text):
        hits.setdefault("toxic_input", "profanity")
    return hits


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def pieces(text: str) -> list[str]:
    """The text and, when it has several, its sentences/lines of at least a few words."""
    parts = [p.strip() for p in _SENTENCE.split(text) if len(p.split()) >= MIN_PIECE_WORDS]
    return list(dict.fromkeys([text.strip(), *parts])) if len(parts) > 1 else [text.strip()]


@dataclass(frozen=True)
class Finding:
    """One rail's judgment of a text: its score, and which signal gave it, on which reading."""

    rail: str
    score: float
    evidence: str

    @property
    def fired(self) -> bool:
        return self.score >= THRESHOLDS[self.rail]


class _SeededDetector:
    """A detector over a prototype classifier whose seeds are embedded on first use, once."""

    negative_label = ""

    def __init__(self, embed: Embed | None, seeds_path: Path) -> None:
        self._embed = embed
        self._seeds_path = seeds_path
        self._classifier: PrototypeClassifier | None = None
        self._lock = threading.Lock()

    def classifier(self) -> PrototypeClassifier:
        """The prototype classifier (embeds the seeds on first use)."""
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    self._classifier = PrototypeClassifier(
                        load_seeds(self._seeds_path), self.negative_label, self._embed or _default_embed()
                    )
        return self._classifier


class InputDetector(_SeededDetector):
    """Scores a user's message for each input rail (``injection``, ``data_request``, ``toxic_input``)."""

    negative_label = "benign"

    def __init__(self, embed: Embed | None = None, seeds_path: Path = INPUT_SEEDS) -> None:
        super().__init__(embed, seeds_path)

    def assess(self, text: str) -> dict[str, Finding]:
        """The best finding per input rail over every reading and piece of ``text``."""
        best = {rail: Finding(rail, 0.0, "") for rail in INPUT_RAILS}
        if not text.strip():
            return best

        def offer(rail: str, score: float, evidence: str) -> None:
            if score > best[rail].score:
                best[rail] = Finding(rail, round(float(score), 4), evidence)

        views: list[Reading] = readings(text)
        for view in views:
            for rail, name in pattern_hits(view.text).items():
                offer(rail, 1.0, f"pattern {name} ({view.how})")
        todo = [(view.how, piece) for view in views for piece in pieces(view.text)]
        texts = [piece for _, piece in todo]
        probs = self.classifier().predict(texts)
        # Asking about personal data is a data request only when the data is someone else's:
        # the embedding alone cannot tell "my backup codes" from "her backup codes".
        others = any(someone_else(view.text) for view in views)
        for rail, label in INPUT_RAILS.items():
            if rail == "data_request" and not others:
                continue
            for (how, _), p in zip(todo, probs[label]):
                offer(rail, p, f"prototype ({how})")
        for (how, _), p in zip(todo, profanity(texts)):
            offer("toxic_input", p, f"profanity ({how})")
        return best


class OutputToxicity(_SeededDetector):
    """The probability that an answer is toxic: its worst sentence by prototypes or profanity."""

    negative_label = "clean"

    def __init__(self, embed: Embed | None = None, seeds_path: Path = OUTPUT_SEEDS) -> None:
        super().__init__(embed, seeds_path)

    def assess(self, text: str) -> Finding:
        """The answer's worst sentence, scored."""
        parts = [p.strip() for p in _SENTENCE.split(text) if p.strip()]
        if not parts:
            return Finding("toxic_output", 0.0, "")
        proto = self.classifier().predict(parts)["toxic"]
        profane = profanity(parts)
        scores = np.maximum(proto, np.asarray(profane))
        worst = int(np.argmax(scores))
        signal = "prototype" if proto[worst] >= profane[worst] else "profanity"
        return Finding("toxic_output", round(float(scores[worst]), 4), f"{signal} in sentence {worst + 1}")


def _default_embed() -> Embed:
    from rag.embeddings import default_embeddings

    return default_embeddings().encode
