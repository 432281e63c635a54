"""Every rule's own examples are tests, and the labelled eval set must meet the quality goals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot.checker import BLOCKING_CATEGORIES, Checker, ExampleCase, Rule, rule_flags, score

ROOT = Path(__file__).resolve().parent.parent
CHECKER = Checker.load(ROOT / "prompts" / "checker")


def example_cases() -> list[Any]:
    cases: list[Any] = []
    for rule in CHECKER.rules:
        for expect, examples in (("flag", rule.flag_examples), ("pass", rule.pass_examples)):
            for i, example in enumerate(examples):
                cases.append(pytest.param(rule, example, expect == "flag", id=f"{rule.id}-{expect}-{i}"))
    return cases


@pytest.mark.parametrize(("rule", "example", "should_flag"), example_cases())
def test_rule_example(rule: Rule, example: ExampleCase, should_flag: bool) -> None:
    assert rule_flags(CHECKER, rule, example) == should_flag, (
        f"{rule.path.name}:{rule.line} {rule.id} should {'flag' if should_flag else 'pass'}: {example.text!r}"
    )


def test_every_rule_has_examples_and_an_existing_source() -> None:
    assert len(CHECKER.rules) >= 20
    for rule in CHECKER.rules:
        assert len(rule.flag_examples) >= 2 and len(rule.pass_examples) >= 2, rule.id
        assert (ROOT / rule.source).is_file(), rule.source
    assert {r.category for r in CHECKER.rules} >= {*BLOCKING_CATEGORIES, "coaching", "commitment"}


def load_eval(name: str) -> list[dict[str, Any]]:
    lines = (ROOT / "evals" / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


EVAL_SETS = (
    "checker.jsonl",
    "checker_holdout.jsonl",
    "checker_holdout2.jsonl",
    "checker_holdout3.jsonl",
    "checker_train.jsonl",
)


def test_eval_sets_are_well_formed() -> None:
    sets = {name: load_eval(name) for name in EVAL_SETS}
    main, train = sets["checker.jsonl"], sets["checker_train.jsonl"]
    assert len(main) >= 180 and len(train) >= 200
    assert all(len(sets[name]) >= 50 for name in EVAL_SETS)
    everything = [case for cases in sets.values() for case in cases]
    ids = [str(c["id"]) for c in everything]
    assert len(ids) == len(set(ids))
    texts = [str(c["text"]) for c in everything]
    # the training set and the newest holdout share no text with any other set
    for name in ("checker_train.jsonl", "checker_holdout3.jsonl"):
        own = {str(c["text"]) for c in sets[name]}
        others = {str(c["text"]) for other, cases in sets.items() if other != name for c in cases}
        assert not own & others, (name, sorted(own & others))
    for case in everything:
        assert set(case) == {"id", "text", "labels", "note"}
        assert set(case["labels"]) <= set(BLOCKING_CATEGORIES)
    for name in ("checker.jsonl", "checker_train.jsonl", "checker_holdout3.jsonl"):
        clean = sum(1 for c in sets[name] if not c["labels"])
        assert 0.25 <= clean / len(sets[name]) <= 0.6, name
    # the eval sets are written independently of the rules' own examples
    examples = {e.text for r in CHECKER.rules for e in (*r.flag_examples, *r.pass_examples)}
    assert not examples & set(texts)


def test_main_eval_meets_goals() -> None:
    cases = [(str(c["text"]), list(c["labels"])) for c in load_eval("checker.jsonl")]
    result = score(CHECKER, cases)
    for category, stats in result["per_category"].items():
        assert stats["f1"] >= 0.90, (category, stats, result["errors"][:10])
    assert result["false_flag_rate"] <= 0.05, result["errors"][:10]


# checker_holdout3.jsonl is deliberately absent: it is never tuned on, only reported.
@pytest.mark.parametrize(("name", "min_f1"), [("checker_holdout.jsonl", 0.95), ("checker_train.jsonl", 0.90)])
def test_other_eval_sets_meet_goals(name: str, min_f1: float) -> None:
    cases = [(str(c["text"]), list(c["labels"])) for c in load_eval(name)]
    result = score(CHECKER, cases)
    for category, stats in result["per_category"].items():
        assert stats["f1"] >= min_f1, (name, category, stats, result["errors"][:10])
    assert result["false_flag_rate"] <= 0.05, (name, result["errors"][:10])
