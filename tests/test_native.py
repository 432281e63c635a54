"""The checker's C build (mypyc, see setup.py and copilot/native.py): the same findings as the source it was built
from, in use wherever a compiler was there at install time, and never used once its source has changed."""

from __future__ import annotations

import functools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labelled import labelled_texts

from copilot import checker, native
from copilot.checker import _FLAGS, _INTERNED, Checker, ClassifierRule, _factored
from copilot.classifier import SentenceModel, tokens

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "copilot"

# Checks every labelled text and a few thousand combined replies; prints which engine ran and the findings.
_RUN_ALL = """
import json, random, sys
from pathlib import Path
from typing import Any
from copilot import native
from copilot.checker import CheckContext, Checker
root = Path(sys.argv[1])
texts = [json.loads(line)["text"] for path in sorted((root / "evals").glob("checker*.jsonl"))
         for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
rng = random.Random(11)
replies = ["Hi Dana, " + " ".join(rng.sample(texts, rng.randint(2, 5))) for _ in range(1500)]
checker = Checker.load(root / "prompts" / "checker")
found = [[f.to_dict() for f in checker.check(t, CheckContext(customer_name="Dana"))] for t in texts + replies]
print(json.dumps({"state": native.STATE, "findings": found}))
"""


def _run_all(pure: bool) -> dict[str, object]:
    env = (
        {**os.environ, "COPILOT_PURE_PYTHON": "1"}
        if pure
        else {k: v for k, v in os.environ.items() if k != "COPILOT_PURE_PYTHON"}
    )
    done = subprocess.run(
        [sys.executable, "-c", _RUN_ALL, str(ROOT)], env=env, capture_output=True, text=True, timeout=600, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("gcc") or shutil.which("cc")


def test_the_c_build_is_in_use_where_a_compiler_is() -> None:
    if os.environ.get("COPILOT_PURE_PYTHON"):
        pytest.skip("COPILOT_PURE_PYTHON is set: the source runs on purpose")
    if native.STATE == "stale":
        pytest.skip("copilot/checker.py or classifier.py changed since the build: `pip install -e .` rebuilds it")
    if _compiler() is None:
        pytest.skip("no C compiler here: the package runs as plain Python")
    assert native.STATE == "compiled", (
        f"a C compiler is here but the checker runs as {native.describe(native.STATE)}; reinstall with "
        "`pip install -e .` and read pip's output for the mypyc build error"
    )
    import copilot.checker
    import copilot.classifier

    assert not copilot.checker.__file__.endswith(".py")
    assert not copilot.classifier.__file__.endswith(".py")


def test_the_compiled_engine_finds_exactly_what_the_source_finds() -> None:
    compiled = _run_all(pure=False)
    if compiled["state"] != "compiled":
        pytest.skip(f"no C build to compare: {native.describe(str(compiled['state']))}")
    source = _run_all(pure=True)
    assert source["state"] == "pure"
    assert isinstance(source["findings"], list) and isinstance(compiled["findings"], list)
    assert len(source["findings"]) > 3000
    assert sum(map(len, source["findings"])) > 3000  # the texts are full of findings, so equal lists mean something
    for i, (a, b) in enumerate(zip(source["findings"], compiled["findings"], strict=True)):
        assert a == b, i


def _copy_package(tmp_path: Path) -> Path:
    target = tmp_path / "copilot"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _imported_from(tmp_path: Path) -> tuple[str, str, str]:
    code = "import copilot.checker as c, copilot.classifier as k, copilot.native as n\n"
    code += "print(n.STATE, c.__file__, k.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "COPILOT_PURE_PYTHON"}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path
    )
    state, checker_file, classifier_file = done.stdout.split()
    return state, checker_file, classifier_file


