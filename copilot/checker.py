"""Reply checker: flags blame, defensiveness and empty apologies in an agent's draft reply.

The rules are data (``prompts/checker/*.yaml``) written and extended by trainers; only the *kinds* of rule live
here. Imports stay limited to the standard library, PyYAML and pydantic so ``copilot check`` answers instantly.
"""

from __future__ import annotations

import bisect
import difflib
import gc
import hashlib
import importlib
import marshal
import os
import re
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError

from copilot import native
from copilot.classifier import SentenceModel
from copilot.errors import DataFileError
from copilot.rulespec import (
    KINDS,
    ActionCountSpec,
    ApologySpec,
    Category,
    ClassifierSpec,
    ExampleCase,
    LongSentenceSpec,
    MissingSpec,
    PhraseSpec,
    RuleSpec,
    Severity,
)

BLOCKING_CATEGORIES = ("blame", "defensiveness", "empty_apology")
DEFAULT_SEVERITY: dict[str, Severity] = {
    "blame": "block",
    "defensiveness": "block",
    "empty_apology": "block",
    "commitment": "warn",
    "coaching": "hint",
}

# Patterns ignore case by matching lower-cased patterns against lower-cased text: Python's re is several times
# slower with IGNORECASE because it can no longer use literal prefixes to skip ahead.
_FLAGS: Final = re.MULTILINE
# re's own parser and compiler test flags bit by bit: as a plain int they cost nothing, as a RegexFlag each test is an
# enum operation (re.compile converts them the same way).
_FLAG_BITS: Final = int(_FLAGS)
# Matches may not start or end inside a word ("you" inside "your", "no" inside "know"), whatever the pattern's
# first and last characters are (a plain \b would break patterns that start with a comma). The end is guarded in
# the regex; the start is checked in Python (_finditer) because a leading look-behind stops re from skipping ahead
# to the pattern's first letters and makes every scan several times slower.
_END_GUARD: Final = r"(?:(?!\w)|(?<!\w))"
_MACRO: Final = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
_ABBREVIATIONS: Final = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "vs",
        "etc",
        "approx",
        "ltd",
        "inc",
        "jr",
        "sr",
        "co",
        "dept",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "fig",
        "ref",
        "tel",
    ]
)
# Sentence ends: the stop (group 1) with closing quotes and the space after it (group 2), or a line break. The stop is
# matched rather than looked behind at so that re can skip straight to the next . ! ? or line break.
_SENTENCE_END: Final = re.compile(r"([.!?])[\"'”’)\]]*(\s+)|\n\s*")
# Clause boundaries scope negation ("I'd never ask you to calm down") and "unless" look-behinds.
# The reference: _clause_bounds finds the ends of its matches in the lower-cased scan without running it, since re
# tries all three alternatives at every character of the text.
_CLAUSE_BOUNDARY: Final = re.compile(r"[,;:()\u2013\u2014]|\s-\s|\bbut\b", re.IGNORECASE)
_CLAUSE_MARKS: Final = ",;:()\u2013\u2014"
# Quoted words are the customer's or someone else's, not the agent's: matching skips them.
_QUOTED: Final = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|(?<!\w)'[^'\n]+?'(?!\w)")
_TRIM: Final = " \t\n,.;:!?-\u2013\u2014"
# The reference for _abbreviation_word.
_ABBREVIATION_WORD: Final = re.compile(r"([\w.]+)\.$")
_WORD: Final = re.compile(r"\w+")
# The regex parser (stdlib, private) lets the loader find words every match of a rule must contain; a text
# without any of them skips that rule. Falls back to "always run" if the parser's layout ever changes. The regex
# compiler (stdlib, private) tells which patterns re itself can skip ahead in (see _starts), and with _sre it
# compiles the word lists as tries (see _factored).
try:
    _sre_parse: Any = importlib.import_module("re._parser")
    _sre_compiler: Any = importlib.import_module("re._compiler")
    _sre: Any = importlib.import_module("_sre")
except ImportError:  # pragma: no cover - Python < 3.11 names it sre_parse
    _sre_parse = None


@dataclass(frozen=True)
class Finding:
    """One problem found in a reply, with the exact span, the reason and a better phrasing."""

    category: Category
    severity: Severity
    start: int
    end: int
    text: str
    rule: str
    message: str
    suggestion: str
    source: str

    def __reduce__(self) -> tuple[type[Finding], tuple[object, ...]]:
        # Copied and pickled by its fields: the C build's frozen class refuses the attribute-by-attribute default.
        return Finding, (
            self.category,
            self.severity,
            self.start,
            self.end,
            self.text,
            self.rule,
            self.message,
            self.suggestion,
            self.source,
        )

    def to_dict(self) -> dict[str, object]:
        """Return the finding as a JSON-ready dictionary."""
        return {
            "category": self.category,
            "severity": self.severity,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "rule": self.rule,
            "message": self.message,
            "suggestion": self.suggestion,
            "source": self.source,
        }


@dataclass(frozen=True)
class CheckContext:
    """What is known about the conversation beyond the reply text."""

    customer_name: str | None = None
    issue: str | None = None


_TOP_LEVEL_KEYS = ("rules", "vocabulary")


# ---------------------------------------------------------------------------------------------------------------
# Text preparation, done once per checked text and shared by all rules.
# ---------------------------------------------------------------------------------------------------------------


