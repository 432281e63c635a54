"""The checker's shortcuts give the answers of the plain computation they replace: where a pattern is tried instead
of searched for, the quick quote test, the sentence-end scan and the learned rules skipping what a precise rule
already flagged."""

from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
import random
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from labelled import labelled_texts

from copilot import checker
from copilot.checker import _INFO, _QUOTED, CheckContext, Checker, ClassifierRule, Finding, _Doc, _finditer

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _checker() -> Checker:
    return Checker.load(ROOT / "prompts" / "checker")


def _searched(rx: re.Pattern[str], scan: str) -> list[tuple[int, int]]:
    return [m.span() for m in _finditer(rx, scan) if m.end() > m.start()]


def _tried(rx: re.Pattern[str], doc: _Doc) -> list[tuple[int, int]] | None:
    starts = _INFO[id(rx)][1]
    if starts is None:
        return None
    return [m.span() for m in checker._matches_at(rx, doc.scan, doc.candidates(starts), doc.routed)]


def test_every_shipped_pattern_tried_where_it_can_start_finds_what_searching_finds() -> None:
    _checker()
    patterns = [rx for rx in checker._INTERNED.values() if _INFO.get(id(rx), (None, None))[1] is not None]
    with_head = [rx for rx in patterns if any(head for _, _, head in _INFO[id(rx)][1])]
    assert len(patterns) > 150 and with_head, "the shortcut is in use, for word starts and after punctuation"
    texts = random.Random(3).sample(list(labelled_texts()), 500)
    replies = [" ".join(random.Random(i).sample(texts, 4)) for i in range(100)]
    for text in texts + replies:
        doc = _Doc(text)
        for rx in patterns:
            assert _tried(rx, doc) == _searched(rx, doc.scan), (rx.pattern[:80], text)


def test_every_shipped_pattern_tried_only_before_its_longer_strings_finds_what_searching_finds() -> None:
    found = _checker()
    parts = [part for rule in found.rules for part in getattr(rule, "parts", ()) if part[4] >= 0]
    filtered = [part for part in parts if any(checker._BY_KEY[id(part[0])].values())]
    assert len(parts) > 100 and len(filtered) > 50, "most start strings have longer ones"
    texts = random.Random(4).sample(list(labelled_texts()), 500)
    replies = [" ".join(random.Random(i).sample(texts, 4)) for i in range(100)]
    skipped = 0
    for text in texts + replies:
        doc = _Doc(text)
        for rx, _, _, _, route, _, _ in parts:
            by_key = checker._BY_KEY[id(rx)]
            tried = checker._py_tries(rx.match, doc.scan, [doc.routed[route] or []])
            assert [m.span() for m in tried] == _searched(rx, doc.scan), (rx.pattern[:80], text)
            skipped += sum(len(doc._keyed.get(k, ())) for k in by_key) - sum(
                1
                for k, longer in by_key.items()
                for p in doc._keyed.get(k, ())
                if not longer or any(doc.scan.startswith(t, p) for t in longer)
            )
    assert skipped > 1000, "the longer strings rule out many word starts"


def test_every_shipped_pattern_tried_only_where_its_anchor_follows_finds_what_searching_finds() -> None:
    found = _checker()
    parts = [
        part
        for rule in found.rules
        for part in getattr(rule, "parts", ())
        if part[5] is not None and part[6] is not None
    ]
    assert len(parts) > 150, "most phrase patterns tried where they can start have an anchor"
    texts = random.Random(6).sample(list(labelled_texts()), 500)
    replies = [" ".join(random.Random(i).sample(texts, 4)) for i in range(100)]
    before = after = 0
    for text in texts + replies:
        doc = _Doc(text)
        for rx, _, _, _, _, starts, anchor in parts:
            at = [p for group in doc.candidates(starts) for p in group]
            tried = checker._py_tries(rx.match, doc.scan, [at], anchor, doc.routed)
            assert [m.span() for m in tried] == _searched(rx, doc.scan), (rx.pattern[:80], text)
            before += len(at)
            after += len(checker._py_anchored(doc.scan, doc.routed, anchor, at))
    assert after < before / 3, f"the anchors rule out most starts ({before:,} -> {after:,})"