@pytest.mark.parametrize("edited", ["checker.py", "_sentence_model.c"])
def test_an_edited_source_runs_instead_of_its_older_c_build(tmp_path: Path, edited: str) -> None:
    if native.STATE != "compiled":
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    package = _copy_package(tmp_path)
    state, checker_file, _ = _imported_from(tmp_path)
    assert state == "compiled" and Path(checker_file).parent == package and not checker_file.endswith(".py")

    (package / edited).write_text((package / edited).read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    source = package / "checker.py"
    state, checker_file, classifier_file = _imported_from(tmp_path)
    # both run as source: compiled modules call each other directly, so one cannot run beside the other's source
    assert (state, checker_file, classifier_file) == ("stale", str(source), str(package / "classifier.py"))


@pytest.mark.parametrize("missing", [native.RECORD, "_sentence_model.c"])
def test_a_build_without_its_record_or_a_source_counts_as_stale(tmp_path: Path, missing: str) -> None:
    if native.STATE != "compiled":
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    package = _copy_package(tmp_path)
    (package / missing).unlink()
    assert native.status(package) == "stale"
    assert _imported_from(tmp_path)[0] == "stale"


def test_status_without_a_build_is_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPILOT_PURE_PYTHON", raising=False)
    for name in native.COMPILED:
        shutil.copy(PACKAGE / f"{name}.py", tmp_path / f"{name}.py")
    assert native.status(tmp_path) == "absent"
    monkeypatch.setenv("COPILOT_PURE_PYTHON", "1")
    assert native.status(tmp_path) == "pure"


# Word lists are compiled as tries (checker._factored); the matches must be re's own, position for position.


def _spans(rx: re.Pattern[str], text: str) -> list[tuple[int, int, tuple[str | None, ...]]]:
    return [(m.start(), m.end(), m.groups()) for m in rx.finditer(text)]


def test_the_shipped_patterns_as_tries_match_exactly_what_re_matches() -> None:
    Checker.load(ROOT / "prompts" / "checker")
    texts = [text.lower() for text in labelled_texts()]
    sample = random.Random(5).sample(texts, 600)
    patterns = list(_INTERNED.items())
    assert len(patterns) > 200
    for source, compiled in patterns:
        plain = re.compile(source, _FLAGS)
        assert compiled.pattern == source
        for text in sample:
            assert _spans(compiled, text) == _spans(plain, text), (source[:80], text)


_WORDS = st.sampled_from(["a", "ab", "abc", "abd", "b", "ba", "bab", "", "c", "x"])


@st.composite
def _alternations(draw: st.DrawFn) -> str:
    def alternation() -> str:
        parts = draw(st.lists(_WORDS, min_size=2, max_size=7))
        # something other than a plain letter first keeps its place among the letters around it
        if draw(st.integers(0, 2)) == 0:
            parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(["[ab]", "(?=a)b", ".", "a?b", "\\w"])))
        return "(?:" + "|".join(parts) + ")"

    # alternations in a row, inside a repeat, and nested in one another's alternatives
    pieces = [alternation() + draw(st.sampled_from(["", "*", "+?", "{0,2}"])) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        pieces = ["(?:a" + pieces[0] + "|ab|" + "".join(pieces[1:]) + "|b)"]
    head = draw(st.sampled_from(["", "(a)", "\\b", "(?<!b)"]))
    tail = draw(st.sampled_from(["", "c", "(?!b)", "$", "(b)?c"]))
    return head + "".join(pieces) + tail


@settings(max_examples=600, deadline=None, database=None)
@given(_alternations(), st.text(alphabet="abc ", max_size=12))
def test_alternations_as_tries_match_exactly_what_re_matches(source: str, text: str) -> None:
    plain = re.compile(source, _FLAGS)
    assert _spans(_factored(source), text) == _spans(plain, text)


def test_factored_patterns_still_report_their_own_errors() -> None:
    with pytest.raises(re.error):
        _factored("(?:unclosed|group")


# The learned rules' sums in C (copilot/_sentence_model.c) against the Python code they stand in for.


@functools.cache
def _shipped_model() -> SentenceModel:
    checker = Checker.load(ROOT / "prompts" / "checker")
    return next(rule.model for rule in checker.rules if isinstance(rule, ClassifierRule))


def _both(model: SentenceModel, sentences: list[str]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    scorer = model.scorer
    try:
        fast = []
        for sentence in sentences:
            model._recent.clear()
            fast.append(model.probabilities(sentence))
        model.scorer = None
        slow = []
        for sentence in sentences:
            model._recent.clear()
            slow.append(model.probabilities(sentence))
    finally:
        model.scorer = scorer
    return fast, slow


def test_the_c_sums_give_the_python_probabilities_on_every_labelled_sentence() -> None:
    model = _shipped_model()
    if model.scorer is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    sentences = list(labelled_texts())
    # no words at all, unknown words only, and repeated words and phrases (the tf = 1 + log(count) branch)
    sentences += ["", "?!", "qwxz vbnm", "the the the the", "you should have, you should have read it", "Ünïcödé wörds"]
    fast, slow = _both(model, sentences)
    # the same additions in the same order: equal to the last bit where Python's sum() adds plainly (up to 3.11)
    tolerance = 0.0 if sys.version_info < (3, 12) else 1e-12
    for sentence, a, b in zip(sentences, fast, slow, strict=True):
        assert a.keys() == b.keys()
        assert all(abs(a[c] - b[c]) <= tolerance for c in a), sentence


_SOME_WORDS = st.sampled_from(["you", "should", "have", "read", "the", "sorry", "for", "any", "zzq", "!", "'s"])


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(_SOME_WORDS, max_size=40))
def test_the_c_sums_match_python_on_any_run_of_words(words: list[str]) -> None:
    model = _shipped_model()
    if model.scorer is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    fast, slow = _both(model, [" ".join(words)])
    assert fast[0] == pytest.approx(slow[0], abs=1e-12)


def test_the_c_tokens_of_every_labelled_sentence_are_the_python_ones() -> None:
    model = _shipped_model()
    if model.scorer is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    sentences = [s for s in labelled_texts() if s.isascii()]
    assert len(sentences) > 3000
    for sentence in sentences:
        assert model.scorer.ascii_sums(sentence) == model.scorer.sums(tokens(sentence)), sentence


@settings(max_examples=600, deadline=None, database=None)
@given(st.lists(st.sampled_from(["You", "SHOULD", "have", "read", "it", "'", "_", "?", "!", " ", "-", "9", "x"])))
def test_the_c_tokens_are_the_python_ones_on_any_ascii_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    model = _shipped_model()
    if model.scorer is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    # apostrophes inside, around and doubled, underscores (word characters, yet not in a token), digits, capitals
    assert model.scorer.ascii_sums(text) == model.scorer.sums(tokens(text))


def test_the_c_scorer_refuses_what_is_not_a_list_of_words() -> None:
    model = _shipped_model()
    if model.scorer is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    with pytest.raises(TypeError):
        model.scorer.sums("you should have")
    with pytest.raises(TypeError):
        model.scorer.sums([["unhashable"]])
    assert model.scorer.sums([]) is None
    with pytest.raises(ValueError, match="ASCII"):
        model.scorer.ascii_sums("caf\u00e9 closed")
    with pytest.raises(ValueError, match="ASCII"):
        model.scorer.ascii_sums(b"bytes")
    width = len(model.categories)
    with pytest.raises(TypeError):
        model.scorer.ascii_probabilities("you", (0.0,) * (width + 1), model.categories)
    with pytest.raises(TypeError):
        model.scorer.ascii_probabilities("you", [0.0] * width, model.categories)
    with pytest.raises(ValueError, match="ASCII"):
        model.scorer.ascii_probabilities("caf\u00e9", (0.0,) * width, model.categories)
    assert model.scorer.ascii_probabilities("", (0.0,) * width, model.categories) == dict.fromkeys(
        model.categories, 0.5
    )


# The word index in C (copilot/_word_index.c) against checker._word_index.


def test_the_c_word_index_is_the_python_one_on_every_labelled_text() -> None:
    if checker._C_WORD_INDEX is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    Checker.load(ROOT / "prompts" / "checker")
    groups = checker._word_groups()
    assert len(groups) > 500, "the shipped rules' required words are known"
    texts = list(labelled_texts())
    assert len(texts) > 3000
    for text in texts:
        scan = checker._Doc(text).scan
        assert checker._C_WORD_INDEX(scan, 3, groups) == checker._word_index(scan, 3, groups), text


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(max_size=60), st.integers(1, 5))
def test_the_c_word_index_is_the_python_one_on_any_text(text: str, size: int) -> None:
    if checker._C_WORD_INDEX is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    # any character: letters and digits of every script, "_", marks, emoji, spaces and controls
    words = {w for w in re.findall(r"\w+", text)}
    groups = {w: [i, i + 1] for i, w in enumerate(sorted(words)[::2])}
    found, keyed = checker._C_WORD_INDEX(text, size, groups)
    assert (found, keyed) == checker._word_index(text, size, groups)
    # a byte for each id up to the largest, 1 where a word of the text is in the group
    assert len(found) == max((i for ids in groups.values() for i in ids), default=-1) + 1
    assert {i for i, b in enumerate(found) if b} == {i for w in words for i in groups.get(w, ())}
    assert set(found) <= {0, 1}


