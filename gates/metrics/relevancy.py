"""Answer relevancy: does the answer address the question that was asked?

Offline. An answer that declines ("I don't know") is right exactly when the case is
unanswerable: known from the case (``answerable``, or a ground truth that itself
declines), else estimated from how well the retrieved contexts match the question.
Any other answer is scored by how closely it answers this question (MiniLM
question-answer similarity, trained on question/answer pairs), how many of the
question's words it takes up, and whether it has the form the question asks for (a
price for "how much", a count for "how many", a time for "when" -- a time of day, a
weekday or "daily" for "what time", "opening hours" and "when is it open", where a year
or a date is no answer --, a place for "where", a person's name for "who", a yes or a no
for a yes/no question; English, German, French, Spanish, Chinese cues). An answer of that
specific form counts as addressing the question without repeating its words ("At
9:00."; "No."). An answer of the asked form *about something else* has not got it: when
the clause before its value (a yes/no question: the whole statement) shares the
question's subject but puts words of its own in place of the question's unaddressed ones
("When is the office open?" / "The office was renovated in 2019."; "How many desks ...?"
/ "The space opened in 2016"). Marked down when it only restates the question (no new
number, name or content word; an either/or choice or a statement answering a yes/no
question is not a restatement), when a price, count, time, place or person was asked and
none is given (or only one about something else), or when it talks around the question
(pleasantries, praise, "our team is working on it").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
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
# An answer of the specific kind asked (a price, number or time; a yes/no to a yes/no
# question) counts as addressing at least this share of the question's words.
DIRECT_ADDRESSED = 0.9
# Asked for a price, a number or a time and none given: the value is multiplied by this.
MISSING_SPECIFIC_FACTOR = 0.5
# An answer of the asked form is about something else when at most this share of the
# question's words is addressed and the answer puts words of its own in their place.
ELSEWHERE_FOCUS = 0.5

_EVASIVE = re.compile(
    r"\b(great question|good question|thanks? (you )?for (reaching out|asking|your (question|patience))|"
    r"we('re| are) (always|constantly|continuously) (working|improving|looking)|always working|we value|"
    r"happy to help|glad to help|stay tuned|in the future|our (team|engineers) (is|are|will)|"
    r"(reach out|contact|talk|get in touch) (to|with) (our |the )?(support|team|sales|account manager)|"
    r"(it )?(really )?depends|many (factors|options)|various (factors|options)|hard to say|keep an eye|"
    r"anything else i can help|let me know if|can be (really )?frustrating|i understand how|"
    r"is an important consideration|one of our most popular|(customers|users|clients|people) (really )?"
    r"(love|enjoy)|(a )?(great|wonderful|fantastic) (plan|choice|product|option|way|value)|"
    r"many (great |useful )?features|take \w+ (very )?seriously)",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"[$€£¥]\s?\d|\d\s?(usd|eur|gbp|dollars|euros|cents)\b|\d\s?[$€£¥元円]|\b(free|gratis|gratuit|gratuito|kostenlos)\b",
    re.I,
)
_QUANTITY = re.compile(
    r"(?<![A-Za-z])\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|"
    r"hundred|thousand|unlimited|no limit|single|a day|a week|a month|a year|an hour)\b",
    re.I,
)
_STEPS = re.compile(
    r">|\b(go to|open|click|choose|select|pick|use|run|enable|turn on|set|visit|navigate|"
    r"tap|press|contact|ask|email|call|sign in|log in|from the|under)\b",
    re.I,
)
_STEPS_OTHER = re.compile(
    r">|\b(unter|uber|gehen sie|klicken|offnen|wahlen|tippen|sous|allez|cliquez|ouvrez|choisissez|"
    r"selectionnez|vaya|haga clic|pulse|abra|elija|seleccione|desde)\b",
    re.I,
)
# A place: a preposition of place before a name ("in Zurich", "at the Harbour Street depot").
_PLACE = re.compile(
    r"\b(?i:in|at|on|near|next to|behind|opposite|inside|im|in der|am|bei|en|à|au|aux|dans|pres de|cerca de)"
    r"\s+"
    r"(the |der |die |das |le |la |les |el |los )?"
    # a year, a month or a weekday after "in"/"on" is a time, not a place
    r"(?!(?:1[5-9]|20)\d\d\b|(?:January|February|March|April|May|June|July|August|September|October|"
    r"November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b)[A-Z0-9]"
)
# A person: a full name ("Ingrid Holm"), a titled name ("Dr. Osei") or a capitalised name
# after "by"/"is"/"named" ("written by Osei"). Articles do not start a name.
_PERSON = re.compile(
    r"\b(?!(?:The|A|An|Our|Your|Their|This|That|Der|Die|Das|Le|La|Les|El|Los|Las|Il|Un|Une|Ein|Eine)\b)"
    r"[A-Z][a-zà-ÿ'’-]+\s+(?:(?:de|van|von|da|del|di|le|la)\s+)?[A-Z][a-zà-ÿ'’-]+\b|"
    r"\b(?:Dr|Mr|Mrs|Ms|Prof|Sir|Dame|Herr|Frau|Mme|Mlle|Sr|Sra)\.?\s+[A-Z]|"
    r"\b(?:by|is|was|are|were|named|called|von|par|por|es|est|ist)\s+[A-Z][a-zà-ÿ'’-]+"
)
_YES_NO = re.compile(
    r"^\s*(yes|no|yep|nope|sure|not)\b|\b(can|can't|cannot|doesn't|isn't|aren't|won't|only|"
    r"not|never|included|includes|available|supported|supports|allowed|allows|required)\b",
    re.I,
)


_TIME = re.compile(
    r"\d{1,2}[:.h]\d{2}|\b\d{1,2}\s?(am|pm|a\.m\.|p\.m\.|uhr|h|heures?|horas?)\b|(?<![A-Za-z\d])\d{4}(?!\d)|"
    r"[点點时時日月年号號]|"
    r"\b(noon|midnight|midday|morning|evening|afternoon|tonight|today|tomorrow|daily|always|never|"
    r"24/7|weekdays?|weekends?|(mon|tues|wednes|thurs|fri|satur|sun)days?|"
    r"jan(uary)?|feb(ruary)?|march|april|may|june|july|aug(ust)?|sept?(ember)?|oct(ober)?|nov(ember)?|"
    r"dec(ember)?|(after|before|until|till|within|by|from) \w+|every \w+|\d+ (days?|weeks?|hours?|"
    r"minutes?|months?|years?))\b",
    re.I,
)
# Opening hours and times of day: what "what time", "opening hours" and "when is it open"
# ask for. A year or a calendar date does not answer them ("renovated in 2019").
_HOURS = re.compile(
    r"\d{1,2}[:.h]\d{2}|\b\d{1,2}\s?(am|pm|a\.m\.|p\.m\.|uhr|h|heures?|horas?)\b|[点點时時]|"
    r"\b(noon|midnight|midday|mittags?|mitternacht|midi|minuit|mediodia|medianoche|morning|evening|"
    r"afternoon|night|tonight|daily|always|never|24/7|24 hours|around the clock|round the clock|"
    r"rund um die uhr|jour et nuit|las 24 horas|weekdays?|weekends?|werktags?|wochenende|"
    r"(mon|tues|wednes|thurs|fri|satur|sun)days?|montags?|dienstags?|mittwochs?|donnerstags?|freitags?|"
    r"samstags?|sonntags?|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|lunes|martes|miercoles|"
    r"jueves|viernes|sabado|domingo|closed|geschlossen|ferme|cerrado|open all|ganztags|"
    r"(after|before|until|till|from|ab|bis|jusqu'a|des|hasta|desde) \d)\b",
    re.I,
)
# A year after "in", "since"... ("renovated in 2019"): a time, never a count, price, place
# or person, so it is left out before those forms are looked for.
_YEAR_OF_EVENT = re.compile(
    r"\b(?i:in|since|from|until|till|before|after|by|around|circa|im|seit|bis|depuis|en|desde|hasta|"
    r"avant|apres|vor|nach)\s+(?:(?i:the year|the|early|late|mid)\s+)?(?:1[5-9]|20)\d\d(?![\d.,])"
)
# A number followed by a word: a count of something ("5 members"), read as the asked count.
_COUNT_OF = re.compile(r"(?<![A-Za-z\d.,])\d[\d.,]*\s+(?:[^\W\d_]+\s+)?[^\W\d_]{3,}")
# Words that ask rather than name the asked thing ("how many", "what time", "combien").
_ASKING_WORDS = frozenset(
    """long many much often soon far big large fast time viel viele lange oft combien cuant cuanto
    cuanta cuantos cuantas quand cuando wann""".split()
)
# Words that say the asked form itself ("costs $19", "is located in", "totals 12"): an
# answer's own word of this kind is the asked predicate, not another one.
_FORM_WORDS = """cost costs costing price priced charge charged fee fees pay paid pricing amount amounts
    total totals number located location situated based find found lives sits kostet kosten preis
    prix coute coutent cuesta cuestan precio liegt befindet trouve encuentra ubicado""".split()


@lru_cache(maxsize=1)
def _form_tokens() -> frozenset[str]:
    return frozenset(t for w in _FORM_WORDS for t in (*_tokens(w, "en"), w))


# A count: digits or a number word (not "one", which is also a pronoun).
_COUNT = re.compile(
    r"(?<![A-Za-z])\d|[一二三四五六七八九十百千万两]|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|hundred|thousand|million|unlimited|no limit|zwei|drei|vier|fünf|sechs|"
    r"sieben|acht|neun|zehn|deux|trois|quatre|cinq|sept|huit|neuf|dix|vingt|cent|dos|tres|cuatro|cinco|"
    r"seis|siete|ocho|nueve|diez|veinte|cien)\b",
    re.I,
)


@lru_cache(maxsize=16384)
def _tokens(text: str, lang: str = "en") -> tuple[str, ...]:
    """Content tokens of a text (questions and answers repeat across cases: read once):
    English stemmed content words; other languages' content keys (:func:`text.keys`)."""
    if lang in ("en", "und"):
        return tuple(tx.content_tokens(text))
    return tuple(tx.keys(text, lang))


