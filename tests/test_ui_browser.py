"""The web app in a real headless Chromium: draft, stream, findings, fix, feedback, workshop, escaping."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import FIRST_DRAFT, MESSAGE, REVISION, ROOT, SCRIPT, free_port, project_settings, wait_http

from copilot.assembly import build_copilot
from copilot.llm import ChatMessage, ChatModel
from copilot.settings import Settings
from copilot.testing import fake_chat_model

pytestmark = pytest.mark.browser

HOSTILE = "<script>alert(1)</script><b>x</b> My parcel never arrived and nobody answers the phone."
# The marked spans of the main HighlightedText as [text, style] pairs; defensiveness is drawn in orange.
MARKED = (
    "[...document.querySelectorAll('#highlights .token.highlighted')]"
    ".map(e => [e.innerText.trim(), e.getAttribute('style') || ''])"
)
ORANGE = "251, 146, 60"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


class SlowChat:
    """A real ChatModel wrapper that paces the scripted tokens, so the browser can see the draft stream in."""

    def __init__(self, inner: ChatModel, delay_s: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.delay_s = delay_s

    def stream(self, messages: Sequence[ChatMessage], **options: Any) -> Iterator[str]:
        """Yield the inner model's deltas, one every delay_s."""
        for delta in self.inner.stream(messages, **options):
            time.sleep(self.delay_s)
            yield delta


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """The app with a scripted model (flagged first draft, clean revision) served on a free port."""
    from copilot.ui import build_ui, launch

    settings = project_settings(
        tmp_path_factory.mktemp("ui"), COPILOT_WORKSHOP_USER="trainer", COPILOT_WORKSHOP_PASSWORD="s3cret pass"
    )
    chat = SlowChat(fake_chat_model(SCRIPT * 6), delay_s=0.04)
    assembly = build_copilot(settings, chat=chat)
    demo = build_ui(assembly)
    url = launch(demo, "127.0.0.1", free_port())
    wait_http(url, 60)
    try:
        yield url, settings
    finally:
        demo.close()
        assembly.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (Playwright's own browser download does not work here)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def textarea(page: Any, elem_id: str) -> Any:
    """The text field inside a gr.Textbox with this elem_id (a textarea, or an input for passwords)."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def wait_value(page: Any, elem_id: str, predicate: str, timeout: float = 30_000) -> None:
    """Wait until the textbox's value satisfies a JS predicate over `v`."""
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('#{elem_id} textarea'); if (!el) return false; "
        f"const v = el.value; return {predicate}; }}",
        timeout=timeout,
    )


def choose(page: Any, elem_id: str, text: str) -> None:
    """Pick the option containing `text` from a gr.Dropdown."""
    page.locator(f"#{elem_id} input").first.click()
    page.locator("ul.options li, [role=option]").filter(has_text=text).first.click()