def test_every_shipped_pattern_searched_for_only_on_the_lines_holding_its_anchor_finds_what_searching_finds() -> None:
    found = _checker()
    parts = [part for rule in found.rules for part in getattr(rule, "parts", ()) if part[5] is None]
    anchored = [part for part in parts if part[6] is not None]
    assert len(anchored) > 20, "most patterns searched for have an anchor"
    texts = random.Random(7).sample(list(labelled_texts()), 500)
    replies = ["\n".join(random.Random(i).sample(texts, 4)) for i in range(100)]
    lines = skipped = 0
    for text in texts + replies:
        doc = _Doc(text)
        for rx, _, _, _, _, _, anchor in anchored:
            got = checker._search(rx, doc.scan, anchor, doc.routed)
            assert [m.span() for m in got] == _searched(rx, doc.scan), (rx.pattern[:80], text)
            hits = checker._py_anchor_hits(doc.scan, doc.routed, anchor)
            lines += doc.scan.count("\n") + 1
            skipped += doc.scan.count("\n") + 1 - len({doc.scan.rfind("\n", 0, q) for q in hits})
    assert skipped > lines / 2, f"most lines are not searched ({skipped:,} of {lines:,})"


_ANCHOR_PIECES = st.sampled_from(
    [
        "the ",
        "our ",
        "(?:the|our) ",
        "(?:[\\w-]+ ){0,2}?",
        "(?: [\\w'-]+){0,3}?",
        "\\w+ly ",
        "(?:really )?",
        "messed up",
        "(?:messed|screwed) up",
        "(?:up|down)",
        "(?<!to )",
        "(?!the )",
        "'s fault",
        "(?:'s)?",
        " ",
        "\\s",
        ".",
        "[^x]",
        "\\n",
        "$",
        "^",
        "(?:a|the ball|up)",
        "(?:x|\\w+) ball",
        "e-?mail",
    ]
)
_ANCHOR_TEXT = st.sampled_from(
    [
        "the",
        "our",
        "ball",
        "messed",
        "screwed",
        "up",
        "down",
        "really",
        "to",
        "'s",
        "fault",
        "x",
        "e-mail",
        "email",
        "sadly",
        " ",
        " ",
        "\n",
        ".",
        "-",
        "é",
    ]
)


@settings(max_examples=1500, deadline=None, database=None)
@given(st.lists(_ANCHOR_PIECES, min_size=1, max_size=6), st.lists(_ANCHOR_TEXT, max_size=24))
def test_a_pattern_tried_only_where_its_anchor_follows_finds_what_searching_finds(
    pieces: list[str], words: list[str]
) -> None:
    # gaps of words, optional and alternative parts, look-arounds, line breaks that patterns may or may not cross
    rx = checker._intern(f"(?:{''.join(pieces)}){checker._END_GUARD}")
    starts = _INFO[id(rx)][1]
    assume(starts is not None)
    doc = _Doc("".join(words))
    anchor = checker._ROUTED_ANCHORS.get(id(rx))
    at = [p for group in doc.candidates(starts) for p in group]
    tried = checker._py_tries(rx.match, doc.scan, [at], anchor, doc.routed)
    assert [m.span() for m in tried] == _searched(rx, doc.scan), (rx.pattern, anchor)


@settings(max_examples=1500, deadline=None, database=None)
@given(st.lists(_ANCHOR_PIECES, min_size=1, max_size=6), st.lists(_ANCHOR_TEXT, max_size=24))
def test_a_pattern_searched_for_only_on_the_lines_holding_its_anchor_finds_what_searching_finds(
    pieces: list[str], words: list[str]
) -> None:
    # the same patterns as if none could say where its matches start: the anchor may be its first strings
    parsed = checker._sre_parse.parse("".join(pieces), checker._FLAG_BITS)
    rx = re.compile("".join(pieces), checker._FLAGS)
    anchor = checker._anchor_of(parsed, False, 0)
    routed = None if anchor is None else checker._routed(anchor)
    doc = _Doc("".join(words))  # routed for the anchor's words, numbered before it
    got = checker._search(rx, doc.scan, routed, doc.routed)
    assert [m.span() for m in got] == _searched(rx, doc.scan), (rx.pattern, anchor)