def test_the_c_word_index_refuses_bad_arguments() -> None:
    if checker._C_WORD_INDEX is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    with pytest.raises(TypeError):
        checker._C_WORD_INDEX(b"bytes", 3, {})
    with pytest.raises(TypeError):
        checker._C_WORD_INDEX("text", 3, [])
    with pytest.raises(TypeError):
        checker._C_WORD_INDEX("text", 3, {"text": 1})
    with pytest.raises(ValueError):
        checker._C_WORD_INDEX("text", 3, {"text": [-1]})
    with pytest.raises(ValueError):
        checker._C_WORD_INDEX("text", 0, {})


# The phrase rules' inner loop in C (copilot/_word_index.c: groups, candidates, tries) against the Python it replaces.


def _c(name: str) -> Any:
    found = getattr(native.extension("_word_index"), name, None)
    if found is None:
        pytest.skip(f"no C build here: {native.describe(native.STATE)}")
    return found


@functools.cache
def _shipped() -> tuple[list[re.Pattern[str]], list[str]]:
    Checker.load(ROOT / "prompts" / "checker")
    patterns = [rx for rx in _INTERNED.values() if checker._INFO.get(id(rx), (None, None))[1] is not None]
    texts = random.Random(5).sample(list(labelled_texts()), 400)
    replies = [" ".join(random.Random(i).sample(texts, 4)) for i in range(60)]
    return patterns, texts + replies


