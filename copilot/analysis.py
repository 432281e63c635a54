"""Cheap, deterministic reading of a customer message: language, name, the concrete issue, the customer type."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Literal

CustomerType = Literal["angry", "abusive", "sarcastic", "chatty", "vague", "multi_issue", "polite"]
CUSTOMER_TYPES: tuple[CustomerType, ...] = ("angry", "abusive", "sarcastic", "chatty", "vague", "multi_issue", "polite")

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "tr": "Turkish",
    "ru": "Russian",
    "uk": "Ukrainian",
    "cs": "Czech",
    "ro": "Romanian",
    "hu": "Hungarian",
    "el": "Greek",
    "ja": "Japanese",
    "zh-cn": "Chinese",
    "zh-tw": "Chinese",
    "ko": "Korean",
    "ar": "Arabic",
    "he": "Hebrew",
    "hi": "Hindi",
    "id": "Indonesian",
    "vi": "Vietnamese",
    "th": "Thai",
}

_ENGLISH_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "i",
        "you",
        "my",
        "me",
        "it",
        "this",
        "that",
        "to",
        "of",
        "in",
        "on",
        "for",
        "with",
        "at",
        "not",
        "no",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "your",
        "we",
        "our",
        "they",
        "them",
        "what",
        "why",
        "how",
        "when",
        "please",
        "thanks",
        "thank",
        "order",
        "again",
        "just",
        "from",
        "so",
        "if",
    ]
)

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*", re.UNICODE)

# Each lexicon is a list of regexes; a message scores one point per distinct hit.
_ABUSE = [
    r"\b(idiot|idiots|moron|morons|stupid|useless|incompetent|pathetic|clowns?|liars?|scam(?:mers?)?|thie(?:f|ves))\b",
    r"\b(f+u+c+k\w*|shit\w*|crap|damn|bloody|bastards?|bitch\w*|ass(?:hole)?s?|wtf|stfu|screw you)\b",
    r"\b(i(?:'ll| will) (?:sue|find you|come down there|make you (?:pay|regret))|lawyers?|legal action|court)\b",
    r"\b(you people|shut up|go to hell|rot in|hope you (?:get )?fired|watch your back)\b",
    r"\b(threat\w*|report you|kill)\b",
]
_ANGER = [
    r"\b(unacceptable|ridiculous|outrageous|disgusting|disgraceful|furious|livid|fed up|sick of|had enough|"
    r"worst|terrible|horrible|awful|appalling|joke|nonsense|shameful|infuriat\w*|angry|annoyed|frustrat\w*)\b",
    r"\b(now|immediately|right now|asap|at once|today)\b[!.]",
    r"\b(third|fourth|fifth|\d+(?:st|nd|rd|th)) time\b|\bagain\b|\bstill\b|\bnever again\b",
    r"\b(refund|money back|cancel)\b.*!",
    r"\b(never (?:do|buy|use|shop)|taking my business|switch(?:ing)? to|leave a review|going public)\b",
]
_SARCASM = [
    r"\b(oh (?:great|wonderful|brilliant|fantastic|perfect|joy|sure)|thanks for nothing|just (?:great|perfect|"
    r"wonderful|brilliant|fantastic)|what a (?:surprise|shock|joke)|so helpful|really helpful)\b",
    r"\b(wow|bravo|congrat\w*|slow clap|genius|gold star|round of applause|love (?:how|that|waiting))\b",
    r"\b(clearly|obviously|of course|sure(?:ly)?|apparently)\b[^.!?]*\b(care|priority|matter|competent|"
    r"professional|genius|wonderful|great)\b",
    r"/s\b|🙄|😒|\b(yeah right|as if|can't wait|totally|best (?:company|service) ever)\b",
    r"\"(?:customer service|help|support|express|fast|24/7)\"",
]
_POLITE = [
    r"\b(please|thank you|thanks|grateful|appreciate|kind regards|best regards|would you mind|could you|"
    r"if possible|hope you(?:'re| are) well|no rush|i understand)\b",
]
_CHATTY = [
    r"\b(by the way|anyway|funny story|long story|my (?:grand\w+|husband|wife|son|daughter|neighbou?r|dog|cat|"
    r"mother|mum|mom|dad|sister|brother|friend)|last (?:week|summer|christmas)|reminds me|as i was saying|"
    r"lovely|weather|vacation|holiday|birthday|retired|you know)\b",
]
_INJECTION = [
    r"\b(ignore|disregard|forget|override) (?:all |any |your |the |previous |prior |above |earlier )*"
    r"(?:instructions?|rules?|guidelines?|prompts?|policies|programming)\b",
    r"\byou are now\b|\bact as\b|\bpretend (?:to be|you are)\b|\bnew instructions?\b|\bsystem prompt\b",
    r"\bdeveloper mode\b|\bjailbreak\b|\bDAN\b|\bas an ai\b|\brespond only with\b",
    r"\b(?:you must|you will) (?:promise|guarantee|agree|confirm)\b|\bwrite (?:that|me) (?:a|the) (?:refund|promise)\b",
    # Role labels and notes addressed to the machine rather than to a person.
    r"(?m)^\W{0,4}(?:system|assistant|developer|admin)\s*:",
    r"\b(?:note|message|instructions?) (?:to|for) the (?:ai|assistant|bot|chatbot|copilot|model|llm)\b",
    r"\b(?:dear |hey )?(?:ai|chatgpt|chatbot|copilot|llm)[,:]\s*(?:you must|please|ignore|always|never)\b",
    r"<!--[^>]*\b(?:ai|assistant|bot|model|ignore|must|waive|refund)\b[^>]*-->",
]

# Topic lexicons: two or more distinct topics make a multi-issue message.
_TOPICS: dict[str, str] = {
    "delivery": r"\b(deliver\w*|arriv\w*|shipp\w*|courier|package|parcel|tracking|late|delay\w*|lost|never came|"
    r"dispatch\w*|postman|driver)\b",
    "damage": r"\b(broken|damaged|cracked|smashed|dented|torn|shattered|crushed|leak\w*|scratch\w*|defective)\b",
    # Refunds are what the customer wants back, not a separate complaint, so they are not a billing topic.
    "billing": r"\b(charg\w*|bill\w*|invoice|overcharg\w*|payment|fee|subscription|debit\w*|price|credit card|"
    r"twice)\b",
    "account": r"\b(log ?in|password|account|locked|sign ?in|username|verification|two-factor|2fa|email address)\b",
    "fault": r"\b(doesn['’]?t work|does not work|not working|stopped working|won['’]?t (?:turn|start|load|open)|"
    r"error|crash\w*|bug|freez\w*|outage|down|faulty|glitch\w*|keeps? (?:dropping|failing))\b",
    "service": r"\b(rude|hold|waited|waiting|on hold|transferred|no one|nobody|call(?:ed)? back|ignored|"
    r"unanswered|chat ?bot|agent|manager|supervisor|hung up)\b",
    "wrong_item": r"\b(wrong (?:item|size|colou?r|product|order)|not what i ordered|missing (?:item|part|piece)s?|"
    r"incomplete)\b",
    "cancellation": r"\b(cancel\w*|terminate|close my account|unsubscribe)\b",
}
_ENUMERATION = re.compile(
    r"(^|\n)\s*(?:\d+[.)]|[-*•])\s+\S|\b(also|another thing|on top of that|second(?:ly)?|third(?:ly)?|"
    r"plus|not to mention|as well as|and then|besides)\b",
    re.IGNORECASE,
)
_NAME_PATTERNS = [
    re.compile(r"\b(?:my name is|this is|i am|i'm|it's)\s+([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?)(?=[\s,.!]|$)"),
    re.compile(
        r"(?:^|\n)\s*(?:thanks|thank you|regards|kind regards|best|cheers|sincerely|best wishes|yours)[,!.]?"
        r"\s*\n?\s*[-–—]?\s*([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?)\s*\.?\s*$",
        re.IGNORECASE,
    ),
    re.compile(r"(?:^|\s)[-–—]{1,2}\s*([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?)\s*$"),
    re.compile(r"(?:^|[.!?]\s+)(?:thanks|thank you|regards|cheers)[,!]\s*([A-Z][a-z'’-]+)\s*\.?\s*$", re.IGNORECASE),
]
# A short message that names no thing (order, bill, app…) leaves the agent guessing what is wrong.
_CONCRETE = re.compile(
    r"\b(order|package|parcel|delivery|item|product|invoice|bill|charge|refund|account|card|app|website|"
    r"phone|laptop|router|internet|wifi|tv|subscription|booking|flight|ticket|room|reservation|payment|"
    r"password|login|meter|car|device|printer|\d{3,})\b",
    re.IGNORECASE,
)
_NOT_NAMES = frozenset(
    {
        "I",
        "The",
        "This",
        "It",
        "Very",
        "So",
        "Really",
        "Not",
        "Sorry",
        "Angry",
        "Furious",
        "Done",
        "Sick",
        "Fed",
        "Tired",
        "Still",
        "Waiting",
        "Here",
        "Back",
        "Writing",
        "Going",
        "Never",
    }
)


@dataclass(frozen=True)
class Analysis:
    """What the copilot read from the customer's message, with the signals behind each call."""

    language: str
    language_name: str
    customer_name: str | None
    issue: str
    issues: list[str]
    customer_type: CustomerType
    types: list[CustomerType]
    signals: list[str] = field(default_factory=list)
    injection: bool = False

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return asdict(self)


