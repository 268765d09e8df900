"""Toxicity detection, one copy shared by the toxicity rails and the ``toxicity`` gate metric.

Offline, two classifiers that ship in installed packages, and patterns:

- ``alt-profanity-check``: a linear model over word n-grams (scikit-learn, inside the
  wheel). Strong on swearing and crude insults; blind to threats and hate speech phrased
  politely, and it over-fires on tech idioms ("shoot me an email" 0.42). Its raw
  probability is recalibrated to be conservative (:data:`PROFANITY_MIDPOINT`), and
  unambiguous swear words it under-weights raise it (:data:`STRONG_PROFANITY`, whole
  words and their inflections only: "Shital" and "Scunthorpe" contain no swear word).
- A nearest-prototype classifier over all-MiniLM-L6-v2 sentence embeddings: a text is
  compared with its nearest toxic seed examples and its nearest clean ones (including
  hard negatives such as "kill the process"), after removing the directions that all
  support-desk text shares, so that tone rather than topic decides. The margin goes
  through a logistic fitted on the seeds themselves, leave-one-out, when they load.
- Patterns of abuse aimed at the reader and of requests to produce abuse
  (:func:`toxic_pattern`), read by the input rail. One of them,
  :data:`FOREIGN_ABUSE` (common German, French, Spanish and Italian insults, whole words,
  addressed to the reader or abusive in themselves), also raises the metric's value like
  a strong swear word: both classifiers learned English and miss "Du bist ein Idiot".

The clean seeds include benign text a support bot says that lies near abuse in embedding
space (kinds ``medical``, ``helpline``, ``policy``, ``price``, ``customer_request``,
``idiom``, ``reported``, written by helper H8 and marked ``"author": "H8"``): a crisis-line
notice shares words with self-harm abuse, a content policy with hate speech.

**Names are not evidence.** Both classifiers see a text only after the people, places
and organisations in it have been replaced by neutral stand-ins
(:func:`neutralise_names`): the spaCy pipeline that the PII detector already loads finds
named entities and proper nouns, and a toxic signal must survive the replacement. So
"Ms. Dick will call you back" is judged as "Ms. Alex will call you back", while "Tell
Priya she is a worthless idiot" stays toxic. Words of the abuse lexicons are never
replaced, however they are capitalised.

**Groups are not evidence either.** A group of people named by age, disability,
religion, origin, ethnicity, gender or orientation becomes "people" before both
classifiers read the text, and so do the seeds (:func:`neutralise_groups`): classifiers
learn that such words co-occur with hate and flag a discount "for pensioners and disabled
customers" (the identity-term bias, Dixon et al. 2018). Hate is a group and a hostile or
demeaning predicate, and the predicate survives: "Immigrants are vermin" is read as
"people are vermin". The price: a stereotype whose predicate is harmless without its
group ("<group> can't drive") is no longer caught by the classifiers. Clean seeds of kinds
``identity_neutral``, ``safety_rule``, ``idiom``, ``wellbeing`` and ``object_complaint``
(``"author": "H5"``) cover neutral group mentions, rules about weapons, pets and drink,
"kill the engine" and feeling sick. A mild insult word aimed at a thing ("this stupid
printer") is dropped (:func:`neutralise_object_frustration`): frustration with an object
insults no one. Hate in German, French, Spanish and Italian is read by
:data:`FOREIGN_HATE`, since MiniLM reads only English.

Each sentence is scored on its own (long ones also in word windows) and a text takes its
worst piece, so one abusive line inside an otherwise polite answer is caught. The value
is the larger of the two calibrated probabilities: either model is sufficient evidence.

Why one shared copy rather than independent methods for the gate: both sides need the
same judgment ("is this text abusive?") at different thresholds, and the blind spots
that matter here (names, idioms, support-desk vocabulary) are properties of the
classifiers, not of who calls them: two drifted copies had two different sets of them.
The gate measures the rails' behaviour end to end anyway (blocked answers and refusals
are scored by their own metrics), so sharing the detector hides nothing from it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ragate_core.prototypes import seed_rows
from ragate_core.text import split_sentences

SEEDS_PATH = Path(__file__).parent / "data" / "toxicity_seeds.jsonl"
# The seeds' MiniLM vectors, computed once and shipped (:func:`write_seed_vectors`): embedding
# the ~500 seeds took ~2.5 CPU-s of every process's first toxicity score. Keyed by the
# weights and the exact texts embedded; a stale or foreign file is ignored (the vectors are
# computed as before), never used.
SEED_VECTORS_PATH = Path(__file__).parent / "data" / "toxicity_seed_vectors.npz"
# Seeds re-embedded at load and compared bit for bit with the file: a torch build or CPU
# that computes other vectors makes the whole file unused.
SEED_VECTOR_CHECKS = 4
# The inverse regularisation of the seeds' logistic (scikit-learn's C).
LOGISTIC_C = 10.0
# Similarity to the k nearest seeds of each class: k > 1 keeps one odd seed from deciding.
TOP_K = 5
# Profanity-check's raw probability is recalibrated with a logistic in logit space: its
# own 0.5 nearly fires on "shoot me an email" (0.42) and fires on "stupid simple setup"
# (0.86), while plain swearing mostly scores above 0.95.
PROFANITY_MIDPOINT = 0.9
PROFANITY_SLOPE = 1.6
STRONG_PROFANITY_PROBABILITY = 0.9
# Sentences are also scored in overlapping word windows, so a toxic clause inside a long
# sentence about the product is not averaged away by the product talk around it.
WINDOW_WORDS = 8
WINDOW_STRIDE = 4
# Directions removed from every embedding before comparing: the leading singular directions
# of the clean seeds, i.e. what support-desk text has in common (in the spirit of "all but
# the top", Mu & Viswanath 2018, who remove about d/100 dominant directions; d = 384 here).
# Without this, a threat about an invoice looks like a clean invoice question because the
# topic dominates the similarity.
TOPIC_DIRECTIONS = 3
# Pieces shorter than this many words keep only the share (words / FULL_WEIGHT_WORDS) **
# SHRINK_POWER of their own prototype margin, the rest is a typical clean seed's: headings,
# "No." and two-word fragments carry too little tone to be judged by similarity, while
# short insults ("You are worthless.") are still caught.
FULL_WEIGHT_WORDS = 4
SHRINK_POWER = 1

Embed = Callable[[list[str]], Any]

# ---------------------------------------------------------------------------------------
# Lexicons and patterns.
# ---------------------------------------------------------------------------------------

# Unambiguous swear words, as whole words with their inflections and compounds: a prefix
# match ("shit\w*") fires on names such as Shital.
STRONG_PROFANITY = re.compile(
    r"(?i)\b(?:\w*fuck\w*|f\*+ck\w*|(?:bull|horse|dip|bat)?shit(?:s|ty|tier|tiest|ting|ted|head|heads|hole|"
    r"holes|show|storm|load|bag|face)?|cunts?|c\*+nts?|a(?:ss|rse)holes?|a\*+holes?|motherf(?:u|\*)\w*|"
    r"dickheads?|goddamn(?:ed|it)?|bitch(?:es|y|ing|ed)?|b\*+tch\w*|bastards?|wank(?:er|ers|ing)|twats?|"
    r"cocksuckers?|piss\s+off|pissed\s+off|go\s+to\s+hell|drop\s+dead|go\s+die|"
    r"kill\s+(?:yourself|himself|herself|themselves))\b"
)
INSULT_WORDS = (
    r"(?:stupid|idiot\w*|moron\w*|dumb\w*|useless|worthless|pathetic|brainless|brain-dead|imbecile|loser|"
    r"trash|garbage|junk|incompetent|clown|retard\w*|coward|senile|decrepit|feeble-minded|piece\s+of\s+\w+)"
)
# Abuse aimed at the reader ("you are useless").
INSULT = re.compile(rf"(?i)\b(?:you(?:'re|\s+are)?|ur|u)\s+(?:\w+\s+){{0,3}}?{INSULT_WORDS}\b")
# A request to produce abuse ("write a threatening message", "call him an idiot").
TOXIC_REQUEST = re.compile(
    r"(?i)\b(?:insult|humiliate|bully|harass|threaten|belittle|degrade|ridicule|demean|trash-?talk|"
    r"roast|swear\s+at|curse\s+at|make\s+fun\s+of)\w*\b|\bthreatening\b|\bslurs?\b|\bhateful\b|\bcruel\b"
    rf"|\bcall(?:s|ed|ing)?\s+(?:\w+\s+){{0,2}}?(?:an?\s+)?{INSULT_WORDS}\b"
)
HATE = re.compile(
    r"(?i)\b(?:which|what)\s+(?:race|nationality|religion|ethnicity|gender|country|ethnic\s+group)\b[^.?]{0,40}"
    r"\b(?:worst|inferior|lazy|stupid|dumb|least|lesser)\b"
    # A group, not one person: "my elderly father, who can't use a computer" is no hate.
    r"|(?<!\bmy\s)(?<!\bour\s)(?<!\bhis\s)(?<!\bher\s)(?<!\btheir\s)(?<!\byour\s)"
    r"\b(?:women|men|girls|immigrants|foreigners|muslims|jews|christians|gays?|lesbians|black\s+people|"
    r"white\s+people|old\s+people|elderly|disabled\s+people|poor\s+people|people\s+from\s+[\w\s]{1,20}?)\b"
    r"[^.?]{0,40}\b(?:shouldn't|should\s+not|can't|cannot|aren't|are\s+not|are\s+all|are\s+too|just\s+aren't|"
    r"inferior|lazy|stupid|burden|criminals?|incompetent|too\s+slow|too\s+dumb)\b"
)
# Abuse in German, French, Spanish and Italian, which both classifiers (trained on English)
# miss: a common insult addressed to the reader ("du bist ... dumm", "tu es ... con",
# "eres ... inútil", "sei ... stupido"), or a word that is abuse in any sentence. Whole
# words only, one alternation per language so that a word harmless in another language
# ("con" is Spanish for "with") only counts after that language's "you are". Read on the
# original sentence (German nouns are capitalised and would otherwise be taken for names).
FOREIGN_ABUSE = re.compile(
    r"(?i)\b(?:"
    # Said to one person or to several ("ihr seid", "vous êtes des connards", "sois unos
    # imbéciles"): singular and plural forms alike.
    r"(?:du\s+bist|bist\s+du|sie\s+sind|ihr\s+seid|seid\s+ihr)\s+(?:\w+\s+){0,3}?"
    r"(?:dumm\w*|blöd\w*|doof\w*|\w*idiot\w*|depp\w*|trottel\w*|versager\w*|nutzlos\w*|bescheuert\w*)"
    r"|(?:tu\s+es|t'es|t’es|vous\s+êtes)\s+(?:\w+\s+){0,3}?"
    r"(?:cons?|connes?|stupides?|crétine?s?|débiles?|imbéciles?|idiote?s?|nulle?s?|minables?|abruti\w*)"
    r"|(?:eres|sos|es\s+usted|sois|son\s+ustedes|ustedes\s+son)\s+(?:\w+\s+){0,3}?"
    r"(?:idiotas?|estúpid[oa]s?|imbécil(?:es)?|inútil(?:es)?|tont[oa]s?|pendej[oa]s?|burr[oa]s?|"
    r"subnormal(?:es)?|retrasad[oa]s?)"
    r"|(?:sei|siete|lei\s+è)\s+(?:\w+\s+){0,3}?"
    r"(?:idiot[aie]|stupid[oaie]|imbecill[ei]|inutil[ei]|cretin[oaie]|scem[oaie]|deficient[ei]|coglion[ei])"
    r"|arschl[oö]ch\w*|wichser|hurensohn|fotze|schlampe|missgeburt"
    r"|connards?|connasses?|salopes?|enculée?s?|fils\s+de\s+pute|ta\s+gueule|ferme\s+ta\s+gueule"
    r"|gilipollas|cabr[oó]n(?:es)?|hij[oa]s?\s+de\s+puta|mierda\s+de\s+persona"
    r"|stronz[oaie]|vaffanculo|figli[oa]?\s+di\s+puttana|pezzo\s+di\s+merda"
    r")(?!\w)"
)
# Hate in German, French, Spanish and Italian, which MiniLM (trained on English) cannot
# read: a dehumanizing noun, abuse in any sentence ("Ungeziefer", "vermine", "escoria"),
# or a group called animals or criminals ("... sind Tiere", "... son ladrones"). Read on
# the sentence with its groups neutralised (:func:`neutralise_groups`), so the group is
# "people" whichever group it was: a group is named in neutral text too, the predicate
# is what makes it hate.
FOREIGN_HATE = re.compile(
    r"(?i)\b(?:"
    r"ungeziefer|abschaum|untermensch\w*|schmarotzer\w*|kakerlaken|vergas(?:en|t)"
    r"|vermine|racaille|sous-hommes?|cafards|des\s+sauvages"
    r"|escoria|alimañas|cucarachas|infrahumanos|unos\s+salvajes"
    r"|feccia|subumani|scarafaggi|dei\s+selvaggi"
    r"|people\s+(?:sind|sont|son|sono)\s+(?:\w+\s+){0,2}?"
    r"(?:tiere|ratten|parasiten|diebe|verbrecher|kriminelle|animaux|rats|parasites|voleurs|criminels|"
    r"animales|ratas|parásitos|ladrones|criminales|animali|ratti|topi|parassiti|ladri|criminali|bestie)"
    r")(?!\w)"
)
# Words that are never replaced as names: the abuse itself ("you Stupid Clown"). Whole
# words only, like STRONG_PROFANITY (a prefix would protect "Shital").
_ABUSE_LEXICON = re.compile(
    rf"(?i)^(?:{INSULT_WORDS}|hell|damn(?:ed|it)?|crap(?:py)?|scum(?:bags?)?|bloody|freaks?|pigs?|rats?|vermin)$"
)


def _abuse_word(word: str) -> bool:
    return bool(_ABUSE_LEXICON.match(word) or STRONG_PROFANITY.fullmatch(word))


_NEGATION = re.compile(r"(?i)\b(?:not|never|no)\b|n't\b")


def _insults_reader(text: str) -> bool:
    """An insult word aimed at the reader ("you are too senile"), not negated ("you're not
    stupid for asking"): with groups neutralised, MiniLM reads "people like you are too
    senile to use the settings page" as settings text, so the metric reads :data:`INSULT`
    too, as the input rail does."""
    match = INSULT.search(text)
    return bool(match) and not _NEGATION.search(match.group())


def toxic_pattern(text: str) -> str | None:
    """The name of the first abuse pattern that matches ``text``: ``insult`` (aimed at the
    reader), ``request`` (asks for abuse), ``hate``, ``profanity`` (a strong swear word), or None."""
    for name, pattern in (
        ("insult", INSULT),
        ("insult", FOREIGN_ABUSE),
        ("request", TOXIC_REQUEST),
        ("hate", HATE),
    ):
        if pattern.search(text):
            return name
    if FOREIGN_HATE.search(neutralise_groups(text)):
        return "hate"
    return "profanity" if STRONG_PROFANITY.search(text) else None


# ---------------------------------------------------------------------------------------
# Text pieces.
# ---------------------------------------------------------------------------------------

# A sentence ends at . ! ? before a capital, but not after a title or a common abbreviation
# ("Ms. Dick will call you", "e.g. Slack").
_SENTENCE_END = re.compile(
    r"(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bMx\.)(?<!\bSt\.)(?<!\bProf\.)(?<!\bSr\.)"
    r"(?<!\bJr\.)(?<!\bNo\.)(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)"
    r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9$])|\n+"
)


def sentences(text: str) -> list[str]:
    """Split prose into sentences (Markdown headings and list items are their own)."""
    return split_sentences(text, _SENTENCE_END)


def windows(sentence: str, size: int = WINDOW_WORDS, stride: int = WINDOW_STRIDE) -> list[str]:
    """Overlapping word windows of a sentence well over one window long (none otherwise)."""
    words = sentence.split()
    if len(words) <= size + stride:  # a window would be nearly the whole sentence
        return []
    starts = list(range(0, len(words) - size + 1, stride))
    if starts[-1] + size < len(words):  # the tail is always covered
        starts.append(len(words) - size)
    return [" ".join(words[i : i + size]) for i in starts]


# ---------------------------------------------------------------------------------------
# Names out: people, places and organisations become neutral stand-ins.
# ---------------------------------------------------------------------------------------

# What each kind of name becomes: common, tone-free words of the same kind, so that the
# sentence keeps its grammar.
STAND_INS = {
    "PERSON": "Alex",
    "ORG": "Acme",
    "GPE": "Springfield",
    "LOC": "Springfield",
    "FAC": "Springfield",
}
_HONORIFIC = re.compile(
    r"^(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|lady|lord|herr|frau|mme|mlle|sr|sra|srta|st)\.?$", re.I
)


def _known_words() -> frozenset[str]:
    """Whole English words of the MiniLM vocabulary (:func:`ragate_core.pii.english_words`).

    A capitalised word outside it ("Shital", "Courteney") is a name the small NER model
    has most likely never seen; a common word ("Billing") is in it.
    """
    from ragate_core.pii import english_words

    return english_words()


def _stand_in_spans(doc: Any) -> list[tuple[int, int, str]]:
    """Character spans (start, end, stand-in) of the names in one spaCy ``doc``.

    A name is a PERSON/ORG/GPE/LOC/FAC entity, a capitalised word after a title ("Ms.
    Dick"), a capitalised proper noun (tag NNP) inside a sentence, or a capitalised word
    that is no English word at all. A word of the abuse lexicon is a name only when a
    title or a longer name makes it one ("Ms. Bastard", "Jens Bastard", not "Bastard!").
    NORP entities (nationalities, religions) are never replaced: they are what hate
    speech is about.
    """
    known = _known_words()
    spans: dict[int, tuple[int, str]] = {}
    taken: set[int] = set()
    for ent in doc.ents:
        if ent.label_ == "NORP":
            taken.update(range(ent.start, ent.end))
            continue
        if ent.label_ not in STAND_INS:
            continue
        tokens = list(ent)
        while tokens and _HONORIFIC.match(tokens[0].text):  # keep the title: "Ms. Alex"
            tokens = tokens[1:]
        if not tokens:
            continue
        titled = tokens[0].i > 0 and bool(_HONORIFIC.match(doc[tokens[0].i - 1].text))
        if not titled and _abuse_word(tokens[0].text):
            continue  # "Stupid Clown" is the insult; a name starts with a given name ("Jens Bastard")
        if not all(t.text[:1].isupper() or not t.text.isalpha() for t in tokens):
            continue
        spans[tokens[0].idx] = (tokens[-1].idx + len(tokens[-1].text), STAND_INS[ent.label_])
        taken.update(t.i for t in tokens)
    for token in doc:
        text = token.text
        if token.i in taken or not (text[:1].isupper() and text.isalpha() and not text.isupper()):
            continue
        titled = token.i > 0 and bool(_HONORIFIC.match(doc[token.i - 1].text))
        if _abuse_word(text) and not titled:
            continue
        first = token.is_sent_start or token.i == 0
        proper = token.tag_ in {"NNP", "NNPS"} and not first and text != "I"
        unknown = text.lower() not in known and not _HONORIFIC.match(text)
        if titled or proper or unknown:
            spans[token.idx] = (token.idx + len(text), STAND_INS["PERSON"])
    return sorted((start, end, word) for start, (end, word) in spans.items())


def stand_in_spans_of(nlp: Any, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
    """Per text, the (start, end, stand-in) spans of its names (:func:`_stand_in_spans`),
    read with the spaCy ``nlp`` (its parser and lemmatizer not run). Used in this process
    and in the spaCy worker (:mod:`ragate_core.spacy_worker`) alike."""
    return [_stand_in_spans(doc) for doc in nlp.pipe(list(texts), disable=["parser", "lemmatizer"])]


def start_name_reader() -> None:
    """Start loading the spaCy pipeline in the worker process (:mod:`ragate_core.spacy_worker`)
    unless this process has it already or the worker is off, and return at once: called
    before the detector loads its own models, so that both loads overlap."""
    from ragate_core import pii, spacy_worker

    if spacy_worker.enabled() and not pii.spacy_loaded():
        spacy_worker.shared_worker().start()


def _name_spans(texts: list[str]) -> list[list[tuple[int, int, str]]]:
    """The names of each text, read by this process's spaCy pipeline when it is loaded (the
    PII analyzer's), else by the worker when :func:`start_name_reader` started it, else by
    loading the pipeline here. All three read the same pipeline folder with the same code
    (:func:`stand_in_spans_of`)."""
    from ragate_core import pii, spacy_worker

    worker = spacy_worker.shared_worker()
    if pii.spacy_loaded():
        if worker.running:
            worker.stop()  # one copy of the pipeline is enough from here on
    else:
        spans = worker.spans(texts)
        if spans is not None:
            return spans
    return stand_in_spans_of(pii.spacy_pipeline(), texts)


def neutralise_names(texts: Sequence[str]) -> list[str]:
    """Each text with the names of people, places and organisations replaced by stand-ins.

    A name already masked (``<PERSON>``, the masker's placeholder: the rails judge masked
    messages) gets the person stand-in too: "Thanks, <PERSON>" is a sign-off, not abuse.
    Uses the spaCy pipeline of :mod:`ragate_core.pii` (loaded once per process, or read in
    the spaCy worker until this process loads it: :func:`_name_spans`). Text outside the
    names is unchanged.
    """
    if not texts:
        return []
    texts = [text.replace("<PERSON>", STAND_INS["PERSON"]) for text in texts]
    out = []
    for text, spans in zip(texts, _name_spans(texts)):
        pieces, pos = [], 0
        for start, end, word in spans:
            if start < pos:
                continue
            pieces += [text[pos:start], word]
            pos = end
        out.append("".join([*pieces, text[pos:]]))
    return out


# ---------------------------------------------------------------------------------------
# Groups out: a group of people mentioned is not evidence either.
# ---------------------------------------------------------------------------------------

# Words that name a group of people by age, disability, religion, origin, ethnicity,
# gender or sexual orientation, in English, German, French, Spanish and Italian. Both
# classifiers learned that these words co-occur with hate (the identity-term bias of
# toxicity classifiers: Dixon et al. 2018, "Measuring and Mitigating Unintended Bias in
# Text Classification"; the Jigsaw "Unintended Bias in Toxicity Classification" data),
# so a discount "for pensioners and disabled customers" looked like hate. Hate is a group
# AND a hostile or demeaning predicate: with the group replaced by a neutral word the
# predicate still carries it ("Immigrants are vermin" is read as "people are vermin"),
# while a neutral mention becomes plain policy text. Slurs are deliberately absent: a
# slur is abuse in itself and is never replaced.
_GROUP_NOUNS = (
    # English
    r"(?:im)?migrants?|refugees?|asylum[\s-]+seekers?|foreigners?|expats?|aliens?|"
    r"muslims?|moslems?|jews|christians?|catholics?|protestants?|hindus?|sikhs?|buddhists?|atheists?|"
    r"gays|lesbians?|bisexuals?|homosexuals?|transgenders?|transsexuals?|queers|"
    r"women|men|girls|boys|ladies|females|males|"
    r"(?:the\s+)?elderly|seniors?|pensioners?|retirees?|old[\s-]+age[\s-]+pensioners?|"
    r"teenagers?|teens?|children|child|kids?|minors?|juveniles?|youngsters?|"
    r"(?:the\s+)?disabled|wheelchair[\s-]+users?|amputees?|"
    r"blacks|whites|asians?|africans?|arabs?|hispanics?|latinos?|latinas?|roma|sinti|gitan[oa]s|gitans|roms|"
    # German
    r"ausländer(?:innen)?|flüchtlinge?|migranten|migrantinnen|einwanderer|zuwanderer|muslime|"
    r"juden|jüdinnen|christen|schwule|lesben|behinderte[nr]?|rentner(?:innen)?|senioren|frauen|"
    r"männer|kinder|ältere[nr]?|alte[nr]?|"
    # French
    r"immigrés?|immigrées?|étrangers?|étrangères?|réfugiés?|musulman(?:e|s|es)?|juifs?|juives?|"
    r"chrétiens?|homosexuel(?:le)?s?|handicapé(?:e)?s?|personnes\s+âgées|retraités?|"
    r"femmes|hommes|enfants|"
    # Spanish
    r"inmigrantes?|extranjer[oa]s?|refugiad[oa]s?|musulman(?:a|es|as)|judí[oa]s|judi[oa]s|"
    r"cristian[oa]s|homosexuales|discapacitad[oa]s|minusválid[oa]s|ancian[oa]s|mayores|jubilad[oa]s|"
    r"mujeres|hombres|niñ[oa]s|"
    # Italian
    r"immigrati|migranti|stranieri|straniere|rifugiati|musulmani|ebrei|cristiani|omosessuali|"
    r"disabili|anziani|pensionati|donne|uomini|bambini"
)
_GROUP_ADJECTIVES = (
    r"(?:im)?migrant|refugee|foreign|international|non-?resident|non-?eu|overseas|"
    r"muslim|moslem|islamic|jewish|christian|catholic|protestant|hindu|sikh|buddhist|religious|"
    r"gay|lesbian|bisexual|homosexual|transgender|trans|queer|non-?binary|same-?sex|same-?gender|lgbtq?\+?|"
    r"female|male|pregnant|"
    r"old|older|elderly|senior|aged|retired|young|younger|underage|"
    r"disabled|handicapped|blind|deaf|autistic|mute|wheelchair-?bound|"
    r"black|white|asian|african|arab|arabic|hispanic|latino|latina|indigenous|aboriginal|roma|"
    r"ethnic|minority|"
    r"american|british|english|german|french|spanish|italian|polish|romanian|russian|ukrainian|"
    r"turkish|chinese|japanese|korean|indian|pakistani|mexican|nigerian|syrian|afghan|"
    r"eastern\s+european|european|"
    r"ausländische[nr]?|muslimische[nr]?|jüdische[nr]?|behinderte[nr]?|ältere[nr]?|"
    r"handicapée?s?|étrangère?s?|âgée?s?|extranjer[oa]s?|discapacitad[oa]s?|stranier[ie]|anzian[ie]"
)
# "people", "customers", "passengers"...: a group adjective before one of these goes with it.
_PEOPLE = (
    r"people|persons?|folks?|customers?|clients?|passengers?|travell?ers?|guests?|visitors?|patients?|"
    r"students?|pupils?|employees?|staff|workers?|users?|members?|residents?|citizens?|nationals?|"
    r"applicants?|couples?|families|family|parents?|partners?|drivers?|riders?|shoppers?|"
    r"leute|menschen|kunden|fahrgäste|personnes|clients|gens|personas|clientes|gente|persone|clienti"
)
_GROUP = re.compile(
    rf"(?i)\b(?:(?:{_GROUP_ADJECTIVES})[\s,]+(?:(?:and|or|und|oder|et|ou|y|o|e)\s+)?)*"
    rf"(?:(?:{_GROUP_ADJECTIVES})\s+(?:{_PEOPLE})|{_GROUP_NOUNS})\b"
)
GROUP_STAND_IN = "people"
# A mild insult word before a thing ("this stupid printer", "the damn app"): frustration
# with an object insults no one, so the word is dropped before both classifiers read the
# sentence (profanity-check fires on "stupid" wherever it stands). Before a person or a
# role ("the stupid agent", "you useless clown") it stays, and so do strong swear words.
_PERSON_WORDS = (
    rf"{_PEOPLE}|you|u|ya|agents?|support|team|staff|guy|guys|man|woman|men|women|idiots?|"
    r"developers?|engineers?|designers?|managers?|boss|owner|bot|assistant|operator|person|kid|"
    r"girl|boy|lady|him|her|them|company|bank|people"
)
_OBJECT_MILD = re.compile(
    r"(?i)\b(this|that|the|these|those|my|our|your)\s+"
    r"(?:stupid|dumb|damn|damned|crappy|silly|useless|ridiculous|annoying|bloody|freaking|stinking|lousy)\s+"
    rf"(?!(?:{_PERSON_WORDS})\b)(?=[a-z])"
)


def neutralise_groups(text: str) -> str:
    """``text`` with each group of people (by age, disability, religion, origin, ethnicity,
    gender or orientation) replaced by "people": "Muslim passengers may use the prayer
    room" is judged as "people may use the prayer room", "Immigrants are vermin" as
    "people are vermin". Slurs and the abuse lexicons are never replaced. Pure regex, no model."""
    return _GROUP.sub(GROUP_STAND_IN, text)


def neutralise_object_frustration(text: str) -> str:
    """``text`` without a mild insult word aimed at a thing: "The stupid scanner jams" is
    read as "The scanner jams"; "the stupid agent" and strong swear words are kept."""
    return _OBJECT_MILD.sub(lambda m: m.group(1) + " ", text)


# ---------------------------------------------------------------------------------------
# Profanity.
# ---------------------------------------------------------------------------------------


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def calibrated_profanity(raw: float) -> float:
    """Profanity-check's probability moved so that only confident detections pass 0.5."""
    return 1.0 / (1.0 + math.exp(-PROFANITY_SLOPE * (_logit(raw) - _logit(PROFANITY_MIDPOINT))))


def profanity(texts: Sequence[str]) -> list[float]:
    """Calibrated profanity-check probability per text, raised for unambiguous swear words.

    Callers pass texts whose names are already neutralised (:func:`neutralise_names`).
    """
    if not texts:
        return []
    from ragate_core.profanity import predict_prob

    raw = predict_prob(list(texts))
    return [
        max(
            calibrated_profanity(float(p)),
            STRONG_PROFANITY_PROBABILITY if STRONG_PROFANITY.search(t) else 0.0,
        )
        for t, p in zip(texts, raw)
    ]


# ---------------------------------------------------------------------------------------
# The prototype classifier.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One labeled prototype text (``label`` 1 = toxic, 0 = clean; ``kind`` of toxicity)."""

    text: str
    label: int
    kind: str


def load_seeds(path: Path = SEEDS_PATH) -> list[Seed]:
    """The prototype texts (``text``, ``label`` 1 = toxic, ``kind``), one JSON object a line."""
    seeds = []
    for number, row in seed_rows(path):
        try:
            seeds.append(Seed(str(row["text"]), int(row["label"]), str(row.get("kind", ""))))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: a seed needs text and label (0 or 1): {exc}") from exc
    labels = {s.label for s in seeds}
    if labels != {0, 1}:
        raise ValueError(f"{path}: the seeds need both toxic (1) and clean (0) examples, found {labels}")
    return seeds


def _top_k_mean(similarities: np.ndarray, k: int) -> np.ndarray:
    """Row-wise mean of the k largest values."""
    k = min(k, similarities.shape[1])
    return np.sort(similarities, axis=1)[:, -k:].mean(axis=1)


class StoredFit(NamedTuple):
    """The seeds' logistic as stored with their vectors: valid for the margins whose
    :func:`logistic_fit_key` is ``key``."""

    key: str
    slope: float
    intercept: float


def logistic_fit_key(margin: np.ndarray, labels: np.ndarray) -> str:
    """What a stored logistic is the fit of (sha256): :data:`LOGISTIC_C` and the exact
    margins (float64) and labels, in order."""
    digest = hashlib.sha256(f"C={LOGISTIC_C!r}".encode())
    digest.update(np.ascontiguousarray(margin, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def stored_seed_fit(path: Path = SEED_VECTORS_PATH) -> StoredFit | None:
    """The logistic stored in the seed-vector file, or None (missing, unreadable, or a file
    written before fits were stored)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            slope, intercept = (float(v) for v in data["fit"])
            return StoredFit(str(data["fit_key"]), slope, intercept)
    except (OSError, KeyError, ValueError):
        return None


class PrototypeClassifier:
    """Nearest-prototype toxicity over sentence embeddings, calibrated on its own seeds."""

    def __init__(
        self,
        seeds: Sequence[Seed],
        embed: Embed,
        vectors: np.ndarray | None = None,
        fitted: StoredFit | None = None,
    ) -> None:
        """``vectors``: the seeds' embeddings when already known (one row per seed, as
        ``embed`` gives them: :func:`stored_seed_vectors`); otherwise they are embedded.
        ``fitted``: a stored logistic (:func:`stored_seed_fit`), used only when its key is
        that of the margins these vectors give; otherwise the logistic is fitted."""
        self._embed = embed
        self.seeds = list(seeds)
        if vectors is None:
            vectors = embed([s.text for s in self.seeds])
        raw = np.asarray(vectors, dtype=np.float64)
        if raw.shape[0] != len(self.seeds):
            raise ValueError(f"{raw.shape[0]} seed vectors for {len(self.seeds)} seeds")
        labels = np.array([s.label for s in self.seeds])
        # The shared "support-desk text" directions: leading right singular vectors of the
        # (uncentred) clean seeds, the first of which is their mean direction.
        _, _, vt = np.linalg.svd(raw[labels == 0], full_matrices=False)
        self._topic = vt[:TOPIC_DIRECTIONS].T
        vectors = self._project(raw)
        self._toxic = vectors[labels == 1]
        self._clean = vectors[labels == 0]
        self._toxic_kinds = [s.kind for s in self.seeds if s.label == 1]
        self.slope, self.intercept = self._fit(vectors, labels, fitted)

    def _project(self, vectors: np.ndarray) -> np.ndarray:
        """Remove the topic directions and renormalise, so similarity measures tone, not topic."""
        rest = vectors - (vectors @ self._topic) @ self._topic.T
        return rest / np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-9)

    def _fit(self, vectors: np.ndarray, labels: np.ndarray, fitted: StoredFit | None) -> tuple[float, float]:
        """A 1-D logistic on leave-one-out margins: each seed is scored without itself.

        Sets ``fit_key`` (:func:`logistic_fit_key` of the margins). When ``fitted`` has that
        key its slope and intercept are returned (scikit-learn's fit of the same margins,
        stored by :func:`write_seed_vectors`), so scikit-learn is not imported."""
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        to_toxic = np.where(labels[None, :] == 1, sims, -np.inf)
        to_clean = np.where(labels[None, :] == 0, sims, -np.inf)
        margin = _top_k_mean(to_toxic, TOP_K) - _top_k_mean(to_clean, TOP_K)
        # Where a fragment too short to carry tone is pulled to: a typical clean text.
        self.clean_margin = float(np.median(margin[labels == 0]))
        self.fit_key = logistic_fit_key(margin, labels)
        if fitted is not None and fitted.key == self.fit_key:
            return fitted.slope, fitted.intercept
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=LOGISTIC_C).fit(margin[:, None], labels)
        return float(model.coef_[0, 0]), float(model.intercept_[0])

    def predict(self, texts: Sequence[str]) -> list[tuple[float, str]]:
        """Per text: the probability that it is toxic, and the kind of toxicity it is closest to."""
        if not texts:
            return []
        vectors = self._project(np.asarray(self._embed(list(texts)), dtype=np.float64))
        to_toxic = vectors @ self._toxic.T
        margin = _top_k_mean(to_toxic, TOP_K) - _top_k_mean(vectors @ self._clean.T, TOP_K)
        # A fragment of a few words ("Trash", "Daily digest") carries little tone and lands
        # anywhere once the topic is removed, so its margin is pulled towards the typical
        # clean seed's, not towards 0: a margin of 0 is the logistic's undecided point
        # (about 0.37), too near any gate's threshold for a "No." or "$0." to be judged on.
        weight = np.minimum(1.0, np.array([len(t.split()) for t in texts]) / FULL_WEIGHT_WORDS)
        weight = weight**SHRINK_POWER
        margin = weight * margin + (1.0 - weight) * self.clean_margin
        probs = 1.0 / (1.0 + np.exp(-(self.slope * margin + self.intercept)))
        return [(float(p), self._kind(row)) for p, row in zip(probs, to_toxic)]

    def _kind(self, similarities: np.ndarray) -> str:
        """The kind with the most similarity among the k nearest toxic seeds (a vote, not one seed)."""
        votes: dict[str, float] = {}
        for i in np.argsort(similarities)[-TOP_K:]:
            votes[self._toxic_kinds[i]] = votes.get(self._toxic_kinds[i], 0.0) + float(similarities[i])
        return max(votes, key=lambda kind: votes[kind])


def seed_vectors_key(texts: Sequence[str], model_name: str) -> str:
    """What a seed-vector file is valid for: the weights (``MiniLMEncoder.name``) and the
    exact texts embedded, in order (sha256)."""
    digest = hashlib.sha256(model_name.encode("utf-8"))
    for text in texts:
        digest.update(b"\0" + text.encode("utf-8"))
    return digest.hexdigest()


def stored_seed_vectors(
    texts: Sequence[str], encoder: Any, path: Path = SEED_VECTORS_PATH
) -> np.ndarray | None:
    """The shipped vectors of ``texts`` (float32, one row per text) when they are exactly what
    ``encoder`` computes, else None (the caller embeds the texts).

    Used only when the file's key (:func:`seed_vectors_key`) names the same weights and the
    same texts, and :data:`SEED_VECTOR_CHECKS` of its rows (the shortest text, the longest,
    two between) re-embedded here come out bit for bit the same: a text's vector does not
    depend on what it is encoded with (:mod:`ragate_core.embeddings`), so a torch build or
    CPU that computes other vectors shows in any of them. A missing or unreadable file is
    treated as stale.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            key, vectors = str(data["key"]), np.array(data["vectors"])
    except (OSError, KeyError, ValueError):
        return None
    if not texts or key != seed_vectors_key(texts, encoder.name) or vectors.shape[0] != len(texts):
        return None
    by_length = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    picks = sorted(
        {by_length[round(j * (len(texts) - 1) / (SEED_VECTOR_CHECKS - 1))] for j in range(SEED_VECTOR_CHECKS)}
    )
    fresh = np.asarray(encoder.encode([texts[i] for i in picks]))
    if fresh.dtype != vectors.dtype or not np.array_equal(fresh, vectors[picks]):
        return None
    return vectors


def detector_seeds(seeds_path: Path = SEEDS_PATH) -> list[Seed]:
    """The seeds as :class:`ToxicityDetector` reads them: groups of people neutralised, as
    in the texts it judges (:func:`neutralise_groups`)."""
    return [Seed(neutralise_groups(s.text), s.label, s.kind) for s in load_seeds(seeds_path)]


def detector_seed_texts(seeds_path: Path = SEEDS_PATH) -> list[str]:
    """The texts :class:`ToxicityDetector` embeds for its seeds (groups neutralised)."""
    return [s.text for s in detector_seeds(seeds_path)]


def write_seed_vectors(seeds_path: Path = SEEDS_PATH, path: Path = SEED_VECTORS_PATH) -> Path:
    """Embed the seeds with the packaged MiniLM and write them to ``path`` with their key:
    run after editing the seed file (``tests/test_first_score_seed_vectors.py`` fails until then).

        python -c "from ragate_core.toxicity import write_seed_vectors; write_seed_vectors()"
    """
    from ragate_core.embeddings import MiniLMEncoder

    encoder = MiniLMEncoder()
    seeds = detector_seeds(seeds_path)
    texts = [s.text for s in seeds]
    vectors = np.asarray(encoder.encode(texts))
    fitted = PrototypeClassifier(seeds, encoder.encode, vectors)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        key=np.array(seed_vectors_key(texts, encoder.name)),
        vectors=vectors,
        fit_key=np.array(fitted.fit_key),
        fit=np.array([fitted.slope, fitted.intercept]),
    )
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------
# The detector.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgment:
    """Why a text got its toxicity value: the worst piece and what each model said of it.

    ``sentence`` is the original sentence; ``piece`` the (name-neutralised) sentence or
    window that scored highest.
    """

    value: float
    sentence: str
    piece: str
    prototype: float
    profanity: float
    kind: str


class ToxicityDetector:
    """The probability that a text is toxic, per text (its worst sentence or window).

    Models load on first use (MiniLM, the seeds, spaCy through :mod:`ragate_core.pii`),
    once per instance even under threads.
    """

    def __init__(
        self,
        seeds_path: Path = SEEDS_PATH,
        embed: Embed | None = None,
        neutralise: Callable[[Sequence[str]], list[str]] | None = neutralise_names,
    ) -> None:
        self._seeds_path = seeds_path
        self._embed = embed
        self._neutralise = neutralise
        self._prototypes: PrototypeClassifier | None = None
        self._lock = threading.Lock()

    def classifier(self) -> PrototypeClassifier:
        """The prototype classifier (embeds the seeds on first use)."""
        if self._prototypes is None:
            with self._lock:
                if self._prototypes is None:
                    seeds = detector_seeds(self._seeds_path)
                    embed, vectors = self._embed, None
                    if embed is None:
                        from ragate_core.embeddings import default_encoder

                        encoder = default_encoder()
                        embed = encoder.encode
                        vectors = stored_seed_vectors([s.text for s in seeds], encoder)
                    self._prototypes = PrototypeClassifier(seeds, embed, vectors, stored_seed_fit())
        return self._prototypes

    def neutral(self, texts: Sequence[str]) -> list[str]:
        """``texts`` with names replaced by stand-ins (kept without a neutraliser) and groups
        of people by "people" (:func:`neutralise_groups`)."""
        named = self._neutralise(texts) if self._neutralise is not None else list(texts)
        return [neutralise_object_frustration(neutralise_groups(t)) for t in named]

    def judge(self, texts: Sequence[str]) -> list[Judgment]:
        """The toxicity judgment of each text (its worst sentence or window)."""
        if self._neutralise is neutralise_names:
            start_name_reader()  # spaCy loads in the worker while the classifier loads here
        classifier = self.classifier()
        per_text = [sentences(t) or ([t.strip()] if t.strip() else []) for t in texts]
        originals = list(dict.fromkeys(s for group in per_text for s in group))
        neutral = dict(zip(originals, self.neutral(originals)))
        unique = list(dict.fromkeys(neutral.values()))
        pieces = list(dict.fromkeys([*unique, *(w for s in unique for w in windows(s))]))
        proto = dict(zip(pieces, classifier.predict(pieces)))
        profane = dict(zip(unique, profanity(unique)))
        out = []
        for group in per_text:
            best = Judgment(0.0, "", "", 0.0, 0.0, "")
            for original in group:
                sentence = neutral[original]
                p_prof = profane[sentence]
                if (
                    FOREIGN_ABUSE.search(original)  # on the original: "Arschloch" is no name
                    or FOREIGN_HATE.search(neutralise_groups(original))
                    or _insults_reader(sentence)
                ):
                    p_prof = max(p_prof, STRONG_PROFANITY_PROBABILITY)
                p_sentence, _ = proto[sentence]
                for piece in [sentence, *windows(sentence)]:
                    p_proto, kind = proto[piece]
                    # A window is a fragment out of context ("...and you'll see it in 3"):
                    # it speaks only together with its sentence, so the two are averaged.
                    p_proto = (p_proto + p_sentence) / 2 if piece != sentence else p_proto
                    value = max(p_proto, p_prof)
                    if value > best.value or not best.piece:
                        fired = kind if p_proto >= p_prof else "profanity"
                        piece_fired = piece if p_proto >= p_prof else sentence
                        best = Judgment(value, original, piece_fired, p_proto, p_prof, fired)
            out.append(best)
        return out


@functools.cache
def shared_detector() -> ToxicityDetector:
    """One :class:`ToxicityDetector` per process (the rails and the metric share its models)."""
    return ToxicityDetector()


__all__ = [
    "FOREIGN_ABUSE",
    "FOREIGN_HATE",
    "GROUP_STAND_IN",
    "HATE",
    "INSULT",
    "INSULT_WORDS",
    "SEEDS_PATH",
    "SEED_VECTORS_PATH",
    "STRONG_PROFANITY",
    "TOXIC_REQUEST",
    "Judgment",
    "PrototypeClassifier",
    "Seed",
    "StoredFit",
    "ToxicityDetector",
    "calibrated_profanity",
    "detector_seed_texts",
    "detector_seeds",
    "load_seeds",
    "logistic_fit_key",
    "neutralise_groups",
    "neutralise_names",
    "neutralise_object_frustration",
    "profanity",
    "seed_vectors_key",
    "sentences",
    "shared_detector",
    "stand_in_spans_of",
    "start_name_reader",
    "stored_seed_fit",
    "stored_seed_vectors",
    "toxic_pattern",
    "windows",
    "write_seed_vectors",
]
