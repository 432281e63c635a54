"""The app's named API through gradio_client: /draft, /check, and a workshop that refuses callers without a login."""

from __future__ import annotations

import os

# gradio_client calls a hub API at import unless told it is offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from conftest import FIRST_DRAFT, MESSAGE, REVISION, SCRIPT, free_port, project_settings, wait_http  # noqa: E402

from copilot.assembly import build_copilot  # noqa: E402
from copilot.settings import Settings  # noqa: E402
from copilot.testing import fake_chat_model  # noqa: E402

USER, PASSWORD = "trainer", "correct horse"


def serve(settings: Settings, replies: list[str], with_index: bool = True) -> tuple[str, Any, Any]:
    """Build and launch the app on a free port; returns (url, demo, assembly)."""
    from copilot.ui import build_ui, launch

    assembly = build_copilot(settings, chat=fake_chat_model(replies), with_index=with_index)
    demo = build_ui(assembly)
    url = launch(demo, "127.0.0.1", free_port())
    wait_http(url, 60)
    return url, demo, assembly


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """The app with trainer credentials and a scripted model (flagged draft, then a clean revision)."""
    settings = project_settings(
        tmp_path_factory.mktemp("api"), COPILOT_WORKSHOP_USER=USER, COPILOT_WORKSHOP_PASSWORD=PASSWORD
    )
    url, demo, assembly = serve(settings, SCRIPT * 6)
    try:
        yield url, settings
    finally:
        demo.close()
        assembly.close()


@pytest.fixture(scope="module")
def client(app: tuple[str, Settings]) -> Any:
    from gradio_client import Client

    return Client(app[0], verbose=False)


def test_only_the_named_endpoints_are_public(client: Any) -> None:
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/draft", "/check", "/feedback", "/workshop_save"}


def test_draft_returns_the_result_with_citations(client: Any) -> None:
    result = client.predict(MESSAGE, "", "email", "neutral", api_name="/draft")
    assert result["status"] == "clean"
    assert result["draft"] == REVISION
    titles = {c["title"] for c in result["citations"]}
    assert titles and all(c["source"].startswith("knowledge/") for c in result["citations"])
    assert titles & {
        "Five Steps for Dealing with an Unhappy Customer",
        "Exceptional Customer Service and Retention",
        "Customer Relationship Management: Dealing with Difficult Customers",
        "Facing the Music: Turning Difficult Customers into Allies",
        "Dealing with Customers: Complaints and Calm",
    }
    assert [r["draft"] for r in result["revisions"]] == [FIRST_DRAFT]
    assert {f["category"] for f in result["revisions"][0]["findings"]} >= {"empty_apology", "blame"}


def test_draft_refuses_empty_input_with_a_sentence(client: Any) -> None:
    result = client.predict("   ", "", "email", "neutral", api_name="/draft")
    assert "empty" in result["error"] and result["fix"]


def test_check_returns_findings_with_exact_spans(client: Any) -> None:
    text = "Please calm down. You should have read the manual before ordering."
    answer = client.predict(text, "", api_name="/check")
    assert answer["blocking"] is True
    by_category = {f["category"]: f for f in answer["findings"]}
    assert text[by_category["defensiveness"]["start"] : by_category["defensiveness"]["end"]] == "calm down"
    blame = by_category["blame"]
    assert text[blame["start"] : blame["end"]] == blame["text"] and blame["text"].startswith("You should have")
    assert all(text[f["start"] : f["end"]] == f["text"] for f in answer["findings"])
    clean = client.predict(REVISION, "Dana", api_name="/check")
    assert clean["blocking"] is False


def test_workshop_save_needs_credentials(client: Any, app: tuple[str, Settings]) -> None:
    _, settings = app
    path = settings.prompts_dir / "draft.md"
    before = path.read_text(encoding="utf-8")
    edited = before.replace("Keep it short", "Keep it brief", 1)
    assert edited != before
    for user, password in (("", ""), (USER, ""), (USER, "wrong"), ("someone", PASSWORD), (USER.upper(), PASSWORD)):
        answer = client.predict(user, password, "draft.md", edited, api_name="/workshop_save")
        assert answer["saved"] is False, (user, password)
        assert "nothing was changed" in answer["message"]
        assert path.read_text(encoding="utf-8") == before
    assert not (settings.data_dir / "history").exists()

    broken = before.replace("{{message}}", "{{mesage}}", 1)
    answer = client.predict(USER, PASSWORD, "draft.md", broken, api_name="/workshop_save")
    assert answer["saved"] is False and "draft.md:" in answer["message"] and "mesage" in answer["message"]
    assert path.read_text(encoding="utf-8") == before

    answer = client.predict(USER, PASSWORD, "../pyproject.toml", "x", api_name="/workshop_save")
    assert answer["saved"] is False and "not an editable file" in answer["message"]

    answer = client.predict(USER, PASSWORD, "draft.md", edited, api_name="/workshop_save")
    assert answer["saved"] is True, answer
    assert path.read_text(encoding="utf-8") == edited


def test_workshop_is_off_without_configured_credentials(tmp_path: Path) -> None:
    from gradio_client import Client

    settings = project_settings(tmp_path)
    url, demo, assembly = serve(settings, [], with_index=False)
    try:
        path = settings.prompts_dir / "revise.md"
        before = path.read_text(encoding="utf-8")
        answer = Client(url, verbose=False).predict("", "", "revise.md", before + "\n", api_name="/workshop_save")
        assert answer["saved"] is False and "switched off" in answer["message"]
        assert path.read_text(encoding="utf-8") == before
    finally:
        demo.close()
        assembly.close()


def test_checks_do_not_wait_behind_a_draft(tmp_path: Path) -> None:
    """A slow draft holds the model; the agent's live checks still answer at once."""
    from gradio_client import Client

    from copilot.ui import build_ui, launch

    class SlowChat:
        """A ChatModel whose tokens arrive slowly, like a busy CPU model."""

        def __init__(self) -> None:
            self.inner = fake_chat_model(SCRIPT)
            self.name = "slow"

        def stream(self, messages: Any, **options: Any) -> Iterator[str]:
            for delta in self.inner.stream(messages, **options):
                time.sleep(0.1)
                yield delta

    settings = project_settings(tmp_path)
    assembly = build_copilot(settings, chat=SlowChat(), with_index=False)
    demo = build_ui(assembly)
    url = launch(demo, "127.0.0.1", free_port())
    try:
        wait_http(url, 60)
        drafter, checker = Client(url, verbose=False), Client(url, verbose=False)
        done = threading.Event()
        worker = threading.Thread(
            target=lambda: (drafter.predict(MESSAGE, "", "email", "neutral", api_name="/draft"), done.set())
        )
        worker.start()
        time.sleep(0.5)
        answer = checker.predict("Please calm down.", "", api_name="/check")
        assert answer["blocking"] is True
        assert not done.is_set(), "the check only answered after the draft had finished"
        worker.join(60)
        assert done.is_set()
    finally:
        demo.close()
        assembly.close()