def _under(text: str, keyed: dict[str, list[int]], by_key: dict[str, tuple[str, ...]]) -> list[int]:
    """The word starts under the keys of ``by_key`` where one of the key's longer strings follows (all of them where
    it has none), ascending: what a route of those start strings is given."""
    return sorted(
        p for key, longer in by_key.items() for p in keyed.get(key, ()) if not longer or text.startswith(longer, p)
    )


def _table(routes: list[dict[str, tuple[str, ...]]]) -> dict[str, tuple[tuple[int, tuple[str, ...]], ...]]:
    """A route table (see checker._ROUTES) numbering ``routes`` in order."""
    table: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {}
    for route, by_key in enumerate(routes):
        for key, longer in by_key.items():
            table[key] = (*table.get(key, ()), (route, longer))
    return table


def test_the_c_candidates_and_tries_are_the_python_ones_for_every_shipped_pattern() -> None:
    c_candidates, c_route, c_tries = _c("candidates"), _c("route"), _c("tries")
    patterns, texts = _shipped()
    sizes = {size for rx in patterns for size, _, _ in checker._INFO[id(rx)][1]}
    assert {0, 1, 2, 3} <= sizes, "every kind of start is exercised"
    compared = 0
    routes = {route: dict(frozen) for frozen, route in checker._ROUTE_IDS.items()}
    routed_starts = 0
    for text in texts:
        doc = checker._Doc(text)
        count = len(checker._ROUTE_IDS)
        assert doc.routed == checker._py_route(doc.scan, doc._keyed, checker._ROUTES, count), text
        assert c_route(doc.scan, doc._keyed, checker._ROUTES, count) == doc.routed
        assert all((doc.routed[r] or []) == _under(doc.scan, doc._keyed, by_key) for r, by_key in routes.items())
        py_short: dict[int, dict[str, list[list[int]]]] = {}
        c_short: dict[int, dict[str, list[list[int]]]] = {}
        for rx in patterns:
            starts = checker._INFO[id(rx)][1]
            expected = checker._py_candidates(doc.scan, doc._keyed, py_short, starts, 3)
            got = c_candidates(doc.scan, doc._keyed, c_short, starts, 3)
            # the same lists of positions, whatever order the keys were looked up in
            assert sorted(got) == sorted(expected), (rx.pattern[:80], text)
            mine = checker._START_ROUTES.get(id(starts))
            if mine is not None:
                # whole keys by route: the same positions, a list per start rather than per key
                by_route = checker._py_candidates(doc.scan, doc._keyed, py_short, starts, 3, mine, doc.routed)
                assert c_candidates(doc.scan, doc._keyed, c_short, starts, 3, mine, doc.routed) == by_route
                assert sorted(p for at in by_route for p in at) == sorted(p for at in expected for p in at)
                routed_starts += 1
            spans = [m.span() for m in checker._py_tries(rx.match, doc.scan, expected)]
            assert [m.span() for m in c_tries(rx.match, doc.scan, got)] == spans, (rx.pattern[:80], text)
            anchor = checker._ROUTED_ANCHORS.get(id(rx))
            anchored = [m.span() for m in checker._py_tries(rx.match, doc.scan, expected, anchor, doc.routed)]
            assert [m.span() for m in c_tries(rx.match, doc.scan, got, anchor, doc.routed)] == anchored
            compared += len(spans)
        for anchor in set(checker._ROUTED_ANCHORS.values()):
            assert _c("anchor_hits")(doc.scan, doc.routed, anchor) == checker._py_anchor_hits(
                doc.scan, doc.routed, anchor
            )
        assert c_short.keys() == py_short.keys() and all(
            {k: sorted(v) for k, v in c_short[n].items()} == {k: sorted(v) for k, v in py_short[n].items()}
            for n in c_short
        )
    assert compared > 1000, "enough matches found to compare"
    assert routed_starts > 1000, "starts by route compared too"


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["ab", "abc", "a", "b", " ", ", ", "'", "-", "abab", "\n", "é"]), max_size=20),
    st.sampled_from(["ab", "a", "b ?a", "(?:ab|a)b?", "a|", ", ab", "(?=ab)"]),
)
def test_the_c_tries_keep_the_leftmost_matches_as_python_does(pieces: list[str], source: str) -> None:
    c_tries = _c("tries")
    text = "".join(pieces)
    rx = re.compile(source)
    # overlapping, repeated, empty and out-of-order positions, in several groups
    groups = [list(range(len(text) + 1)), [p for p in range(len(text) + 1) if p % 2], [0, 0]]
    assert [m.span() for m in c_tries(rx.match, text, groups)] == [
        m.span() for m in checker._py_tries(rx.match, text, groups)
    ]