class _Doc:
    """A text split into sentences, with quotations blanked out and sentence breaks turned into newlines.

    Also caches what several rules ask about the same text: its words and where they start, which required-word
    groups it satisfies, clause boundaries and the matches of shared patterns (the apology word is looked up once,
    not once per rule).
    """

    __slots__ = (
        "text",
        "scan",
        "sentences",
        "starts",
        "_bounds",
        "_words",
        "_sat",
        "_unsat",
        "_found",
        "_memo",
        "_keyed",
        "routed",
        "_short",
        "_learned",
        "_positions",
        "_present",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        masked = _QUOTED.sub(_blank_quote, text) if _may_quote(text) else text
        sentences: list[tuple[int, int]] = []
        pieces: list[str] = []
        start = done = 0
        for stop, end, gap, after in _sentence_ends(text):
            if stop and _is_abbreviation(text, end):
                continue
            # Newlines let patterns use ^ and $ for sentence start and end while scanning the whole text once.
            pieces.append(masked[done:gap])
            pieces.append("\n" * (after - gap))
            done = after
            if text[start:end].strip():
                sentences.append(_strip_span(text, start, end))
            start = after
        if text[start:].strip():
            sentences.append(_strip_span(text, start, len(text)))
        pieces.append(masked[done:])
        # Curly apostrophes read as straight ones, so patterns only need to spell "don't" one way.
        self.scan = _lower("".join(pieces).replace("\u2019", "'"))
        self.sentences = sentences
        self.starts = [s for s, _ in sentences]
        # Where words start by their first _START_SIZE characters (see _starts), and the required-word groups (see
        # _required_literals) the text's words satisfy, from one pass.
        words: bytes
        keyed: dict[str, list[int]]
        words, keyed = (_C_WORD_INDEX or _word_index)(self.scan, _START_SIZE, _word_groups())
        # declared, not inferred: inferred from the C function's result it would be an object, read without the
        # compiled bytes indexing
        self._words: bytes = words
        self._sat: set[int] = set()
        self._keyed: dict[str, list[int]] = keyed
        # The word starts each pattern and anchor looking for word starts may begin at, in one pass (see _route_of).
        self.routed: list[list[int] | None] = _route(self.scan, keyed, _ROUTES, len(_ROUTE_IDS))
        self._short: dict[int, dict[str, list[list[int]]]] = {}
        self._bounds: list[int] | None = None
        self._unsat: set[int] = set()
        self._found: dict[int, list[re.Match[str]]] = {}
        self._memo: dict[tuple[int, int], bool] = {}
        self._learned: dict[int, list[dict[str, float]]] = {}
        self._positions: dict[int, list[int] | None] = {}
        self._present: bytes | None = None

    def learned(self, model: SentenceModel) -> list[dict[str, float]]:
        """The model's probabilities for each sentence, worked out once for all the classifier rules sharing it.

        The model reads ``scan``, where quotations are blanked, so the customer's quoted words never count against
        the agent.
        """
        found = self._learned.get(id(model))
        if found is None:
            scan = self.scan
            found = self._learned[id(model)] = [model.probabilities(scan[s:e]) for s, e in self.sentences]
        return found

    def positions(self, rx: re.Pattern[str]) -> list[int] | None:
        """Every position in the text where a match of ``rx`` can start, ascending (see _starts); None when that is
        not known, so the pattern must be searched for. Remembered for the rules sharing ``rx``."""
        key = id(rx)
        if key in self._positions:
            return self._positions[key]
        route = _BY_KEY_ROUTE.get(key)
        if route is not None:
            found: list[int] | None = self.routed[route] or []
        else:
            starts = _INFO.get(key, _NO_INFO)[1]
            found = None if starts is None else sorted({p for at in self.candidates(starts) for p in at})
        self._positions[key] = found
        return found

    def candidates(self, starts: _Starts) -> list[list[int]]:
        """Where a match of a pattern whose matches begin with one of ``starts`` (see _starts) can start: lists of
        ascending positions, one per string found (at the start of a word, right before a word for one such as
        ", not", or anywhere for one without a word such as "?")."""
        routes = _START_ROUTES.get(id(starts))
        if routes is None:
            return _candidates(self.scan, self._keyed, self._short, starts, _START_SIZE)  # type: ignore[no-any-return]
        return _candidates(  # type: ignore[no-any-return]
            self.scan, self._keyed, self._short, starts, _START_SIZE, routes, self.routed
        )

    def starts_of(self, rx: re.Pattern[str], starts: _Starts) -> list[list[int]]:
        """``candidates(starts)`` for ``rx``, or, for a pattern with longer start strings, only the word starts where
        one of those follows (see _longer_prefixes)."""
        route = _BY_KEY_ROUTE.get(id(rx))
        if route is None:
            return self.candidates(starts)
        at = self.routed[route]
        return [] if at is None else [at]

    def may_match(self, needs: _Needs) -> bool:
        """False when a pattern with these required-word groups cannot match this text (see _required_literals)."""
        words = self._words
        sat = self._sat
        for group in needs:
            if group < len(words) and words[group]:
                continue
            if group in sat:
                continue
            if group in self._unsat:
                return False
            ids = _GROUP_SUB_IDS[group]
            if ids:
                if _C_PRESENT is None:
                    # plain Python: searched for as asked, since most groups are never asked about
                    scan = self.scan
                    if any(s in scan for s in _GROUPS[group][1]):
                        sat.add(group)
                        continue
                else:
                    # every substring any group looks for, found in one pass the first time one is asked about
                    present = self._present
                    if present is None:
                        present = self._present = _C_PRESENT(self.scan, _SUBS)
                    if any(present[i] for i in ids):
                        sat.add(group)
                        continue
            self._unsat.add(group)
            return False
        return True

    def matches(self, rx: re.Pattern[str]) -> list[re.Match[str]]:
        """All non-empty matches of ``rx`` that start on a word boundary, cached for the rules sharing ``rx``."""
        key = id(rx)
        found = self._found.get(key)
        if found is None:
            needs, starts = _INFO.get(key, _NO_INFO)
            if not self.may_match(needs):
                found = []
            elif starts is None:
                found = [m for m in _finditer(rx, self.scan) if m.end() > m.start()]
            else:
                found = _matches_at(rx, self.scan, self.starts_of(rx, starts), self.routed)
            self._found[key] = found
        return found

    def memo_any_in_clause(self, patterns: tuple[re.Pattern[str], ...], pos: int) -> bool:
        """``_any_in_clause`` over the clause before ``pos``, remembered for rules sharing the same patterns."""
        key = (id(patterns), pos)
        hit = self._memo.get(key)
        if hit is None:
            hit = _any_in_clause(patterns, self, self.clause_start(pos), pos)
            self._memo[key] = hit
        return hit

    def sentence_of(self, pos: int) -> int:
        """Index of the sentence containing ``pos``."""
        return max(bisect.bisect_right(self.starts, pos) - 1, 0)

    def clause_start(self, pos: int) -> int:
        """Start of the clause containing ``pos`` (after the last comma, semicolon, dash or "but")."""
        if self._bounds is None:
            self._bounds = _clause_bounds(self.scan)
        sentence_start = self.sentences[self.sentence_of(pos)][0] if self.sentences else 0
        i = bisect.bisect_right(self._bounds, pos) - 1
        return max(self._bounds[i], sentence_start) if i >= 0 else sentence_start


def _py_sentence_ends(text: str) -> list[tuple[int, int, int, int]]:
    """Each match of _SENTENCE_END: (1, after the stop, where the spaces after it start, the match's end) for a stop,
    (0, start, start, end) for a line break. copilot/_word_index.c's ``sentence_ends`` does the same in C."""
    return [
        (1, m.end(1), m.start(2), m.end()) if m.lastindex else (0, m.start(), m.start(), m.end())
        for m in _SENTENCE_END.finditer(text)
    ]


def _py_present(scan: str, subs: tuple[str, ...]) -> bytes:
    """1 for each of ``subs`` that occurs in ``scan``, else 0: what copilot/_word_index.c's ``present`` computes in one
    pass over the text (plain Python searches for a group's substrings only when asked, see _Doc.may_match)."""
    return bytes(sub in scan for sub in subs)


def _clause_bounds(scan: str) -> list[int]:
    """``[m.end() for m in _CLAUSE_BOUNDARY.finditer(scan)]`` for a lower-cased ``scan``, ascending.

    Each alternative begins with characters the others cannot contain (a mark, a space, a "b"), so their matches
    never overlap and each can be found on its own with ``str.find``; only two dashed spaces can overlap (" - - "),
    and as finditer does, the second then does not count.
    """
    ends: list[int] = []
    for mark in _CLAUSE_MARKS:
        p = scan.find(mark)
        while p >= 0:
            ends.append(p + 1)
            p = scan.find(mark, p + 1)
    n = len(scan)
    done = 0
    p = scan.find("-", 1)
    while p >= 0:
        if p - 1 >= done and p + 1 < n and scan[p - 1].isspace() and scan[p + 1].isspace():
            done = p + 2
            ends.append(done)
        p = scan.find("-", p + 1)
    p = scan.find("but")
    while p >= 0:
        if (p == 0 or not _is_word_char(scan[p - 1])) and (p + 3 == n or not _is_word_char(scan[p + 3])):
            ends.append(p + 3)
        p = scan.find("but", p + 3)
    ends.sort()
    return ends


def _word_index(scan: str, size: int, groups: dict[str, list[int]]) -> tuple[bytes, dict[str, list[int]]]:
    """The groups (``groups[word]``) of the words of ``scan``, as a byte for each id up to the largest in ``groups``
    (1: a word of the text is in it), and by the first ``size`` characters from each word's start, where words start.

    copilot/_word_index.c does the same in C, used beside the compiled engine (see copilot/native.py).
    """
    if _TOP_OF[0] is not groups:
        ids_of = [i for ids in groups.values() for i in ids]
        if any(i < 0 for i in ids_of):
            raise ValueError("index: group ids are 0 or more")
        _TOP_OF[:] = [groups, max(ids_of, default=-1)]
    sat = bytearray(_TOP_OF[1] + 1)
    seen: set[str] = set()
    keyed: dict[str, list[int]] = {}
    for m in _WORD.finditer(scan):
        p = m.start()
        word = m.group()
        if word not in seen:
            # a word repeated ("the", "you") adds its groups once
            seen.add(word)
            for i in groups.get(word, ()):
                sat[i] = 1
        key = scan[p : p + size]
        at = keyed.get(key)
        if at is None:
            keyed[key] = [p]
        else:
            at.append(p)
    return bytes(sat), keyed


# The groups dict _word_index was last given (one that never changes) and its largest id.
_TOP_OF: Final[list[Any]] = [None, -1]
_C_WORD_INDEX: Final[Any] = getattr(native.extension("_word_index"), "index", None)


def _py_candidates(
    scan: str,
    keyed: dict[str, list[int]],
    short: dict[int, dict[str, list[list[int]]]],
    starts: _Starts,
    full: int,
    routes: tuple[int, ...] | None = None,
    routed: list[list[int] | None] | None = None,
) -> list[list[int]]:
    """``_Doc.candidates``: ``keyed`` is the text's word index by ``full`` characters, ``short`` its cache of the
    same by fewer (see _shorten); ``routes``, when given, the route of each start's strings (-1 for none) and
    ``routed`` the text's word starts by route (see _route_of). copilot/_word_index.c's ``candidates`` does the same
    in C."""
    found: list[list[int]] = []
    for e, (size, keys, head) in enumerate(starts):
        if not size:
            for key in keys:
                at = []
                p = scan.find(key)
                while p >= 0:
                    at.append(p)
                    p = scan.find(key, p + 1)
                if at:
                    found.append(at)
            continue
        if routes is not None and routed is not None and routes[e] >= 0:
            words = routed[routes[e]]
            lists = [] if words is None else [words]
        elif size == full:
            lists = [keyed[k] for k in keyed.keys() & keys]
        else:
            by = short.get(size)
            if by is None:
                by = short[size] = _shorten(keyed, size)
            lists = [at for k in by.keys() & keys for at in by[k]]
        if not head:
            found.extend(lists)
            continue
        # the words found start right after ``head`` (", " before "not"): the match starts at the head
        back = len(head)
        for at in lists:
            after = [q - back for q in at if q >= back and scan.startswith(head, q - back)]
            if after:
                found.append(after)
    return found


def _shorten(keyed: dict[str, list[int]], size: int) -> dict[str, list[list[int]]]:
    """The word starts by their first ``size`` characters, fewer than the index's own."""
    short: dict[str, list[list[int]]] = {}
    for key, at in keyed.items():
        lists = short.get(key[:size])
        if lists is None:
            short[key[:size]] = [at]
        else:
            lists.append(at)
    return short


def _blank_quote(m: re.Match[str]) -> str:
    s = m.group(0)
    return s[0] + " " * (len(s) - 2) + s[-1]


def _may_quote(text: str) -> bool:
    """False when _QUOTED cannot match: no double or curly quote, and every ' follows a word character ("I'm")."""
    if '"' in text or "\u201c" in text or "\u2018" in text:
        return True
    p = text.find("'")
    while p >= 0:
        if p == 0 or not _is_word_char(text[p - 1]):
            return True
        p = text.find("'", p + 1)
    return False


def _abbreviation_word(text: str, dot: int) -> str:
    """What ``_ABBREVIATION_WORD.search(text, max(0, dot - 12), dot)`` captures ("" for no match) when ``dot - 1``
    holds a full stop: the run of word characters and dots before it, read backwards instead of searched for."""
    lo = max(0, dot - 12)
    i = dot - 1
    while i > lo and (text[i - 1] == "." or _is_word_char(text[i - 1])):
        i -= 1
    return text[i : dot - 1]


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the full stop before ``dot`` ends an abbreviation such as "Mr." rather than a sentence."""
    if text[dot - 1] != ".":
        return False
    found = _abbreviation_word(text, dot)
    if not found:
        return False
    name = found.lower()
    # "No." starts a number ("No. 5") but is also a whole, curt sentence ("No. We don't do that.").
    return name in _ABBREVIATIONS or (name in ("no", "nos") and text[dot : dot + 3].strip()[:1].isdigit())


def _lower(text: str) -> str:
    """Lower-case ``text`` without changing its length, so offsets stay valid ("İ" lower-cases to two chars)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _lower_pattern(pattern: str) -> str:
    """Lower-case a regex's literal letters but not its escapes, since \\W, \\S, \\D and \\B mean something else."""
    out = []
    escaped = False
    for ch in pattern:
        out.append(ch if escaped else ch.lower())
        escaped = ch == "\\" and not escaped
    return "".join(out)


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span so it neither starts nor ends with spaces or punctuation."""
    while end > start and text[end - 1] in _TRIM:
        end -= 1
    while start < end and text[start] in _TRIM:
        start += 1
    return start, end


# ---------------------------------------------------------------------------------------------------------------
# Compiled rules: one class per kind.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A validated, compiled rule; ``find`` yields the spans it flags in a prepared text."""

    id: str
    kind: str
    category: Category
    severity: Severity
    message: str
    suggestion: str
    source: str
    path: Path
    line: int
    flag_examples: tuple[ExampleCase, ...]
    pass_examples: tuple[ExampleCase, ...]
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """The (start, end) spans this rule flags. A list, not a generator: most rules find nothing in a text, and an
        empty list costs less than a generator."""
        raise NotImplementedError

    def finding(self, doc: _Doc, start: int, end: int) -> Finding:
        """Build the finding for a span of ``doc``."""
        start, end = _trim(doc.text, start, end)
        # The same object Finding(...) builds, without calling the frozen dataclass's __init__: that runs as Python
        # code even in the C build, and cost more than everything else in building a finding. In the C build the
        # attributes are set through the class's own setters in one call.
        text = doc.text[start:end]
        if _MADE is not None:
            made: Finding = _MADE(
                Finding,
                _SETTERS,
                self.category,
                self.severity,
                start,
                end,
                text,
                self.id,
                self.message,
                self.suggestion,
                self.source,
            )
            return made
        found: Finding = _NEW(Finding)
        _SET(found, "category", self.category)
        _SET(found, "severity", self.severity)
        _SET(found, "start", start)
        _SET(found, "end", end)
        _SET(found, "text", text)
        _SET(found, "rule", self.id)
        _SET(found, "message", self.message)
        _SET(found, "suggestion", self.suggestion)
        _SET(found, "source", self.source)
        return found


_NEW: Final[Any] = Finding.__new__
_SET: Final[Any] = object.__setattr__
# Finding's attributes as the C build defines them (getset descriptors, in Rule.finding's order), when it does.
_SETTERS: Final[tuple[Any, ...]] = tuple(
    vars(Finding).get(name)
    for name in ("category", "severity", "start", "end", "text", "rule", "message", "suggestion", "source")
)
_MADE: Final[Any] = (
    getattr(native.extension("_word_index"), "made", None)
    if all(isinstance(d, types.GetSetDescriptorType) for d in _SETTERS)
    else None
)


def _mid_word(text: str, pos: int) -> bool:
    """True when ``pos`` falls between two word characters."""
    if pos <= 0 or pos >= len(text):
        return False
    a, b = text[pos - 1], text[pos]
    return (a.isalnum() or a == "_") and (b.isalnum() or b == "_")


def _finditer(rx: re.Pattern[str], text: str, pos: int = 0, endpos: int | None = None) -> list[re.Match[str]]:
    """Like ``rx.finditer`` but skips matches that start inside a word, retrying one character later."""
    end = len(text) if endpos is None else endpos
    found = []
    while pos <= end:
        m = rx.search(text, pos, end)
        if m is None:
            break
        if _mid_word(text, m.start()):
            pos = m.start() + 1
            continue
        found.append(m)
        pos = m.end() if m.end() > m.start() else m.end() + 1
    return found


def _first(rx: re.Pattern[str], text: str, pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
    """The first match ``_finditer`` finds, or None: without looking for the others."""
    end = len(text) if endpos is None else endpos
    while pos <= end:
        m = rx.search(text, pos, end)
        if m is None or not _mid_word(text, m.start()):
            return m
        pos = m.start() + 1
    return None


def _matches_at(
    rx: re.Pattern[str], scan: str, groups: list[list[int]], routed: list[list[int] | None]
) -> list[re.Match[str]]:
    """What ``_finditer(rx, scan)`` yields when matches of ``rx`` can only start at the positions in ``groups``.

    Rather than searching every position of the text, a pattern whose matches begin with known strings (see
    _starts) is tried only where those strings begin a word (see _Doc.candidates). Keeping the earliest of
    overlapping matches, then the earliest after it, gives finditer's leftmost, non-overlapping matches.
    """
    return _tries(rx.match, scan, groups, _ROUTED_ANCHORS.get(id(rx)), routed)


def _py_tries(
    match: Any,
    scan: str,
    groups: list[list[int]],
    anchor: _RoutedAnchor | None = None,
    routed: list[list[int] | None] | None = None,
) -> list[re.Match[str]]:
    """``_matches_at`` given the pattern's bound match method, tried only where its ``anchor`` follows (when given
    with the text's ``routed`` word starts); copilot/_word_index.c's ``tries`` does the same in C."""
    if anchor is not None and routed is not None:
        groups = [_py_anchored(scan, routed, anchor, [p for at in groups for p in at])]
    found = [m for at in groups for p in at if (m := match(scan, p)) is not None]
    return _leftmost(found) if len(found) > 1 else found


def _py_anchored(scan: str, routed: list[list[int] | None], anchor: _RoutedAnchor, positions: list[int]) -> list[int]:
    """The ``positions`` (in their order) after which one of the anchor's strings begins before the line ends, at
    least the anchor's width after them (see _anchor_of)."""
    if not positions:
        return positions
    width = anchor[0]
    ahead = _py_anchor_hits(scan, routed, anchor)
    kept = []
    for p in positions:
        if p < 0 or p > len(scan):
            continue  # never a match there: nothing to try
        i = bisect.bisect_left(ahead, p + width)
        if i < len(ahead) and scan.find("\n", p, ahead[i]) == -1:
            kept.append(p)
    return kept


def _py_route(scan: str, keyed: dict[str, list[int]], table: _RouteTable, count: int) -> list[list[int] | None]:
    """For each of ``count`` routes (see _route_of), None or the ascending word starts of ``keyed`` that ``table``
    sends it, kept where one of the route's longer strings for that key follows (routes from ``count`` on are left
    out); copilot/_word_index.c's ``route`` does the same in C."""
    by_key = _routes_by_key(table, count)
    routed: list[list[int] | None] = [None] * count
    for key, at in keyed.items():
        compiled = by_key.get(key)
        if compiled is None:
            continue
        always, sizes, by_text = compiled
        for p in at:
            hit = set(always)
            for size in sizes:
                more = by_text.get(scan[p : p + size])
                if more:
                    hit.update(more)  # a route may have two strings there ("the" and "the "): its start once
            for route in hit:
                found = routed[route]
                if found is None:
                    routed[route] = [p]
                else:
                    found.append(p)
    for found in routed:
        if found is not None and len(found) > 1:
            found.sort()  # the starts of several keys
    return routed


# The route table compiled for plain Python, for the last (table, count) given (see _word_index.c's build_routes):
# by key, the routes taking every start under it, the lengths of its longer strings, and by longer string the routes
# having it, so a word start is looked up once for each length rather than tested against each route's strings.
_ROUTES_BY_KEY: Final[list[Any]] = [None, -1, {}]


def _routes_by_key(
    table: _RouteTable, count: int
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], dict[str, tuple[int, ...]]]]:
    if _ROUTES_BY_KEY[0] is table and _ROUTES_BY_KEY[1] == count:
        return _ROUTES_BY_KEY[2]  # type: ignore[no-any-return]
    compiled: dict[str, tuple[tuple[int, ...], tuple[int, ...], dict[str, tuple[int, ...]]]] = {}
    for key, entries in table.items():
        always: list[int] = []
        by_text: dict[str, list[int]] = {}
        for route, longer in entries:
            if route >= count:
                continue  # numbered after the text was routed
            if not longer:
                always.append(route)
            for text in longer:
                by_text.setdefault(text, []).append(route)
        sizes = tuple(sorted({len(t) for t in by_text}))
        compiled[key] = (tuple(always), sizes, {t: tuple(r) for t, r in by_text.items()})
    _ROUTES_BY_KEY[:] = [table, count, compiled]
    return compiled