def test_anchors_are_found_after_gaps_and_in_each_alternative() -> None:
    rx = checker._intern(
        "(?:(?:the|our) (?:[\\w-]+ ){0,2}?(?:courier|driver)(?: [\\w'-]+){0,5}? (?:messed up|is to blame))"
    )
    width, by_key, others = checker._ANCHORS[id(rx)]
    # the rarest part after the gap, not the nouns right after "the"
    assert (width, by_key, others) == (len("the driver "), {"mes": ("messed u",), "is ": ("is to bl",)}, ())
    # a line break between the parts: no match can take it, and none is tried
    doc = _Doc("The courier\nmessed up.")
    assert checker._py_anchored(doc.scan, doc.routed, checker._ROUTED_ANCHORS[id(rx)], [0]) == []
    # a pattern whose parts may take a line break gets no anchor past them: only its first word (it is searched for)
    assert checker._ANCHORS[id(checker._intern("(?:the\\s+courier\\s+messed up)"))] == (0, {}, ("the",))


_PIECES = st.sampled_from(
    ["send", "sent", "them", "call", "so", "no", "not", "ve", "e-mail", ", ", "; ", ": ", ",", " ", "'", "-", "a", "\n"]
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    st.sampled_from(
        [
            "(?:^|(?<=[,;:]) |\\bso )(?:send|call) them",
            "(?:, |; )(?:not|so)",
            "(?:'ve|, no|; so) \\w+",
            "(?:^|(?<=[,;:] )| )e-mail",
            "(?<=[,;]) (?:sen|no)",
        ]
    ),
    st.lists(_PIECES, max_size=14),
)
def test_patterns_starting_after_punctuation_are_tried_wherever_they_match(source: str, pieces: list[str]) -> None:
    rx = checker._intern(f"(?:{source}){checker._END_GUARD}")
    assert any(head for _, _, head in _INFO[id(rx)][1] or ()), "these patterns start after a non-word head"
    doc = _Doc("".join(pieces))
    assert _tried(rx, doc) == _searched(rx, doc.scan)


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from("ab '\"\u201c\u201d\u2018\u2019_1.\n"), max_size=30))
def test_a_text_the_quote_test_passes_over_has_nothing_quoted(text: str) -> None:
    if not checker._may_quote(text):
        assert _QUOTED.search(text) is None


# What _Doc's sentence scan replaced: a look-behind at the stop, which keeps re from skipping ahead.
_LOOKBEHIND_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*(\s+)|\n\s*")


def _sentences_by_lookbehind(text: str) -> list[tuple[int, int]]:
    sentences = []
    start = 0
    for m in _LOOKBEHIND_END.finditer(text):
        if m.lastindex and checker._is_abbreviation(text, m.start()):
            continue
        if text[start : m.start()].strip():
            sentences.append(checker._strip_span(text, start, m.start()))
        start = m.end()
    if text[start:].strip():
        sentences.append(checker._strip_span(text, start, len(text)))
    return sentences


@settings(max_examples=600, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from("ab .!?\"'”’)]\n\tMr"), max_size=30))
def test_the_sentence_scan_splits_as_the_look_behind_did(text: str) -> None:
    assert _Doc(text).sentences == _sentences_by_lookbehind(text)


def test_the_sentence_scan_splits_every_labelled_text_as_the_look_behind_did() -> None:
    for text in labelled_texts():
        assert _Doc(text).sentences == _sentences_by_lookbehind(text), text


def _bounds_by_regex(scan: str) -> list[int]:
    return [m.end() for m in checker._CLAUSE_BOUNDARY.finditer(scan)]


@settings(max_examples=800, deadline=None, database=None)
@given(st.lists(st.sampled_from(["b", "u", "t", "but", " ", "\t", "\n", "-", ",", ";", "(", "\u2014", "_", "é", "1"])))
def test_clause_bounds_are_where_the_boundary_pattern_ends(pieces: list[str]) -> None:
    scan = _Doc("".join(pieces)).scan
    assert checker._clause_bounds(scan) == _bounds_by_regex(scan)


def test_clause_bounds_of_every_labelled_text_are_where_the_boundary_pattern_ends() -> None:
    for text in labelled_texts():
        scan = _Doc(text).scan
        assert checker._clause_bounds(scan) == _bounds_by_regex(scan), text
    # dashes between spaces that overlap (" - - ") count once, as finditer counts them
    assert checker._clause_bounds("a - - b") == _bounds_by_regex("a - - b") == [4]