def test_the_c_loop_refuses_bad_arguments() -> None:
    c_candidates, c_route, c_tries = _c("candidates"), _c("route"), _c("tries")
    match = re.compile("a").match
    with pytest.raises(TypeError):
        c_tries(match, "a", [0])
    for table in ({"a": ((0, ["ab"]),)}, {"a": ((0, (b"ab",)),)}, {"a": [(0, ())]}, {"a": ((0,),)}, {b"a": ()}):
        with pytest.raises(TypeError):
            c_route("a", {"a": [0]}, table, 1)
    with pytest.raises(TypeError):
        c_route("a", {"a": 0}, {"a": ((0, ()),)}, 1)
    with pytest.raises(ValueError):
        c_route("a", {"a": [0]}, {"a": ((-1, ()),)}, 1)
    with pytest.raises(ValueError):
        c_route("a", {}, {}, -1)
    with pytest.raises(TypeError):
        c_candidates("a", {}, {}, ((3, "abc", ""),), 3)
    with pytest.raises(TypeError):
        c_candidates("a", {}, {}, ((3, ("abc",)),), 3)
    for routes, routed in (((0, 1), [None]), ([0], [None]), ((0,), (None,)), (("0",), [None])):
        with pytest.raises(TypeError):
            c_candidates("a", {}, {}, ((3, ("abc",), ""),), 3, routes, routed)
    with pytest.raises(TypeError):
        c_candidates("a", {}, {}, ((3, ("abc",), ""),), 3, (0,), [0])
    with pytest.raises(IndexError):
        c_candidates("a", {}, {}, ((3, ("abc",), ""),), 3, (1,), [None])
    for anchor in ((0, 0), (0, {}, ()), ("0", 0, ()), (0, 0, ["a"]), (0, 0, (b"a",)), [0, 0, ()]):
        with pytest.raises(TypeError):
            c_tries(match, "a", [[0]], anchor, [[0]])
        with pytest.raises(TypeError):
            _c("anchor_hits")("a", [[0]], anchor)
    with pytest.raises(TypeError):
        c_tries(match, "a", [[0]], (0, 0, ()), {"a": [0]})  # an anchor needs the routed word starts
    with pytest.raises(TypeError):
        _c("anchor_hits")("a", [["0"]], (0, 0, ()))
    with pytest.raises(IndexError):
        _c("anchor_hits")("a", [], (0, 0, ()))  # a route the text was not routed for
    with pytest.raises(TypeError):
        _c("anchor_hits")(b"a", [None], (0, 0, ()))
    with pytest.raises(ValueError, match="boom"):

        def boom(scan: str, pos: int) -> None:
            raise ValueError("boom")

        c_tries(boom, "a", [[0]])