def _py_anchor_hits(scan: str, routed: list[list[int] | None], anchor: _RoutedAnchor) -> list[int]:
    """Where the anchor's strings are in the text (a word's start for those found by the text's word starts),
    ascending; copilot/_word_index.c's ``anchor_hits`` does the same in C."""
    found = set(routed[anchor[1]] or ())
    for text in anchor[2]:
        at = scan.find(text)
        while at != -1:
            found.add(at)
            at = scan.find(text, at + 1)
    return sorted(found)


def _search(
    rx: re.Pattern[str], scan: str, anchor: _RoutedAnchor | None, routed: list[list[int] | None]
) -> list[re.Match[str]]:
    """The non-empty matches ``_finditer(rx, scan)`` yields, searched for only in the lines that hold the pattern's
    anchor (a match starts on a line where its anchor follows: elsewhere there is nothing to find)."""
    if anchor is None:
        return [m for m in _finditer(rx, scan) if m.end() > m.start()]
    found: list[re.Match[str]] = []
    pos = 0
    line_end = -1
    for hit in _anchor_hits(scan, routed, anchor):
        if hit <= line_end:
            continue  # on the line just searched
        start = scan.rfind("\n", 0, hit) + 1
        line_end = scan.find("\n", hit)
        if line_end == -1:
            line_end = len(scan)
        pos = max(pos, start)
        # finditer's matches from here, as long as they start on this line (one starting later is found again from
        # the next line that can hold one: none starts in between)
        while pos <= line_end:
            m = rx.search(scan, pos)
            if m is None:
                return found
            if m.start() > line_end:
                break
            if _mid_word(scan, m.start()):
                pos = m.start() + 1
                continue
            if m.end() > m.start():
                found.append(m)
            pos = m.end() if m.end() > m.start() else m.end() + 1
    return found


_tries: Final[Any] = getattr(native.extension("_word_index"), "tries", None) or _py_tries
_route: Final[Any] = getattr(native.extension("_word_index"), "route", None) or _py_route
_candidates: Final[Any] = getattr(native.extension("_word_index"), "candidates", None) or _py_candidates
_sentence_ends: Final[Any] = getattr(native.extension("_word_index"), "sentence_ends", None) or _py_sentence_ends
_C_PRESENT: Final[Any] = getattr(native.extension("_word_index"), "present", None)
_anchor_hits: Final[Any] = getattr(native.extension("_word_index"), "anchor_hits", None) or _py_anchor_hits


def _leftmost(found: list[re.Match[str]]) -> list[re.Match[str]]:
    """The matches finditer keeps of these: the earliest, then the earliest starting after it ends, and so on."""
    found.sort(key=_match_start)
    kept = []
    after = -1
    for m in found:
        if m.start() >= after:
            kept.append(m)
            after = m.end()
    return kept


def _match_start(m: re.Match[str]) -> int:
    return m.start()


def _found(rx: re.Pattern[str], doc: _Doc) -> bool:
    """True when ``_finditer(rx, doc.scan)`` yields anything (an empty match too)."""
    needs, starts = _INFO.get(id(rx), _NO_INFO)
    if not doc.may_match(needs):
        return False
    if starts is None:
        return _first(rx, doc.scan) is not None
    match = rx.match
    scan = doc.scan
    return any(match(scan, p) is not None for at in doc.starts_of(rx, starts) for p in at)


def _any(patterns: Sequence[re.Pattern[str]], doc: _Doc, start: int, end: int) -> bool:
    """True when any pattern matches inside a whole sentence (^ and $ are the sentence's ends)."""
    scan = doc.scan
    for p in patterns:
        if not doc.may_match(_NEEDS.get(id(p), ())):
            continue
        at = doc.positions(p)
        if at is None:
            if _first(p, scan, start, end) is not None:
                return True
            continue
        # Tried only where a match can start, as _matches_at does for the whole text: the same answer as searching.
        match = p.match
        for i in range(bisect.bisect_left(at, start), bisect.bisect_right(at, end)):
            if match(scan, at[i], end) is not None:
                return True
    return False


def _cancelled(patterns: Sequence[re.Pattern[str]], doc: _Doc, start: int, end: int, m_start: int, m_end: int) -> bool:
    """True when an exception matches elsewhere in the sentence; the flagged words cannot excuse themselves."""
    scan = doc.scan
    for p in patterns:
        if not doc.may_match(_NEEDS.get(id(p), ())):
            continue
        at = doc.positions(p)
        if at is None:
            found: Iterable[re.Match[str]] = _finditer(p, scan, start, end)
        else:
            lo, hi = bisect.bisect_left(at, start), bisect.bisect_right(at, end)
            if lo == hi:
                continue
            match = p.match
            tried = [m for i in range(lo, hi) if (m := match(scan, at[i], end)) is not None]
            found = _leftmost(tried) if len(tried) > 1 else tried
        for u in found:
            if u.end() <= m_start or u.start() >= m_end:
                return True
    return False


def _any_in_clause(patterns: Sequence[re.Pattern[str]], doc: _Doc, start: int, end: int) -> bool:
    """True when any pattern matches the clause text before a match; ^ and $ are that stretch's own ends."""
    live = [p for p in patterns if doc.may_match(_NEEDS.get(id(p), ()))]
    if not live:
        return False
    piece = doc.scan[start:end]
    return any(_first(p, piece) is not None for p in live)


@dataclass(frozen=True)
class PhraseRule(Rule):
    """Sentence-level regex rule with same-sentence, same-clause and next-sentence exceptions."""

    parts: tuple[_Part, ...] = field(default=(), compare=False, repr=False)
    unless: tuple[re.Pattern[str], ...] = ()
    unless_before: tuple[re.Pattern[str], ...] = ()
    unless_next: tuple[re.Pattern[str], ...] = ()

    def _matches(self, doc: _Doc) -> list[re.Match[str]]:
        """Matches of all patterns, earliest first, skipping patterns whose required words or starts are absent."""
        found: list[re.Match[str]] = []
        hits = 0
        found_words = doc._words
        scan = doc.scan
        routed = doc.routed
        # The cheapest tests first: the words the text lacks, then where matches could start, then substrings.
        for rx, match, words, others, route, starts, anchor in self.parts:
            missing = False
            for group in words:
                if group >= len(found_words) or not found_words[group]:
                    missing = True
                    break
            if missing:
                continue
            if route >= 0:
                at = routed[route]
                if at is None or (others and not doc.may_match(others)):
                    continue
                more = _tries(match, scan, [at], anchor, routed)
            elif starts is not None:
                groups = doc.candidates(starts)
                if not groups or (others and not doc.may_match(others)):
                    continue
                more = _tries(match, scan, groups, anchor, routed)
            else:
                if others and not doc.may_match(others):
                    continue
                more = _search(rx, scan, anchor, routed)
            if more:
                found.extend(more)
                hits += 1
        if hits > 1:
            found.sort(key=lambda m: (m.start(), -m.end()))
        return found

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """The matches that no exception cancels."""
        found: list[tuple[int, int]] = []
        last_end = -1
        for m in self._matches(doc):
            if m.start() < last_end:
                continue  # one finding per stretch of text, even when two of the rule's patterns overlap
            idx = doc.sentence_of(m.start())
            s_start, s_end = doc.sentences[idx]
            if self.unless and _cancelled(self.unless, doc, s_start, s_end, m.start(), m.end()):
                continue
            if self.unless_before and _any_in_clause(self.unless_before, doc, doc.clause_start(m.start()), m.start()):
                continue
            if self.unless_next and idx + 1 < len(doc.sentences):
                n_start, n_end = doc.sentences[idx + 1]
                if _any(self.unless_next, doc, n_start, n_end):
                    continue
            last_end = m.end()
            found.append((m.start(), m.end()))
        return found


@dataclass(frozen=True)
class ApologyRule(Rule):
    """Finds the agent's own apologies and flags those whose continuation is empty, generic or conditional."""

    anchor: re.Pattern[str] = field(default=re.compile("(?!)"), compare=False, repr=False)
    skip_before: tuple[re.Pattern[str], ...] = ()
    regex: re.Pattern[str] = field(default=re.compile("(?!)"), compare=False, repr=False)
    unless: tuple[re.Pattern[str], ...] = ()
    unless_previous: tuple[re.Pattern[str], ...] = ()

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """From the apology word to the end of the offending continuation, for each such apology."""
        found: list[tuple[int, int]] = []
        for a in doc.matches(self.anchor):
            idx = doc.sentence_of(a.start())
            s_start, s_end = doc.sentences[idx]
            m = self.regex.match(doc.scan, a.end(), s_end)
            if m is None:
                continue
            if self.skip_before and doc.memo_any_in_clause(self.skip_before, a.start()):
                continue
            if self.unless and _any(self.unless, doc, s_start, s_end):
                continue
            if self.unless_previous:
                before = doc.sentences[idx - 1][0] if idx > 0 else s_start
                if _any_in_clause(self.unless_previous, doc, before, a.start()):
                    continue
            found.append((a.start(), max(m.end(), a.end())))
        return found


@dataclass(frozen=True)
class MissingRule(Rule):
    """Hints when a whole reply lacks something it should contain (feelings acknowledged, a follow-up)."""

    regex: re.Pattern[str] = field(default=re.compile("(?!)"), compare=False, repr=False)
    min_sentences: int = 2
    point_at: str = "first"

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """The first or last sentence when nothing in the text matches."""
        if len(doc.sentences) < self.min_sentences or _found(self.regex, doc):
            return []
        return [doc.sentences[0] if self.point_at == "first" else doc.sentences[-1]]


@dataclass(frozen=True)
class NameUnusedRule(Rule):
    """Hints when ``CheckContext.customer_name`` is set but no part of the name appears in the reply."""

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """The first sentence when the name is never used."""
        name = (context.customer_name or "").strip()
        if not name or not doc.sentences:
            return []
        text = doc.text
        for rx in _name_patterns(name):
            # what (?<!\w) in front of the pattern would say, without stopping re from skipping ahead to the name
            m = rx.search(text)
            while m is not None:
                at = m.start()
                if at == 0 or not _is_word_char(text[at - 1]):
                    return []
                m = rx.search(text, at + 1)
        return [doc.sentences[0]]