def _score(patterns: list[str], text: str) -> tuple[int, list[str]]:
    hits = []
    for pattern in patterns:
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            first = found[0] if isinstance(found[0], str) else next((g for g in found[0] if g), "")
            hits.append(first.strip() or pattern[:12])
    return len(hits), hits


def detect_language(text: str) -> str:
    """ISO 639-1 code of the message's language; English unless the text clearly says otherwise."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return "en"
    english = sum(w in _ENGLISH_WORDS for w in words) / len(words)
    if english >= 0.18 or (len(words) < 4 and text.isascii()):
        return "en"
    try:
        from langdetect import DetectorFactory, LangDetectException, detect

        DetectorFactory.seed = 0  # langdetect is random unless seeded
        try:
            return detect(text)
        except LangDetectException:
            return "en"
    except ImportError:
        return "en"


def _clean(message: str) -> str:
    # Control characters (other than newlines and tabs) carry no meaning and confuse the regexes.
    return "".join(ch for ch in message if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def find_name(message: str) -> str | None:
    """The customer's name when the message states or signs it."""
    for pattern in _NAME_PATTERNS:
        match = pattern.search(message.strip())
        if match:
            name = match.group(1).strip()
            if name.split()[0] not in _NOT_NAMES:
                return name
    return None


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if len(s.strip()) > 2]