def test_the_c_sentence_ends_are_the_python_ones_on_every_labelled_text() -> None:
    c_ends = _c("sentence_ends")
    texts = list(labelled_texts())
    for text in texts:
        assert c_ends(text) == checker._py_sentence_ends(text), text
    with pytest.raises(TypeError):
        c_ends(b"bytes")


@settings(max_examples=800, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                ".",
                "!",
                "?",
                '"',
                "'",
                "\u201d",
                "\u2019",
                ")",
                "]",
                " ",
                "\n",
                "\t",
                "\x1c",
                "\u3000",
                "\u2029",
                "é",
                "Mr",
            ]
        )
    )
)
def test_the_c_sentence_ends_are_the_python_ones_on_any_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _c("sentence_ends")(text) == checker._py_sentence_ends(text)


def test_the_c_substring_pass_finds_what_in_finds() -> None:
    c_present = _c("present")
    Checker.load(ROOT / "prompts" / "checker")
    subs = checker._SUBS
    assert len(subs) > 100 and any(len(s) == 1 for s in subs), "one- and many-character substrings are exercised"
    texts = list(labelled_texts())
    for text in texts:
        scan = checker._Doc(text).scan
        assert c_present(scan, subs) == checker._py_present(scan, subs), text
    with pytest.raises(TypeError):
        c_present("text", ["a"])
    with pytest.raises(TypeError):
        c_present("text", (b"a",))


