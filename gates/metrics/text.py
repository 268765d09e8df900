"""Small text tools shared by the offline metrics: sentences, claims, tokens, numbers."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from ragate_core.text import split_sentences

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
# What a declining answer says does not cover the question: the documentation, and the
# question itself (shared with answer_correctness's decline patterns).
_DOCS = (
    r"(documentation|documents|docs|context|contexts|sources|passages|texts?|materials?|"
    r"information( (provided|given|available|i have))?|knowledge base|faq|manual|guides?)"
)
_THE_QUESTION = (
    r"(?:(this|that|it|these|those|them)(?=\s*([.,;:!?)]|$))|"
    r"(your|the|this|that) (question|topic|request|case)|(such|any|this|that) (information|details|case))"
)
# "Not covered" declines only about the documentation or the question ("this is not covered
# in the documentation", "your question is not covered"): "Flood damage is not covered by the
# basic policy" is an answer.
_NOT_COVERED = (
    rf"(not|\w+n't) covered (in|by) (the |my |our |any )?{_DOCS}|"
    r"(your|this|that|the) (question|topic|request) (is not|was not|isn't|wasn't|'s not) covered"
)
# "I can't help with that question", "I'm not able to help you with this": a refusal.
_CANT_HELP = r"i ?(can(no|'|’)t|am unable to|'m unable to|am not able to|'m not able to) help (you )?with"
_ABSTAIN = re.compile(
    rf"\b({_CANT_HELP}|i (do not|don't|dont) know|i'm not sure|i am not sure|"
    r"i (do not|don't|dont) have (any |the )?(information|details|data|specifics|documentation)|"
    r"(do|does|did) ?(not|n't) (seem to )?(mention|say|specify)\b|"
    # "does not cover / include / contain ..." declines only when what does not is the
    # documentation, or what is not covered is the question ("it does not cover that."):
    # "No, the insurance does not cover accident damage" is an answer.
    rf"{_DOCS} (do|does|did) ?(not|n't) (seem to )?(cover|include|contain|list|state|provide)\b|"
    rf"(do|does|did) ?(not|n't) (seem to )?(cover|include|contain|list|state|provide) {_THE_QUESTION}|"
    r"(no|any) information (about|on)|not (mentioned|specified|documented)|"
    rf"{_NOT_COVERED}|"
    r"(can(no|')t|could(n't| not)|unable to|wasn't able to) (find|tell|confirm|say|answer|locate|see)|"
    r"not something i can (confirm|answer|say)|not able to (answer|find|confirm)|isn't mentioned|"
    r"there is no (mention|information)|outside (of )?(the|my) (documentation|knowledge))",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    """Split prose into sentences (Markdown headings and list items are their own)."""
    return split_sentences(text, _SENTENCE_END)


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
    if len(parts[0].split()) < 3:
        return [clause]  # "Normal wear and tear is never covered": a two-word start is a noun
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


# A comma before one or two final digits is a decimal comma ("0,7 mg/l", "12,50 €"); before
# three it groups thousands ("1,000").
_DECIMAL_COMMA = re.compile(r"\d+,\d{1,2}")


def plain_number(raw: str) -> str:
    """A number as written, its commas read: "1,000" -> "1000", "0,7" -> "0.7"."""
    return raw.replace(",", ".") if _DECIMAL_COMMA.fullmatch(raw) else raw.replace(",", "")


def _number_value(raw: str) -> str:
    """:func:`plain_number` without trailing decimal zeros ("19.00" -> "19", "0,70" -> "0.7")."""
    value = plain_number(raw)
    return value.rstrip("0").rstrip(".") if "." in value else value


def numbers(text: str) -> set[str]:
    """Numbers written as digits or words, normalised ("1,000" -> "1000", "19.00" -> "19",
    "0,7" -> "0.7")."""
    found = {_number_value(raw) for raw in _NUMBER.findall(text)}
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


def word_similarity(words: list[str], candidates: list[str]) -> list[float]:
    """For each word, its best MiniLM cosine similarity to any candidate word.

    One encoder call; the process-wide embedding cache answers words seen before.
    """
    from ragate_core.embeddings import default_encoder

    if not candidates:
        return [0.0] * len(words)
    if not words:
        return []
    vectors = default_encoder().encode(list(words) + list(candidates))
    matrix = vectors[len(words) :]
    return [float((matrix @ vectors[i]).max()) for i in range(len(words))]


# --- Language-aware helpers (faithfulness v2) -------------------------------------------
# Rules that only hold for one language (capitalisation as a name signal, a stop-word list,
# a suffix stripper) fire only for text detected as that language. Chinese and Japanese
# have no spaces: their text is read as overlapping character pairs.

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_L = f"[^\\W\\d_{_CJK_CLASS}]"  # a letter of an alphabet (not a CJK character)
_LD = f"[^\\W_{_CJK_CLASS}]"  # ... or a digit
_COMPOUND = re.compile(f"{_L}{_LD}*(?:-{_LD}+)+")
_ANY_TOKEN = re.compile(f"[{_CJK_CLASS}]+|\\d+{_L}+{_LD}*|{_L}{_LD}*(?:['’]{_L}+)*|\\d[\\d,]*(?:\\.\\d+)?")

_STOP_LISTS = {
    "en": STOPWORDS,
    "de": frozenset(
        """
        der die das den dem des ein eine einer eines einem einen und oder aber in im ins an am auf aus
        bei mit nach von vom zu zum zur für über unter vor um ist sind war waren wird werden wurde
        wurden sein bin bist hat haben habe hatte kann können muss müssen darf soll sollen es er sie
        ich du wir ihr ihnen ihr ihre mein meine dein sich man wie was wer wo wann warum welche welcher
        welches auch nur noch schon sehr als so dass da dann wenn ob bis pro je ja doch mal alle jede
        jeder jedes diese dieser dieses nein
        """.split()
    ),
    "fr": frozenset(
        """
        le la les l un une des du de d et ou mais en dans au aux à a sur sous par pour avec sans est
        sont été être était ont avez avons ai as il elle ils elles on je j tu nous vous me m te t se s
        ce cet cette ces qui que qu quoi quel quelle quels quelles où quand comment y ne son sa ses leur
        leurs mon ma mes votre vos notre nos plus très aussi si peut puis-je faut combien chaque oui
        """.split()
    ),
    "es": frozenset(
        """
        el la los las un una unos unas de del al a en y o u pero con sin por para sobre es son era fue
        ser está están ha han he hay tiene tienen puede puedo se le les lo me te nos su sus mi tu que
        qué cual cuál cuáles como cómo donde dónde cuando cuándo cuánto cuántos cuánta cuántas quien
        quién muy más también si sí ya cada este esta estos estas ese esa
        """.split()
    ),
    # Chinese: function characters and pairs that carry no content.
    "zh": frozenset(
        "的 了 是 在 吗 呢 吧 啊 和 与 或 也 都 就 会 能 可 以 可以 "
        "我 你 他 她 它 们 这 那 个 多少 什么 哪 哪里 怎么".split()
    ),
}
_NEGATOR_LISTS = {
    "en": NEGATORS,
    "de": frozenset("nicht kein keine keinen keinem keiner keines nie niemals nein weder".split()),
    # "ne ... que" restricts ("n'est obligatoire que pour"): only "pas", "jamais"... negate.
    "fr": frozenset("pas jamais aucun aucune non ni rien".split()),
    "es": frozenset("no nunca ningún ninguno ninguna ni jamás tampoco".split()),
    "zh": frozenset("不 没 没有 無 无 未 非 别 勿 不是 不能 不会 不可以 不需要 不包含".split()),
}
# A leading yes or no answers a yes/no question.
_YES = {
    "en": ("yes", "yeah", "yep", "correct", "right", "sure", "indeed"),
    "de": ("ja", "genau", "richtig"),
    "fr": ("oui", "si", "exact", "exactement"),
    "es": ("sí", "si", "correcto", "claro"),
}
_NO = {"en": ("no", "nope", "incorrect"), "de": ("nein",), "fr": ("non",), "es": ("no",)}
_ZH_YES = ("是的", "是", "对", "可以", "会", "有", "需要", "包含", "能")
_ZH_NO = ("不是", "不对", "不可以", "不会", "没有", "不需要", "不包含", "不能", "不", "没", "否")
# Polar (yes/no) questions open with a verb (en, de), use "est-ce que" or an inverted
# pronoun (fr), or lack a question word (es); Chinese ones end in 吗 or ask 是否/能否.
_EN_AUX = frozenset(
    "is are was were do does did can could will would should has have had may must shall am isn't aren't "
    "doesn't don't didn't can't won't".split()
)
_DE_AUX = frozenset(
    "ist sind war waren kann können muss müssen darf dürfen gibt hat haben habe wird werden soll "
    "sollen bekomme bekommt brauche braucht spare sparen bin".split()
)
_ES_WH = frozenset(
    "qué cuál cuáles cómo dónde cuándo cuánto cuánta cuántos cuántas quién quiénes por".split()
)
# The same words as tuples, for :func:`_folded` (a hashable, ordered key).
_DE_AUX_WORDS = tuple(sorted(_DE_AUX))
_ES_WH_WORDS = tuple(sorted(_ES_WH))
_FR_WH = frozenset("que qu quoi quel quelle quels quelles où quand comment combien pourquoi qui".split())
# Whole-word negator matches for Latin text; leading yes/no is stripped first.
_ABSTAIN_OTHER = re.compile(
    r"(\bI can only (help|answer) (with )?questions\b|"
    r"ich weiß (es )?nicht|keine informationen|je ne sais pas|aucune information|"
    r"no lo sé|no tengo información|no (hay|tengo) datos|我不知道|没有相关信息|无法回答)",
    re.IGNORECASE,
)


@lru_cache(maxsize=65536)  # words and question texts repeat across a batch
def fold(text: str) -> str:
    """Lower-case and strip accents ("Rückerstattung" -> "ruckerstattung")."""
    if text.isascii():  # NFKD leaves ASCII as it is and it has no combining marks
        return text.lower()
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=64)
def _folded(words: tuple[str, ...]) -> frozenset[str]:
    """:func:`fold` of each of a constant list of words, computed once."""
    return frozenset(fold(w) for w in words)


@lru_cache(maxsize=4096)  # questions and answers repeat across a batch's cases
def language(text: str) -> str:
    """A best guess at the language of ``text``: "zh" for Chinese/Japanese script, "en",
    "de", "fr" or "es" by their function words, or "und" (undetermined)."""
    if not text:
        return "und"
    cjk = len(_CJK.findall(text))
    if cjk and cjk >= 0.2 * len(re.sub(r"\s", "", text)):
        return "zh"
    words_ = Counter(w.lower() for w in _LATIN_WORD.findall(text))
    if not words_:
        return "und"
    hits = {}
    for lang in ("en", "de", "fr", "es"):
        stops = _STOP_LISTS[lang]
        hits[lang] = sum(n for w, n in words_.items() if w in stops)
    # Accented letters tip near ties ("für", "à", "¿").
    lowered = text.lower()
    if re.search(r"[äöüß]", lowered):
        hits["de"] += 1
    if re.search(r"[àâçèêëîïôûù]", lowered):
        hits["fr"] += 1
    if re.search(r"[ñ¿¡]|[áíóú]", lowered):
        hits["es"] += 1
    best = max(hits, key=lambda k: hits[k])
    return best if hits[best] >= 1 else "und"


_SUFFIXES = {
    "de": ("ungen", "ern", "en", "er", "es", "em", "e", "n", "s"),
    "fr": (
        "ements",
        "ement",
        "ations",
        "ation",
        "euses",
        "euse",
        "eurs",
        "eur",
        "ées",
        "ée",
        "és",
        "es",
        "e",
        "s",
        "x",
    ),
    "es": ("aciones", "ación", "mente", "es", "as", "os", "a", "o", "s"),
}


@lru_cache(maxsize=65536)
def key(word: str, lang: str) -> str:
    """The matching key of one word: numbers as they are; English words stemmed as
    :func:`stem` does; German, French and Spanish words lightly suffix-stripped and cut to
    seven letters (their inflections differ at the end), accents folded."""
    if _NUMBER.fullmatch(word):
        return plain_number(word)
    word = fold(word).strip("'-")
    if lang == "en":
        return stem(re.sub(r"'s$", "", word))
    for suffix in _SUFFIXES.get(lang, ()):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:7]


def raw_tokens(text: str) -> list[str]:
    """Words, numbers and runs of CJK characters, in order."""
    return _ANY_TOKEN.findall(text.replace("’", "'"))


def keys(text: str, lang: str) -> list[str]:
    """Content keys of ``text`` in language ``lang`` (see :func:`_keys`; a fresh list)."""
    return list(_keys(text, lang))


@lru_cache(maxsize=65536)  # texts repeat across a batch's cases (questions, context units)
def _keys(text: str, lang: str) -> tuple[str, ...]:
    """Content keys of ``text`` in language ``lang``: matching keys of the words that are
    not stop words or negators; CJK runs become overlapping character pairs (a single
    character stays as it is). Numbers are kept (normalised as :func:`numbers` does)."""
    stops = _STOP_LISTS.get(lang, frozenset())
    negs = _NEGATOR_LISTS.get(lang, frozenset())
    out: list[str] = []
    # A hyphenated compound is also a key of its own: "Pro-Tarif" is not "Business-Tarif"
    # even where "pro" is a stop word.
    for compound in _COMPOUND.findall(text):
        if not _NUMBER.fullmatch(compound):
            out.append(key(compound.lower(), lang))
    for token in raw_tokens(text):
        if _CJK.match(token):
            # Function characters cut the run; pairs never straddle them.
            for run in re.split(
                r"[的了是在吗呢吧啊和与或也都就会能我你他她它们这那个不没無无未非别勿]", token
            ):
                if len(run) == 1:
                    out.append(run)
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
            continue
        if _NUMBER.fullmatch(token):
            out.extend(numbers(token))
            continue
        low = token.lower().replace("’", "'")
        if low in stops or low in negs or (lang == "en" and low in _NUMBER_WORDS):
            continue
        if lang in ("fr", "es", "und") and "'" in low:  # l'offre, d'audit
            low = low.split("'", 1)[1]
            if not low or low in stops:
                continue
        k = key(low, lang)
        if k:
            out.append(k)
    return tuple(out)


# A quantity: a number that is not part of an identifier ("AES-256", "S3", "X-42").
_QUANTITY = re.compile(r"(?<![A-Za-z\d.,])(?<![A-Za-z]-)\d[\d,]*(?:\.\d+)?")


def numbers_in(text: str, lang: str) -> set[str]:
    """Numbers in digits (any language) and, for English, in words."""
    found = {_number_value(raw) for raw in _QUANTITY.findall(text)}
    if lang == "en":
        for word in words(text):
            if word in _NUMBER_WORDS:
                found.add(_NUMBER_WORDS[word])
    return found


_LATIN_ONLY = re.compile(r"(?<![\w])[A-Za-zÀ-ÖØ-öø-ÿ]+(?:['’][A-Za-zÀ-ÖØ-öø-ÿ]+)*")


def _capitalised_words(text: str) -> list[str]:
    """The words :func:`capitalised` finds, as written (not stemmed)."""
    out = []
    for sentence in sentences(text):
        for i, token in enumerate(sentence.split()):
            word = token.strip(".,;:!?\"'()[]*`")
            if not _WORDLIKE.fullmatch(word) or word.lower() in STOPWORDS:
                continue
            digits = any(c.isdigit() for c in word) and word[:1].isalpha()
            if (i > 0 and word[:1].isupper()) or any(c.isupper() for c in word[1:]) or digits:
                out.append(re.sub(r"['’]s$", "", word))
    return out


def names_in(text: str, lang: str) -> set[str]:
    """Name keys of ``text`` (see :func:`_names_in`; a fresh set)."""
    return set(_names_in(text, lang))


@lru_cache(maxsize=65536)
def _names_in(text: str, lang: str) -> frozenset[str]:
    """Name keys: in English, capitalised words inside a sentence (see :func:`capitalised`);
    in every Latin-script language, words that mix case or letters and digits ("macOS", "S3")."""
    out = set()
    if lang == "en":
        out |= {k for name in _capitalised_words(text) for k in keys(name, "en")}
    for token in _LATIN_ONLY.findall(text.replace("’", "'")):
        token = token.split("'")[-1]  # l'Exposition -> Exposition
        if any(c.isupper() for c in token[1:]):
            out.update(keys(token, lang))
    for token in re.findall(r"\b[A-Za-z]+\d[A-Za-z0-9]*|\b\d+[A-Za-z]+[A-Za-z0-9]*", text):
        out.add(key(token.lower(), lang))
    return frozenset(out)


@lru_cache(maxsize=65536)
def negated_in(text: str, lang: str) -> bool:
    """Whether a statement in ``lang`` is negated (a leading yes/no is not part of it)."""
    body = strip_yes_no(text, lang)[1]
    if lang == "en":
        return negated(body)
    if lang == "zh":
        return any(n in body for n in _NEGATOR_LISTS["zh"])
    negs = _NEGATOR_LISTS.get(lang, frozenset())
    return any(w.lower() in negs for w in _LATIN_WORD.findall(body.replace("’", "'").replace("'", " ")))


def strip_yes_no(answer: str, lang: str) -> tuple[int, str]:
    """(+1 for a leading yes, -1 for a leading no, 0 for neither, the rest of the answer)."""
    text = answer.strip()
    if lang == "zh":
        for word in _ZH_NO:
            if text.startswith(word):
                return -1, text[len(word) :].lstrip("，,。.！! ")
        for word in _ZH_YES:
            if text.startswith(word) and (len(text) == len(word) or text[len(word)] in "，,。.！! "):
                return 1, text[len(word) :].lstrip("，,。.！! ")
        return 0, text
    match = re.match(r"^\s*[¡¿]?([^\W\d_]+)\b[\s,.!;:—–-]*", text)
    if match:
        first = fold(match.group(1))
        langs = [lang] if lang in _YES else ["en"]
        for code in langs:
            if first in _folded(_NO.get(code, ())):
                rest = text[match.end() :]
                # "No, ..." answers; "No one ..." or Spanish "No existe" is a statement.
                if match.group(0).rstrip() != match.group(1) or not rest:
                    return -1, rest
            if first in _folded(_YES.get(code, ())) and (
                match.group(0).rstrip() != match.group(1) or not text[match.end() :]
            ):
                return 1, text[match.end() :]
    return 0, text


def polar_question(question: str, lang: str) -> bool:
    """Whether ``question`` asks for a yes or a no."""
    q = question.strip()
    if lang == "zh":
        return q.rstrip("？?。 ").endswith(("吗", "嗎")) or any(
            w in q for w in ("是否", "能否", "可否", "有没有", "是不是", "会不会")
        )
    first = fold((_LATIN_WORD.findall(q) or [""])[0])
    if lang == "en" or lang == "und":
        return first in _EN_AUX
    if lang == "de":
        return first in _folded(_DE_AUX_WORDS)
    if lang == "fr":
        low = fold(q)
        if low.startswith("est-ce que") or low.startswith("est ce que"):
            return True
        words_ = {fold(w) for w in _LATIN_WORD.findall(q)}
        return bool(re.search(r"-(?:t-)?(?:il|elle|ils|elles|on|je|vous|nous|tu)\b", low)) and not (
            words_ & _FR_WH
        )
    if lang == "es":
        words_ = {fold(w) for w in _LATIN_WORD.findall(q)}
        return not (words_ & _folded(_ES_WH_WORDS))
    return False


def abstains_any(answer: str) -> bool:
    """:func:`abstains`, also for German, French, Spanish and Chinese phrasings."""
    return abstains(answer) or bool(_ABSTAIN_OTHER.search(answer))


_CLAUSE_ANY = re.compile(
    r"[;；，、]\s*|,\s+|\s+[—–]\s+|\s+(?:and|or|but|while|whereas|und|oder|aber|sowie|et|ou|mais|y|o|pero|mientras)\s+",
    re.IGNORECASE,
)


_CONDITION = re.compile(
    r"\s+(?=(?:if|unless|when|wenn|falls|sofern|si|cuando|quand|lorsque)\s)|(?=如果|除非)", re.IGNORECASE
)


def clauses_any(sentence: str) -> list[str]:
    """A sentence cut at clause boundaries and before conditions ("if", "wenn", "si")."""
    out = []
    for piece in _CLAUSE_ANY.split(sentence):
        out.extend(p.strip() for p in _CONDITION.split(piece or "") if p and p.strip())
    return out or [sentence]


# A disjunction joined under a negation is negated whole: "cannot create or edit tasks" denies
# editing too, "n'accepte pas les chèques ou les virements" the transfers.
_DISJUNCTION = re.compile(r"^\s+(?:or|nor|oder|noch|ou|ni|o|u)\s+$", re.IGNORECASE)


# A negated relative clause before the main clause's modal verb: "(Customers) who cannot pay
# in full (can set up a payment plan)". Its negation describes the subject, not the clause.
_NEGATED_RELATIVE = re.compile(
    r"\b(?:who|which|that)\s+(?:(?:do|does|did|are|is|was|were|have|has|had)\s+)?"
    r"(?:not|never|cannot|can't|won't|don't|doesn't|didn't|aren't|isn't|wasn't|weren't|haven't|hasn't)\b"
    r"[^,;]*?(?=\s+(?:can|could|may|might|must|should|will|would|shall)\s)",
    re.IGNORECASE,
)


def clause_polarities(sentence: str, lang: str) -> list[tuple[str, bool]]:
    """The clauses of :func:`clauses_any`, each with whether it is negated (:func:`negated_in`).

    A clause joined by "or" (or "nor"; "oder", "ou", "o" ...) to a negated clause before it
    is negated too: the negation covers the disjunction ("does not accept cheques or bank
    transfers"). "And", "but" and commas pass nothing on ("is not copied, but attachments
    are"; "does not include SSO and costs $19"). In English, a negated relative clause
    before the main verb only says who the clause is about: "Customers who cannot pay in
    full can set up a plan" affirms the plan.
    """
    out: list[tuple[str, bool]] = []
    pos = prev_start = 0
    negated_before = False
    separators = [*_CLAUSE_ANY.finditer(sentence), None]
    for match in separators:
        piece = sentence[pos : match.start() if match else len(sentence)]
        joined_by_or = pos > 0 and bool(_DISJUNCTION.match(sentence[prev_start:pos]))
        parts = [p.strip() for p in _CONDITION.split(piece or "") if p and p.strip()]
        for i, part in enumerate(parts):
            relative = _NEGATED_RELATIVE.search(part) if lang == "en" else None
            if relative:  # "Customers who cannot pay ... can set up a plan": the plan's polarity
                out.append((part, negated_in(part[: relative.start()] + part[relative.end() :], lang)))
                continue
            neg = negated_in(part, lang) or (i == 0 and joined_by_or and negated_before)
            out.append((part, neg))
        if parts:
            negated_before = out[-1][1]
        if match:
            prev_start, pos = match.start(), match.end()
    return out or [(sentence, negated_in(sentence, lang))]


def segments(sentence: str) -> list[str]:
    """A sentence cut into pieces that each carry at most one group of numbers: clause
    boundaries split it, and a piece without a number joins the next piece that has one
    (else the previous), so "On the Pro plan, the limit is 600" stays whole while
    "600 on Growth and 3,000 on Enterprise" becomes two."""
    pieces = [p.strip() for p in _CLAUSE_ANY.split(sentence) if p and p.strip()]
    out: list[str] = []
    pending = ""
    for piece in pieces:
        if _NUMBER.search(piece):
            out.append((pending + " " + piece).strip())
            pending = ""
        else:
            pending = (pending + " " + piece).strip()
    if pending:
        if out:
            out[-1] = out[-1] + " " + pending
        else:
            out.append(pending)
    return out or [sentence]


_SENTENCE_END_ANY = re.compile(
    r"(?<=[。！？])|(?<![A-Z][a-z]\.)(?<!\b[A-Za-z]\.)(?<!(?<![$€£¥])\b\d\.)(?<!(?<![$€£¥])\b\d\d\.)(?<=[.!?])\s+(?=[\"'(\[¿¡]?[^\W_a-z])|\n+"
)


def sentences_any(text: str) -> list[str]:
    """Sentences in any language: cut after CJK full stops, and after ".", "!" or "?"
    before a capital or a digit, but not after an ordinal ("am 9. November", though after
    a price: "$40. The") or an abbreviation ("Dr. Lind"); Markdown headings and list items are their own."""
    parts = []
    for piece in _SENTENCE_END_ANY.split(text):
        piece = re.sub(r"^\s*(?:#+|[-*•]|\d+[.)])\s+", "", piece or "").strip()
        if piece:
            parts.append(piece)
    return parts


# --- Numbers written as words, durations, opposites in other languages (faithfulness v3) ---

# Languages text2num reads; language() detects these four (and zh, whose digits are digits).
_SPELLED_LANGS = frozenset({"en", "de", "fr", "es"})
_SPELLED_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+|[^\w\s]")


class _Token:
    """A word for text2num's ``find_numbers`` (its Token protocol)."""

    __slots__ = ("word",)

    def __init__(self, word: str) -> None:
        self.word = word

    def text(self) -> str:
        return self.word

    def not_a_number_part(self) -> bool:
        return False

    def nt_separated(self, previous: _Token) -> bool:
        return False


@lru_cache(maxsize=65536)
def with_digits(text: str, lang: str) -> str:
    """``text`` with the cardinal numbers it spells out written as digits: "drei bis fünf
    Werktage" -> "3 bis 5 Werktage", "twenty-four months" -> "24 months", "quatre-vingt-dix"
    -> "90" (text2num's ``find_numbers``, en/de/fr/es). A lone "one"/"ein"/"un"/"una" stays
    a word (it is an article as often as a number), ordinals ("second", "zweite") and
    numbers already in digits are left as written; other languages come back unchanged."""
    if lang not in _SPELLED_LANGS or not re.search(r"[^\W\d_]", text):
        return text
    from text_to_num import find_numbers

    matches = list(_SPELLED_TOKEN.finditer(text))
    found = find_numbers([_Token(m.group()) for m in matches], lang, 2.0)
    out, last = [], 0
    for occ in found:
        span = matches[occ.start : occ.end]
        if occ.is_ordinal or not span or any(m.group().isdigit() for m in span):
            continue
        value = occ.value
        digits = str(int(value)) if value == int(value) else str(value)
        out.append(text[last : span[0].start()])
        out.append(digits)
        last = span[-1].end()
    out.append(text[last:])
    return "".join(out)


# Time units in days (a month is a twelfth of a year): "24-month" and "two years" are one
# duration. Business/working days are not calendar days ("5 Werktage" is not "5 Tage"):
# a qualifier between the number and the unit keeps the pattern from matching.
_DAYS_PER_UNIT = {
    **dict.fromkeys(("minute", "minutes", "minuten", "minuto", "minutos"), 1 / 1440),
    **dict.fromkeys(
        ("hour", "hours", "hr", "hrs", "stunde", "stunden", "heure", "heures", "hora", "horas"), 1 / 24
    ),
    **dict.fromkeys(("day", "days", "tag", "tage", "tagen", "tages", "jour", "jours", "dia", "dias"), 1.0),
    **dict.fromkeys(("week", "weeks", "woche", "wochen", "semaine", "semaines", "semana", "semanas"), 7.0),
    **dict.fromkeys(
        ("month", "months", "monat", "monate", "monaten", "monats", "mois", "mes", "meses"), 365.25 / 12
    ),
    **dict.fromkeys(
        ("year", "years", "jahr", "jahre", "jahren", "jahres", "an", "ans", "annee", "annees", "ano", "anos"),
        365.25,
    ),
}
_ONE = r"a|an|one|ein|eine|einen|einem|un|une|uno|una"
_UNITS = "|".join(sorted(_DAYS_PER_UNIT, key=len, reverse=True))
_DURATION = re.compile(rf"(?<![\w.,])(\d+(?:[.,]\d+)?|{_ONE})\s?-?\s?({_UNITS})\b")


def durations(text: str, lang: str) -> list[tuple[str, str, float]]:
    """The durations ``text`` states, as (number in digits, unit word, length in days):
    "24-month warranty" -> [("24", "month", 730.5)], "zwei Jahre" -> [("2", "jahre", 730.5)],
    "a year" -> [("1", "year", 365.25)]. Number words are read as :func:`with_digits` does."""
    out = []
    for number, unit in _DURATION.findall(fold(with_digits(text, lang))):
        one = re.fullmatch(_ONE, number) is not None
        value = 1.0 if one else float(number.replace(",", "."))
        out.append(("1" if one else number.replace(",", ""), unit, value * _DAYS_PER_UNIT[unit]))
    return out


def same_duration(a: float, b: float) -> bool:
    """Whether two lengths in days are one duration said in other units (2 years = 24 months
    = 730 days; 6 weeks is not 1.5 months): within 1.5%."""
    return abs(a - b) <= 0.015 * max(a, b)


# Opposite words in German, French and Spanish, as for English :data:`ANTONYMS` (forms
# listed: the suffix stripper does not unify every inflection).
_OTHER_ANTONYMS = {
    "de": """
    offen/geschlossen geöffnet/geschlossen öffnet/schließt öffnet/geschlossen geöffnet/schließt
    kostenlos/kostenpflichtig
    gratis/kostenpflichtig erlaubt/verboten inklusive/exklusive enthalten/ausgeschlossen
    aktiviert/deaktiviert aktivieren/deaktivieren möglich/unmöglich vorher/nachher früher/später
    mehr/weniger mindestens/höchstens minimum/maximum öffentlich/privat automatisch/manuell
    erforderlich/optional pflicht/optional immer/nie erste/letzte hinzufügen/entfernen
    größer/kleiner höher/niedriger länger/kürzer täglich/wöchentlich monatlich/jährlich
    verschlüsselt/unverschlüsselt sichtbar/unsichtbar unbegrenzt/begrenzt steigt/sinkt
    erhöht/gesenkt akzeptiert/abgelehnt erstattungsfähig/nicht-erstattungsfähig
    """,
    "fr": """
    ouvert/fermé ouverte/fermée ouverts/fermés ouvre/ferme ouvrent/ferment ouvre/fermé ouvert/ferme
    gratuit/payant
    gratuite/payante gratuits/payants autorisé/interdit autorisée/interdite inclus/exclu
    incluse/exclue activé/désactivé activée/désactivée disponible/indisponible
    possible/impossible avant/après minimum/maximum public/privé publique/privée
    automatique/manuel automatiquement/manuellement obligatoire/facultatif obligatoire/optionnel
    toujours/jamais premier/dernier première/dernière ajouter/supprimer supérieur/inférieur
    quotidien/hebdomadaire mensuel/annuel visible/invisible illimité/limité accepté/refusé
    acceptée/refusée remboursable/non-remboursable chiffré/non-chiffré
    """,
    "es": """
    abierto/cerrado abierta/cerrada abiertos/cerrados abre/cierra abren/cierran abre/cerrado abre/cerrada
    abren/cerrados abierto/cierra abierta/cierra gratis/pago
    gratuito/pagado gratuita/pagada permitido/prohibido permitida/prohibida incluido/excluido
    incluida/excluida activado/desactivado activada/desactivada disponible/indisponible
    posible/imposible antes/después mínimo/máximo público/privado pública/privada
    automático/manual automáticamente/manualmente obligatorio/opcional obligatoria/opcional
    siempre/nunca primero/último primera/última añadir/eliminar mayor/menor más/menos
    diario/semanal mensual/anual visible/invisible ilimitado/limitado aceptado/rechazado
    reembolsable/no-reembolsable cifrado/sin-cifrar
    """,
}


@lru_cache(maxsize=8)
def antonym_forms(lang: str) -> dict[str, frozenset[str]]:
    """Opposite words by word form (lower-case, accents folded) in ``lang``: English from
    :data:`ANTONYMS`, German, French and Spanish from their own lists. Looked up by form,
    not by matching key: "yearly"/"monthly" must not make "years" the opposite of "months"."""
    pairs = (
        [(a, b) for a, bs in ANTONYMS.items() for b in bs]
        if lang == "en"
        else [tuple(p.split("/")) for p in _OTHER_ANTONYMS.get(lang, "").split()]
    )
    out: dict[str, set[str]] = {}
    for a, b in pairs:
        out.setdefault(fold(a), set()).add(fold(b))
        out.setdefault(fold(b), set()).add(fold(a))
    return {k: frozenset(v) for k, v in out.items()}


def opposites_of(word: str, lang: str) -> frozenset[str]:
    """The listed opposites of ``word`` (a form of :func:`antonym_forms`, or an inflection
    whose matching key is itself a listed form: "opens" -> "open" -> {"closed"})."""
    forms = antonym_forms(lang)
    w = fold(word)
    return forms.get(w) or forms.get(key(w, lang), frozenset())


def word_keys(text: str, lang: str) -> set[str]:
    """The matching keys of every word of ``text``, stop words included ("vor", "après")."""
    return {key(w, lang) for w in word_forms(text)}


# "cannot be returned unless defective" says what "can only be returned if defective" says.
_EXCEPTION = re.compile(
    r"\b(?:unless|except (?:if|when|for)|es sei denn|außer (?:wenn|bei)|sauf (?:si|en cas)|à moins que|"
    r"a menos que|salvo (?:que|si)|excepto (?:si|cuando))\b",
    re.IGNORECASE,
)
_ONLY_IF = re.compile(
    r"\b(?:only (?:\w+ ){0,4}(?:if|when|with|for|after|within)|"
    r"nur (?:\w+ ){0,3}(?:wenn|bei|mit|nach|innerhalb)|"
    r"(?:seulement|uniquement) (?:\w+ ){0,3}(?:si|en cas|avec|pour|après)|"
    r"(?:solo|sólo|únicamente) (?:\w+ ){0,3}(?:si|cuando|con|para|después))\b",
    re.IGNORECASE,
)
_CONDITIONAL = re.compile(
    r"\b(?:if|when|provided|wenn|falls|sofern|si|lorsque|quand|cuando)\b", re.IGNORECASE
)


def restriction(text: str) -> str:
    """How ``text`` limits what it says: "exception" for a denial with an exception ("not
    ... unless", "nicht ... es sei denn"), "only" for an allowance under a condition ("only
    if", "nur wenn", "seulement si", "solo si"), "condition" for a plain condition ("if",
    "wenn", "si"), "" for none. An exception and an allowance under a condition say the same;
    so does a plain conditional allowance."""
    if _EXCEPTION.search(text):
        return "exception"
    if _ONLY_IF.search(text):
        return "only"
    if _CONDITIONAL.search(text):
        return "condition"
    return ""


def word_forms(text: str) -> list[str]:
    """Every word of ``text``, lower-case and accent-folded, compounds both whole and split."""
    return [fold(w) for w in _COMPOUND.findall(text) + _LATIN_WORD.findall(text) if w]


_CAPITAL_RUN = re.compile(
    r"(?<![\w-])[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ]?[a-zß-öø-ÿ]+)?"
    r"(?:\s+[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ]?[a-zß-öø-ÿ]+)?)+(?![\w-])"
)


def full_names(text: str, lang: str) -> set[str]:
    """Matching keys of the words of full names: two or more capitalised words in a row,
    stop words left out ("Lars Berg", "Petra Huber", "Tallis Energy"; not "The Bergen" nor
    "Die Filiale"). People, places and firms named in full, in any Latin-script language."""
    stops = _STOP_LISTS.get(lang, frozenset()) | STOPWORDS
    out: set[str] = set()
    for run in _CAPITAL_RUN.findall(text):
        words_ = [w for w in run.split() if w.lower() not in stops]
        if len(words_) >= 2:
            out.update(key(w.lower(), lang) for w in words_)
    return out