def _issue_sentences(sentences: list[str]) -> list[tuple[str, set[str]]]:
    scored: list[tuple[int, str, set[str]]] = []
    for sentence in sentences:
        topics = {name for name, pattern in _TOPICS.items() if re.search(pattern, sentence, re.IGNORECASE)}
        if topics:
            scored.append((len(topics), sentence, topics))
    return [(sentence, topics) for _, sentence, topics in scored]


def _shorten(sentence: str, limit: int = 180) -> str:
    sentence = re.sub(r"\s+", " ", sentence).strip()
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + "…"


def analyse(message: str, name: str | None = None) -> Analysis:
    """Read the message: deterministic regex and lexicon scoring, no model call."""
    text = _clean(message)
    words = _WORD.findall(text)
    sentences = _sentences(text)
    signals: list[str] = []

    abuse, abuse_hits = _score(_ABUSE, text)
    anger, anger_hits = _score(_ANGER, text)
    sarcasm, sarcasm_hits = _score(_SARCASM, text)
    polite, _ = _score(_POLITE, text)
    chatty, chatty_hits = _score(_CHATTY, text)
    caps = [w for w in words if len(w) >= 3 and w.isupper()]
    exclaims = text.count("!")
    if caps and len(caps) >= max(2, len(words) // 12):
        anger += 2
        signals.append(f"{len(caps)} words in capitals")
    if exclaims >= 2:
        anger += 1 + (exclaims >= 4)
        signals.append(f"{exclaims} exclamation marks")
    if abuse_hits:
        signals.append("abusive or threatening: " + ", ".join(abuse_hits[:3]))
    if anger_hits:
        signals.append("anger: " + ", ".join(anger_hits[:3]))
    if sarcasm_hits:
        signals.append("sarcasm: " + ", ".join(sarcasm_hits[:3]))

    issue_sentences = _issue_sentences(sentences)
    topics: set[str] = set().union(*(t for _, t in issue_sentences)) if issue_sentences else set()
    enumerated = len(_ENUMERATION.findall(text))
    # A single broken delivery naturally mentions "delivery" and "damage"; only distinct complaints count.
    distinct = topics - ({"delivery"} if "damage" in topics or "wrong_item" in topics else set())
    multi = len(distinct) >= 3 or (len(distinct) >= 2 and (enumerated >= 1 or len(issue_sentences) >= 3))
    if multi:
        signals.append("several issues: " + ", ".join(sorted(distinct)))
    is_long = len(words) > 110
    chatty_score = chatty + (2 if is_long else 0) + (1 if len(sentences) > 8 else 0)
    if chatty_hits:
        signals.append("digressions: " + ", ".join(chatty_hits[:3]))
    vague = len(words) < 30 and not _CONCRETE.search(text) and topics <= {"fault", "service"}

    types: list[tuple[float, CustomerType]] = []
    if abuse:
        types.append((10 + abuse, "abusive"))
    if anger >= 2 or (anger >= 1 and not polite):
        types.append((5 + anger, "angry"))
    if sarcasm:
        types.append((5.5 + sarcasm, "sarcastic"))
    if multi:
        types.append((4.5 + len(distinct) / 2, "multi_issue"))
    if chatty_score >= 3:
        types.append((4 + chatty_score / 2, "chatty"))
    if vague:
        types.append((4.2, "vague"))
    if polite and not abuse and anger <= 1 and not sarcasm:
        types.append((3 + polite, "polite"))
    if not types:
        types.append((1, "vague" if not issue_sentences else "polite"))
    types.sort(key=lambda item: -item[0])
    ordered = [t for _, t in types]

    if issue_sentences:
        best = max(issue_sentences, key=lambda item: len(item[1]))
        issue = _shorten(best[0])
        issues = [_shorten(s) for s, _ in issue_sentences][:5]
    else:
        issue = _shorten(sentences[0]) if sentences else ""
        issues = [issue] if issue else []

    injection, injection_hits = _score(_INJECTION, text)
    if injection:
        signals.append("tries to instruct the copilot: " + ", ".join(injection_hits[:2]))
    language = detect_language(text)
    customer_name = (name or "").strip() or find_name(text)
    return Analysis(
        language=language,
        language_name=LANGUAGE_NAMES.get(language, language),
        customer_name=customer_name or None,
        issue=issue,
        issues=issues,
        customer_type=ordered[0],
        types=ordered,
        signals=signals,
        injection=bool(injection),
    )
