"""PII masking before calls to a model off this machine, restored in the draft."""

from __future__ import annotations

import pytest
from conftest import ROOT

from copilot.checker import Checker
from copilot.pipeline import Copilot, DraftRequest
from copilot.privacy import Masker, is_local_endpoint, should_redact
from copilot.prompts import PromptLibrary
from copilot.retrieval import Retriever
from copilot.testing import fake_chat_model

MESSAGE = (
    "I'm Dana (dana.smith@example.com, +44 7700 900123). My card 4111 1111 1111 1111 was charged twice "
    "for order 12345. Account number: AC-99812345. IBAN GB82 WEST 1234 5698 7654 32. "
    "Deliver to 221B Baker Street, Flat 2 please, it cost $20."
)
SECRETS = [
    "dana.smith@example.com",
    "+44 7700 900123",
    "4111 1111 1111 1111",
    "AC-99812345",
    "GB82 WEST 1234 5698 7654 32",
    "221B Baker Street",
]


def test_mask_hides_each_kind_and_restore_brings_it_back() -> None:
    masker = Masker()
    masked = masker.mask(MESSAGE)
    for secret in SECRETS:
        assert secret not in masked
    assert "order 12345" in masked and "$20" in masked, "order numbers and prices are not personal data"
    assert masker.restore(masked) == MESSAGE


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "1234 5678 9012 3456"])
def test_numbers_failing_the_card_checksum_are_not_cards(number: str) -> None:
    assert "[CARD_" not in Masker().mask(f"reference {number}")


def test_same_value_gets_the_same_placeholder_across_prompts() -> None:
    masker = Masker()
    first = masker.mask("mail me at a@b.co")
    second = masker.mask("I wrote to a@b.co and c@d.io")
    assert "[EMAIL_1]" in first and "[EMAIL_1]" in second and "[EMAIL_2]" in second


def test_auto_mode_masks_only_when_text_leaves_the_machine() -> None:
    assert should_redact("auto", None, embedded=False)  # OpenAI cloud
    assert should_redact("auto", "https://llm.example.com/v1", embedded=False)
    assert not should_redact("auto", "http://127.0.0.1:8080/v1", embedded=False)
    assert not should_redact("auto", None, embedded=True)
    assert should_redact("on", "http://localhost:1/v1", embedded=True)
    assert not should_redact("off", "https://api.openai.com/v1", embedded=False)
    assert is_local_endpoint("http://[::1]:8000/v1")


def test_pipeline_sends_no_pii_and_restores_it_in_the_draft(retriever: Retriever) -> None:
    reply = (
        "Dana, I'm sorry you were charged twice for order 12345. I've refunded the duplicate charge on "
        "[CARD_1] today and I'll email [EMAIL_1] on Friday to confirm it has arrived."
    )
    chat = fake_chat_model([reply])
    copilot = Copilot(
        checker=Checker.load(ROOT / "prompts" / "checker"),
        prompts=PromptLibrary(ROOT / "prompts"),
        chat=chat,
        retriever=retriever,
        redact_pii=True,
    )
    result = copilot.draft(DraftRequest(MESSAGE))
    sent = "\n".join(m.content for call in chat.model.chat_calls for m in call)  # type: ignore[attr-defined]
    for secret in SECRETS:
        assert secret not in sent
    assert "4111 1111 1111 1111" in result.draft and "dana.smith@example.com" in result.draft
    assert "[CARD_1]" not in result.draft


def test_logs_hold_no_customer_text_and_never_the_api_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import subprocess
    import sys

    from conftest import free_port

    env = dict(
        os.environ,
        COPILOT_DATA_DIR=str(tmp_path / "data"),
        OPENAI_API_KEY="sk-test-SECRETKEY123",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        COPILOT_LLM_TIMEOUT_S="5",
    )
    out = subprocess.run(
        [sys.executable, "-m", "copilot.cli", "draft", "My order for dana@example.com is late.", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 3, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["status"] == "model_unavailable" and result["citations"]
    assert "SECRETKEY123" not in out.stdout + out.stderr
    assert "dana@example.com" not in out.stderr
