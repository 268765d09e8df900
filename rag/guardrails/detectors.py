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
Toxicity also asks ``alt-profanity-check``; a vote of either model counts only when the
shared toxicity detector of :mod:`ragate_core.toxicity` agrees on the same piece
(:meth:`InputDetector._confirmed`). A kind fires when its best score reaches its threshold.

Output (:class:`OutputToxicity`): an answer is toxic when one of its sentences is, by the
shared detector of :mod:`ragate_core.toxicity` (also the ``toxicity`` gate metric's).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from rag.guardrails.normalize import Reading, readings, reads_as_english
from ragate_core import toxicity
from ragate_core.prototypes import Embed, PrototypeClassifier, load_seeds

DATA_DIR = Path(__file__).parent / "data"
INPUT_SEEDS = DATA_DIR / "input_seeds.jsonl"

# The rails of the input side, and the seed label each one reads.
INPUT_RAILS = {"injection": "injection", "data_request": "data_request", "toxic_input": "toxic"}
# Probability at or above which a rail fires. Measured on the seeds (leave-one-out) and the
# golden questions; see the guardrails benchmark and the gate profiles for the figures.
# toxic_output sits higher: on the documentation's own sentences the output prototypes
# reach 0.55 at most, and a wrongly refused answer costs more than a wrongly refused insult.
THRESHOLDS = {"injection": 0.5, "data_request": 0.5, "toxic_input": 0.5, "toxic_output": 0.55}
# A sentence shorter than this is judged only as part of its message.
MIN_PIECE_WORDS = 3
# The rails whose prototype score counts only on English pieces of MIN_PIECE_WORDS or more.
EMBEDDER_NEEDS_ENGLISH = frozenset({"injection", "data_request", "toxic_input"})


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
# What the assistant does with its own instructions: "your instructions for answering
# questions" asks for them, "your instructions for exporting invoices" asks how to export.
_ASSISTANT_ACTIONS = (
    r"(?:answer|respond|repl(?:y|ie)|talk|chat|behav|handl|deal|refus|interact|speak|convers|help|assist|"
    r"treat|greet|moderat|follow|obey|comply|filter|censor)ing"
)
# A how-to frame after an instruction word: "... for exporting invoices", "... on how to ...".
_HOW_TO = rf"\s+(?:for|on|about|regarding|to)\s+(?:how\s+to\b|(?!{_ASSISTANT_ACTIONS}\b)[a-z]+ing\b)"
_EXTRACT = re.compile(
    rf"(?i)\b{_EXTRACT_VERB}\b(?:\W+[\w'-]+){{0,6}}?\W+{_SECRET_CONFIG}(?!{_HOW_TO})"
    # The assistant's own tools: "list every function and URL you have access to".
    rf"|\b{_EXTRACT_VERB}\b(?:\W+[\w'-]+){{0,4}}?\W+(?:tools?|functions?|endpoints?|urls?|plugins?|apis?|commands?)"
    r"\b[^.?!\n]{0,40}?\byou\s+(?:have\s+access\s+to|can\s+(?:call|use|access|run|invoke)|are\s+(?:able|allowed)\s+"
    r"to\s+(?:call|use|access))"
)

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
# Asking for the retrieved context itself: the documents, chunks or context window the
# answer is built on, as they are. The object must be the assistant's context ("the
# documents above", "the passages you retrieved", "your context window"), so "show the
# documents attached to my task" stays a question.
_DUMP_VERB = (
    r"(?:copy|paste|repeat|print|output|dump|reproduce|echo|recite|quote|show|display|give|list|return|"
    r"write\s+out|spell\s+out|type\s+out|send|reveal|tell\s+me|include|transcribe|regurgitate|leak)"
)
_DUMPED = r"(?:documents?|docs|chunks?|passages?|articles?|sources?|snippets?|excerpts?|text|content|context)"
_BOT_CONTEXT = (
    r"(?:context\s+window|(?:your|the\s+(?:whole|entire|full|complete|raw)|all\s+(?:of\s+)?(?:the|your))\s+context\b"
    r"|context\s+(?:that\s+)?(?:you\s+(?:were|are|have\s+been)\s+(?:given|provided|fed|shown|using)|above)"
    rf"|(?:retrieved|provided|supplied|fetched|injected|loaded|given)\s+(?:[\w-]+\s+){{0,2}}?{_DUMPED}"
    rf"|{_DUMPED}\s+(?:that\s+|which\s+)?(?:you\s+(?:\w+\s+)?(?:retrieved|received|were\s+given|have\s+been\s+given|"
    r"fetched|looked\s+up|pulled)|above|before\s+my\s+(?:question|message)|in\s+your\s+(?:prompt|context|memory|input))"
    r"|(?:knowledge[\s-]base|kb|retrieval|vector\s+(?:store|db|database)|rag|search)\s+(?:\w+\s+)?(?:chunks?|"
    r"documents?|passages?|entries|content)"
    r"|everything\s+(?:above|in\s+your\s+(?:prompt|context|input)|you\s+(?:were|have\s+been)\s+given))"
)
_CONTEXT_DUMP = re.compile(
    rf"(?i)\b{_DUMP_VERB}\b(?:\W+[\w'-]+){{0,8}}?\W+{_BOT_CONTEXT}"
    r"|\bwhat(?:'s|\s+(?:\w+\s+)?(?:is|are|was|were))\s+in\s+(?:(?:your|the)\s+context\s+window|your\s+(?:context|"
    r"prompt|memory|instructions))\b"
)

# The same attacks phrased in other languages, on the canonical reading (accents stripped,
# so "précédentes" is "precedentes"). The sentence embedder reads English only, so in other
# languages these patterns are the evidence. Like the English ones, they need the
# assistant's own rules as the object: "ignora las reglas de asignación" is a question.
_F_IGNORE = (
    r"(?:ignore[rsz]?|ignorez|ignora(?:r|re|te)?|ignoren|ignorier(?:e|en)?|ignorera|negeer|zignoruj|ignoruj|"
    r"oublie[rsz]?|oubliez|olvida(?:r|te)?|olvide[n]?|vergiss|vergessen|dimentica(?:re|te)?|esquec[ae]m?|"
    r"vergeet|glom|zapomnij|desconsidere|desconsidera|omite|missachte|trascura|salta|"
    r"ne\s+tien[st]?\s+(?:plus\s+|pas\s+)?compte|ne\s+tenez\s+(?:plus\s+|pas\s+)?compte|fais\s+abstraction|"
    r"haz\s+caso\s+omiso|no\s+hagas\s+caso|non\s+seguire|nao\s+siga|no\s+sigas|befolge\s+nicht|volg\s+niet)"
)
_F_RULES = (
    r"(?:instrucciones|instructions|instrucoes|instrucao|istruzioni|anweisungen|instruktionen|instructies|instrukcje|"
    r"instruktioner|consignes|reglas|regles|regeln|regole|regras|regels|regler|zasady|normas|directrices|directives|"
    r"direttive|diretrizes|richtlinien|richtlijnen|vorgaben|indicaciones|indicazioni|restricciones|restrictions|"
    r"restricoes|restrizioni|einschrankungen|beschrankungen|beperkingen|limitaciones|limitazioni|prompt|"
    r"programacion|programmation|programmierung|configuracion|configuration|konfiguration|configurazione|"
    r"configuracao|politicas|politiques|politiche)"
)
_F_QUALIFIER = (
    r"(?:tes|tus|tous|toutes|tout|vos|votre|ton|precedentes?|anterieures?|ci-dessus|systeme|todas?|todos|"
    r"anteriores|previas?|sistema|deine[nrs]?|ihre[nrs]?|alle[ns]?|vorherigen?|bisherigen?|obigen?|tue|tuoi|"
    r"sue|tutte|tutti|precedenti|sopra|suas|teus|tuas|seus|je|jouw|eerdere|vorige|bovenstaande|dina|alla|"
    r"tidigare|wszystkie|poprzednie|swoje)"
)
_F_SHOW = (
    r"(?:montre[rz]?|affiche[rz]?|revele[rz]?|donne[rz]?|ecris|ecrivez|copie[rz]?|repete[rz]?|recopie[rz]?|"
    r"imprime[rz]?|dis|muestra(?:me)?|ensena(?:me)?|revela(?:me)?|dame|dime|escribe|copia|repite|imprime|"
    r"zeig(?:e|en)?|gib|nenne|schreib(?:e)?|wiederhole|kopiere|verrate|mostra(?:mi)?|mostre|rivela(?:mi)?|"
    r"dammi|dimmi|scrivi|ripeti|stampa|revele|diga|copie|repita|imprima|toon|geef|herhaal|kopieer|onthul|visa|"
    r"pokaz|podaj|wypisz)"
)
_F_SECRET = (
    r"(?:(?:prompt|message|mensaje|mensagem|messaggio|texte|texto|testo)\s+(?:du\s+|de\s+|del\s+|do\s+|di\s+)?"
    r"(?:systeme|sistema)|system-?prompt|systemnachricht|systeemprompt|systemprompten|prompt\s+systemowy"
    rf"|{_F_RULES}\s+(?:\w+\s+)?(?:cachees|secretes|initiales|originales|internes|confidentielles|ocultas|"
    r"secretas|iniciales|internas|confidenciales|nascoste|segrete|iniziali|originali|interne|riservate|"
    r"originais|secretas)"
    rf"|(?:versteckten|geheimen|ursprunglichen|internen|verborgen|geheime|oorspronkelijke)\s+{_F_RULES}"
    r"|(?:ton|tes|votre|vos|tu|tus|su|sus|dein(?:e[nrs]?)?|ihr(?:e[nrs]?)?|tuo|tua|tue|tuoi|seu|sua|teu|tuas|"
    rf"jouw)\s+(?:\w+\s+)?(?:texte\s+de\s+configuration|{_F_RULES}))"
)
_F_WITHOUT_RULES = (
    r"(?:sin|sans|ohne|senza|sem|zonder|utan|bez)\s+(?:\w+\s+)?(?:restricciones|reglas|limites|filtros|censura|"
    r"restrictions|regles|filtres|censure|einschrankungen|regeln|grenzen|filter|zensur|restrizioni|regole|limiti|"
    r"filtri|restricoes|regras|beperkingen|regels|begransningar|regler|ograniczen|zasad)"
)
_F_NOW = (
    r"(?:a\s+partir\s+de\s+ahora|desde\s+ahora|de\s+ahora\s+en\s+adelante|a\s+partir\s+de\s+maintenant|"
    r"desormais|dorenavant|ab\s+jetzt|von\s+nun\s+an|ab\s+sofort|da\s+ora\s+in\s+poi|d'ora\s+in\s+poi|"
    r"a\s+partir\s+de\s+agora|de\s+agora\s+em\s+diante|vanaf\s+nu|fran\s+och\s+med\s+nu|od\s+teraz)"
)
_F_VERBATIM = (
    r"(?:mot\s+(?:pour|a)\s+mot|textuellement|palabra\s+por\s+palabra|textualmente|al\s+pie\s+de\s+la\s+letra|"
    r"wort\s+fur\s+wort|wortlich|parola\s+per\s+parola|testualmente|palavra\s+por\s+palavra|na\s+integra|"
    r"woord\s+voor\s+woord|letterlijk|ord\s+for\s+ord|ordagrant|slowo\s+w\s+slowo|doslownie)"
)
_F_CONTEXT = (
    r"(?:documents?|documentos|documenti|dokumente|documenten|dokument|extraits|fragmentos|fragments?|frammenti|"
    r"estratti|trechos|passages|pasajes|passaggi|abschnitte|passagens|contexte|contexto|contesto|kontext|"
    r"context|sources|fuentes|fonti|quellen|fontes|bronnen|articulos|artikel|articoli|artigos)"
)
_FOREIGN = re.compile(
    rf"(?i)\b{_F_IGNORE}\b(?P<between>(?:\W+[\w'-]+){{0,4}}?)\W+{_F_RULES}\b(?P<after>(?:\W+[\w'-]+){{0,2}})"
    rf"|\b{_F_SHOW}\b(?:\W+[\w'-]+){{0,6}}?\W+{_F_SECRET}\b"
    rf"|\b(?:{_F_NOW}|eres|sois|bist|sei|voce\s+e|je\s+bent|du\s+ar)\b[^.!?\n]{{0,80}}?\b{_F_WITHOUT_RULES}\b"
    r"|\b(?:no\s+tienes|tu\s+n'as\s+(?:plus|pas)|du\s+hast\s+keine|non\s+hai|nao\s+tens|voce\s+nao\s+tem|"
    r"je\s+hebt\s+geen)\s+(?:\w+\s+)?(?:restricciones|reglas|restrictions|regles|einschrankungen|regeln|"
    r"restrizioni|regole|restricoes|regras|beperkingen|regels)\b"
    rf"|\b{_F_VERBATIM}\b[^.!?\n]{{0,80}}?\b{_F_CONTEXT}\b|\b{_F_CONTEXT}\b[^.!?\n]{{0,80}}?\b{_F_VERBATIM}\b"
)
# Scripts without spaces between words (Japanese, Chinese, Korean) and Russian: the verb
# "ignore/forget" near "instructions/rules", or the system prompt asked for.
_FOREIGN_SCRIPT = re.compile(
    r"(?:指示|命令|ルール|規則|制約|設定|プロンプト)[^。！？\n]{0,12}?(?:無視|忘れ)"
    r"|(?:システムプロンプト|システムメッセージ|隠された指示|秘密の指示|初期の指示)[^。！？\n]{0,30}?"
    r"(?:表示|教え|出力|見せ|書|繰り返|コピー)"
    r"|(?:忽略|无视|無視|忘记|忘掉|不要理会|别管)[^。！？\n]{0,15}?(?:指令|指示|规则|規則|说明|限制|设定|設定|提示)"
    r"|(?:输出|显示|告诉我|展示|打印|重复|复制|给我|給我)[^。！？\n]{0,15}?(?:系统提示|系統提示|系统消息|隐藏指令|秘密指令|"
    r"提示词|初始指令)"
    r"|(?:지시|규칙|지침|명령|설정)[^.!?\n]{0,10}?(?:무시|잊어)|시스템\s*프롬프트"
    r"|(?i:(?:игнорир\w*|забуд\w*|не\s+обраща\w+\s+внимания)[^.!?\n]{0,40}?(?:инструкци|правил|указани|"
    r"ограничени|промпт)|(?:покажи|выведи|напиши|раскрои|повтори|скопируи|дай)[^.!?\n]{0,30}?(?:системн\w*\s+"
    r"(?:промпт|сообщени|инструкци)|скрыт\w*\s+инструкци))"
)

_DISCLOSE = (
    r"(?:give|send|tell|show|list|print|output|display|read(?:\s+out)?|disclose|share|paste|reveal|dump|export|"
    r"provide|forward|look\s+up|pull|fetch|retrieve|confirm|spill|leak|expose|hand\s+over|"
    # A demand for the data: "legal needs the e-mail addresses of every guest".
    r"needs?|wants?|requires?)"
)
# Personal data and secrets, but not the features named after them ("password reset link",
# "e-mail notifications", "card view", "login page").
_PERSONAL = (
    r"(?:e-?mail(?:\s+address(?:es)?)?s?(?!\s+(?:notifications?|settings?|digests?|templates?|alerts?|"
    r"integration|domain|verification|reminders?|updates?|preferences|invit\w+|to|about|when))|phone\s+numbers?|"
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
    # An organisation named by the user: "the Acme workspace", "that Northwind team".
    r"|\b(?:the|this|that)\s+(?-i:[A-Z][\w&.-]*)\s+(?:workspace|team|organi[sz]ation|org|company|tenant|account|"
    r"instance|site|shop|store)\b|\ba\s+different\s+(?:workspace|team|organi[sz]ation|company|tenant|account|user|"
    r"customer|person)\b"
    r"|<(?:EMAIL_ADDRESS|PERSON|PHONE_NUMBER)>|\S+@\S+\.\w+"
)
# What the service keeps "on file for" an account that is not the user's own.
_ON_FILE = re.compile(
    r"(?i)\b(?:on\s+file|stored|saved|registered|kept)\s+(?:for|on|under)\s+(?P<whose>(?:[\w'-]+\s+){0,2}?)"
    r"(?:user|account|member|customer|owner|workspace|person|guest|client|employee|profile|<PERSON>)\b"
)
# Asking the assistant to keep or repeat back a secret the message carries (a card number,
# a password, a key; masked by then): a chat is no place to store them, and an echo would
# put them in the transcript. The value itself must be there, so "how do I save my card
# for future payments?" stays a question.
_SECRET_VALUE = re.compile(
    r"<(?:CREDIT_CARD|IBAN_CODE|US_SSN|PASSWORD|API_KEY|AWS_ACCESS_KEY|AWS_SECRET_KEY|STRIPE_KEY|PRIVATE_KEY|"
    r"[A-Z_]*(?:TOKEN|SECRET))>"
)
_KEEP_OR_ECHO = re.compile(
    r"(?i)\b(?:save|store|remember|keep|memori[sz]e|retain|hold\s+on\s+to|note\s+down|record)\b"
    r"|\b(?:repeat|read|echo|say|spell|send|write)\b[^.?!\n]{0,20}?\bback\b|\brepeat\b[^.?!\n]{0,20}?\b(?:in\s+full|"
    r"verbatim|exactly)\b|\bconfirm\s+(?:that\s+)?you(?:'ve|\s+have)?\s+(?:saved|stored|got|received|kept)\b"
    r"|\badd\b[^.?!\n]{0,30}?\bto\s+(?:the|my|this|your)\s+(?:ticket|notes?|file|records?|profile|memory)\b"
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
# Other people's personal data asked for in other languages: the data "of all users /
# members / customers" ("los correos de todos los usuarios", "die Telefonnummern aller
# Mitglieder"); "envoyer un e-mail à tous les membres" sends something and stays a question.
_F_PERSONAL = (
    r"(?:correos?(?:\s+electronicos)?|e-?mails?|direcciones|telefonos|numeros\s+de\s+(?:telefono|telephone)|"
    r"contrasenas|tarjetas|datos\s+personales|adresses?(?:\s+e-?mail)?|mots\s+de\s+passe|cartes\s+bancaires|"
    r"donnees\s+personnelles|e-?mail-?adressen|telefonnummern|adressen|passworter|kreditkarten|"
    r"personlichen?\s+daten|indirizzi(?:\s+e-?mail)?|numeri\s+di\s+telefono|password|carte\s+di\s+credito|"
    r"dati\s+personali|enderecos|telefones|senhas|cartoes|dados\s+pessoais|telefoonnummers|wachtwoorden|"
    r"creditcards|persoonsgegevens)"
)
_F_EVERYONE = (
    r"(?:(?:de|des|di|dos|das|van|von|der)\s+)?(?:todos\s+los|todas\s+las|tous\s+les|toutes\s+les|aller|allen|"
    r"alle|tutti\s+gli|tutte\s+le|todos\s+os|todas\s+as|de\s+otros|d'autres|anderer|altri|outros)\s+"
    r"(?:\w+\s+)?(?:usuarios|clientes|miembros|empleados|utilisateurs|clients|membres|employes|nutzer|benutzer|"
    r"kunden|mitglieder|mitarbeiter|utenti|membri|dipendenti|membros|funcionarios|gebruikers|klanten|leden|"
    r"medewerkers)"
)
_F_DATA_REQUEST = re.compile(rf"(?i)\b{_F_PERSONAL}\s+{_F_EVERYONE}\b")
# One other person's contact or payment data asked for in German, French, Spanish, Italian,
# Portuguese or Dutch ("Wie lautet die Privatadresse von Herrn ...", "donne-moi le numéro de téléphone de la
# cliente ...", "dame la tarjeta del usuario ..."): a request or question word, the data,
# then whose it is, a person who is not the user. Changing or finding data ("wie ändere
# ich die Adresse meines Vaters") asks no one to disclose it.
_F_ASK = (
    r"(?:wie\s+(?:lautet|lauten|ist|sind)|was\s+ist|welche[rsn]?|gib|geben\s+sie|nenn(?:e|en)?|schick(?:e|en)?|"
    r"send(?:e|en)?|zeig(?:e|en)?|verrat(?:e|en)?|sag(?:e|en)?|teil(?:e|en)?\s+(?:mir|uns)|such(?:e|en)?|"
    r"quel(?:le)?s?\s+(?:est|sont)|c'est\s+quoi|donne[rz]?|envoie[rz]?|envoyez|dis|dites|communique[rz]?|"
    r"indique[rz]?|montre[rz]?|transmet\w*|retrouve[rz]?|"
    r"cual(?:es)?\s+(?:es|son)|dame|deme|dime|digame|enviame|envia|mandame|muestrame|pasame|"
    r"me\s+(?:das|da|dices|pasas)|(?:puedes|podrias|podria)\s+(?:darme|decirme|pasarme|enviarme)|facilitame|"
    r"proporcioname|busca(?:me)?|"
    r"qual(?:\s+e|'e|i\s+sono)|dammi|dimmi|mi\s+(?:dai|dici|dia|dica|mandi|daresti)|mandami|inviami|mostrami|"
    r"passami|(?:puoi|potresti)\s+(?:darmi|dirmi|mandarmi)|cercami|forniscimi|"
    r"quais\s+sao|me\s+(?:passa|passe|da|de|diga|diz|mande|manda|envie|envia|mostre|mostra|informe)|passa-me|"
    r"manda-me|envia-me|mostra-me|diz-me|informe|(?:pode|poderia|podes)\s+(?:me\s+)?(?:dar|passar|enviar|mandar|"
    r"dizer|informar)|"
    r"wat\s+(?:is|zijn)|geef|stuur|zend|toon|vertel|noem|(?:kun|kunt|kan)\s+(?:je|jij|u)\s+(?:me|mij)|ik\s+zoek)"
)
# "I want / need" counts only with the data as its object, not a verb ("je veux changer ...").
_F_WANT = (
    r"(?:brauch(?:e|en)|benotig(?:e|en)|ich\s+(?:will|mochte|hatte\s+gern)|j'ai\s+besoin\s+d|je\s+(?:veux|voudrais)|"
    r"necesito|quiero|ho\s+bisogno\s+d|voglio|vorrei|preciso|quero|gostaria\s+d|ik\s+wil(?:\s+graag)?)\W*"
    r"(?:die|den|das|seine|ihre|e|de|du|des|le|la|les|l|el|los|las|il|lo|gli|i|dell|della|del|o|a|os|as|do|da|"
    r"het|zijn|haar)\b"
)
# The words between the request and the data: no "how" and no verb of changing it.
_F_GAP = (
    r"(?:\W+(?!(?:comment|como|come|wie|ou|donde|dove|wo|pourquoi|porque|perche|warum|chang|modifi|cambi|actualiz|"
    r"aggiorn|andern|aktualisier|bearbeit|mett|supprim|elimin|borr|losch|cancell|verifi|pruf|corrig|korrig|"
    r"onde|alter|mud|atualiz|apag|exclu|remov|hoe|waar|wijzig|verander|aanpas|bewerk|verwijder|controle)"
    r"[\w'-]*)[\w'-]+)"
)
_F_ONES_DATA = (
    r"(?:\w*adressen?|\w*anschrift|(?:telefon|handy|mobil|mobilfunk|privat|kreditkarten|karten|"
    r"sozialversicherungs|steuer)nummer|telefon|handy|kreditkarte|bankverbindung|iban|geburtsdatum|"
    r"passwort|kennwort|e-?mail|"
    r"adresse|domicile|numero\s+de\s+(?:telephone|portable|mobile|carte|securite\s+sociale)|telephone|portable|"
    r"courriel|carte\s+(?:bancaire|de\s+credit)|coordonnees|mot\s+de\s+passe|date\s+de\s+naissance|"
    r"direccion|domicilio|(?:numero\s+de\s+)?(?:telefono|movil|celular|tarjeta)|correo|tarjeta\s+de\s+credito|"
    r"datos\s+bancarios|contrasena|fecha\s+de\s+nacimiento|"
    r"indirizzo|residenza|(?:numero\s+di\s+)?(?:telefono|cellulare)|numero\s+della\s+carta|"
    r"carta\s+di\s+credito|dati\s+bancari|password|data\s+di\s+nascita|"
    r"endereco|morada|(?:numero\s+de\s+)?(?:telefone|celular|telemovel)|cartao(?:\s+de\s+credito)?|"
    r"dados\s+bancarios|senha|data\s+de\s+nascimento|cpf|"
    r"\w*adres|telefoonnummer|mobiele\s+nummer|creditcard(?:nummer)?|bankgegevens|rekeningnummer|wachtwoord|"
    r"geboortedatum|bsn)"
)
_F_WHOSE = (
    r"(?:(?:von|vom|des|der|hat|eures|ihres|unseres|seines|eines|einer|meines|meiner|deines|de|du|del|della|"
    r"dello|dei|di|do|da|dos|das|van)\s+|d')"
    # ... but not a department named after its customers ("le numéro du service client").
    r"(?:(?!(?:l'|d')?(?:service|servicio|servizio|support|soporte|supporto|atencion|al|assistance|asistencia|"
    r"assistenza|espace|area|portail|portal|compte|cuenta|conto|konto|equipe|equipo|relations?|relacion|"
    r"experience|experiencia|suporte|atendimento|servico|afdeling|helpdesk|klantenservice)\b)[\w'-]+\s+){0,2}?"
    r"(?:herrn?|frau|hr\.|fr\.|kunden|kundin|kunde|nutzers?|nutzerin|benutzers?|mitglieds?|mitarbeiters?|"
    r"mitarbeiterin|kollegen|kollegin|person|inhabers?|inhaberin|besitzers?|"
    r"m\.|mme|mlle|monsieur|madame|mademoiselle|client|cliente|utilisat(?:eur|rice)|membre|employee?|collegue|"
    r"personne|proprietaire|titulaire|"
    r"senor|senora|sr\.|sra\.|don|dona|clienta|usuari[oa]|miembro|emplead[oa]|companer[oa]|persona|propietari[oa]|"
    r"signor|signore|signora|sig\.|sig\.ra|utente|membro|dipendente|collega|titolare|"
    r"senhor|senhora|funcionari[oa]|colega|dono|"
    r"meneer|mevrouw|dhr\.|mevr\.|klant|gebruiker|lid|medewerker|eigenaar|houder|persoon|<PERSON>)(?!\w)"
)
_F_PERSON_DATA = re.compile(
    rf"(?i)(?:\b{_F_ASK}\b{_F_GAP}{{0,6}}?|\b{_F_WANT}{_F_GAP}{{0,3}}?)\W+{_F_ONES_DATA}\b"
    rf"(?:\W+[\w'-]+){{0,3}}?\W+{_F_WHOSE}"
)
# What other people said to the assistant: "what did the previous user ask you", "show me
# the other customers' questions". The assistant keeps no such memory, but asking for it
# is asking for someone else's data.
_OTHER_CHATS = re.compile(
    r"(?i)\b(?:previous|last|other|another|earlier|prior|next)\s+(?:users?|customers?|persons?|people|callers?|"
    r"visitors?|clients?)\b(?:\s+\w+)?\s+(?:ask|asked|say|said|write|wrote|type|typed|tell|told|send|sent|talk|"
    r"talked|chat|chatted)\b(?:\s+(?:about|to|with))?\s+(?:you|about|earlier|before|today)\b"
    rf"|\b{_DISCLOSE}\b[^.?!\n]{{0,30}}?\b(?:other|previous|earlier|another|last)\s+(?:users?|customers?|people|"
    r"persons?|visitors?)(?:'s?)?\s+(?:questions?|messages?|conversations?|chats?|chat\s+(?:logs?|history)|"
    r"transcripts?|prompts?)"
    r"|\b(?:users?|customers?|persons?|callers?|visitors?|clients?)\s+(?:right\s+|just\s+)?before\s+me\b"
)
_OWN = re.compile(r"(?i)\b(?:my|our|own|mine)\b")
_HOW_TO_VERB = re.compile(
    r"(?i)\b(?:see|find|check|know|view|choose|decide|control|limit|manage|configure|set|pick|select|define|"
    r"restrict|change|edit|track|audit|review|monitor|filter|sort|hide|determine)\s+$"
)

# Toxicity (patterns, calibrated profanity, names neutralised) is one shared copy in
# ragate_core.toxicity, read by toxic_input here, OutputToxicity and the toxicity metric.


# Lifting one of the assistant's rules for this conversation ("drop the topic restriction
# for this chat", "in this conversation, relax your content rules"): the rule need not be
# "yours", the conversation it is lifted for says whose it is.
_LIFT_VERB = (
    r"(?:drop|lift|remove|relax|loosen|waive|suspend|disable|pause|skip|set\s+aside|turn\s+off|switch\s+off|"
    r"ignore|disregard|forget(?:\s+about)?|bypass|override|break|bend|make\s+an\s+exception\s+to|get\s+rid\s+of)"
)
_LIMIT = (
    r"(?:restrictions?|rules?|limits?|limitations?|polic(?:y|ies)|guidelines?|guardrails?|filters?|constraints?|"
    r"scope|boundaries|safeguards?|topic\s+lock)"
)
# The conversation under way ("this chat", "the rest of our conversation"), not a chat of
# the product ("the project chat").
_THIS_CHAT = (
    r"(?:for|in|during|within|throughout)\s+(?:the\s+rest\s+of\s+(?:this|our|the)|this|our)\s+(?:current\s+)?"
    r"(?:chat|conversation|thread|exchange|dialog(?:ue)?|reply|answer|response)\b"
)
_LIFT_FOR_CHAT = re.compile(
    rf"(?i)\b{_LIFT_VERB}\b(?:\W+[\w'-]+){{0,4}}?\W+{_LIMIT}\b(?:\W+[\w'-]+){{0,5}}?\W+{_THIS_CHAT}"
    rf"|\b{_THIS_CHAT}\W+(?:[\w'-]+\W+){{0,4}}?{_LIFT_VERB}\b(?:\W+[\w'-]+){{0,4}}?\W+{_LIMIT}\b"
)
# Overriding the documents the answer must be built on ("ignore the retrieved articles").
_OVERRIDE_CONTEXT = re.compile(rf"(?i)\b{_OVERRIDE_VERB}\b(?:\W+[\w'-]+){{0,4}}?\W+{_BOT_CONTEXT}")


def _override(text: str) -> bool:
    # "ignore the assignment rules" is a feature question; "ignore your rules" is not.
    if _OVERRIDE_CONTEXT.search(text) or _LIFT_FOR_CHAT.search(text):
        return True
    return any(
        not m.group("between").strip() or _QUALIFIER.search(m.group("between"))
        for m in _OVERRIDE.finditer(text)
    )


# Words that make a sentence about the assistant itself: its instructions and rules, a
# role or mode to adopt, its context, tools or secrets, a command to obey or to reveal. The
# prototype classifier may call a sentence an injection only when it holds one of them.
INJECTION_CUE = re.compile(
    r"(?i)\b(?:instruct\w*|rules?|guidelines?|polic(?:y|ies)|prompts?|system|directives?|restrict\w*|"
    r"constraints?|limits?|limitations?|filter\w*|guardrails?|safeguards?|censor\w*|ethic\w*|moral\w*|"
    r"programm\w*|config\w*|setup|persona|characters?|role-?\s?play\w*|roles?|pretend\w*|act(?:ing)?\s+as|"
    r"play(?:ing)?\s+(?:the|a|an)|imagin\w*|hypothetic\w*|fiction\w*|simulat\w*|games?|story|script|mode|"
    r"jailbr\w*|dan|unfiltered|uncensored|unrestricted|ignor\w*|disregard\w*|forget|overrid\w*|bypass\w*|"
    r"obey\w*|comply|command\w*|orders?|from\s+now\s+on|no\s+longer|reveal\w*|verbatim|word\s+for\s+word|"
    r"repeat\w*|recit\w*|quot\w*|print\w*|dump\w*|leak\w*|paste|copy|echo|disclos\w*|expos\w*|secrets?|"
    r"hidden|confidential|internal|developers?|operators?|admin\w*|authori[sz]\w*|context|tools?|functions?|"
    r"terminal|console|output|test(?:ing)?|priority|chatbot|bot|assistant|ai|model|yourself|your\s+(?:own|real|"
    r"true|new))\b"
)
_F_QUALIFIED = re.compile(rf"(?i)\b{_F_QUALIFIER}\b")

# A cue word inside a support question about a product object says nothing about the
# assistant: "ignore the old onboarding guide" and "ignore weekends" drop a thing of the
# product or of the user's work, "instructions for exporting invoices" and "the rules on
# recurring tasks" are how-to documentation. Such words do not count as cues.
_DROP_VERB = re.compile(r"(?i)\b(?:ignor\w*|disregard\w*|forget|overrid\w*|bypass\w*)\b")
# The words that end the object of a verb ("ignore the old guide | for the new one").
_OBJECT_ENDS = frozenset(
    """and then but or so because when while if unless to for from in on at with without by of since until
    where which who as please now instead""".split()
)
# An object that is the assistant's own: its rules, its context, "you", "the above"...
_ASSISTANT_OBJECT = re.compile(
    rf"(?i)\b(?:{_RULE_OBJECT}|instruct\w*|guid(?:ance|ing)|filters?|limits?|limitations?|context|documents?|"
    r"ethics|morals|you|your|yourself|above|everything|anything|whatever|what|told|said|given)\b"
)
# Words that, ending the object, leave the thing dropped unnamed: "ignore all previous",
# "forget that", "ignore them".
_OPEN_OBJECT = frozenset(
    """the a an all any previous prior earlier preceding initial original said that this it them these those
    before above everything""".split()
)
_HOW_TO_NOUN = re.compile(
    rf"(?i)\b(?:instruct\w*|rules?|guidelines?|guides?|polic(?:y|ies)|directives?|setup|config\w*|limits?|"
    rf"limitations?|restrictions?|filters?|steps?|modes?)(?={_HOW_TO})"
)


def _product_framed(text: str) -> list[tuple[int, int]]:
    """The spans of cue words that name a product object rather than the assistant."""
    spans = [m.span() for m in _HOW_TO_NOUN.finditer(text)]
    for m in _DROP_VERB.finditer(text):
        words = []
        for w in re.finditer(r"[\w'-]+|[^\w\s'-]", text[m.end() :]):
            token = w.group(0)
            if not token[0].isalnum() or token.lower() in _OBJECT_ENDS or len(words) == 5:
                break
            words.append(token)
        obj = " ".join(words)
        if words and not _ASSISTANT_OBJECT.search(obj) and words[-1].lower() not in _OPEN_OBJECT:
            spans.append(m.span())
    return spans


def about_assistant(text: str) -> bool:
    """Whether ``text`` holds a word about the assistant itself (:data:`INJECTION_CUE`) that
    is not part of a question about a product object."""
    framed = _product_framed(text)
    return any(
        not any(start <= m.start() < end for start, end in framed) for m in INJECTION_CUE.finditer(text)
    )


def _foreign(text: str) -> bool:
    for m in _FOREIGN.finditer(text):
        if m.group("between") is None:  # not the "ignore ... rules" branch
            return True
        # "ignora tus reglas", "oublie les consignes précédentes": the assistant's own rules.
        if not m.group("between").strip() or _F_QUALIFIED.search(m.group("between") + m.group("after")):
            return True
    return bool(_FOREIGN_SCRIPT.search(text))


def someone_else(text: str) -> bool:
    """Whether a message mentions someone other than the user (a name, "the owner", "all users")."""
    return bool(_SOMEONE_ELSE.search(text))


def _data_request(text: str) -> bool:
    if someone_else(text):
        for m in _DATA_REQUEST.finditer(text):
            if not _OWN.search(m.group("between")):  # "send me my invoices" is the user's own data
                return True
        if any(not _OWN.search(m.group("whose")) for m in _ON_FILE.finditer(text)):
            return True
        for m in _WHAT_IS.finditer(text):
            # "where can an admin see which API keys are active" asks where a feature is, not
            # for the keys: a "which ..." that a verb like see/choose/manage governs.
            if not _OWN.search(m.group(0)) and not _HOW_TO_VERB.search(text[: m.start()]):
                return True
    if _SQL_DUMP.search(text) or _F_DATA_REQUEST.search(text) or _F_PERSON_DATA.search(text):
        return True
    if _OTHER_CHATS.search(text):
        return True
    if _SECRET_VALUE.search(text) and _KEEP_OR_ECHO.search(text):
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
        ("context_dump", bool(_CONTEXT_DUMP.search(text))),
        ("foreign", _foreign(text)),
    ):
        if matched:
            hits.setdefault("injection", name)
    if _data_request(text):
        hits["data_request"] = "disclosure"
    if (abuse := toxicity.toxic_pattern(text)) is not None:
        hits.setdefault("toxic_input", abuse)
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

    def __init__(
        self,
        embed: Embed | None = None,
        seeds_path: Path = INPUT_SEEDS,
        toxicity_detector: toxicity.ToxicityDetector | None = None,
    ) -> None:
        super().__init__(embed, seeds_path)
        self._toxicity = toxicity_detector

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
        # Abuse must survive the names being replaced by stand-ins ("Can Shital call me?").
        neutral = toxicity.neutralise_names(texts)
        if neutral != texts:
            probs["toxic"] = self.classifier().predict(neutral)["toxic"]
        # The embedder was trained on English, and two words tell it little: on other languages
        # and on greetings its similarities measure the language or the length, not an attack
        # ("bonjour" sits nearer the French injection seeds than any English question). There,
        # only a pattern's evidence can call a message an injection or a data request.
        readable = [len(piece.split()) >= MIN_PIECE_WORDS and reads_as_english(piece) for _, piece in todo]
        votes: list[tuple[str, str, float]] = []  # toxic_input: (signal, piece, probability)
        for rail, label in INPUT_RAILS.items():
            if rail == "data_request" and not others:
                continue
            for (how, piece), p, ok in zip(todo, probs[label], readable):
                if rail in EMBEDDER_NEEDS_ENGLISH and not ok:
                    continue
                # Resembling an attack is not enough for an injection: the sentence must also
                # be about the assistant itself ("I'm not sure which setting controls which"
                # resembles the seeds' chatty register but asks nothing of the assistant).
                if rail == "injection" and not about_assistant(piece):
                    continue
                if rail == "toxic_input":
                    votes.append((f"prototype ({how})", piece, float(p)))
                else:
                    offer(rail, p, f"prototype ({how})")
        for (how, piece), p in zip(todo, toxicity.profanity(neutral)):
            votes.append((f"profanity ({how})", piece, float(p)))
        for signal, score in self._confirmed(votes):
            offer("toxic_input", score, signal)
        return best

    def _confirmed(self, votes: list[tuple[str, str, float]]) -> list[tuple[str, float]]:
        """The toxic votes of the models, each confirmed by the shared toxicity detector.

        A model's vote alone does not call a message abuse: the input prototypes and
        profanity-check both fire on polite text now and then (a quoted customer e-mail, a
        German question), and on different texts than the shared detector of
        :mod:`ragate_core.toxicity`, a classifier with its own seeds, hard negatives and
        names neutralised. So a vote at the threshold counts as the smaller of its
        probability and a second opinion on the same piece (its worst sentence or window):
        for a prototype vote the shared detector's value, for a profanity vote its
        prototype (the shared value holds profanity-check itself). Both must call it toxic.
        Patterns (strong swear words among them) need no confirmation.
        """
        threshold = THRESHOLDS["toxic_input"]
        suspects = list(dict.fromkeys(piece for _, piece, p in votes if p >= threshold))
        judged = dict(zip(suspects, self.confirmer().judge(suspects))) if suspects else {}
        out = []
        for signal, piece, p in votes:
            if piece in judged:
                j = judged[piece]
                other = j.prototype if signal.startswith("profanity") else j.value
                out.append(
                    (f"{signal}, confirmed {other:.2f}" if other >= threshold else signal, min(p, other))
                )
            else:
                out.append((signal, p))
        return out

    def confirmer(self) -> toxicity.ToxicityDetector:
        """The shared toxicity detector that confirms the models' toxic votes."""
        return self._toxicity or toxicity.shared_detector()


class OutputToxicity:
    """The probability that an answer is toxic: the shared detector of
    :mod:`ragate_core.toxicity` (the same judgment as the ``toxicity`` gate metric), read at
    the rail's own threshold."""

    def __init__(self, detector: toxicity.ToxicityDetector | None = None) -> None:
        self._detector = detector

    def detector(self) -> toxicity.ToxicityDetector:
        """The detector (the process-wide shared one unless given)."""
        return self._detector or toxicity.shared_detector()

    def assess(self, text: str) -> Finding:
        """The answer's worst sentence (or window of a long one), scored."""
        if not text.strip():
            return Finding("toxic_output", 0.0, "")
        judged = self.detector().judge([text])[0]
        signal = "profanity" if judged.kind == "profanity" else f"prototype {judged.kind}".strip()
        parts = toxicity.sentences(text)
        where = parts.index(judged.sentence) + 1 if judged.sentence in parts else 1
        return Finding("toxic_output", round(judged.value, 4), f"{signal} in sentence {where}")


def _default_embed() -> Embed:
    from ragate_core.embeddings import default_embeddings

    return default_embeddings().encode