@settings(max_examples=600, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["a", "b", "ab", " ", "é", "€", "\U0001f600", "?", ","]), max_size=12),
    st.lists(st.sampled_from(["a", "ab", "ba", "b a", "é", "aé", "€", "?", "", ",", "abab", "\U0001f600"]), max_size=8),
)
def test_the_c_substring_pass_finds_what_in_finds_on_any_text(pieces: list[str], subs: list[str]) -> None:
    text = "".join(pieces)
    # one-byte, two-byte and four-byte texts; ASCII, Latin-1, wider and empty substrings, repeated ones
    assert _c("present")(text, tuple(subs)) == checker._py_present(text, tuple(subs))
    assert _c("present")(text, checker._SUBS) == checker._py_present(text, checker._SUBS)


@settings(max_examples=400, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["the", "they", "then", "thé", " ", "x", "€", ", "]), max_size=14),
    st.lists(st.sampled_from(["the ", "they", "then", "thé", "the", "th€"]), max_size=3),
)
def test_the_c_routes_filter_by_longer_strings_as_python_does(pieces: list[str], longer: list[str]) -> None:
    text = "".join(pieces)
    keyed = checker._word_index(text, 3, {})[1]
    # one-byte and wider texts and strings, longer strings that fit, run past the end, or none (no filter), and a
    # string of another route under the same key
    routes = [{"the": tuple(longer)}, {"the": tuple(longer), "x": (), "€": ("€",)}, dict.fromkeys(keyed, ())]
    routes += [{"the": ("then",)}, {"the": ("the",), "thé": ()}]
    table = _table(routes)
    want = [_under(text, keyed, by_key) or None for by_key in routes]
    assert checker._py_route(text, keyed, table, len(routes)) == want
    assert _c("route")(text, keyed, table, len(routes)) == want
    # routes numbered from count on are left out
    assert _c("route")(text, keyed, table, 2) == want[:2] == checker._py_route(text, keyed, table, 2)


@settings(max_examples=600, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["the", "ball", "up", "messed", " ", "\n", "é", "€", "'s ", ", ", "x"]), max_size=24),
    st.integers(min_value=0, max_value=9),
    st.lists(st.sampled_from(["bal", "mes", "up ", "the", "€ x", "é b"]), max_size=3),
    st.lists(st.sampled_from(["ball", "messed", "up ", "the €", "éb"]), max_size=2),
    st.lists(st.sampled_from(["up", "'s", " b", "\n", "é", "€", "zz", "ll"]), max_size=3),
)
def test_the_c_anchor_filter_keeps_what_python_keeps(
    pieces: list[str], width: int, keys: list[str], longer: list[str], others: list[str]
) -> None:
    text = "".join(pieces)
    keyed = checker._word_index(text, 3, {})[1]
    by_key = {key: tuple(t for t in longer if t.startswith(key)) for key in keys}
    routed = checker._py_route(text, keyed, _table([{"x": ()}, by_key]), 2)
    anchor = (width, 1, tuple(others))
    rx = re.compile(r"\w+")
    # every position (out-of-range ones too), repeated, in several groups; one-byte and wider texts; line breaks
    groups = [list(range(-1, len(text) + 2)), [0, 0, len(text)]]
    want = [m.span() for m in checker._py_tries(rx.match, text, groups, anchor, routed)]
    assert [m.span() for m in _c("tries")(rx.match, text, groups, anchor, routed)] == want
    hits = checker._py_anchor_hits(text, routed, anchor)
    assert _c("anchor_hits")(text, routed, anchor) == hits
    assert hits == sorted({*_under(text, keyed, by_key), *(i for t in others for i in _finds(text, t))})
    kept = checker._py_anchored(text, routed, anchor, [p for at in groups for p in at])
    assert all(0 <= p <= len(text) for p in kept)


