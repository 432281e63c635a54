"""The prompt library: every kind of trainer mistake is refused with the file, the line and a fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from copilot.errors import DataFileError
from copilot.prompts import PromptLibrary, check_library, parse_prompt
from copilot.settings import load_settings

# A fixed prompt, so these tests do not move when trainers edit the shipped one. Line numbers matter below.
DRAFT = """---
id: draft
description: Test draft prompt.
inputs: [guidance, customer_type, customer_name, issue, message, language]
model:
  temperature: 0.3
  max_tokens: 300
---
# system
Follow the company's service guidance:
never blame the customer.

# user
Guidance:
{{guidance}}

Customer type: {{customer_type}}. Customer name: {{customer_name}}
Their issue: {{issue}}
<<<
{{message}}
>>>
Write the reply now, in {{language}}.
"""


def _library(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder)
    return folder


def test_the_shipped_library_is_valid() -> None:
    assert check_library(ROOT / "prompts") == []
    library = PromptLibrary(ROOT / "prompts")
    assert set(library.prompts) == {"draft", "revise"}
    assert set(library.types) == {"angry", "abusive", "sarcastic", "chatty", "vague", "multi_issue", "polite"}


@pytest.mark.parametrize(
    ("edit", "message", "line", "fix"),
    [
        (lambda t: t.replace("description:", "descripton:"), "unknown key `descripton`", 3, "description"),
        (lambda t: t.replace("id: draft", "id: drafts"), "does not match the file name", 2, "id: draft"),
        (lambda t: t.replace("Their issue: {{issue}}", "Their issue: {{isue}}"), "{{isue}}", 18, "placeholders"),
        (lambda t: t.replace("inputs: [guidance,", "inputs: [guidance, mood,"), "input `mood`", 4, "available"),
        (
            lambda t: t.replace("Write the reply now,", "Write the reply now {{ oops,"),
            "not a placeholder",
            22,
            "{{name}}",
        ),
        (lambda t: t.replace("# user", "# usr"), "unknown section `# usr`", 13, "# user"),
        (lambda t: t.replace("max_tokens: 300", "max_tokens: lots"), "max_tokens", 7, "correct the value"),
        (
            lambda t: t.replace("  temperature: 0.3\n", "  temperature: 0.3\n  top_q: 1\n"),
            "unknown key `model.top_q`",
            7,
            "temperature",
        ),
        (lambda t: t.replace("---\n# system", "# system", 1), "never closed", 1, "---"),
        (lambda t: t.replace("inputs: [guidance,", "inputs: [guidance, signals,"), "never used", 4, "remove them"),
        (
            lambda t: t.replace("Follow the company's service guidance:", "Follow {{guidance}}:"),
            "not allowed in `# system`",
            None,
            "cache",
        ),
    ],
)
def test_broken_prompt_files_are_refused_precisely(edit, message: str, line: int | None, fix: str) -> None:  # type: ignore[no-untyped-def]
    path = ROOT / "prompts" / "draft.md"
    with pytest.raises(DataFileError) as info:
        parse_prompt(path, edit(DRAFT))
    error = info.value
    assert message in str(error) and "draft.md" in str(error)
    if line is not None:
        assert error.line == line, str(error)
    assert fix in (error.fix or "")


def test_literal_dollars_and_braces_render_untouched() -> None:
    text = DRAFT.replace("Write the reply now,", "Never offer more than $20 {or a voucher} without approval,")
    prompt = parse_prompt(ROOT / "prompts" / "draft.md", text)
    values = {name: f"<{name}>" for name in prompt.header.inputs}
    values["message"] = "I paid $20 for {express} and got {{issue}} nothing"
    _, user = prompt.render(values)
    assert "$20 {or a voucher}" in user
    assert "I paid $20 for {express} and got {{issue}} nothing" in user, "a value is never expanded again"


def test_a_broken_edit_keeps_the_last_good_library_serving(tmp_path: Path) -> None:
    folder = _library(tmp_path)
    library = PromptLibrary(folder)
    before = library.get("draft").system
    (folder / "draft.md").write_text(DRAFT.replace("inputs:", "inptus:"), encoding="utf-8")
    with pytest.raises(DataFileError, match="inptus"):
        library.reload()
    assert library.get("draft").system == before


def test_missing_files_and_stray_prompts_are_reported(tmp_path: Path) -> None:
    folder = _library(tmp_path)
    (folder / "revise.md").unlink()
    (folder / "greeting.md").write_text(DRAFT.replace("id: draft", "id: greeting"), encoding="utf-8")
    (folder / "customer_types.yaml").write_text("angry:\n  query: x\n  focus: y\n  extra: z\n", encoding="utf-8")
    problems = [str(p) for p in check_library(folder)]
    assert any("revise.md" in p and "is missing" in p for p in problems)
    assert any("greeting.md" in p for p in problems)
    assert any("customer_types.yaml" in p for p in problems)


def test_settings_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("top_k: 3\nrevise_round: 1\n", encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_settings({"COPILOT_SETTINGS": str(path)})
    assert info.value.line == 2 and "revise_rounds" in (info.value.fix or "")
    path.write_text("top_k: many\n", encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_settings({"COPILOT_SETTINGS": str(path)})
    assert info.value.line == 1 and "top_k" in str(info.value)


def test_environment_overrides_settings() -> None:
    settings = load_settings({"COPILOT_TOP_K": "5", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "COPILOT_MODEL": "m"})
    assert settings.top_k == 5 and settings.openai_base_url == "http://127.0.0.1:9/v1" and settings.model == "m"
    assert not settings.uses_embedded_model
    assert load_settings({}).uses_embedded_model


@pytest.mark.parametrize("name", ["draft", "revise"])
def test_every_prompt_previews_with_the_sample_message(name: str) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "copilot.cli", "prompts", "show", name, "--example"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-1000:]
    assert "--- system" in out.stdout and "--- user" in out.stdout and "{{" not in out.stdout