def test_agent_desk_and_workshop(app: tuple[str, Settings], browser: Any) -> None:
    url, settings = app
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    textarea(page, "message").wait_for(timeout=30_000)

    # Record every value the draft box takes, to see the draft arrive in pieces rather than all at once.
    page.evaluate("""() => { window.__seen = []; setInterval(() => {
        const el = document.querySelector('#draft textarea');
        if (el && el.value && window.__seen[window.__seen.length - 1] !== el.value) window.__seen.push(el.value);
    }, 15); }""")
    textarea(page, "message").fill(MESSAGE)
    page.locator("#draft-button").click()
    wait_value(page, "draft", "v.includes('I can see why')")
    page.wait_for_function("() => document.querySelector('#stage').innerText.includes('clean')", timeout=30_000)
    seen: list[str] = page.evaluate("() => window.__seen")
    partial_first = [v for v in seen if FIRST_DRAFT.startswith(v) and len(v) < len(FIRST_DRAFT)]
    assert partial_first, f"the first draft never showed partially (seen: {seen[:5]})"
    assert REVISION in seen, "the revised draft replaces the first one in the box"

    # The first round's findings are marked on its text in the "Earlier rounds" accordion.
    page.locator("#revisions-accordion").get_by_text("Earlier rounds").click()
    round0 = page.locator("#revision-0")
    round0.wait_for(state="visible", timeout=10_000)
    round0_text = round0.inner_text().lower()
    assert "sorry for any inconvenience" in round0_text
    assert "empty apology" in round0_text and "blame" in round0_text
    assert "Round 0" in page.locator("#revisions").inner_text()

    citations = page.locator("#citations").inner_text()
    titles = [
        line.split('"')[1]
        for p in (ROOT / "knowledge").glob("*.md")
        for line in p.read_text(encoding="utf-8").splitlines()[:3]
        if line.startswith("title:")
    ]
    assert any(title in citations for title in titles), citations[:300]
    assert "No findings" in page.locator("#findings").inner_text()
    page.screenshot(path=str(SHOTS / "desk-drafted.png"), full_page=True)

    # The agent edits the draft: the checker answers as they type.
    box = textarea(page, "draft")
    box.click()
    box.press("End")
    box.press_sequentially(" Please calm down.", delay=20)
    page.wait_for_function(
        f"() => {MARKED}.some(([t, c]) => t === 'calm down' && c.includes({ORANGE!r}))", timeout=15_000
    )
    page.wait_for_function("() => document.querySelector('#findings').innerText.includes('calm down')", timeout=15_000)
    page.screenshot(path=str(SHOTS / "desk-live-check.png"), full_page=True)

    # One click applies the suggested phrasing and re-checks.
    choose(page, "fix-choice", "calm down")
    page.locator("#apply-fix").click()
    wait_value(page, "draft", "!v.includes('calm down')", timeout=15_000)
    fixed = textarea(page, "draft").input_value()
    assert "I can hear how stressful this has been" in fixed
    page.wait_for_function(f"() => !{MARKED}.some(([t, c]) => c.includes({ORANGE!r}))", timeout=15_000)

    # Feedback lands in the feedback file with the text the agent actually kept.
    page.locator("#fb-edited").click()
    page.wait_for_function(
        "() => document.querySelector('#feedback-status').innerText.includes('recorded')", timeout=15_000
    )
    records = [json.loads(line) for line in settings.feedback_file.read_text(encoding="utf-8").splitlines()]
    assert records[-1]["verdict"] == "used_after_edit"
    assert records[-1]["final_text"] == fixed
    assert records[-1]["draft"] == REVISION
    assert MESSAGE not in json.dumps(records[-1], ensure_ascii=False)

    # The workshop: log in, break a prompt, see it refused, the file unchanged.
    page.get_by_role("tab", name="Trainer's workshop").click()
    textarea(page, "ws-user").fill("trainer")
    textarea(page, "ws-password").fill("s3cret pass")
    page.locator("#ws-login").click()
    page.locator("#ws-area").wait_for(state="visible", timeout=15_000)
    choose(page, "ws-file", "draft.md")
    wait_value(page, "ws-editor", "v.startsWith('---')", timeout=15_000)
    prompt_path = settings.prompts_dir / "draft.md"
    before = prompt_path.read_text(encoding="utf-8")
    broken = before.replace("{{message}}", "{{mesage}}", 1)
    assert broken != before
    textarea(page, "ws-editor").fill(broken)
    page.locator("#ws-save").click()
    page.wait_for_function("() => document.querySelector('#ws-status').innerText.includes('Not saved')", timeout=30_000)
    status = page.locator("#ws-status").inner_text()
    assert "draft.md:" in status and "mesage" in status
    assert prompt_path.read_text(encoding="utf-8") == before
    page.screenshot(path=str(SHOTS / "workshop-refused.png"), full_page=True)

    # Markup in a customer message is shown as text: no script runs, no tag is rendered.
    page.get_by_role("tab", name="Agent's desk").click()
    textarea(page, "message").fill(HOSTILE)
    page.locator("#draft-button").click()
    page.wait_for_function("() => document.querySelector('#stage').innerText.includes('<script>')", timeout=30_000)
    stage = page.locator("#stage")
    assert "<b>x</b>" in stage.inner_text()
    assert stage.locator("b, script").count() == 0
    assert page.locator("#message textarea").input_value() == HOSTILE
    time.sleep(0.5)
    assert dialogs == []
    page.screenshot(path=str(SHOTS / "desk-markup-as-text.png"), full_page=True)
    page.close()