_TITLES: Final = frozenset({"mr", "mrs", "ms", "miss", "dr", "mx", "sir", "madam", "prof"})
# The patterns of the last few customer names: the same name is checked again on each edit of its reply.
_NAME_PATTERNS: Final[dict[str, tuple[re.Pattern[str], ...]]] = {}


def _name_patterns(name: str) -> tuple[re.Pattern[str], ...]:
    """One pattern per part of the name that can stand for it ("Dana", "Okafor"), or the whole name; no titles.

    A match counts only where no word character comes before it (see NameUnusedRule.find).
    """
    found = _NAME_PATTERNS.get(name)
    if found is None:
        parts = [p for p in re.split(r"[\s,]+", name) if len(p.strip(".")) > 1 and p.lower().strip(".") not in _TITLES]
        found = tuple(re.compile(rf"{re.escape(p)}(?!\w)", re.IGNORECASE) for p in parts or [name])
        if len(_NAME_PATTERNS) >= 256:
            _NAME_PATTERNS.pop(next(iter(_NAME_PATTERNS)))
        _NAME_PATTERNS[name] = found
    return found


@dataclass(frozen=True)
class ActionCountRule(Rule):
    """Hints when a reply commits to no concrete action, or to more than the customer can follow."""

    regex: re.Pattern[str] = field(default=re.compile("(?!)"), compare=False, repr=False)
    min: int = 1
    max: int = 3
    min_sentences: int = 2

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """The first action over the limit, or the first sentence when there is none."""
        actions = doc.matches(self.regex)
        if len(actions) > self.max:
            return [actions[self.max].span()]
        if len(actions) < self.min and len(doc.sentences) >= self.min_sentences:
            return [doc.sentences[0]]
        return []


@dataclass(frozen=True)
class LongSentenceRule(Rule):
    """Hints at sentences too long to follow when the customer is upset."""

    max_words: int = 35

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        """Each over-long sentence."""
        # n words take at least 2n - 1 characters, so shorter sentences need no splitting
        shortest = 2 * self.max_words + 1
        text = doc.text
        return [
            (start, end)
            for start, end in doc.sentences
            if end - start >= shortest and len(text[start:end].split()) > self.max_words
        ]


# ---------------------------------------------------------------------------------------------------------------
# Loading: YAML with line numbers, pydantic validation, macro expansion and regex compilation.
# ---------------------------------------------------------------------------------------------------------------


# Parsed once per file content: the workshop validates edits in temporary copies of the rule folder, and a retrained
# model must be picked up on the next load. A few versions at most stay in memory.
_MODELS: dict[str, SentenceModel] = {}


def _load_model(path: Path, located: _Located, loc: tuple[object, ...]) -> SentenceModel:
    path = path.resolve()
    try:
        raw = path.read_bytes()
    except OSError:
        raise located.error(
            (*loc, "model"),
            f"model file {path.name!r} not found beside the rules",
            "train it: copilot train",
        ) from None
    key = hashlib.sha256(raw).hexdigest()
    if key not in _MODELS:
        try:
            model = SentenceModel.from_bytes(raw)
        except ValueError as exc:
            raise located.error(
                (*loc, "model"),
                f"model file {path.name!r} is not a valid classifier ({exc})",
                "retrain it: copilot train",
            ) from exc
        while len(_MODELS) >= 4:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = model
    return _MODELS[key]


@dataclass(frozen=True)
class ClassifierRule(Rule):
    model: SentenceModel = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    threshold: float = 0.6
    unless: tuple[re.Pattern[str], ...] = ()

    def find(self, doc: _Doc, context: CheckContext) -> list[tuple[int, int]]:
        return self.find_uncovered(doc, ())

    def find_uncovered(self, doc: _Doc, covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The sentences ``find`` returns, less those overlapping a span in ``covered`` once trimmed as a finding is.

        Checker.check passes the spans the precise rules flagged in this rule's category: it would drop a learned
        finding overlapping one anyway, so the exception patterns need not run for it.
        """
        category = self.category
        threshold = self.threshold
        text = doc.text
        found: list[tuple[int, int]] = []
        for (start, end), p in zip(doc.sentences, doc.learned(self.model), strict=True):
            # The model is cheap and usually says no; the exception patterns only run when it says yes.
            if p.get(category, 0.0) <= threshold:
                continue
            if covered:
                s, e = _trim(text, start, end)
                if any(a < e and s < b for a, b in covered):
                    continue
            if not (self.unless and _any(self.unless, doc, start, end)):
                found.append((start, end))
        return found


class _Located:
    """The composed YAML node tree of one file, used to find the line of any value pydantic complains about."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.root = root

    def node(self, loc: Sequence[object]) -> yaml.Node | None:
        """The deepest node along ``loc`` (keys and list indexes)."""
        node = self.root
        for key in loc:
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == key), None)
                if child is None:
                    key_node = next((k for k, _ in node.value if k.value == key), None)
                    return key_node or node
                node = child
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                return node
        return node

    def key_line(self, loc: Sequence[object]) -> int | None:
        """Line (1-based) of the key named last in ``loc``, else of its container."""
        parent = self.node(loc[:-1])
        if isinstance(parent, yaml.MappingNode):
            for k, _ in parent.value:
                if k.value == loc[-1]:
                    return int(k.start_mark.line) + 1
        return self.line(loc[:-1])

    def line(self, loc: Sequence[object]) -> int | None:
        """Line (1-based) where the value at ``loc`` starts."""
        node = self.node(loc)
        return int(node.start_mark.line) + 1 if node is not None else None

    def error(self, loc: Sequence[object], message: str, fix: str, *, key: bool = False) -> DataFileError:
        """A DataFileError pointing at ``loc`` in this file."""
        line = self.key_line(loc) if key and loc else self.line(loc)
        return DataFileError(self.path, message, line=line, fix=fix)


def _check_duplicate_keys(located: _Located, node: yaml.Node | None) -> None:
    """PyYAML keeps the last of two equal keys silently; a trainer would lose half a rule without noticing."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            if k.value in seen:
                raise DataFileError(
                    located.path,
                    f"key {k.value!r} appears twice in the same rule (first on line {seen[k.value]})",
                    line=k.start_mark.line + 1,
                    fix="keep one of the two and merge their contents",
                )
            seen[k.value] = k.start_mark.line + 1
            _check_duplicate_keys(located, v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(located, item)


# libyaml's parser when PyYAML was built with it (its wheels are): the rule files load several times faster.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> tuple[Any, _Located]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"cannot read the file: {exc}", fix="save it as UTF-8 text") from exc
    try:
        # One pass builds the node tree (for line numbers) and the data from it.
        loader = _YAML_LOADER(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise DataFileError(
            path,
            f"YAML syntax error: {problem}",
            line=line,
            fix="check the indentation and that any text containing ':' or '#' is in quotes",
        ) from exc
    except yaml.YAMLError as exc:
        raise DataFileError(path, f"YAML error: {exc}", fix="check the file's structure") from exc
    located = _Located(path, root)
    _check_duplicate_keys(located, root)
    return data, located


def _describe(err: dict[str, Any], located: _Located, model: type[BaseModel]) -> DataFileError:
    """Turn one pydantic error into a trainer-readable DataFileError with line and fix."""
    loc = tuple(err["loc"])
    # pydantic reports union branches as extra loc items (e.g. 'str', 'ExampleCase'): drop them for lookup.
    loc = tuple(x for x in loc if isinstance(x, int) or x not in ("str", "ExampleCase", "function-after[...]"))
    kind = err["type"]
    field_name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        valid = sorted(_model_keys(model, loc))
        close = difflib.get_close_matches(field_name, valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return located.error(
            loc,
            f"unknown key {field_name!r}",
            f"{hint}valid keys here are: {', '.join(valid)}",
            key=True,
        )
    if kind == "missing":
        return located.error(loc[:-1], f"missing required key {field_name!r}", f"add '{field_name}:' to this rule")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return located.error(loc, f"invalid value for {field_name!r}: {err.get('input')!r}", f"use one of {expected}")
    if kind in ("too_short", "string_too_short"):
        return located.error(loc, f"{field_name!r} is too short: {err['msg']}", "add more entries or text")
    return located.error(loc, f"invalid {field_name!r}: {err['msg']}", "fix the value as described")


def _model_keys(model: type[BaseModel], loc: Sequence[object]) -> set[str]:
    """Valid keys of the (sub)model at ``loc`` so the unknown-key message can list and suggest them."""
    if "examples" in loc:
        after = list(loc)[list(loc).index("examples") + 1 :]
        return {"text", "customer_name", "issue"} if len(after) >= 3 else {"flag", "pass"}
    return {f.alias or name for name, f in model.model_fields.items()}


@dataclass
class _Vocabulary:
    """Named word lists shared by all rule files, used in patterns as {NAME}."""

    entries: dict[str, str] = field(default_factory=dict)
    origin: dict[str, tuple[Path, int | None]] = field(default_factory=dict)

    def expand(self, pattern: str, located: _Located, loc: Sequence[object], depth: int = 0) -> str:
        def replace(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.entries:
                close = difflib.get_close_matches(name, list(self.entries), n=1)
                hint = f"did you mean {{{close[0]}}}? " if close else ""
                raise located.error(
                    loc,
                    f"unknown word list {{{name}}} in pattern {pattern!r}",
                    f"{hint}define it under 'vocabulary:' in any file in this folder",
                )
            if depth > 5:
                raise located.error(loc, f"word list {{{name}}} refers to itself", "remove the circular reference")
            return self.expand(self.entries[name], located, loc, depth + 1)

        return _MACRO.sub(replace, pattern)


# Compiled patterns are shared by source text, so rules repeating a pattern share its cached matches (_Doc keys
# them by id), and each pattern's required words are worked out once. Both live as long as the process.
_INTERNED: Final[dict[str, re.Pattern[str]]] = {}
_NEEDS: Final[dict[int, _Needs]] = {}
# id -> (required-word groups, how its matches start or None), for the rules' scans.
_INFO: Final[dict[int, tuple[_Needs, _Starts | None]]] = {}
_NO_INFO: Final[tuple[_Needs, _Starts | None]] = ((), None)
# id -> the longer start strings by start string, for patterns whose start strings all have _START_SIZE characters.
_BY_KEY: Final[dict[int, _Prefixes]] = {}
# id -> the pattern's anchor (see _anchor_of), for patterns that have one, and as a check uses it (see _route_of).
_ANCHORS: Final[dict[int, _Anchor]] = {}
_ROUTED_ANCHORS: Final[dict[int, _RoutedAnchor]] = {}
# Word starts by route. Each distinct set of start strings (_Prefixes) a pattern or an anchor looks for is a route,
# numbered in _ROUTE_IDS; _ROUTES says, by the first _START_SIZE characters of a word, which routes want its starts
# and the longer strings one of which must follow there. A text's word starts are handed out once to the routes that
# want them (_Doc.routed), rather than every pattern looking up each of its strings in the text's words.
_ROUTE_IDS: Final[dict[tuple[tuple[str, tuple[str, ...]], ...], int]] = {}
_ROUTES: Final[_RouteTable] = {}
# id -> the route of the pattern's _BY_KEY start strings.
_BY_KEY_ROUTE: Final[dict[int, int]] = {}
# id of a pattern's starts (see _starts) -> the route of each start's strings when they are whole keys, else -1: for
# the patterns without _BY_KEY start strings.
_START_ROUTES: Final[dict[int, tuple[int, ...]]] = {}
_INTERNED_TUPLES: Final[dict[tuple[str, ...], tuple[re.Pattern[str], ...]]] = {}
# By source, what runs before worked out of patterns (read from the file Checker.load is told to keep them in) and
# what this one did (see _analysed): parsing, analysing and compiling the shipped patterns is most of a cold start.
_KEPT: Final[dict[str, Any]] = {}
_KEEP: Final[dict[str, tuple[Any, ...]]] = {}
_RESTORED: Final[list[int]] = [0]  # how many patterns this process took from _KEPT


def _keep_file(folder: Path) -> Path:
    """The file in ``folder`` keeping the patterns worked out, named for this version of the engine: a change to this
    module or to Python's regex compiler makes a new name, and what an older version kept is never read."""
    here = Path(__file__).with_name("checker.py")
    digest = hashlib.sha256(here.read_bytes() if here.is_file() else b"")
    digest.update(f"{sys.version}|{_sre.MAGIC}|{_FLAG_BITS}|{_START_SIZE}|{_PREFIX_SIZE}".encode())
    return folder / f"patterns-{digest.hexdigest()[:16]}.marshal"


def _read_kept(path: Path) -> None:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return  # none yet, or unreadable: everything is worked out again and the file written anew
    if isinstance(data, dict):
        _KEPT.update((source, kept) for source, kept in data.items() if isinstance(source, str))


