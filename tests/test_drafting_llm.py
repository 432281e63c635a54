"""The whole pipeline against the real llama.cpp server with the packaged model."""

from __future__ import annotations

import pytest
from conftest import ROOT

from copilot.analysis import detect_language
from copilot.checker import Checker
from copilot.llm import openai_chat_model
from copilot.local_model import LocalModelServer
from copilot.pipeline import Copilot, DraftRequest
from copilot.prompts import PromptLibrary
from copilot.retrieval import Retriever

pytestmark = pytest.mark.llm


def _copilot(server: LocalModelServer, retriever: Retriever) -> Copilot:
    chat = openai_chat_model(model=server.model_name, base_url=server.base_url, api_key=None, timeout_s=120)
    return Copilot(
        checker=Checker.load(ROOT / "prompts" / "checker"),
        prompts=PromptLibrary(ROOT / "prompts"),
        chat=chat,
        retriever=retriever,
        revise_rounds=1,
        max_tokens=220,
    )


def test_real_model_drafts_a_grounded_checked_reply(local_server: LocalModelServer, retriever: Retriever) -> None:
    copilot = _copilot(local_server, retriever)
    result = copilot.draft(
        DraftRequest("This is the third time my order arrived broken. I want my money back NOW.", customer_name="Dana")
    )
    assert result.status in ("clean", "flagged"), result.notices
    assert len(result.draft.split()) >= 15
    assert detect_language(result.draft) == "en"
    assert result.citations and all(c.source.startswith("knowledge/") for c in result.citations)
    assert result.model == local_server.model_name
    assert result.timings["first_token"] > 0 and result.timings["total"] >= result.timings["llm"]
    if result.status == "flagged":  # never silently bad: what remains is marked
        assert any("blocking finding" in n for n in result.notices)


def test_real_model_replies_in_the_customers_language(local_server: LocalModelServer, retriever: Retriever) -> None:
    copilot = _copilot(local_server, retriever)
    result = copilot.draft(
        DraftRequest(
            "Hola, mi pedido llegó roto por segunda vez y nadie me responde. Quiero una solución hoy, por favor."
        )
    )
    assert result.analysis.language == "es"
    assert result.draft and detect_language(result.draft) == "es", result.draft