def test_workshop_evals_and_compare(app: tuple[str, Settings], browser: Any) -> None:
    """A trainer runs the evals and sees the charts, then compares an edited rule file with the saved one."""
    url, settings = app
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url)
    textarea(page, "message").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Trainer's workshop").click()
    # Behind the login: nothing of the workshop shows before it.
    assert not page.locator("#ws-evals").is_visible()
    textarea(page, "ws-user").fill("trainer")
    textarea(page, "ws-password").fill("s3cret pass")
    page.locator("#ws-login").click()
    page.locator("#ws-area").wait_for(state="visible", timeout=15_000)

    # Run the evals: the report and its charts appear in the app and are written to the reports folder.
    page.locator("#ws-evals-accordion").get_by_text("Evals").first.click()
    page.locator("#ws-evals").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#ws-evals-charts img').length >= 2"
        " && [...document.querySelectorAll('#ws-evals-charts img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=120_000,
    )
    report = page.locator("#ws-evals-report").inner_text()
    assert "Eval report" in report and "checker: pass" in report and "retrieval:" in report
    (folder,) = [p for p in settings.reports_dir.iterdir() if p.is_dir()]
    assert {"report.md", "report.json", "checker.png", "retrieval.png"} <= {p.name for p in folder.iterdir()}

    # Compare an edited rule file with the saved one: the side-by-side table and a verdict, nothing saved.
    choose(page, "ws-file", "checker/blame.yaml")
    wait_value(page, "ws-editor", "v.includes('blame.customer-should-have')", timeout=15_000)
    rules_path = settings.prompts_dir / "checker" / "blame.yaml"
    saved_rules = rules_path.read_text(encoding="utf-8")
    start = saved_rules.index("  - id: blame.customer-should-have\n")
    edited_rules = saved_rules[:start] + saved_rules[saved_rules.index("  - id: ", start + 1) :]
    textarea(page, "ws-editor").fill(edited_rules)
    page.locator("#ws-compare").click()
    page.wait_for_function(
        "() => document.querySelector('#ws-compare-report').innerText.includes('blame.recall')", timeout=60_000
    )
    compared = page.locator("#ws-compare-report")
    assert "Nothing was saved" in compared.inner_text() and "Changed: blame.recall" in compared.inner_text()
    headers = compared.locator("th").all_inner_texts()
    assert [h.strip() for h in headers[:4]] == ["metric", "edited", "saved", "change"]
    recall = compared.locator("tr", has_text="blame.recall").first.locator("td").all_inner_texts()
    assert float(recall[1]) < float(recall[2]) and recall[3].strip().startswith("-")
    assert rules_path.read_text(encoding="utf-8") == saved_rules
    compared.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "workshop-compare.png"), full_page=True)
    page.close()


def test_model_down_banner_and_empty_input(tmp_path: Path, browser: Any) -> None:
    """Without a model the desk says so and still shows guidance; empty input gets a sentence, not a trace."""
    from copilot.ui import build_ui, launch

    settings = project_settings(tmp_path)
    assembly = build_copilot(settings, with_model=False)
    demo = build_ui(assembly)
    url = launch(demo, "127.0.0.1", free_port())
    try:
        wait_http(url, 60)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        textarea(page, "message").wait_for(timeout=30_000)
        assert "The model isn't answering" in page.locator("#startup-banner").inner_text()
        page.locator("#draft-button").click()
        page.wait_for_function("() => document.querySelector('#banner').innerText.includes('empty')", timeout=15_000)
        assert "Traceback" not in page.content()
        textarea(page, "message").fill(MESSAGE)
        page.locator("#draft-button").click()
        page.wait_for_function(
            "() => document.querySelector('#banner').innerText.includes(\"isn't answering\")", timeout=30_000
        )
        assert "write the reply yourself" in page.locator("#banner").inner_text()
        page.wait_for_function("() => document.querySelector('#citations').innerText.length > 40", timeout=15_000)
        assert "Workshop is switched off" in page.content() or "workshop is switched off" in page.content()
        page.screenshot(path=str(SHOTS / "desk-model-down.png"), full_page=True)
        page.close()
    finally:
        demo.close()
        assembly.close()
