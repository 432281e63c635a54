"""Test doubles that ship with the package and implement the real interfaces (no mocks needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

from copilot.llm import ChatMessage, LangChainChatModel

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class RecordingChatModel(GenericFakeChatModel):
    """A langchain fake chat model that records every prompt and streams its scripted replies in order.

    A scripted item may also be an exception instance: that call raises it (to test error handling).
    """

    # Widened from GenericFakeChatModel so scripted exceptions pass validation.
    messages: Iterator[Any]
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # LangChainChatModel streams from a worker thread; the lock keeps the record ordered.
        with self._lock:
            self.calls.append(list(messages))
            self.call_kwargs.append(dict(kwargs))
            try:
                reply = next(self.messages)
            except StopIteration:
                raise RuntimeError(
                    f"RecordingChatModel ran out of scripted replies after {len(self.calls) - 1}"
                ) from None
        if isinstance(reply, BaseException):
            raise reply
        message = AIMessage(content=reply) if isinstance(reply, str) else reply
        # GenericFakeChatModel._stream calls this method, so each call is recorded exactly once.
        return ChatResult(generations=[ChatGeneration(message=message)])

    @property
    def chat_calls(self) -> list[list[ChatMessage]]:
        """The recorded prompts as copilot ChatMessages, for easy assertions."""
        return [
            [ChatMessage(role=_ROLES.get(m.type, m.type), content=str(m.content)) for m in call]  # type: ignore[arg-type]
            for call in self.calls
        ]

    @property
    def _llm_type(self) -> str:
        return "copilot-recording-fake"


def _scripted(replies: list[Any]) -> Iterator[Any]:
    for reply in replies:
        yield AIMessage(content=reply) if isinstance(reply, str) else reply


def fake_chat_model(replies: list[str], *, name: str = "fake-model", **options: Any) -> LangChainChatModel:
    """A LangChainChatModel over a RecordingChatModel that answers with `replies`, one per call.

    The recorder is `result.model`; its `calls` / `chat_calls` hold the prompts it was sent.
    """
    options.setdefault("backoff_s", 0.0)
    recorder = RecordingChatModel(messages=_scripted(list(replies)))
    return LangChainChatModel(recorder, name, **options)


class EchoChatModel(GenericFakeChatModel):
    """A fake that answers every prompt with a reply built from it, at a set pace, in any order of calls.

    Scripted replies can't serve concurrent callers (who gets which reply is a race); this fake answers from
    the prompt itself, so a test can check that each response belongs to its own request.
    """

    messages: Iterator[Any] = Field(default_factory=lambda: iter(()))
    template: str = (
        "Hello, I'm sorry your parcel {ref} is so late. I've chased it today and I'll email you on Friday to "
        "confirm it has arrived."
    )
    pattern: str = r"REF-[A-Za-z0-9]+"
    seconds_per_chunk: float = 0.0

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import re

        prompt = str(messages[-1].content)
        found = re.findall(self.pattern, prompt)
        reply = self.template.format(ref=found[-1] if found else "your request")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        import time

        for chunk in super()._stream(*args, **kwargs):
            if self.seconds_per_chunk:
                time.sleep(self.seconds_per_chunk)
            yield chunk

    @property
    def _llm_type(self) -> str:
        return "copilot-echo-fake"


def echo_chat_model(seconds_per_chunk: float = 0.0, *, name: str = "echo-model", **options: Any) -> LangChainChatModel:
    """A LangChainChatModel whose replies quote the request's REF-… token, streamed at a set pace."""
    options.setdefault("backoff_s", 0.0)
    return LangChainChatModel(EchoChatModel(seconds_per_chunk=seconds_per_chunk), name, **options)
