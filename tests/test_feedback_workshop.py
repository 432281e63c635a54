"""FeedbackStore (durable JSON lines) and the workshop (validated saves, history, diff, restore, login)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import project_settings

from copilot.errors import CopilotError, DataFileError, InputError
from copilot.feedback import FeedbackStore, summary_markdown
from copilot.settings import Settings
from copilot.ui import apply_fix, highlight_value, md_escape
from copilot.workshop import Workshop, authorize, workshop_enabled

FINDINGS = [
    {
        "category": "blame",
        "severity": "block",
        "start": 0,
        "end": 9,
        "text": "You never",
        "rule": "blame.x",
        "message": "m",
        "suggestion": "s",
        "source": "knowledge/a.md",
    },
    {
        "category": "coaching",
        "severity": "hint",
        "start": 10,
        "end": 20,
        "text": "abc",
        "rule": "coaching.y",
        "message": "m",
        "suggestion": "s",
        "source": "knowledge/a.md",
    },
]


# ----- FeedbackStore -----------------------------------------------------------------------------------------


def test_feedback_round_trip(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb" / "feedback.jsonl")
    first = store.record("used_as_is", "Draft one.", "Draft one.", None, FINDINGS, "m1")
    second = store.record("rejected", "Draft two.", "My own reply.", "  too formal  ", [], "m2")
    assert first["edited"] is False and second["edited"] is True and second["reason"] == "too formal"
    records = store.load()
    assert [r["message_id"] for r in records] == ["m1", "m2"]
    assert records[0]["findings"][0] == {
        "category": "blame",
        "severity": "block",
        "rule": "blame.x",
        "start": 0,
        "end": 9,
        "text": "You never",
    }
    # Only the draft and the final reply are kept: nothing else of the conversation.
    assert set(records[1]) == {"time", "message_id", "verdict", "reason", "draft", "final_text", "edited", "findings"}
    assert store.path.read_text(encoding="utf-8").count("\n") == 2


def test_feedback_rejects_unknown_verdict_and_empty_draft(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl")
    with pytest.raises(InputError):
        store.record("loved_it", "d", "d", None, [], "m")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        store.record("used_as_is", " ", "", None, [], "m")
    assert not store.path.exists()


def test_feedback_skips_a_torn_last_line_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path)
    store.record("used_as_is", "A.", "A.", None, [], "m1")
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2024-01-01T00:00:00+00:00", "verdict": "rejec')  # a crash mid-write
    assert [r["message_id"] for r in store.load()] == ["m1"]
    store.record("rejected", "B.", "C.", "wrong facts", [], "m2")
    assert [r["message_id"] for r in store.load()] == ["m1", "m2"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["message_id"] == "m2"


def test_feedback_is_safe_across_threads(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl")
    long_text = "word " * 3000  # bigger than a pipe buffer, so interleaved writes would show

    def write(n: int) -> None:
        for i in range(10):
            store.record("used_after_edit", long_text, long_text + str(n), None, [], f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = store.load()
    assert len(records) == 40
    assert len(store.path.read_text(encoding="utf-8").splitlines()) == 40


def test_feedback_summary(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl")
    store.record("used_as_is", "a", "a", None, FINDINGS, "1")
    store.record("used_after_edit", "a", "b", None, FINDINGS[:1], "2")
    store.record("rejected", "a", "c", "too long", [], "3")
    store.record("rejected", "a", "d", "too long", [], "4")
    store.record("rejected", "a", "e", "<b>wrong</b> | facts", [], "5")
    summary = store.summary()
    assert summary["total"] == 5
    assert summary["verdicts"] == {"used_as_is": 1, "used_after_edit": 1, "rejected": 3}
    assert summary["rejection_reasons"][0] == ("too long", 2)
    assert summary["top_rules"][0] == ("blame.x", 2) and ("coaching.y", 1) in summary["top_rules"]
    assert summary["top_categories"][0] == ("blame", 2)
    (day,) = summary["per_day"]
    assert summary["per_day"][day] == {"used_as_is": 1, "used_after_edit": 1, "rejected": 3}
    text = summary_markdown(summary)
    assert "too long (2)" in text and "<b>" not in text and "&lt;b&gt;" in text
    assert summary_markdown(FeedbackStore(tmp_path / "none.jsonl").summary()) == "No feedback recorded yet."


# ----- workshop ----------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """A private copy of prompts/ and knowledge/ with trainer credentials."""
    return project_settings(tmp_path, COPILOT_WORKSHOP_USER="trainer", COPILOT_WORKSHOP_PASSWORD="pa ss")


def test_files_are_the_prompt_library(project: Settings) -> None:
    files = Workshop(project).files()
    assert files[:3] == ["draft.md", "revise.md", "customer_types.yaml"]
    assert "checker/blame.yaml" in files and "README.md" not in files
    # Synonyms are editable too (and compared on the retrieval suite); they come before the checker rules.
    assert files.index("synonyms.yaml") < files.index("checker/blame.yaml")
    with pytest.raises(CopilotError, match="not an editable file"):
        Workshop(project).read("../knowledge/000-exceptional-customer-service-and-retention.md")


def test_save_refuses_a_broken_prompt(project: Settings) -> None:
    workshop = Workshop(project)
    path = project.prompts_dir / "draft.md"
    before = path.read_text(encoding="utf-8")
    broken = before.replace("{{message}}", "{{mesage}}", 1)
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "{{mesage}}" in text)
    with pytest.raises(DataFileError) as caught:
        workshop.save("draft.md", broken)
    assert f"{path}:{line}:" in str(caught.value) and "mesage" in str(caught.value)
    assert caught.value.fix
    assert path.read_text(encoding="utf-8") == before
    assert workshop.history("draft.md") == []


def test_save_refuses_a_broken_rule_and_a_rule_failing_its_examples(project: Settings) -> None:
    workshop = Workshop(project)
    path = project.prompts_dir / "checker" / "blame.yaml"
    before = path.read_text(encoding="utf-8")
    typo = before.replace("kind: phrase", "kind: phrse", 1)
    line = next(n for n, text in enumerate(typo.splitlines(), 1) if "kind: phrse" in text)
    with pytest.raises(DataFileError) as caught:
        workshop.save("checker/blame.yaml", typo)
    assert f"{path}:{line}:" in str(caught.value) and "phrase" in str(caught.value)
    # Valid YAML whose rule no longer flags its own example: the self-test refuses it.
    weakened = before.replace(
        "you (?:really |clearly |simply )?(?:should", "you (?:really |clearly |simply )(?:should", 1
    )
    assert weakened != before
    with pytest.raises(DataFileError, match=r"blame\.yaml:\d+: .*does not flag its own flag example"):
        workshop.save("checker/blame.yaml", weakened)
    assert path.read_text(encoding="utf-8") == before


def test_save_refuses_broken_customer_types(project: Settings) -> None:
    workshop = Workshop(project)
    path = project.prompts_dir / "customer_types.yaml"
    before = path.read_text(encoding="utf-8")
    broken = before.replace("\nangry:", "\nangri:", 1)
    line = broken.splitlines().index("angri:") + 1
    with pytest.raises(DataFileError, match=f"customer_types.yaml:{line}: unknown customer type `angri`"):
        workshop.save("customer_types.yaml", broken)
    assert path.read_text(encoding="utf-8") == before


def test_save_history_diff_restore(project: Settings) -> None:
    reloaded: list[str] = []
    workshop = Workshop(project, on_saved=reloaded.append)
    path = project.prompts_dir / "draft.md"
    original = path.read_text(encoding="utf-8")
    edited = original.replace("Keep it short", "Keep it brief", 1)
    assert edited != original

    result = workshop.save("draft.md", edited)
    assert result.changed and path.read_text(encoding="utf-8") == edited and reloaded == ["draft.md"]
    assert workshop.save("draft.md", edited).changed is False
    (version,) = workshop.history("draft.md")
    assert version == result.previous_version
    stored = project.data_dir / "history" / "draft.md" / f"{version}.txt"
    assert stored.read_text(encoding="utf-8") == original
    assert not list(path.parent.glob(".draft.md.*"))  # no temporary files left behind

    diff = workshop.diff("draft.md", version)
    assert any(line.startswith("-") and "Keep it short" in line for line in diff.splitlines())
    assert any(line.startswith("+") and "Keep it brief" in line for line in diff.splitlines())

    restored = workshop.restore("draft.md", version)
    assert restored.changed and path.read_text(encoding="utf-8") == original
    assert len(workshop.history("draft.md")) == 2 and reloaded == ["draft.md", "draft.md"]
    with pytest.raises(CopilotError, match="No stored version"):
        workshop.diff("draft.md", "20000101T000000.000000Z")


def test_restore_of_a_version_that_no_longer_validates_is_refused(project: Settings) -> None:
    workshop = Workshop(project)
    path = project.prompts_dir / "revise.md"
    original = path.read_text(encoding="utf-8")
    # An old version that was valid then; hand-written into history to simulate a later schema change.
    folder = project.data_dir / "history" / "revise.md"
    folder.mkdir(parents=True)
    (folder / "20200101T000000.000000Z.txt").write_text("no front matter", encoding="utf-8")
    with pytest.raises(DataFileError, match="revise.md:1: must start with a front-matter"):
        workshop.restore("revise.md", "20200101T000000.000000Z")
    assert path.read_text(encoding="utf-8") == original


def test_preview_renders_the_unsaved_text(project: Settings) -> None:
    workshop = Workshop(project)
    text = workshop.read("draft.md").replace("# user\n", "# user\nPREVIEW MARKER\n", 1)
    preview = workshop.preview("draft", text)
    assert preview.startswith("# system\n") and "PREVIEW MARKER" in preview
    assert "THIRD time" in preview and "{{" not in preview
    with pytest.raises(DataFileError):
        workshop.preview("draft", "broken")


def test_authorize(project: Settings, settings: Settings) -> None:
    assert workshop_enabled(project) and authorize(project, "trainer", "pa ss")
    for user, password in (("trainer", "pa s"), ("trainer", ""), ("", "pa ss"), (None, None), ("Trainer", "pa ss")):
        assert not authorize(project, user, password)
    # Without configured credentials nobody is let in, not even with empty strings.
    assert not workshop_enabled(settings) and not authorize(settings, "", "") and not authorize(settings, None, None)


# ----- UI formatting helpers ---------------------------------------------------------------------------------


def test_apply_fix_replaces_the_span_with_the_example() -> None:
    text = "Hi Dana, I'm sorry for any inconvenience. We will fix it."
    finding = {
        "start": 13,
        "end": 40,
        "text": "sorry for any inconvenience",
        "severity": "block",
        "suggestion": 'Name the problem, e.g. "I\'m sorry your order arrived broken, Dana."',
    }
    assert text[13:40] == "sorry for any inconvenience"
    assert apply_fix(text, finding) == "Hi Dana, I'm sorry your order arrived broken, Dana. We will fix it."
    # A stale span (the text moved on) changes nothing.
    assert apply_fix("Something else entirely, longer than forty.", finding) == (
        "Something else entirely, longer than forty."
    )


def test_highlights_prefer_blocking_spans_and_escape_nothing_needed() -> None:
    text = "Please calm down now."
    findings = [
        {"category": "coaching", "severity": "hint", "start": 0, "end": 20},
        {"category": "defensiveness", "severity": "block", "start": 7, "end": 16},
    ]
    value = highlight_value(text, findings)
    assert value["entities"] == [{"entity": "defensiveness", "start": 7, "end": 16}]
    assert md_escape("<script>x</script> *a*") == "&lt;script&gt;x&lt;/script&gt; \\*a\\*"
