"""Tests of the reply checker: acceptance cases, spans, context, quoting, near-miss controls and loader errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from copilot.checker import BLOCKING_CATEGORIES, CheckContext, Checker, Finding, blocking, score
from copilot.errors import DataFileError

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "prompts" / "checker"


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.load(RULES)


def categories(findings: list[Finding]) -> set[str]:
    return {f.category for f in blocking(findings)}


def test_acceptance_bad_reply_blocks_all_three(checker: Checker) -> None:
    text = (
        "I'm sorry for any inconvenience, but you should have read the instructions. "
        "Our policy clearly states no refunds."
    )
    found = blocking(checker.check(text))
    by_category = {c: [f for f in found if f.category == c] for c in BLOCKING_CATEGORIES}
    assert all(by_category.values()), by_category
    spans = {f.text for f in found}
    assert "sorry for any inconvenience" in spans
    assert "you should have read the instructions" in spans
    assert "Our policy clearly states" in spans
    for f in found:
        assert f.severity == "block"
        assert f.message and f.suggestion
        assert f.source.startswith("knowledge/") and (ROOT / f.source).is_file()


def test_acceptance_good_reply_passes(checker: Checker) -> None:
    text = (
        "Dana, I'm sorry your order arrived broken again. I've sent a replacement by express today "
        "and I'll call you Friday to confirm it arrived."
    )
    assert blocking(checker.check(text, CheckContext(customer_name="Dana"))) == []


def test_spans_are_exact_and_sorted(checker: Checker) -> None:
    text = (
        "Hi Tom, sorry about that. The courier lost it, there's nothing we can do. "
        "Please calm down. As I already explained, you'll need to contact billing."
    )
    found = checker.check(text)
    assert len(blocking(found)) >= 5
    for f in found:
        assert text[f.start : f.end] == f.text
        assert f.text == f.text.strip(" ,.;")
    assert found == sorted(found, key=lambda f: (f.start, f.end, f.rule))
    texts = {f.text for f in blocking(found)}
    assert "calm down" in texts
    # a phrase, not the whole reply
    assert all(len(f.text) < len(text) / 2 for f in blocking(found))


def test_finding_to_dict_round_trips(checker: Checker) -> None:
    f = blocking(checker.check("Please calm down."))[0]
    d = f.to_dict()
    assert d == {
        "category": "defensiveness",
        "severity": "block",
        "start": f.start,
        "end": f.end,
        "text": "calm down",
        "rule": f.rule,
        "message": f.message,
        "suggestion": f.suggestion,
        "source": "knowledge/001-customer-relationship-management.md",
    }
    assert Finding(**d) == f  # type: ignore[arg-type]


def test_name_unused_only_with_context(checker: Checker) -> None:
    text = "I'm sorry the card was blocked abroad. I've lifted the block and I'll text you when it's active."
    rules = {f.rule for f in checker.check(text, CheckContext(customer_name="Mrs Novak"))}
    assert "coaching.name-unused" in rules
    assert "coaching.name-unused" not in {f.rule for f in checker.check(text)}
    named = "Mrs Novak, " + text[0].lower() + text[1:]
    assert "coaching.name-unused" not in {f.rule for f in checker.check(named, CheckContext(customer_name="Mrs Novak"))}
    hint = next(
        f for f in checker.check(text, CheckContext(customer_name="Mrs Novak")) if f.rule == "coaching.name-unused"
    )
    assert hint.severity == "hint" and hint.category == "coaching"


def test_commitment_warns_but_never_blocks(checker: Checker) -> None:
    found = checker.check("Your replacement is guaranteed to arrive by tomorrow, and I've added a $40 credit.")
    assert {f.category for f in found if f.severity == "warn"} == {"commitment"}
    assert blocking(found) == []


@pytest.mark.parametrize(
    "text",
    [
        'You said the last agent told you to "calm down" - that should never have happened.',
        "You mentioned the agent said 'sorry for any inconvenience' and hung up.",
        "The last email just said \u201cit's company policy\u201d, which wasn't good enough, so I've refunded it.",
    ],
)
def test_quoted_words_are_not_the_agents(checker: Checker, text: str) -> None:
    assert blocking(checker.check(text)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm sorry your order arrived broken.", set()),
        ("I'm sorry for any inconvenience.", {"empty_apology"}),
        ("Our policy gives you a full refund.", set()),
        ("Our policy clearly states no refunds.", {"defensiveness"}),
        ("The courier lost it, and I have already sent a replacement.", set()),
        ("The courier lost it, there's nothing we can do.", {"blame", "defensiveness"}),
        ("You should have it by Friday.", set()),
        ("You should have read the instructions.", {"blame"}),
        ("I'd never ask you to calm down.", set()),
        ("Please calm down.", {"defensiveness"}),
        ("If you had any trouble, call me directly.", set()),
        ("If you had read the email, you'd know.", {"blame"}),
        ("I should have checked.", set()),
        ("My colleague should have checked.", {"blame"}),
        ("There's no charge for the visit and it's no problem at all.", set()),
        ("It will be with you no later than Friday.", set()),
        ("No, we don't do that.", {"defensiveness"}),
        ("That's not my department.", {"defensiveness"}),
        ("You'll need to contact billing.", {"defensiveness"}),
        ("I've contacted billing for you.", set()),
        ("It's not your fault at all.", set()),
        ("It's not our fault.", {"defensiveness"}),
        ("There's no need to apologise.", set()),
        ("I'm sorry, but the offer has ended.", {"empty_apology"}),
        ("I'm sorry the offer ended, but I've applied the discount by hand.", set()),
    ],
)
def test_near_miss_controls(checker: Checker, text: str, expected: set[str]) -> None:
    assert categories(checker.check(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Sending the customer elsewhere is defensiveness; pointing a finger at whoever is to blame is blame.
        ("Please call your bank to sort the payment out.", {"defensiveness"}),
        ("You'd have to open a ticket with the IT team.", {"defensiveness"}),
        ("That's another team's job.", {"defensiveness"}),
        ("Billing messed this up, call them.", {"blame", "defensiveness"}),
        ("It's the airport's fault, not ours.", {"blame", "defensiveness"}),
        ("It is not our fault that the ferry operator cancelled the crossing.", {"blame", "defensiveness"}),
        ("That's a supplier defect, not something we caused.", {"blame", "defensiveness"}),
        ("It's not our fault.", {"defensiveness"}),
        ("It's not your fault that the courier was late, and I've sent a new one.", set()),
        # Words inside a finger-pointing phrase.
        ("The dispatch team plainly mis-sent your order.", {"blame"}),
        ("Your installer fitted the valve completely wrongly.", {"blame"}),
        ("My colleague gave you totally outdated prices.", {"blame"}),
        # Broken English refusals.
        ("Sorry, system not permit refund after 7 day.", {"empty_apology", "defensiveness"}),
        ("Is not possible change the seat.", {"defensiveness"}),
        ("We not able cancel this booking.", {"defensiveness"}),
        ("We can do nothing for this order.", {"defensiveness"}),
        ("We can't just do nothing, so I've escalated it to my manager.", set()),
        # "it" / "that" refer back to a problem named just before.
        ("We sent your parcel to the wrong town. I apologise for it.", set()),
        ("The engineer was rude to you, and I'm sorry about that.", set()),
        ("I've read your message. I apologise for it.", {"empty_apology"}),
        ("We are not responsible for their downtime. Sorry about that.", {"defensiveness", "empty_apology"}),
    ],
)
def test_spec_relabels_and_generalisations(checker: Checker, text: str, expected: set[str]) -> None:
    assert categories(checker.check(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Word families, not strings: each line is a phrasing no rule or eval set spells out.
        ("You never switched the water off at the mains before the plumber arrived.", {"blame"}),
        ("The dye ran because you washed it on a hot cycle.", {"blame"}),
        ("Plenty of our members book the class without any trouble.", {"blame", "defensiveness"}),
        ("The florist mixed up the orders.", {"blame"}),
        ("The wrong parts were shipped by the distributor.", {"blame"}),
        ("The hold-up is entirely on the builders' side.", {"blame"}),
        ("The rules of the competition are perfectly clear.", {"defensiveness"}),
        ("I'm just a sales assistant, I can't do anything about delivery.", {"defensiveness"}),
        ("You'd be better off contacting the airline directly.", {"defensiveness"}),
        ("We're massively understaffed this month.", {"defensiveness"}),
        ("This has been decided and won't be revisited.", {"defensiveness"}),
        ("That's just the way the system works.", {"defensiveness"}),
        ("Sorry things haven't gone smoothly.", {"empty_apology"}),
        ("Apologies for the issues you've had with us.", {"empty_apology"}),
        ("We regret any frustration this has caused you.", {"empty_apology"}),
        # Near-misses of the same families stay clean.
        ("Since you chose express delivery, it should arrive tomorrow.", set()),
        ("I'm only an email away if anything else comes up.", set()),
        ("Our terms give you a full refund within 30 days, no exceptions.", set()),
        ("The decision stands in your favour, so the charge is cancelled.", set()),
        ("The warehouse team worked late to get your order out, and it's on the van now.", set()),
        ("It's only a short walk from the station to our new branch.", set()),
        ("You'll want to keep the receipt for your own records.", set()),
        ("Your parcel was held at customs for three days. I'm sorry about that, and I've refunded the fee.", set()),
        ("I don't handle refunds myself, so I've passed yours to Sam, who will confirm by noon.", set()),
    ],
)
def test_generalises_to_unseen_phrasings(checker: Checker, text: str, expected: set[str]) -> None:
    assert categories(checker.check(text)) == expected


def test_curly_apostrophes_read_like_straight_ones(checker: Checker) -> None:
    assert categories(checker.check("You should\u2019ve read the manual.")) == {"blame"}
    assert categories(checker.check("That\u2019s not my department.")) == {"defensiveness"}


def test_empty_and_whitespace_text(checker: Checker) -> None:
    assert checker.check("") == []
    assert checker.check("   \n ") == []


def test_score_counts_per_category() -> None:
    checker = Checker.load(RULES)
    result = score(
        checker,
        [
            ("Please calm down.", ["defensiveness"]),
            ("I'm sorry your parcel was late.", []),
            ("You should have read it.", ["blame"]),
            ("Sorry for the trouble.", []),  # labelled clean on purpose: a false flag
        ],
    )
    assert result["n"] == 4
    assert result["per_category"]["defensiveness"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert result["per_category"]["empty_apology"]["precision"] == 0.0
    assert result["false_flag_rate"] == 0.5
    assert result["errors"] == [{"text": "Sorry for the trouble.", "expected": [], "got": ["empty_apology"]}]
    with pytest.raises(ValueError):
        score(checker, [("x", ["rudeness"])])


# ---------------------------------------------------------------------------------------------------------------
# Loader errors: every message names the file and line and carries a fix.
# ---------------------------------------------------------------------------------------------------------------

GOOD_RULE = """\
rules:
  - id: test.calm
    kind: phrase
    category: defensiveness
    message: Do not tell customers to calm down.
    suggestion: Acknowledge the feeling.
    source: knowledge/001-customer-relationship-management.md
    patterns: ['calm down']
    examples:
      flag: ["Please calm down.", "Calm down, sir."]
      pass: ["Things will calm soon.", "I hear you."]