@lru_cache(maxsize=16384)
def _names(text: str, lang: str = "en") -> frozenset[str]:
    if lang in ("en", "und"):
        return frozenset(tx.capitalised(text))
    return frozenset(tx.names_in(text, lang))


@lru_cache(maxsize=16384)
def _lang(question: str) -> str:
    return tx.language(question)


@lru_cache(maxsize=16384)
def _fold(text: str) -> str:
    """The text with accents stripped, case kept (the form patterns are written unaccented)."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# "How much" followed by what it measures ("how much notice", "how much storage"): not a
# price, unless the question speaks of one ("how much money", "how much does it cost").
_HOW_MUCH_OF = re.compile(
    r"\bhow much (?!(?:is|are|was|were|does|do|did|will|would|should|can|could|money|extra|more|less|"
    r"to|for|it|they|i|we|you|he|she|that|this|of)\b)[^\W\d_]{3,}"
)
_PRICE_WORDS = re.compile(r"\b(cost|costs|price|prices|pricing|pay|charge|charged|fee|fees|money|spend)\b")


def _expected_form(question: str) -> re.Pattern[str] | None:
    """What shape a direct answer to this question has, when the question says."""
    return _asked(question)[0]


def _asked(question: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(the shape of a direct answer, the specific shape -- a price, a count, a time --
    that counts as an answer even without the question's words, or None), when the
    question says. English, German, French, Spanish, Chinese."""
    q = tx.fold(question)
    if _HOW_MUCH_OF.search(q) and not _PRICE_WORDS.search(q):
        return _QUANTITY, _COUNT  # "how much notice / storage / time": an amount, not a price
    if re.search(
        r"\bhow much\b|\b(cost|price|pricing|charge|fee)s?\b|\b(cuestan?|precio|coute|coutent|prix|"
        r"kostet|kosten|preis)\b|多少钱|價格|价格|费用",
        q,
    ):
        return _MONEY, _MONEY
    if re.search(
        r"\bwhat time\b|\b(opening|business|office|support|working|visiting|service) hours\b|"
        r"^\s*(when|until when)\b.*\b(open|opens|opened now|close|closes|closed)\b"
        r"(?!.{0,20}\b(for good|down)\b)|"
        r"^\s*(when|until when) (is|are)\b.*\b(staffed|available|reachable)\b|\bhours\b(?! (of|in|per|a)\b)|"
        r"^\W*(a que hora|a quelle heure|um wie ?viel uhr)\b|\b(offnungszeiten|horaires?|horarios?)\b|"
        r"^\W*wann (hat|haben|ist|sind|offnet|offnen|schliesst|schliessen)\b.*"
        r"\b(offen|geoffnet|geschlossen|offnet|offnen|schliesst|schliessen)\b|几点|營業時間|营业时间",
        q,
    ) and not re.search(r"^\s*when (was|were|did|will)\b|\bhow (many|long|much)\b", q):
        return _HOURS, _HOURS
    if re.search(
        r"^\s*(when|until when|since when)\b|\bwhat time\b|\bhours\b|"
        r"^\W*(cuando|quand|wann|a que hora|a quelle heure|um wie ?viel uhr)\b|什么时候|几点|何时",
        q,
    ):
        return _TIME, _TIME
    if re.search(r"\bhow (long|many|often|big|large|soon|fast)\b|\b(limit|maximum|minimum|max|min)\b", q):
        return _QUANTITY, _COUNT
    if re.search(r"\b(cuant[oa]s?|combien|wie (viele?|lange|oft))\b|多少|几", q):
        return _COUNT, _COUNT
    if re.search(
        r"^\W*who (is|was|are|were)\b|^\W*who (\w+ed|wrote|leads|runs|heads|owns|manages|directs|won|built|"
        r"made|took|founded|chairs)\b|^\W*(wer (ist|war|leitet|hat)|qui (est|etait|a|dirige)|"
        r"quien(es)? (es|son|fue|era|dirige))\b",
        q,
    ):
        return _PERSON, _PERSON
    if re.search(r"^\s*(how (do|can|should) (i|we|you)|where (do|can) (i|we)|what (do|should) i do)\b", q):
        return _STEPS, None
    if re.search(
        r"^\W*(wie (kann|konnen|soll) (ich|man|wir)|comment (puis|peut|faire|dois)|como (puedo|se|hago))\b", q
    ):
        return _STEPS_OTHER, None
    if re.search(r"^\W*(where (is|are|was|were)|wo (ist|sind|liegt)|ou (est|se trouve)|donde estan?)\b", q):
        return _PLACE, _PLACE
    if re.search(r"^\s*(can|could|does|do|is|are|will|would|should|has|have)\b", q):
        return _YES_NO, None
    return None, None