def _write_kept(path: Path) -> None:
    """Keep what this process worked out, when the file lacks some of it; a folder that cannot be written to only
    means the next start works it out again."""
    if all(_KEPT.get(source) is kept for source, kept in _KEEP.items()):
        return  # all taken from the file as it is (a damaged entry was worked out again: it is written)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for older in path.parent.glob("patterns-*.marshal"):
            if older != path:
                older.unlink(missing_ok=True)  # another version's
        scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        scratch.write_bytes(marshal.dumps(dict(_KEEP)))
        os.replace(scratch, path)  # whole or not at all, for a process starting meanwhile
        _KEPT.update(_KEEP)
    except (OSError, ValueError):
        return


def _intern(source: str) -> re.Pattern[str]:
    """Compile ``source`` once per process and remember which words any match of it needs."""
    rx = _INTERNED.get(source)
    if rx is None:
        kept = _KEPT.get(source)
        made = None if kept is None else _restored(source, kept)
        if made is None:
            made = _analysed(source)
        else:
            _RESTORED[0] += 1
        rx, needs, starts, by_key, anchor, keep = made
        if keep is not None:
            _KEEP[source] = keep
        _INTERNED[source] = rx
        _NEEDS[id(rx)] = needs
        _INFO[id(rx)] = (needs, starts)
        if by_key is not None:
            _BY_KEY[id(rx)] = by_key
            _BY_KEY_ROUTE[id(rx)] = _route_of(by_key)
        elif starts is not None and any(size == _START_SIZE for size, _, _ in starts):
            _START_ROUTES[id(starts)] = tuple(
                _route_of(dict.fromkeys(keys, ())) if size == _START_SIZE else -1 for size, keys, _ in starts
            )
        if anchor is not None:
            _ANCHORS[id(rx)] = anchor
            _ROUTED_ANCHORS[id(rx)] = _routed(anchor)
    return rx


# What _intern works out for a pattern: the compiled pattern, its required-word groups, its starts, its longer start
# strings by start string, its anchor, and what of it can be kept between runs (see _keep_file).
_Made = tuple[
    re.Pattern[str], "_Needs", "_Starts | None", "_Prefixes | None", "_Anchor | None", "tuple[Any, ...] | None"
]


def _analysed(source: str) -> _Made:
    """Parse, analyse and compile ``source``."""
    parsed = None
    if _sre_parse is not None:
        try:
            parsed = _sre_parse.parse(source, _FLAG_BITS)  # parsed once for all the uses below
        except Exception:  # noqa: BLE001 - re.compile below says what is wrong with it
            parsed = None
    if parsed is None:
        return re.compile(source, _FLAGS), (), None, None, None, None
    needs = _required_literals(parsed)
    starts = _starts(parsed)
    try:
        code = _factored_code(source, parsed)
    except Exception:  # noqa: BLE001 - a surprise in the private compiler: re compiles it as it is
        code = None
    rx = re.compile(source, _FLAGS) if code is None else _from_code(source, code)
    by_key = None
    if starts and len(starts) == 1 and starts[0][0] == _START_SIZE and not starts[0][2]:
        by_key = _longer_prefixes(parsed, starts[0][1])
    # A match is tried at a word start when its start strings all begin with a word character; a pattern searched
    # for may start anywhere, and its anchor may be its first strings.
    if starts is None:
        anchor = _anchor_of(parsed, False, 0)
    else:
        anchor = _anchor_of(parsed, all(size > 0 and not head for size, _, head in starts), 1)
    keep = None if code is None else (code, [_GROUPS[g] for g in needs], starts, by_key, anchor)
    return rx, needs, starts, by_key, anchor, keep


def _restored(source: str, kept: Any) -> _Made | None:
    """What _analysed works out for ``source``, from what a run before kept of it; None when that does not hold up
    (another version's file, or a damaged one), and the pattern is worked out again."""
    try:
        code, groups, starts, by_key, anchor = kept
        rx = _from_code(source, code)
        needs = tuple(_group_id((frozenset(words), tuple(subs))) for words, subs in groups)
        return rx, needs, starts, by_key, anchor, kept
    except Exception:  # noqa: BLE001 - anything wrong with a kept entry: work it out again
        return None


def _route_of(by_key: _Prefixes) -> int:
    """The route (see _ROUTES) of these start strings, numbered the first time they are asked for."""
    frozen = tuple(sorted(by_key.items()))
    route = _ROUTE_IDS.get(frozen)
    if route is None:
        route = len(_ROUTE_IDS)
        for key, longer in frozen:
            _ROUTES[key] = (*_ROUTES.get(key, ()), (route, longer))
        # counted last: a text routed meanwhile (another thread) leaves this route out, and has the others whole
        _ROUTE_IDS[frozen] = route
    return route


def _routed(anchor: _Anchor) -> _RoutedAnchor:
    """The anchor as a check uses it: its strings that start a word as their route."""
    width, by_key, others = anchor
    return width, _route_of(by_key), others


# Word lists as tries. A vocabulary macro expands to an alternation of a hundred words ("courier|supplier|..."),
# and re tries every alternative in turn at every position it reaches; grouped by first letter, then by the next,
# it tries a handful. Only alternatives that begin with a plain letter are regrouped, and only among neighbours
# that do: two such alternatives beginning with different letters can never both match at one position, so their
# order cannot change what matches, while alternatives beginning with the same letter keep their order. The
# compiled pattern keeps its source text, so everything keyed by ``rx.pattern`` is unchanged.


def _factored(source: str, parsed: Any = None) -> re.Pattern[str]:
    """``re.compile(source, _FLAGS)`` with each alternation of words compiled as a trie; matches are identical.

    ``parsed`` is ``source`` as the regex parser reads it, when already at hand; it is not changed.
    """
    if _sre_parse is None:
        return re.compile(source, _FLAGS)
    if parsed is None:
        parsed = _sre_parse.parse(source, _FLAG_BITS)
    code = _factored_code(source, parsed)
    return re.compile(source, _FLAGS) if code is None else _from_code(source, code)


def _factored_code(source: str, parsed: Any) -> tuple[Any, ...] | None:
    """What _sre.compile takes to compile ``source`` the way _factored does, or None where re compiles it as it is."""
    state = parsed.state
    if state.flags & (re.IGNORECASE | re.LOCALE):
        return None
    tree = _sre_parse.SubPattern(state, _trie_items(state, list(parsed)))
    code = _sre_compiler._code(tree, _FLAG_BITS)
    index_group: list[str | None] = [None] * state.groups
    for name, number in state.groupdict.items():
        index_group[number] = name
    # plain ints: the compiler's opcodes are an int subclass, which cannot be kept (see _write_kept)
    program = [int(op) for op in code]
    return _FLAG_BITS | state.flags, program, state.groups - 1, dict(state.groupdict), tuple(index_group)


def _from_code(source: str, code: tuple[Any, ...]) -> re.Pattern[str]:
    flags, program, groups, group_dict, index_group = code
    return _sre.compile(source, flags, program, groups, group_dict, index_group)  # type: ignore[no-any-return]