def _finds(text: str, sub: str) -> list[int]:
    """Every place ``sub`` begins in ``text``, overlapping ones too."""
    return [i for i in range(len(text)) if text.startswith(sub, i)]


_MANY_WORDS = [f"{a}{b}{c}" for a in "tsw" for b in "aeo" for c in "nrx"] + ["é€a", "the", "then"]


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(st.sampled_from([*_MANY_WORDS, " ", ", ", "\n"]), max_size=60),
    st.lists(st.sampled_from(_MANY_WORDS), min_size=9, max_size=30, unique=True),
    st.sampled_from(["", "n", "n ", "x"]),
)
def test_the_c_routes_of_many_keys_find_what_python_finds(pieces: list[str], keys: list[str], more: str) -> None:
    # texts with many keys, and many routes sharing keys: more than fit one route mask, and routes given the starts
    # of several keys (put back in order)
    text = " ".join(pieces)
    keyed = checker._word_index(text, 3, {})[1]
    routes = [{key: ((key + more,) if more else ()) for key in keys[i:]} for i in range(len(keys))] * 3
    table = _table(routes)
    want = [_under(text, keyed, by_key) or None for by_key in routes]
    assert checker._py_route(text, keyed, table, len(routes)) == want
    assert _c("route")(text, keyed, table, len(routes)) == want


def test_the_c_finding_maker_refuses_what_it_cannot_set() -> None:
    made = _c("made")
    if checker._MADE is None:
        pytest.skip("the checker runs as source here: its findings have no C setters")
    setters = checker._SETTERS
    values = ("blame", "block", 0, 3, "you", "r", "m", "s", "k.md")
    assert made(checker.Finding, setters, *values) == checker.Finding(*values)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        made(checker.Finding, setters, *values[:-1])  # a setter without a value
    with pytest.raises(TypeError):
        made(checker.Finding, (*setters[:-1], "source"), *values)  # not a descriptor
    with pytest.raises(TypeError):
        made(checker.CheckContext, setters, *values)  # another class's setters
    with pytest.raises(TypeError):
        made(checker.Finding, setters, *values[:2], "0", *values[3:])  # the class's own setter checks the type


def test_the_c_routes_put_the_starts_of_several_keys_in_order() -> None:
    # a few starts (sorted in place) and many (sorted by list.sort)
    text = " ".join(["tax", "sax", "wax"] * 20)
    keyed = checker._word_index(text, 3, {})[1]
    routes = [{"wax": (), "tax": ()}, {"tax": (), "sax": (), "wax": ()}, {"sax": ("saxo",)}]
    want = [sorted(keyed["tax"] + keyed["wax"]), sorted(p for at in keyed.values() for p in at), None]
    assert len(want[1]) == 60
    for table in (_table(routes), _table(routes[::-1])):
        got = _c("route")(text, keyed, table, 3)
        assert (
            sorted(got, key=str) == sorted(want, key=str) == sorted(checker._py_route(text, keyed, table, 3), key=str)
        )
    short = "wax tax"
    keyed = checker._word_index(short, 3, {})[1]
    assert _c("route")(short, keyed, _table(routes), 2) == [[0, 4], [0, 4]]


def test_the_c_routes_follow_a_table_that_grows() -> None:
    # the table checker.py keeps only grows, a route at a time, counted after it is added: the same dict is given
    # again with a new count, and a text routed in between leaves the newest route out
    text = "then the other there"
    keyed = checker._word_index(text, 3, {})[1]
    table = _table([{"the": ("then",)}])
    assert _c("route")(text, keyed, table, 1) == [[0]]
    table["the"] = (*table["the"], (1, ("ther",)))
    table["oth"] = ((1, ()),)
    assert _c("route")(text, keyed, table, 1) == [[0]]
    assert _c("route")(text, keyed, table, 2) == [[0], [9, 15]] == checker._py_route(text, keyed, table, 2)
