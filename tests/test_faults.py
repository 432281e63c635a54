"""Faults with the real model server: it dies mid-stream, and the next request brings it back."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from conftest import ROOT

from copilot.checker import Checker
from copilot.llm import openai_chat_model
from copilot.local_model import LocalModelServer
from copilot.pipeline import Copilot, DraftRequest, TokenEvent
from copilot.prompts import PromptLibrary
from copilot.retrieval import Retriever

pytestmark = pytest.mark.llm


def test_server_dying_mid_stream_is_reported_and_the_next_request_restarts_it(
    model_file: Path, retriever: Retriever, tmp_path: Path
) -> None:
    server = LocalModelServer(model_file, log_path=tmp_path / "llama.log")
    server.start()
    try:
        chat = openai_chat_model(model=server.model_name, base_url=server.base_url, api_key=None, timeout_s=30)
        copilot = Copilot(
            checker=Checker.load(ROOT / "prompts" / "checker"),
            prompts=PromptLibrary(ROOT / "prompts"),
            chat=chat,
            retriever=retriever,
            revise_rounds=0,
            before_model_call=server.ensure_running,
        )
        request = DraftRequest("My parcel is two weeks late and nobody answers my emails.")
        killed = threading.Event()
        result = None
        for event in copilot.draft_events(request):
            if isinstance(event, TokenEvent) and not killed.is_set():
                assert server.pid is not None
                os.kill(server.pid, signal.SIGKILL)  # the server dies after its first token
                killed.set()
            elif hasattr(event, "result"):
                result = event.result
        assert killed.is_set() and result is not None
        assert result.status == "model_unavailable"
        assert result.citations, "guidance still comes back"
        assert any("still work" in n for n in result.notices)

        again = copilot.draft(request)  # before_model_call restarts the dead server
        assert again.status in ("clean", "flagged") and again.draft
        assert server.is_alive()
    finally:
        server.stop()