def _counted(question: str, lang: str) -> str | None:
    """What a "how many" question counts ("How many desks ..." -> "desk"), as a token."""
    match = re.search(
        r"\b(?:how many|wie viele|combien d[e']|cuant[oa]s)\s*([^\W\d_]+)", tx.fold(question), re.IGNORECASE
    )
    if not match:
        return None
    tokens = _tokens(match.group(1), lang)
    return tokens[0] if tokens else None


class AnswerRelevancy:
    """Whether the answer addresses the question (higher is better)."""

    name = "answer_relevancy"
    # 1.4.1: "I can't help with that question" declines (gates.metrics.text._CANT_HELP), "not
    # covered by the policy" does not (_NOT_COVERED); "how much notice" asks an amount.
    version = "1.4.1"
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
        lang = _lang(question)
        names = _names(question, lang)
        wanted = [t for t in dict.fromkeys(_tokens(question, lang)) if t not in names and not t.isdigit()]
        if not wanted:
            return 1.0, []
        have = set(_tokens(answer, lang))
        unmatched = [t for t in wanted if t not in have]
        if unmatched and have:
            close = tx.word_similarity(unmatched, sorted(have))
            unmatched = [t for t, best in zip(unmatched, close) if best < WORD_MATCH]
        return 1.0 - len(unmatched) / len(wanted), unmatched

    @staticmethod
    def _restates(question: str, answer: str, lang: str, polar: bool) -> bool:
        """Whether the answer adds nothing to the question: no new number, no new name and
        at most one new content word. A statement answering a yes/no question ("Is X
        free?" / "X is free.") and an answer that picks one side of an either/or question
        do add something."""
        answer_tokens = set(_tokens(answer, lang))
        if not answer_tokens:
            return False
        q_tokens = set(_tokens(question, lang))
        new = answer_tokens - q_tokens
        if tx.numbers_in(answer, lang) - tx.numbers_in(question, lang):
            return False
        if _names(answer, lang) - _names(question, lang) - q_tokens:
            return False
        if polar and not answer.rstrip().endswith(("?", "？")):
            return False
        either_or = re.search(r"\b(or|oder|ou|o)\b|还是|或", question, re.I)
        if either_or and q_tokens - answer_tokens and not new:
            return False
        return len(new) <= 1

    @staticmethod
    def _about_something_else(
        question: str,
        answer: str,
        lang: str,
        pattern: re.Pattern[str] | None,
        whole: bool,
        missing: list[str],
    ) -> list[str]:
        """The answer's own words that take the place of the question's unaddressed ones
        (``missing``), when its answer of the asked form is about something else: "When is
        the office open?" / "The office was renovated in 2019." gives a time, but of the
        renovation. Read from the clause before the value ("The office was renovated"); with
        ``whole`` (a yes/no question), from the whole answer. Only when at most
        :data:`ELSEWHERE_FOCUS` of the question's words (its question words such as "how
        many" aside) are addressed. Empty when nothing stands in the way."""
        if pattern is None:
            return []
        q_tokens = list(dict.fromkeys(_tokens(question, lang)))
        q_names = _names(question, lang)
        wanted = [t for t in q_tokens if t not in q_names and not t.isdigit() and t not in _ASKING_WORDS]
        unaddressed = [t for t in missing if t not in _ASKING_WORDS]
        counted = _counted(question, lang)  # "how many desks": the count must be of desks
        if not wanted or not unaddressed:
            return []
        if counted not in unaddressed and 1.0 - len(unaddressed) / len(wanted) > ELSEWHERE_FOCUS:
            return []
        if whole:
            main = answer
        else:
            match = pattern.search(answer) or pattern.search(_fold(answer))
            main = answer[: match.start()] if match else answer
        main_tokens = [t for t in dict.fromkeys(_tokens(main, lang)) if not any(c.isdigit() for c in t)]
        # Only a clause about the question's own subject can put another predicate in the
        # asked one's place; a clause that shares no word is read as a paraphrase.
        if not set(main_tokens) & (set(q_tokens) | {tx.fold(n) for n in q_names}):
            return []
        own = [t for t in main_tokens if t not in q_tokens and t not in q_names and t not in _form_tokens()]
        if not own or not q_tokens:
            return []
        close = tx.word_similarity(own, q_tokens)
        return [t for t, best in zip(own, close) if best < WORD_MATCH]

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        from ragate_core.embeddings import default_encoder

        # One encoder call for the batch, each distinct text once: questions and answers;
        # context sentences only where they are read (an abstention whose answerability
        # the case does not say); and the words _focus compares.
        texts: list[str] = []
        words: list[str] = []
        for case in cases:
            texts.append(case.question)
            texts.append(case.answer)
            if tx.abstains(case.answer):
                if self._known_answerable(case) is None:
                    texts.extend(u for c in case.contexts for u in tx.sentences(c))
            else:
                lang = _lang(case.question)
                words.extend(_tokens(case.question, lang))
                words.extend(_tokens(case.answer, lang))
        unique = list(dict.fromkeys(texts))
        seen = set(unique)
        extra = [w for w in dict.fromkeys(words) if w not in seen]
        vectors = default_encoder().encode(unique + extra) if unique else None
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
            lang = _lang(case.question)
            form, specific = _asked(case.question)
            # "renovated in 2019" answers no count, price, place or person
            formed = case.answer if form in (_TIME, _HOURS) else _YEAR_OF_EVENT.sub(" ", case.answer)
            polar = tx.polar_question(case.question, lang)
            says_yes_no = polar and tx.strip_yes_no(case.answer, lang)[0] != 0
            form_ok = (
                0.5
                if form is None
                else float(bool(form.search(formed) or form.search(_fold(formed))) or says_yes_no)
            )
            if polar and form_ok == 0.0:  # "Does it cost extra?" / "It is included."
                form_ok = float(bool(_YES_NO.search(case.answer)))
            # An answer of the asked form about another thing than the one asked ("open" /
            # "renovated in 2019") has not got the asked form for this question.
            elsewhere: list[str] = []
            counts_something = specific is _COUNT and bool(_COUNT_OF.search(formed))  # "up to 5 members"
            if form_ok == 1.0 and not says_yes_no and (specific or polar) and not counts_something:
                elsewhere = self._about_something_else(
                    case.question, formed, lang, specific or _YES_NO, polar, missing
                )
                if elsewhere:
                    form_ok = 0.0
            # An answer that gives what was asked (a price, a number, a time; a yes or a no
            # to a yes/no question) addresses the question without repeating its words.
            direct = form_ok == 1.0 and (says_yes_no or bool(specific and specific.search(formed)))
            addressed = max(focus, DIRECT_ADDRESSED) if direct else focus
            blend = SIMILARITY_WEIGHT * similarity + FOCUS_WEIGHT * addressed + FORM_WEIGHT * form_ok
            value = _logistic(STEEPNESS * (blend - MIDPOINT))
            notes = [f"question-answer similarity {similarity:.2f}, question words addressed {focus:.2f}"]
            if direct:
                notes.append("gives an answer of the kind asked")
            elif missing:
                notes.append("not addressed: " + ", ".join(missing[:4]))
            if elsewhere:
                asked = f" (asked: {', '.join(missing[:3])})" if missing else ""
                notes.append(
                    f"its answer of the asked kind is about something else: {', '.join(elsewhere[:3])}{asked}"
                )
            if form_ok == 0.0:
                if not elsewhere:
                    notes.append("no direct answer of the kind asked")
                if (specific and not polar) or elsewhere:  # the asked price, count, time... not given
                    value *= MISSING_SPECIFIC_FACTOR
            if not direct and self._restates(case.question, case.answer, lang, polar):
                value *= 0.3
                notes.append("only restates the question")
            if _EVASIVE.search(case.answer) and not direct:
                value *= 0.4
                notes.append("talks around the question")
            return value, "; ".join(notes), {"similarity": round(similarity, 4), "focus": round(focus, 4)}

        return score_each(self, cases, one)


@register("answer_relevancy")
def answer_relevancy() -> AnswerRelevancy:
    return AnswerRelevancy()