def _check_all_then_drop(found: Checker, text: str, context: CheckContext) -> tuple[list[Finding], int]:
    """Checker.check as first written: every rule on its own, then learned findings a precise one overlaps dropped."""
    doc = _Doc(text)
    findings: dict[tuple[str, int, int], Finding] = {}
    learned: list[Finding] = []
    for rule in found.rules:
        for start, end in rule.find(doc, context):
            f = rule.finding(doc, start, end)
            if f.end > f.start:
                if isinstance(rule, ClassifierRule):
                    learned.append(f)
                else:
                    findings.setdefault((f.rule, f.start, f.end), f)
    dropped = 0
    for f in learned:
        if not any(g.category == f.category and g.start < f.end and f.start < g.end for g in findings.values()):
            findings.setdefault((f.rule, f.start, f.end), f)
        else:
            dropped += 1
    return sorted(findings.values(), key=lambda f: (f.start, f.end, f.rule)), dropped


def test_learned_rules_skipping_flagged_sentences_change_no_finding() -> None:
    found = _checker()
    texts = list(labelled_texts())
    replies = ["Hi Dana, " + " ".join(random.Random(i).sample(texts, 4)) for i in range(400)]
    context = CheckContext(customer_name="Dana")
    dropped = 0
    for text in texts + replies:
        expected, n = _check_all_then_drop(found, text, context)
        assert found.check(text, context) == expected, text
        dropped += n
    assert dropped > 100, "the texts hold sentences both a learned and a precise rule flag"


def _name_used_by_lookbehind(name: str, text: str) -> bool:
    parts = [
        p for p in re.split(r"[\s,]+", name) if len(p.strip(".")) > 1 and p.lower().strip(".") not in checker._TITLES
    ]
    return any(re.search(rf"(?<!\w){re.escape(p)}(?!\w)", text, re.IGNORECASE) for p in parts or [name])


_NAME_PIECES = st.sampled_from(
    ["Dana", "dana", "DANA", "O'", "(", ")", ".", "_", "x", " ", ",", "Mr", "\u0130", "\u017f"]
)


@settings(max_examples=600, deadline=None, database=None)
@given(st.lists(_NAME_PIECES, min_size=1, max_size=4), st.lists(_NAME_PIECES, max_size=10))
def test_the_name_rule_sees_the_name_where_a_look_behind_would(name: list[str], text: list[str]) -> None:
    rule = next(r for r in _checker().rules if isinstance(r, checker.NameUnusedRule))
    name_text, reply = "".join(name).strip(), "Hello. " + "".join(text) + " Thanks."
    assume(name_text)
    flagged = bool(list(rule.find(_Doc(reply), CheckContext(customer_name=name_text))))
    assert flagged == (not _name_used_by_lookbehind(name_text, reply))


def test_a_rule_builds_the_finding_the_dataclass_would() -> None:
    found = _checker()
    text = "I'm sorry for any inconvenience, but you should have read the instructions."
    doc = _Doc(text)
    built = 0
    for rule in found.rules:
        for start, end in rule.find(doc, CheckContext()):
            f = rule.finding(doc, start, end)
            s, e = checker._trim(text, start, end)
            same = Finding(
                rule.category, rule.severity, s, e, text[s:e], rule.id, rule.message, rule.suggestion, rule.source
            )
            assert f == same and hash(f) == hash(same) and repr(f) == repr(same) and f.to_dict() == same.to_dict()
            with pytest.raises(dataclasses.FrozenInstanceError):
                f.start = 0  # type: ignore[misc]
            assert copy.deepcopy(f) == f == pickle.loads(pickle.dumps(f)) and dataclasses.replace(f) == f
            built += 1
    assert built >= 2


@settings(max_examples=800, deadline=None, database=None)
@given(st.lists(st.sampled_from(["Mr", "e", "g", ".", " ", "_", "1", "é", "-", "No", "etc", "i.e", "\n"]), max_size=12))
def test_the_abbreviation_word_is_what_the_pattern_captures(pieces: list[str]) -> None:
    text = "".join(pieces) + "."
    # where _is_abbreviation asks: right after a full stop
    for dot in (i + 1 for i, ch in enumerate(text) if ch == "."):
        m = checker._ABBREVIATION_WORD.search(text, max(0, dot - 12), dot)
        assert checker._abbreviation_word(text, dot) == (m.group(1) if m else ""), (text, dot)


def test_look_arounds_are_read_for_word_boundaries_only_when_they_hold_just_a_word_character() -> None:
    for source, nonword in [(r"(?!\w)", True), (r"(?<!\w)", True), (r"(?![\w'])", False), (r"(?!x)", False)]:
        item = checker._items(checker._sre_parse.parse(source, checker._FLAG_BITS))[0]
        assert checker._starts_nonword(item) is nonword, source
