"""Comparing an edited prompt or rule file with the saved one on the evals, before saving (nothing is written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import project_settings

from copilot.assembly import Assembly
from copilot.checker import Checker
from copilot.embeddings import MiniLMEmbeddings
from copilot.errors import DataFileError
from copilot.pipeline import Copilot
from copilot.prompts import PromptLibrary
from copilot.settings import Settings
from copilot.testing import echo_chat_model
from copilot.workshop import Workshop, suite_for

RULE = "blame.customer-should-have"


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """A private copy of prompts/ and knowledge/ (the evals are the repo's)."""
    return project_settings(tmp_path)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under a folder with its bytes and modification time, to prove nothing was written."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def without_rule(text: str, rule_id: str) -> str:
    """A checker rule file's text with one rule (from its `- id:` line to the next rule) cut out."""
    start = text.index(f"  - id: {rule_id}\n")
    end = text.index("  - id: ", start + 1)
    return text[:start] + text[end:]


def assembly_for(settings: Settings, **parts: object) -> Assembly:
    """A real Assembly over the settings' prompts with the given chat model, store and embedder."""
    copilot = Copilot(
        checker=Checker.load(settings.prompts_dir / "checker"),
        prompts=PromptLibrary(settings.prompts_dir),
        chat=parts.pop("chat", None),  # type: ignore[arg-type]
        retriever=None,
    )
    return Assembly(settings=settings, copilot=copilot, **parts)  # type: ignore[arg-type]


def test_suite_for_each_kind_of_file() -> None:
    assert suite_for("checker/blame.yaml") == suite_for("checker/vocabulary.yaml") == "checker"
    assert suite_for("synonyms.yaml") == "retrieval"
    assert suite_for("draft.md") == suite_for("revise.md") == suite_for("customer_types.yaml") == "drafts"


def test_removing_a_checker_rule_shows_lower_recall_and_writes_nothing(project: Settings) -> None:
    workshop = Workshop(project)
    path = project.prompts_dir / "checker" / "blame.yaml"
    saved_text = path.read_text(encoding="utf-8")
    edited_text = without_rule(saved_text, RULE)
    assert RULE not in edited_text and "blame.customer-failed" in edited_text
    before = snapshot(project.prompts_dir)

    comparison = workshop.compare("checker/blame.yaml", edited_text)

    assert comparison.ran and comparison.suite == "checker"
    assert comparison.edited is not None and comparison.saved is not None
    (edited,) = comparison.edited.suites
    (saved,) = comparison.saved.suites
    assert edited.name == saved.name == "checker"
    assert edited.metrics["blame.recall"] < saved.metrics["blame.recall"]
    assert edited.metrics["blame.f1"] < saved.metrics["blame.f1"]
    # The other categories do not depend on the blame rules.
    assert edited.metrics["empty_apology.f1"] == saved.metrics["empty_apology.f1"]
    # The side-by-side table names both versions and shows the drop.
    table = comparison.markdown()
    assert "| metric | edited | saved | change |" in table and "compared with `saved`" in table
    row = next(line for line in table.splitlines() if line.startswith("| blame.recall |"))
    assert f"{edited.metrics['blame.recall'] - saved.metrics['blame.recall']:+.3f}" in row and "-0." in row
    assert comparison.verdict.startswith(("✅", "❌")) and "checker threshold" in comparison.verdict
    moved = {metric: (before, after) for _, metric, before, after in comparison.changes()}
    assert moved["blame.recall"] == (saved.metrics["blame.recall"], edited.metrics["blame.recall"])
    assert "empty_apology.f1" not in moved and "cases" not in moved
    # Comparing saves nothing: the prompts folder is byte-for-byte (and mtime) unchanged, no history, no reports.
    assert snapshot(project.prompts_dir) == before
    assert workshop.history("checker/blame.yaml") == []
    assert not (project.data_dir / "history").exists() and not project.reports_dir.exists()


def test_verdict_names_the_thresholds_the_edit_would_fail(project: Settings) -> None:
    workshop = Workshop(project)
    # A valid but over-eager rule that calls every sentence with "you" in it blame: blame precision, and with it
    # the blame F1, falls well below its 0.90 threshold. (Dropping the blame patterns would not do it: the learned
    # rules catch most blame on their own.)
    eager = """
  - id: blame.every-you
    kind: phrase
    category: blame
    message: Too eager on purpose.
    suggestion: Say it another way.
    source: knowledge/002-five-steps-unhappy-customer.md
    patterns: ['you']
    examples:
      flag: ["you broke it", "you did this"]
      pass: ["The parcel is here.", "It arrived today."]
"""
    text = workshop.read("checker/blame.yaml").rstrip("\n") + "\n" + eager
    comparison = workshop.compare("checker/blame.yaml", text)
    assert comparison.verdict.startswith("❌ The edited version would fail")
    assert "blame.f1" in comparison.verdict and "FAILS by" in comparison.verdict
    assert comparison.saved is not None and comparison.saved.passed
    assert comparison.edited is not None and not comparison.edited.passed


def test_compare_refuses_an_invalid_edit_with_the_file_and_line(project: Settings) -> None:
    workshop = Workshop(project)
    path = project.prompts_dir / "checker" / "blame.yaml"
    typo = path.read_text(encoding="utf-8").replace("kind: phrase", "kind: phrse", 1)
    line = next(n for n, text in enumerate(typo.splitlines(), 1) if "kind: phrse" in text)
    before = snapshot(project.prompts_dir)
    with pytest.raises(DataFileError) as caught:
        workshop.compare("checker/blame.yaml", typo)
    # The same message a save gives: the real file (not the temporary copy) and the line.
    assert f"{path}:{line}:" in str(caught.value) and "phrase" in str(caught.value)
    with pytest.raises(DataFileError) as saved_error:
        workshop.save("checker/blame.yaml", typo)
    assert str(caught.value) == str(saved_error.value)
    assert snapshot(project.prompts_dir) == before
    # A broken prompt is refused the same way, before any model would be asked.
    broken = workshop.read("draft.md").replace("{{message}}", "{{mesage}}", 1)
    with pytest.raises(DataFileError, match=r"draft\.md:\d+: .*mesage"):
        workshop.compare("draft.md", broken)


def test_a_prompt_without_a_model_gets_the_preview_diff(project: Settings) -> None:
    workshop = Workshop(project)
    edited = workshop.read("draft.md").replace("Keep it short", "Keep it brief", 1)
    comparison = workshop.compare("draft.md", edited, assembly_for(project))
    assert not comparison.ran and comparison.suite == "drafts"
    assert "needs the model" in comparison.verdict and "needs the model" in comparison.note
    diff = comparison.preview_diff.splitlines()
    assert any(line.startswith("-") and "Keep it short" in line for line in diff)
    assert any(line.startswith("+") and "Keep it brief" in line for line in diff)
    assert "{{" not in comparison.preview_diff
    # The revise prompt renders too (with a sample blocked sentence).
    revise = workshop.read("revise.md").replace("Output only", "Give only", 1)
    revise_diff = workshop.compare("revise.md", revise).preview_diff.splitlines()
    assert any(line.startswith("-") and "Output only" in line for line in revise_diff)
    assert any(line.startswith("+") and "Give only" in line for line in revise_diff)


def test_prompts_are_compared_on_the_drafts_suite_with_a_model(project: Settings) -> None:
    workshop = Workshop(project)
    edited = workshop.read("draft.md").replace("Keep it short", "Keep it brief", 1)
    before = snapshot(project.prompts_dir)
    comparison = workshop.compare("draft.md", edited, assembly_for(project, chat=echo_chat_model()))
    assert comparison.ran and comparison.edited is not None and comparison.saved is not None
    for report in (comparison.edited, comparison.saved):
        (suite,) = report.suites
        assert suite.name == "drafts" and suite.metrics["cases"] == 3.0
    assert [comparison.edited.label, comparison.saved.label] == ["edited", "saved"]
    assert "first_draft_blocking_per_draft" in comparison.markdown()
    assert snapshot(project.prompts_dir) == before


def test_synonyms_are_compared_on_the_retrieval_suite(
    project: Settings, indexed: object, embedder: MiniLMEmbeddings
) -> None:
    workshop = Workshop(project)
    assert "synonyms.yaml" in workshop.files()
    assembly = assembly_for(project, store=indexed, embedder=embedder)
    comparison = workshop.compare("synonyms.yaml", "groups:\n  - [refund, money back]\n", assembly)
    assert comparison.ran and comparison.edited is not None and comparison.saved is not None
    (edited,) = comparison.edited.suites
    (saved,) = comparison.saved.suites
    assert edited.name == saved.name == "retrieval" and edited.metrics["cases"] == saved.metrics["cases"] > 0
    assert "evidence_at_3" in comparison.markdown()
    with pytest.raises(DataFileError, match=r"synonyms\.yaml: must have `groups:`"):
        workshop.compare("synonyms.yaml", "groups: [alone]\n", assembly)