"""


def load_error(tmp_path: Path, text: str, name: str = "rules.yaml") -> DataFileError:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        Checker.load(tmp_path)
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_good_rule_file_loads(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(GOOD_RULE, encoding="utf-8")
    checker = Checker.load(tmp_path)
    assert [r.id for r in checker.rules] == ["test.calm"]
    assert checker.self_test() == []
    assert checker.rules[0].severity == "block"


def test_unknown_key_names_file_line_and_closest_key(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("    suggestion:", "    sugestion:")
    err = load_error(tmp_path, text)
    assert f"rules.yaml:{line_of(text, 'sugestion')}" in str(err)
    assert err.line == line_of(text, "sugestion")
    assert "unknown key 'sugestion'" in str(err)
    assert "did you mean 'suggestion'" in str(err)


def test_bad_regex_quotes_re_error(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("patterns: ['calm down']", "patterns: ['calm (down']")
    err = load_error(tmp_path, text)
    assert f"rules.yaml:{line_of(text, 'calm (down')}" in str(err)
    assert "missing ), unterminated subpattern" in str(err)
    assert err.fix


def test_unknown_kind_lists_valid_kinds(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("kind: phrase", "kind: phrases")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "kind: phrases")
    assert "unknown rule kind 'phrases'" in str(err)
    assert "phrase, apology, missing, name_unused, action_count, long_sentence" in str(err)


def test_missing_field_names_rule_line(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("    message: Do not tell customers to calm down.\n", "")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "- id: test.calm")
    assert "missing required key 'message'" in str(err)


def test_yaml_syntax_error_reports_line(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("    patterns: ['calm down']", "    patterns: ['calm down'\n    broken: [")
    err = load_error(tmp_path, text)
    assert "YAML syntax error" in str(err)
    assert err.line is not None and line_of(text, "patterns:") <= err.line <= len(text.splitlines()) + 1
    assert re.search(r"rules\.yaml:\d+", str(err))


def test_unknown_category_and_too_few_examples(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD_RULE.replace("category: defensiveness", "category: rudeness"))
    assert "invalid value for 'category'" in str(err) and "'blame'" in str(err)
    err = load_error(tmp_path, GOOD_RULE.replace('flag: ["Please calm down.", "Calm down, sir."]', 'flag: ["x"]'))
    assert "'flag' is too short" in str(err)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_RULE, encoding="utf-8")
    err = load_error(tmp_path, GOOD_RULE, name="b.yaml")
    assert "b.yaml:2" in str(err)
    assert "duplicate rule id 'test.calm'" in str(err) and "a.yaml:2" in str(err)


def test_unknown_word_list_and_duplicate_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD_RULE.replace("['calm down']", "['{CALM_WORDS}']"))
    assert "unknown word list {CALM_WORDS}" in str(err)
    text = GOOD_RULE.replace("    kind: phrase\n", "    kind: phrase\n    kind: phrase\n")
    err = load_error(tmp_path, text)
    assert "appears twice" in str(err) and err.line == 4


def test_unknown_source_document(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "knowledge").mkdir(parents=True)
    (root / "knowledge" / "001-customer-relationship-management.md").write_text("x", encoding="utf-8")
    rules_dir = root / "prompts" / "checker"
    rules_dir.mkdir(parents=True)
    text = GOOD_RULE.replace("001-customer-relationship-management", "001-customer-relations")
    err = load_error(rules_dir, text)
    assert "source 'knowledge/001-customer-relations.md' does not exist" in str(err)
    assert "knowledge/001-customer-relationship-management.md" in str(err)


def test_self_test_reports_rule_and_example(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(GOOD_RULE.replace("I hear you.", "Just calm down."), encoding="utf-8")
    problems = Checker.load(tmp_path).self_test()
    assert len(problems) == 1
    assert "test.calm" in problems[0] and "flags its own pass example 1" in problems[0]
    assert "Just calm down." in problems[0]


def test_rules_never_execute_yaml_tags(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD_RULE.replace("kind: phrase", "kind: !!python/object/apply:os.system ['true']"))
    assert "YAML" in str(err)


# The patterns kept between runs (Checker.load(keep=...)): each run is its own process, as each start of `copilot
# check` is, since a process compiles each pattern once.
_KEEP_RUN = """
import json, sys
from pathlib import Path
from copilot import checker
found = checker.Checker.load(Path(sys.argv[1]), keep=Path(sys.argv[2]))
texts = json.loads(sys.argv[3])
print(json.dumps({
    "restored": checker._RESTORED[0],
    "interned": len(checker._INTERNED),
    "findings": [[f.to_dict() for f in found.check(t)] for t in texts],
}))
"""
_KEEP_TEXTS = [
    "I'm sorry for any inconvenience, but you should have read the instructions. Our policy clearly states no refunds.",
    "Dana, I'm sorry your order arrived broken again. I've sent a replacement by express today and I'll call you "
    "Friday to confirm it arrived.",
    "As I already explained, that's not my department. The courier lost it, not us.",
]


def _keep_run(keep: Path, rules: Path = RULES) -> dict[str, object]:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _KEEP_RUN, str(rules), str(keep), json.dumps(_KEEP_TEXTS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_patterns_kept_between_runs_check_as_patterns_worked_out(checker: Checker, tmp_path: Path) -> None:
    fresh = [[f.to_dict() for f in checker.check(t)] for t in _KEEP_TEXTS]
    first = _keep_run(tmp_path)
    assert first["restored"] == 0 and first["findings"] == fresh
    [kept] = tmp_path.glob("patterns-*.marshal")
    second = _keep_run(tmp_path)
    # the second start compiles nothing it can restore: every pattern worked out the same way before
    assert second["restored"] == second["interned"] == first["interned"]
    assert second["findings"] == fresh
    assert kept.stat().st_size > 100_000


def test_a_damaged_or_foreign_keep_file_is_worked_out_again(checker: Checker, tmp_path: Path) -> None:
    import marshal

    fresh = [[f.to_dict() for f in checker.check(t)] for t in _KEEP_TEXTS]
    _keep_run(tmp_path)
    [kept] = tmp_path.glob("patterns-*.marshal")
    entries = marshal.loads(kept.read_bytes())
    # an entry whose compiled program is garbage and one whose shape is wrong: both worked out again
    source, (code, *rest) = next(iter(entries.items()))
    entries[source] = ((code[0], [1, 2, 3], *code[2:]), *rest)
    other = list(entries)[1]
    entries[other] = ("not", "an entry")
    kept.write_bytes(marshal.dumps(entries))
    again = _keep_run(tmp_path)
    assert again["findings"] == fresh and again["restored"] == again["interned"] - 2
    # a file that is not a marshal at all, and an older version's file, which is removed
    kept.write_bytes(b"\x00 not marshal")
    (tmp_path / "patterns-0123456789abcdef.marshal").write_bytes(b"old")
    assert _keep_run(tmp_path)["findings"] == fresh
    assert [p.name for p in tmp_path.glob("patterns-*.marshal")] == [kept.name]
    assert _keep_run(tmp_path)["restored"] == again["interned"]


def test_a_keep_folder_that_cannot_be_written_only_costs_the_next_start(checker: Checker, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    fresh = [[f.to_dict() for f in checker.check(t)] for t in _KEEP_TEXTS]
    assert _keep_run(blocked / "cache")["findings"] == fresh