def _trie_items(state: Any, items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``items`` with every alternation inside them regrouped (see _factored)."""
    out: list[tuple[Any, Any]] = []
    for op, av in items:
        name = op.name
        if name == "BRANCH":
            out.extend(_trie_branch(state, [_trie_items(state, list(alt)) for alt in av[1]]))
            continue
        if name == "SUBPATTERN":
            av = (*av[:-1], _sre_parse.SubPattern(state, _trie_items(state, list(av[-1]))))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            av = (av[0], av[1], _sre_parse.SubPattern(state, _trie_items(state, list(av[2]))))
        elif name in ("ASSERT", "ASSERT_NOT"):
            av = (av[0], _sre_parse.SubPattern(state, _trie_items(state, list(av[1]))))
        elif name == "ATOMIC_GROUP":
            av = _sre_parse.SubPattern(state, _trie_items(state, list(av)))
        elif name in ("GROUPREF_EXISTS", "CALL"):
            raise ValueError("left to re")
        out.append((op, av))
    return out


def _trie_branch(state: Any, alternatives: list[list[tuple[Any, Any]]]) -> list[tuple[Any, Any]]:
    """The items of one alternation, with neighbouring alternatives that begin with a letter grouped by it."""
    grouped: list[list[tuple[Any, Any]]] = []
    run: dict[int, list[list[tuple[Any, Any]]]] = {}

    def close_run() -> None:
        for alts in run.values():
            if len(alts) == 1:
                grouped.append(alts[0])
            else:
                grouped.append([alts[0][0], *_trie_branch(state, [alt[1:] for alt in alts])])
        run.clear()

    for alt in alternatives:
        if alt and str(alt[0][0]) == "LITERAL":
            run.setdefault(alt[0][1], []).append(alt)
        else:
            close_run()  # an empty alternative or one starting otherwise keeps its place
            grouped.append(alt)
    close_run()
    if len(grouped) == 1:
        return grouped[0]
    branch = (_sre_parse.BRANCH, (None, [_sre_parse.SubPattern(state, alt) for alt in grouped]))
    return [(_sre_parse.SUBPATTERN, (None, 0, 0, _sre_parse.SubPattern(state, [branch])))]


def _intern_tuple(patterns: Sequence[re.Pattern[str]]) -> tuple[re.Pattern[str], ...]:
    key = tuple(p.pattern for p in patterns)
    return _INTERNED_TUPLES.setdefault(key, tuple(patterns))


def _compile(
    patterns: Sequence[str], vocab: _Vocabulary, located: _Located, loc: tuple[object, ...], *, guard: bool = True
) -> list[re.Pattern[str]]:
    compiled = []
    for i, raw in enumerate(patterns):
        expanded = _lower_pattern(vocab.expand(raw, located, (*loc, i)))
        source = f"(?:{expanded}){_END_GUARD}" if guard else f"(?:{expanded})"
        try:
            compiled.append(_intern(source))
        except re.error as exc:
            raise located.error(
                (*loc, i),
                f"invalid regular expression {raw!r}: {exc.msg} (at position {exc.pos})",
                "check brackets and escape special characters such as ( ) [ ] ? + * with a backslash",
            ) from exc
    return compiled


def _combine(patterns: Sequence[re.Pattern[str]], located: _Located, loc: tuple[object, ...]) -> re.Pattern[str]:
    """Join a rule's patterns into one alternation so each text is scanned once per rule."""
    try:
        return _intern("|".join(p.pattern for p in patterns) or "(?!)")
    except re.error as exc:
        raise located.error(
            loc, f"patterns cannot be combined: {exc.msg}", "do not reuse the same (?P<name>...) in two patterns"
        ) from exc


def _build_rule(
    spec: RuleSpec, vocab: _Vocabulary, located: _Located, loc: tuple[object, ...], model: SentenceModel | None = None
) -> Rule:
    common: dict[str, Any] = {
        "id": spec.id,
        "kind": spec.kind,
        "category": spec.category,
        "severity": spec.severity or DEFAULT_SEVERITY[spec.category],
        "message": spec.message,
        "suggestion": spec.suggestion,
        "source": spec.source,
        "path": located.path,
        "line": located.line(loc) or 0,
        "flag_examples": tuple(_case(e) for e in spec.examples.flag),
        "pass_examples": tuple(_case(e) for e in spec.examples.pass_),
    }

    def comp(name: str, values: Sequence[str]) -> tuple[re.Pattern[str], ...]:
        return _intern_tuple(_compile(values, vocab, located, (*loc, name)))

    if isinstance(spec, PhraseSpec):
        patterns = comp("patterns", spec.patterns)
        return PhraseRule(
            **common,
            parts=tuple(_part(p) for p in patterns),
            unless=comp("unless", spec.unless),
            unless_before=comp("unless_before", spec.unless_before),
            unless_next=comp("unless_next", spec.unless_next),
        )
    if isinstance(spec, ApologySpec):
        anchor = comp("anchor", [spec.anchor])[0]
        # Continuations are matched right after the apology word, so no word guard at their start.
        rest = tuple(_compile(spec.patterns, vocab, located, (*loc, "patterns"), guard=False))
        return ApologyRule(
            **common,
            anchor=anchor,
            skip_before=comp("skip_before", spec.skip_before),
            regex=_combine(rest, located, (*loc, "patterns")),
            unless=comp("unless", spec.unless),
            unless_previous=comp("unless_previous", spec.unless_previous),
        )
    if isinstance(spec, MissingSpec):
        patterns = comp("patterns", spec.patterns)
        return MissingRule(
            **common,
            regex=_combine(patterns, located, (*loc, "patterns")),
            min_sentences=spec.min_sentences,
            point_at=spec.point_at,
        )
    if isinstance(spec, ActionCountSpec):
        if spec.min > spec.max:
            raise located.error((*loc, "min"), f"min ({spec.min}) is larger than max ({spec.max})", "swap them")
        patterns = comp("patterns", spec.patterns)
        return ActionCountRule(
            **common,
            regex=_combine(patterns, located, (*loc, "patterns")),
            min=spec.min,
            max=spec.max,
            min_sentences=spec.min_sentences,
        )
    if isinstance(spec, LongSentenceSpec):
        return LongSentenceRule(**common, max_words=spec.max_words)
    if isinstance(spec, ClassifierSpec):
        learned = model or _load_model(located.path.parent / spec.model, located, loc)
        return ClassifierRule(**common, model=learned, threshold=spec.threshold, unless=comp("unless", spec.unless))
    return NameUnusedRule(**common)


# Required words. Every match of a pattern contains one key of EACH of its groups; a key is a whole word of the
# text (found in its word set) or, where the pattern allows a partial word, a substring. A text lacking any group
# skips the pattern. Groups are numbered process-wide so a text can look all its words up in one pass.
_Needs = tuple[int, ...]
_Group = tuple[frozenset[str], tuple[str, ...]]  # (whole words, substrings)
_MAX_GROUPS: Final = 3
_LEFT, _RIGHT = "\x02", "\x03"  # marks a literal that is known to start / end at a word boundary
_GROUP_IDS: Final[dict[_Group, int]] = {}
_GROUPS: Final[list[_Group]] = []  # by id
# Every substring of any group, numbered, and each group's substrings by number (see _Doc.may_match).
_SUBS: tuple[str, ...] = ()
_SUB_IDS: Final[dict[str, int]] = {}
_GROUP_SUB_IDS: Final[list[tuple[int, ...]]] = []
_WORD_GROUPS: Final[dict[str, list[int]]] = {}
# A copy of _WORD_GROUPS made after its last change, never changed itself, so copilot/_word_index.c can keep a table
# of it for as long as it is the one given (see _word_groups).
_WORD_SNAPSHOT: dict[str, list[int]] | None = None


def _required_literals(parsed: Any) -> _Needs:
    """Numbered required-word groups of a parsed pattern (most selective first; empty = always run the pattern)."""
    try:
        groups = _req_groups(_items(parsed), True, False)
    except Exception:  # noqa: BLE001 - any surprise in the private parser just disables the shortcut
        return ()
    ranked = sorted(set(groups), key=_group_rank, reverse=True)
    good = [g for g in ranked if _group_rank(g)[0] > 0]
    return tuple(_group_id(g) for g in (good or ranked[:1])[:_MAX_GROUPS])


def _group_rank(group: _Group) -> tuple[int, int, int]:
    """Higher is cheaper to test and rarer: whole words beat substrings, long beat short, few beat many."""
    words, subs = group
    shortest = min([len(w) for w in words] + [len(s) for s in subs])
    kind = 2 if not subs else 1 if len(subs) <= 8 and shortest >= 3 else 0
    return (kind, min(shortest, 6), -len(words) - len(subs))


def _group_id(group: _Group) -> int:
    gid = _GROUP_IDS.get(group)
    if gid is None:
        global _SUBS, _WORD_SNAPSHOT
        gid = _GROUP_IDS[group] = len(_GROUPS)
        _GROUPS.append(group)
        ids = []
        for sub in group[1]:
            if sub not in _SUB_IDS:
                _SUB_IDS[sub] = len(_SUB_IDS)
                _SUBS = (*_SUBS, sub)
            ids.append(_SUB_IDS[sub])
        _GROUP_SUB_IDS.append(tuple(ids))
        for word in group[0]:
            _WORD_GROUPS.setdefault(word, []).append(gid)
        _WORD_SNAPSHOT = None
    return gid


def _word_groups() -> dict[str, list[int]]:
    """_WORD_GROUPS as it is now, as a copy that never changes (a new one after each change)."""
    global _WORD_SNAPSHOT
    if _WORD_SNAPSHOT is None:
        _WORD_SNAPSHOT = {word: list(ids) for word, ids in _WORD_GROUPS.items()}
    return _WORD_SNAPSHOT


def _split_literals(literals: Iterable[str]) -> _Group:
    """Turn marked literals into a group: a literal's longest run of word characters with a boundary on both sides
    is a whole word of any text containing it; a literal without one is looked for as a substring."""
    words: set[str] = set()
    subs: list[str] = []
    for literal in literals:
        body = literal.strip(_LEFT + _RIGHT)
        probe = (" " if literal.startswith(_LEFT) else "") + body + (" " if literal.endswith(_RIGHT) else "")
        inner = [m.group(0) for m in _WORD.finditer(probe) if m.start() > 0 and m.end() < len(probe)]
        if inner:
            words.add(max(inner, key=len))
        else:
            subs.append(body)
    return frozenset(words), tuple(sorted(set(subs), key=len, reverse=True))


def _req_best(candidates: list[_Group]) -> _Group | None:
    return max(candidates, key=_group_rank) if candidates else None


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _nonword_set(av: Any) -> bool:
    """True for a character class such as a space or [,;] that holds no word character."""
    for kind, value in av:
        name = kind.name
        if name == "LITERAL" and not _is_word_char(chr(value)):
            continue
        # (\D holds letters)
        if name == "CATEGORY" and value.name in ("CATEGORY_SPACE", "CATEGORY_NOT_WORD"):
            continue
        return False
    return True


def _ends_nonword(item: tuple[Any, Any]) -> bool:
    """True when whatever follows ``item`` is preceded by a non-word character (or the start of a line)."""
    op, av = item
    name = op.name
    if name == "LITERAL":
        return not _is_word_char(chr(av))
    if name == "AT":
        return av.name in ("AT_BEGINNING", "AT_BEGINNING_LINE", "AT_BEGINNING_STRING", "AT_BOUNDARY")
    if name == "IN":
        return _nonword_set(av)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return av[0] >= 1 and bool(av[2]) and _ends_nonword(_items(av[2])[-1])
    if name == "SUBPATTERN":
        return bool(av[-1]) and _ends_nonword(_items(av[-1])[-1])
    if name == "BRANCH":
        return all(alt and _ends_nonword(_items(alt)[-1]) for alt in av[1])
    if name == "ASSERT_NOT":
        return av[0] == -1 and _is_word_class(av[1])
    return False


def _starts_nonword(item: tuple[Any, Any]) -> bool:
    """True when whatever precedes ``item`` is followed by a non-word character (or the end of a line), as far as
    a word character just before it is concerned."""
    op, av = item
    name = op.name
    if name == "LITERAL":
        return not _is_word_char(chr(av))
    if name == "AT":
        return av.name in ("AT_END", "AT_END_LINE", "AT_END_STRING", "AT_BOUNDARY")
    if name == "IN":
        return _nonword_set(av)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return av[0] >= 1 and bool(av[2]) and _starts_nonword(_items(av[2])[0])
    if name == "SUBPATTERN":
        return bool(av[-1]) and _starts_nonword(_items(av[-1])[0])
    if name == "BRANCH":
        return all(alt and _starts_nonword(_items(alt)[0]) for alt in av[1])
    if name == "ASSERT_NOT":
        # (?!\w) says the next character is not a word character; (?<!\w) cannot hold after a word character.
        return _is_word_class(av[1])
    return False


def _is_word_class(items: Any) -> bool:
    items = list(items)
    if len(items) != 1 or items[0][0].name != "IN" or len(items[0][1]) != 1:
        return False
    kind, value = items[0][1][0]
    return bool(kind.name == "CATEGORY" and value.name == "CATEGORY_WORD")


def _req_groups(items: list[tuple[Any, Any]], left_ok: bool, right_ok: bool) -> list[_Group]:
    """All the groups a sequence of regex items requires. ``left_ok``/``right_ok``: the sequence is known to start
    after / end before a word boundary (true at a pattern's start, since matches never start inside a word)."""
    groups: list[_Group] = []
    n = len(items)

    def left(i: int) -> bool:
        return (i == 0 and left_ok) or (i > 0 and _ends_nonword(items[i - 1]))

    def right(j: int) -> bool:
        return (j == n and right_ok) or (j < n and _starts_nonword(items[j]))

    i = 0
    while i < n:
        op, av = items[i]
        name = op.name
        if name == "LITERAL":
            j = i
            while j < n and items[j][0].name == "LITERAL":
                j += 1
            run = "".join(chr(v) for _, v in items[i:j])
            groups.append(_split_literals([(_LEFT if left(i) else "") + run + (_RIGHT if right(j) else "")]))
            i = j
            continue
        if name == "SUBPATTERN":
            groups.extend(_req_groups(_items(av[-1]), left(i), right(i + 1)))
        elif name == "ATOMIC_GROUP":
            groups.extend(_req_groups(_items(av), left(i), right(i + 1)))
        elif name == "BRANCH":
            # One match takes one alternative, so the alternatives' best groups together form one group.
            best = [_req_best(_req_groups(_items(alt), left(i), right(i + 1))) for alt in av[1]]
            if all(b is not None for b in best):
                words = frozenset(w for b in best if b is not None for w in b[0])
                subs = tuple(sorted({s for b in best if b is not None for s in b[1]}, key=len, reverse=True))
                groups.append((words, subs))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            body = _items(av[2])
            # The first repetition follows what precedes the repeat; it ends before the next repetition or after it.
            end_ok = right(i + 1) if av[1] == 1 else right(i + 1) and bool(body) and _starts_nonword(body[0])
            groups.extend(_req_groups(body, left(i), end_ok))
        i += 1
    return [g for g in groups if (g[0] or g[1]) and all(g[1])]


# Match starts. Most patterns can only start a match with one of a few strings ("you", "we ", "i'", ", not"), and a
# match never starts inside a word: such a pattern is tried only where a word starts with one of them (see
# _Doc.candidates, _matches_at) instead of being searched for at every position of the text. The strings hold at
# most _START_SIZE characters of their first word (after any punctuation before it); a pattern that may start with
# more than _MAX_STARTS of them is searched for.
# (length, strings of that length, head): with a head, the strings start a word right after that head of non-word
# characters; without one, they start a word, or with length 0 (all non-word characters) are searched for.
_Starts = tuple[tuple[int, tuple[str, ...], str], ...]
_START_SIZE: Final = 3
_MAX_STARTS: Final = 128
# Where the start strings all have _START_SIZE characters (the usual case), the longer strings every match starts
# with, up to _PREFIX_SIZE characters of the first word, by their first _START_SIZE: a word start is tried only where
# one of them follows (most words starting "the" are "the", but "they", "them" and "then" start with it too).
_PREFIX_SIZE: Final = 8
_Prefixes = dict[str, tuple[str, ...]]
# (least characters before it, its strings that start a word by their first _START_SIZE as _Prefixes, the others)
_Anchor = tuple[int, _Prefixes, tuple[str, ...]]
# (least characters before it, the route of its strings that start a word (see _route_of), the others)
_RoutedAnchor = tuple[int, int, tuple[str, ...]]
# first _START_SIZE characters of a word -> (route, longer strings one of which must follow) for each route wanting them
_RouteTable = dict[str, tuple[tuple[int, tuple[str, ...]], ...]]
# A phrase pattern as its rule scans it: the pattern and its bound match method, the required-word groups the text's
# words alone decide, the other groups (with substrings to look for), the longer start strings by start string when
# they all have _START_SIZE characters as their route (-1: none, see _route_of), its starts, and its anchor as a check
# uses it (see _routed).
_Part = tuple[re.Pattern[str], Any, tuple[int, ...], _Needs, int, _Starts | None, _RoutedAnchor | None]


def _part(rx: re.Pattern[str]) -> _Part:
    needs, starts = _INFO[id(rx)]
    words = tuple(g for g in needs if not _GROUPS[g][1])
    others = tuple(g for g in needs if _GROUPS[g][1])
    return rx, rx.match, words, others, _BY_KEY_ROUTE.get(id(rx), -1), starts, _ROUTED_ANCHORS.get(id(rx))


def _longer_prefixes(parsed: Any, keys: tuple[str, ...]) -> _Prefixes:
    """Each start string of ``keys`` with the longer strings of up to _PREFIX_SIZE characters that begin every match
    of the parsed pattern starting with it; () where they add nothing, or are unknown."""
    longer: set[str] | None = None
    try:
        found = _prefixes(_items(parsed), _PREFIX_SIZE)
        longer = None if found is None else {text for text, _ in found}
    except Exception:  # noqa: BLE001 - any surprise in the private parser just leaves the start strings alone
        longer = None
    by_key: _Prefixes = {key: () for key in keys}
    if longer is None or any(text[:_START_SIZE] not in by_key for text in longer):
        return by_key
    for key in keys:
        mine = sorted(t for t in longer if t.startswith(key))
        # one that extends another adds nothing; none at all cannot be (every match starts with a key)
        kept = tuple(t for t in mine if not any(t != u and t.startswith(u) for u in mine))
        by_key[key] = () if not kept or key in kept else kept
    return by_key


def _starts(parsed: Any) -> _Starts | None:
    """The strings every match of a parsed pattern starts with, by length; None when unknown or not worth it."""
    try:
        if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
            return None
        # re skips ahead to a literal prefix itself, faster than trying each word that starts with it.
        if len(_sre_compiler._get_literal_prefix(parsed, _FLAG_BITS)[0]) >= _START_SIZE:
            return None
        found = _prefixes(_items(parsed))
    except Exception:  # noqa: BLE001 - any surprise in the private parser just disables the shortcut
        return None
    if found is None:
        return None
    strings = {text for text, _ in found}
    if "" in strings:
        return None
    # A string that extends a shorter one adds nothing: the shorter one already finds its starts.
    kept = sorted(t for t in strings if not any(t != u and t.startswith(u) for u in strings))
    by_size: dict[tuple[int, str], list[str]] = {}
    for text in kept:
        # A match that starts with a word character starts a word. One that starts with others (", not", "'ve") is
        # found by the word after them, where there is one, and otherwise searched for (length 0).
        head = _head_size(text)
        if head == 0:
            by_size.setdefault((len(text), ""), []).append(text)
        elif head == len(text):
            by_size.setdefault((0, ""), []).append(text)
        else:
            by_size.setdefault((len(text) - head, text[:head]), []).append(text[head:])
    return tuple((size, tuple(texts), head) for (size, head), texts in sorted(by_size.items()))


def _head_size(text: str) -> int:
    """How many characters of ``text`` come before its first word character."""
    if text and (text[0].isalnum() or text[0] == "_"):
        return 0
    for i, ch in enumerate(text):
        if _is_word_char(ch):
            return i
    return len(text)


def _prefixes(
    items: list[tuple[Any, Any]], size: int = _START_SIZE, then: set[tuple[str, bool]] | None | bool = False
) -> set[tuple[str, bool]] | None:
    """What a match of ``items`` starts with: (string, whether what follows ``items`` may extend it), each up to
    ``size`` characters into its first word; None when unknown or more than _MAX_STARTS strings. ``then``, when
    not False, is this for what follows ``items`` (None: unknown), so the strings run on into it.

    A string stops growing before an item it cannot spell out (\\w, ., a negated set), yet still begins every
    match taking its path. Zero-width items (^, \\b, look-arounds) only restrict where a match starts: they add
    nothing.
    """
    current: set[tuple[str, bool]] = {("", True)}
    i, n = 0, len(items)
    while i < n:
        if items[i][0].name == "LITERAL":
            # a run of letters in one step: the same strings as one letter at a time
            j = i + 1
            while j < n and items[j][0].name == "LITERAL":
                j += 1
            step: set[tuple[str, bool]] | None = {("".join(chr(av) for _, av in items[i:j]), True)}
            i = j
        else:
            step = _step(items[i], size)
            i += 1
        grown = _grow(current, step, size)
        if grown is None:
            return None
        if not any(open_ for _, open_ in grown):
            return grown
        current = grown
    if isinstance(then, bool):
        return current
    return _grow(current, then, size)


# _step's answers by the ids of the item's parts and the size, while _anchor_of works on one parsed pattern (it asks
# again and again about the same word lists), whose tree holds the parts; empty otherwise.
_STEPS: Final[dict[tuple[int, int, int], set[tuple[str, bool]] | None]] = {}
_NEWLINES: Final[dict[tuple[int, int, int], bool]] = {}
_STEPS_ON = False


def _step(item: tuple[Any, Any], size: int) -> set[tuple[str, bool]] | None:
    """_prefixes of the one item (callers do not change what it returns)."""
    if not _STEPS_ON:
        return _step_of(item, size)
    key = (id(item[0]), id(item[1]), size)
    if key not in _STEPS:
        _STEPS[key] = _step_of(item, size)
    return _STEPS[key]


def _step_of(item: tuple[Any, Any], size: int) -> set[tuple[str, bool]] | None:
    op, av = item
    name = op.name
    step: set[tuple[str, bool]] | None
    if name == "LITERAL":
        step = {(chr(av), True)}
    elif name == "IN":
        step = set()
        for kind, value in av:
            kind_name = kind.name
            if kind_name == "LITERAL":
                step.add((chr(value), True))
            elif kind_name == "RANGE" and value[1] - value[0] < _MAX_STARTS:
                step.update((chr(c), True) for c in range(value[0], value[1] + 1))
            else:
                step = None  # a category such as \w or \s, a negated set, ...
                break
    elif name in ("AT", "ASSERT", "ASSERT_NOT"):
        step = {("", True)}
    elif name == "SUBPATTERN":
        step = None if av[1] & (re.IGNORECASE | re.LOCALE) else _prefixes(_items(av[-1]), size)
    elif name == "ATOMIC_GROUP":
        step = _prefixes(_items(av), size)
    elif name == "BRANCH":
        step = set()
        for alternative in av[1]:
            more = _prefixes(_items(alternative), size)
            if more is None:
                step = None
                break
            step |= more
    elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        body = None if av[1] == 0 else _prefixes(_items(av[2]), size)
        if av[1] == 0:
            step = {("", True)}
        elif body is None or ("", False) in body:
            step = None
        else:
            # The first repetition's start is known; whether another follows is not.
            step = {(text, False) for text, _ in body if text}
            if av[0] == 0 or ("", True) in body:
                step.add(("", True))
    else:
        step = None  # ., a back reference, a conditional, ...
    return step


def _grow(
    current: set[tuple[str, bool]], step: set[tuple[str, bool]] | None, size: int
) -> set[tuple[str, bool]] | None:
    """The strings of ``current`` that may grow, grown by those of what follows (``step``; None: unknown)."""
    grown: set[tuple[str, bool]] = set()
    for text, open_ in current:
        if not open_ or step is None:
            grown.add((text, False))
            continue
        head = _head_size(text)
        for more_text, more_open in step:
            joined = text + more_text
            # ``size`` characters of the first word, after any punctuation and spaces before it (", not")
            limit = size + (head if head < len(text) else _head_size(joined))
            grown.add((joined[:limit], more_open and len(joined) < limit))
    return None if len(grown) > _MAX_STARTS else grown


# Anchors. Few of the places where a pattern can start hold a match: "the" starts the department-blame patterns, but
# only a sentence where "messed up" or "dropped the ball" follows can hold one. A pattern whose matches cannot run
# over a line break (the sentence ends in _Doc.scan) and hold, after what comes first, one of a set of strings, is
# tried only where one of them follows before the line ends: its anchor. Where a pattern offers several (a string
# after each of its parts, a string in each alternative of a part), the rarest-looking is kept: longest shortest
# string, then fewest strings.
_ZERO_WIDTH = ("AT", "ASSERT", "ASSERT_NOT")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
# A string that starts a word costs a lookup among the text's few dozen word starts, however many there are; any
# other is searched for through the whole text.
_MAX_ANCHOR_SEARCHES: Final = 8
# An anchor as found: (least characters before it, {(string, whether it starts a word when it starts with one)}).
_Found = tuple[int, set[tuple[str, bool]]]


def _items(sub: Any) -> list[tuple[Any, Any]]:
    """The items of a parsed pattern or part, not to be changed (its own list: indexing a parsed pattern runs
    Python)."""
    data = getattr(sub, "data", None)
    return data if isinstance(data, list) else list(sub)


def _min_width(items: list[tuple[Any, Any]]) -> int:
    """A lower bound on the characters a match of ``items`` takes (0 where unsure)."""
    width = 0
    for op, av in items:
        name = op.name
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            width += 1
        elif name in _REPEATS:
            width += av[0] * _min_width(_items(av[2]))
        elif name == "SUBPATTERN":
            width += _min_width(_items(av[-1]))
        elif name == "BRANCH":
            width += min(_min_width(_items(alt)) for alt in av[1]) if av[1] else 0
    return width


def _flat(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``items`` with each group that sets no flags replaced by what it holds (a group changes no match's text)."""
    out: list[tuple[Any, Any]] = []
    for item in items:
        av = item[1]
        if item[0].name == "SUBPATTERN" and not av[1] and not av[2]:
            out.extend(_flat(_items(av[-1])))
        else:
            out.append(item)
    return out


def _may_newline(item: tuple[Any, Any]) -> bool:
    """Whether ``item`` may take a line break into its match (unknown items may)."""
    if not _STEPS_ON:
        return _newline_of(item)
    key = (id(item[0]), id(item[1]), -1)
    if key not in _NEWLINES:
        _NEWLINES[key] = _newline_of(item)
    return _NEWLINES[key]


def _newline_of(item: tuple[Any, Any]) -> bool:
    op, av = item
    name = op.name
    if name == "LITERAL":
        return bool(av == 10)
    if name in _ZERO_WIDTH or name == "ANY":  # without DOTALL, "." stops at a line break
        return False
    if name == "IN":
        for kind, value in av:
            kind_name = kind.name
            if kind_name == "LITERAL" and value == 10:
                return True
            if kind_name == "RANGE" and value[0] <= 10 <= value[1]:
                return True
            if kind_name == "NEGATE" or (
                kind_name == "CATEGORY" and value.name not in ("CATEGORY_WORD", "CATEGORY_DIGIT")
            ):
                return True
        return False
    if name in _REPEATS:
        return any(_may_newline(i) for i in _items(av[2]))
    if name == "SUBPATTERN":
        return any(_may_newline(i) for i in _items(av[-1]))
    if name == "ATOMIC_GROUP":
        return any(_may_newline(i) for i in av)
    if name == "BRANCH":
        return any(_may_newline(i) for alt in av[1] for i in _items(alt))
    return True


def _word_start_after(head: list[tuple[Any, Any]], at_word_start: bool) -> bool:
    """Whether what follows a match of ``head`` starts a word whenever it starts with a word character (as it does
    when ``head`` takes no characters and the match starts a word: ``at_word_start``)."""
    for k in range(len(head) - 1, -1, -1):
        item = head[k]
        name = item[0].name
        if name in _ZERO_WIDTH:
            continue
        if _ends_nonword(item):
            return True
        body = _items(item[1][2]) if name in _REPEATS else []
        if name in _REPEATS and item[1][0] == 0 and body and _ends_nonword(body[-1]):
            continue  # empty, or ending in a non-word character: the same question for what comes before
        return False
    return at_word_start


def _anchor_word(text: str, word_start: bool) -> str | None:
    """The part of an anchor string found by the text's word starts (its first word on, when that starts a word and
    has _START_SIZE characters), or None: it is searched for."""
    head = _head_size(text)
    return text[head:] if len(text) - head >= _START_SIZE and (head or word_start) else None


def _anchor_rank(strings: set[tuple[str, bool]]) -> tuple[int, int]:
    # a string searched for counts as half its length
    shortest = min(
        min(len(text), _PREFIX_SIZE) if _anchor_word(text, word_start) is not None else len(text) // 2
        for text, word_start in strings
    )
    return shortest, -len(strings)


def _anchor_in(
    items: list[tuple[Any, Any]], at_word_start: bool, then: set[tuple[str, bool]] | None | bool, first: int
) -> _Found | None:
    """The best anchor of ``items`` starting at or after item ``first``, given _prefixes of what follows them
    (``then``). (At a pattern's start, the anchor would be its start strings: those are looked up already.)"""
    n = len(items)
    names = [op.name for op, _ in items]
    crossed = [False] * (n + 1)  # whether items[:j] may take a line break
    widths = [0] * (n + 1)  # the least characters items[:j] take
    for k in range(n):
        crossed[k + 1] = crossed[k] or _may_newline(items[k])
        widths[k + 1] = widths[k] + _min_width([items[k]])
    known: dict[int, set[tuple[str, bool]] | None] = {}  # _prefixes of items[k:] and what follows
    best: _Found | None = None
    for j in range(n - 1, -1, -1):
        name = names[j]
        # Where an anchor can begin: not inside a run of letters (the run's start tells more), nor at an item that may
        # take nothing (what follows it tells more, as far in).
        if crossed[j] or name in _ZERO_WIDTH or (name in _REPEATS and items[j][1][0] == 0):
            continue
        here = j >= first and not (j and name == "LITERAL" == names[j - 1])
        if not here and name != "BRANCH":
            continue
        head = items[:j]
        word_start = _word_start_after(head, at_word_start)
        found: list[_Found] = []
        if here:
            starts = _prefixes_from(items, j, then, known)
            texts = {text for text, _ in starts} if starts else set()
            if texts and all(len(text) >= 2 and "\n" not in text for text in texts):
                width = widths[j]
                found.append((width, {(t, word_start) for t in texts}))
        if name == "BRANCH":
            # one of the alternatives' own anchors, whichever alternative the match takes
            # (an alternative starting the pattern starts with the pattern's start strings)
            rest = _prefixes_from(items, j + 1, then, known) if j + 1 < n else then
            inner_first = first if j == 0 else 0
            inner = [_anchor_in(_flat(_items(alt)), word_start, rest, inner_first) for alt in items[j][1][1]]
            if inner and all(a is not None for a in inner):
                width = widths[j]
                found.append((width + min(a[0] for a in inner if a), {t for a in inner if a for t in a[1]}))
        for candidate in found:
            searched = sum(_anchor_word(text, word_start) is None for text, word_start in candidate[1])
            if searched <= _MAX_ANCHOR_SEARCHES and (
                best is None or _anchor_rank(candidate[1]) > _anchor_rank(best[1])
            ):
                best = candidate
    return best


def _prefixes_from(
    items: list[tuple[Any, Any]],
    k: int,
    then: set[tuple[str, bool]] | None | bool,
    known: dict[int, set[tuple[str, bool]] | None],
) -> set[tuple[str, bool]] | None:
    """_prefixes of items[k:] and what follows them (``then``), remembered in ``known``."""
    if k not in known:
        known[k] = _prefixes(items[k:], _PREFIX_SIZE, then)
    return known[k]


def _anchor_of(parsed: Any, at_word_start: bool, first: int) -> _Anchor | None:
    """The anchor of a parsed pattern, or None. ``at_word_start``: its matches are tried only at word starts;
    ``first``: the first of its items the anchor may start at (see _anchor_in)."""
    global _STEPS_ON
    _STEPS_ON = True
    try:
        found = _anchor_in(_flat(_items(parsed)), at_word_start, False, first)
    except Exception:  # noqa: BLE001 - any surprise in the private parser just leaves the pattern unanchored
        return None
    finally:
        _STEPS_ON = False
        _STEPS.clear()  # the items' ids are only theirs while the parsed pattern lives
        _NEWLINES.clear()
    if found is None:
        return None
    width, strings = found
    by_key: dict[str, list[str]] = {}
    others: set[str] = set()
    for text, word_start in strings:
        word = _anchor_word(text, word_start)
        if word is None:
            others.add(text)
        else:
            # where the string is, its word starts a word
            by_key.setdefault(word[:_START_SIZE], []).append(word)
    prefixes: _Prefixes = {}
    for key, words in by_key.items():
        # the key alone needs no longer string; one that extends another adds nothing
        prefixes[key] = () if key in words else tuple(sorted(_shortest(words)))
    return width, prefixes, tuple(sorted(_shortest(others)))


def _shortest(texts: Iterable[str]) -> set[str]:
    """The strings of ``texts`` that extend none of the others."""
    unique = set(texts)
    return {t for t in unique if not any(t != u and t.startswith(u) for u in unique)}


def _case(example: str | ExampleCase) -> ExampleCase:
    return example if isinstance(example, ExampleCase) else ExampleCase(text=example)


def _validate_rule(raw: Any, located: _Located, loc: tuple[object, ...]) -> RuleSpec:
    if not isinstance(raw, dict):
        raise located.error(loc, "each rule must be a set of 'key: value' lines", "start the rule with '- id: ...'")
    kind = raw.get("kind")
    if kind is None:
        raise located.error(loc, "missing required key 'kind'", f"add 'kind:' with one of: {', '.join(KINDS)}")
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), list(KINDS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise located.error((*loc, "kind"), f"unknown rule kind {kind!r}", f"{hint}valid kinds are: {', '.join(KINDS)}")
    model = KINDS[kind]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # An unknown key is the likeliest slip and explains later errors (e.g. a misspelt required key).
        errors.sort(key=lambda e: e["type"] != "extra_forbidden")
        first: dict[str, Any] = dict(errors[0])
        first["loc"] = (*loc, *tuple(errors[0]["loc"]))
        raise _describe(first, located, model) from exc


class Checker:
    """Checks a reply against the trainer-written rules in a folder of YAML files."""

    rules: tuple[Rule, ...]
    learned: tuple[ClassifierRule, ...]

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self.learned = tuple(r for r in self.rules if isinstance(r, ClassifierRule))

    @classmethod
    def load(cls, directory: Path, model: SentenceModel | None = None, keep: Path | None = None) -> Checker:
        """Load and validate every ``*.yaml`` file in ``directory`` (sorted); raise DataFileError on any problem.

        ``model`` replaces the file the classifier rules name (the trainer scores models it has not written yet).
        ``keep``: a folder where the patterns worked out are kept for the next process to start from (see _KEPT).
        """
        kept = None if keep is None else _keep_file(keep)
        if kept is not None:
            _read_kept(kept)
        # Loading builds many small objects and keeps most: the collector's passes over them would be wasted work.
        collecting = gc.isenabled()
        gc.disable()
        try:
            checker = cls._load(directory, model)
        finally:
            if collecting:
                gc.enable()
        if kept is not None:
            _write_kept(kept)
        return checker

    @classmethod
    def _load(cls, directory: Path, model: SentenceModel | None) -> Checker:
        directory = Path(directory)
        if not directory.is_dir():
            raise DataFileError(directory, "rule folder not found", fix="pass the folder holding the checker's *.yaml")
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise DataFileError(directory, "no *.yaml rule files in this folder", fix="add at least one rule file")
        vocab = _Vocabulary()
        parsed: list[tuple[list[Any], _Located]] = []
        for path in files:
            data, located = _read_yaml(path)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise located.error((), "the file must be a mapping with 'rules:'", "start the file with 'rules:'")
            for key in data:
                if key not in _TOP_LEVEL_KEYS:
                    close = difflib.get_close_matches(str(key), _TOP_LEVEL_KEYS, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise located.error(
                        (key,),
                        f"unknown top-level key {key!r}",
                        f"{hint}valid keys: {', '.join(_TOP_LEVEL_KEYS)}",
                        key=True,
                    )
            _add_vocabulary(vocab, data.get("vocabulary"), located)
            rules = data.get("rules") or []
            if not isinstance(rules, list):
                raise located.error(("rules",), "'rules' must be a list", "put '- ' before each rule")
            parsed.append((rules, located))

        root = directory.resolve().parent.parent
        seen: dict[str, tuple[Path, int]] = {}
        compiled: list[Rule] = []
        for rules, located in parsed:
            for i, raw in enumerate(rules):
                loc: tuple[object, ...] = ("rules", i)
                spec = _validate_rule(raw, located, loc)
                if spec.id in seen:
                    first_path, first_line = seen[spec.id]
                    raise located.error(
                        (*loc, "id"),
                        f"duplicate rule id {spec.id!r} (already used in {first_path.name}:{first_line})",
                        "give this rule a different id",
                    )
                if (root / "knowledge").is_dir() and not (root / spec.source).is_file():
                    known = sorted(p.relative_to(root).as_posix() for p in (root / "knowledge").glob("*.md"))
                    close = difflib.get_close_matches(spec.source, known, n=1, cutoff=0.3)
                    raise located.error(
                        (*loc, "source"),
                        f"source {spec.source!r} does not exist",
                        f"use one of: {', '.join(close or known)}",
                    )
                rule = _build_rule(spec, vocab, located, loc, model)
                seen[spec.id] = (located.path, rule.line)
                compiled.append(rule)
        return cls(compiled)

    def check(self, text: str, context: CheckContext | None = None) -> list[Finding]:
        """Return all findings in ``text``, sorted by position."""
        context = context or CheckContext()
        if not text.strip():
            return []
        doc = _Doc(text)
        findings: dict[tuple[str, int, int], Finding] = {}
        for rule in self.rules:
            if not isinstance(rule, ClassifierRule):
                for start, end in rule.find(doc, context):
                    f = rule.finding(doc, start, end)
                    if f.end > f.start:
                        findings.setdefault((f.rule, f.start, f.end), f)
        # A sentence a precise rule already explains needs no second, vaguer finding of the same category, so the
        # learned rules come last and leave those sentences alone.
        for rule in self.learned:
            covered = [(g.start, g.end) for g in findings.values() if g.category == rule.category]
            for start, end in rule.find_uncovered(doc, covered):
                f = rule.finding(doc, start, end)
                if f.end > f.start:
                    findings.setdefault((f.rule, f.start, f.end), f)
        return sorted(findings.values(), key=lambda f: (f.start, f.end, f.rule))

    def self_test(self) -> list[str]:
        """Run every rule's own examples; return one line per example the rule gets wrong (empty = all good)."""
        problems = []
        for rule in self.rules:
            for expect, cases in (("flag", rule.flag_examples), ("pass", rule.pass_examples)):
                for i, case in enumerate(cases):
                    hit = rule_flags(self, rule, case)
                    if hit != (expect == "flag"):
                        verb = "does not flag" if expect == "flag" else "flags"
                        problems.append(
                            f"{rule.path.name}:{rule.line}: rule {rule.id!r} {verb} its own {expect} example {i}: "
                            f"{case.text!r}"
                        )
        return problems


def rule_flags(checker: Checker, rule: Rule, case: ExampleCase) -> bool:
    """True when ``rule`` reports at least one finding on the example ``case``."""
    context = CheckContext(customer_name=case.customer_name, issue=case.issue)
    return any(f.rule == rule.id for f in checker.check(case.text, context))


def _add_vocabulary(vocab: _Vocabulary, raw: Any, located: _Located) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise located.error(("vocabulary",), "'vocabulary' must map NAMES to lists", "write 'NAME: [word, word]'")
    for name, words in raw.items():
        loc = ("vocabulary", name)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise located.error(
                loc, f"word list name {name!r} must be UPPER_CASE", "rename it, e.g. THIRD_PARTY", key=True
            )
        if name in vocab.entries:
            first_path, first_line = vocab.origin[name]
            raise located.error(
                loc, f"word list {name!r} is defined twice (also in {first_path.name}:{first_line})", "merge them"
            )
        if isinstance(words, str):
            words = [words]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise located.error(loc, f"word list {name!r} must be a non-empty list of words", "write [word, word]")
        # Longest first, so "delivery company" wins over "delivery" inside the alternation.
        ordered = sorted((w.strip() for w in words), key=len, reverse=True)
        vocab.entries[name] = "(?:" + "|".join(ordered) + ")"
        vocab.origin[name] = (located.path, located.line(loc) or 0)
        try:
            re.compile(_MACRO.sub("x", vocab.entries[name]))
        except re.error as exc:
            raise located.error(
                loc, f"word list {name!r} is not a valid pattern: {exc.msg}", "escape ( ) [ ] ? + *"
            ) from exc


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """Return only the findings that must stop a reply from being sent."""
    return [f for f in findings if f.severity == "block"]


def score(checker: Checker, cases: Iterable[tuple[str, Sequence[str]]]) -> dict[str, Any]:
    """Text-level precision, recall and F1 per blocking category, plus the false-flag rate on clean texts."""
    counts = {c: {"tp": 0, "fp": 0, "fn": 0, "support": 0} for c in BLOCKING_CATEGORIES}
    clean = flagged_clean = n = 0
    errors: list[dict[str, object]] = []
    for text, labels in cases:
        n += 1
        expected = set(labels)
        unknown = expected - set(BLOCKING_CATEGORIES)
        if unknown:
            raise ValueError(f"unknown label(s) {sorted(unknown)} for {text!r}")
        got = {f.category for f in blocking(checker.check(text))} & set(BLOCKING_CATEGORIES)
        for c in BLOCKING_CATEGORIES:
            counts[c]["support"] += c in expected
            counts[c]["tp"] += c in expected and c in got
            counts[c]["fp"] += c not in expected and c in got
            counts[c]["fn"] += c in expected and c not in got
        if not expected:
            clean += 1
            flagged_clean += bool(got)
        if got != expected:
            errors.append({"text": text, "expected": sorted(expected), "got": sorted(got)})
    per_category: dict[str, dict[str, float | int]] = {}
    for c, k in counts.items():
        precision = k["tp"] / (k["tp"] + k["fp"]) if k["tp"] + k["fp"] else 1.0
        recall = k["tp"] / (k["tp"] + k["fn"]) if k["tp"] + k["fn"] else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_category[c] = {"precision": precision, "recall": recall, "f1": f1, "support": k["support"]}
    return {
        "per_category": per_category,
        "false_flag_rate": flagged_clean / clean if clean else 0.0,
        "n": n,
        "errors": errors,
    }
