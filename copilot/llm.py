"""The one door to language models: a small streaming interface over langchain chat models.

Every model call in the app goes through `ChatModel.stream`. Production wraps langchain-openai's
`ChatOpenAI` (so any OpenAI-compatible endpoint works, the embedded llama.cpp server included);
tests wrap langchain_core's fake chat models (see `copilot.testing`). Whatever goes wrong below
this line surfaces as a `ModelUnavailableError` with a message and a fix, never a raw traceback.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from copilot.errors import ModelUnavailableError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

LOCAL_PLACEHOLDER_KEY = "sk-local"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
_START_FIX = "start it with `copilot serve-model` or set OPENAI_BASE_URL"


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChatModel(Protocol):
    """What the drafting and revising code needs from a language model."""

    name: str

    def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int, seed: int | None = None
    ) -> Iterator[str]:
        """Yield the reply as text deltas."""
        ...


class _Retryable(Exception):
    """Internal: a failure worth another attempt, if nothing was streamed yet."""


class _FirstTokenTimeout(_Retryable):
    pass


class _EmptyResponse(_Retryable):
    pass


class _TotalTimeout(Exception):
    pass


class _StreamPump:
    """Runs one langchain stream in a daemon thread so the caller can wait on it with a timeout.

    A blocked socket read cannot be interrupted from outside; the pump lets our deadlines fire anyway,
    and the httpx read timeout eventually frees the abandoned thread.
    """

    def __init__(self, model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(model, messages, kwargs), name="copilot-llm-stream", daemon=True
        )
        self._thread.start()

    def _run(self, model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]) -> None:
        chunks = None
        try:
            chunks = model.stream(messages, **kwargs)
            for chunk in chunks:
                if self._stop.is_set():
                    break
                self._queue.put(("chunk", chunk))
            self._queue.put(("end", None))
        except BaseException as exc:  # handed to the consumer thread, which maps it
            self._queue.put(("error", exc))
        finally:
            # Closing the generator closes the HTTP response, so the server stops generating for nobody.
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def get(self, timeout: float) -> tuple[str, Any]:
        """Next event, or raise queue.Empty after `timeout` seconds."""
        return self._queue.get(timeout=max(timeout, 0.0))

    def cancel(self) -> None:
        """Ask the worker to stop after its current chunk."""
        self._stop.set()


def _normalize(exc: Exception) -> Exception:
    """Recognise langchain's way of saying the stream carried nothing."""
    if isinstance(exc, ValueError) and "No generation chunks" in str(exc):
        return _EmptyResponse()
    return exc


def _chunk_text(chunk: Any) -> str:
    """The text carried by one streamed chunk; non-text parts (tool calls, metadata) are skipped."""
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    return ""


def _to_langchain(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    converted: list[BaseMessage] = []
    for message in messages:
        if message.role not in kinds:
            raise ValueError(f"unknown chat role {message.role!r}")
        converted.append(kinds[message.role](content=message.content))
    return converted


class LangChainChatModel:
    """Adapts any langchain_core BaseChatModel (ChatOpenAI in production, langchain_core fake chat models in tests)."""

    def __init__(
        self,
        model: BaseChatModel,
        name: str,
        *,
        first_token_timeout_s: float = 60.0,
        total_timeout_s: float = 180.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        endpoint: str | None = None,
        legacy_max_tokens: bool = False,
    ) -> None:
        self.model = model
        self.name = name
        self.first_token_timeout_s = first_token_timeout_s
        self.total_timeout_s = total_timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.endpoint = endpoint
        self.legacy_max_tokens = legacy_max_tokens
        # Strings that must never appear in an error message (the API key).
        self._secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"LangChainChatModel(name={self.name!r}, endpoint={self.endpoint!r})"

    def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int, seed: int | None = None
    ) -> Iterator[str]:
        """Yield the reply as text deltas; retry only before the first delta; raise ModelUnavailableError."""
        lc_messages = _to_langchain(messages)
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            kwargs["seed"] = seed
        if self.legacy_max_tokens:
            kwargs["extra_body"] = {"max_tokens": max_tokens}
        deadline = time.monotonic() + self.total_timeout_s
        attempt = 0
        while True:
            pump = _StreamPump(self.model, lc_messages, kwargs)
            started = False
            try:
                for piece in self._pieces(pump, deadline):
                    started = True
                    yield piece
                return
            except Exception as raw:
                exc = _normalize(raw)
                retryable = self._is_retryable(exc)
                error = self._to_user_error(exc)
                wait = self.backoff_s * (2**attempt)
                if started or not retryable or attempt >= self.max_retries or time.monotonic() + wait >= deadline:
                    raise error from raw
            finally:
                pump.cancel()
            time.sleep(wait)
            attempt += 1

    def _pieces(self, pump: _StreamPump, deadline: float) -> Iterator[str]:
        """Text deltas from one attempt, with the first-token and total deadlines enforced."""
        first_deadline = min(deadline, time.monotonic() + self.first_token_timeout_s)
        # Leading whitespace is held back so "started" means real text: a stream that only ever sends
        # blanks counts as empty and may be retried without duplicating anything.
        pending = ""
        started = False
        while True:
            limit = deadline if started else first_deadline
            try:
                kind, payload = pump.get(limit - time.monotonic())
            except queue.Empty:
                raise (_TotalTimeout() if started or limit == deadline else _FirstTokenTimeout()) from None
            if kind == "error":
                raise payload
            if kind == "end":
                if not started:
                    raise _EmptyResponse()
                return
            text = _chunk_text(payload)
            if not text:
                continue
            if not started:
                pending += text
                if not pending.strip():
                    continue
                text, pending, started = pending, "", True
            yield text

    @staticmethod
    def _is_retryable(exc: BaseException) -> bool:
        if isinstance(exc, _Retryable):
            return True
        if isinstance(exc, ModelUnavailableError | _TotalTimeout):
            return False
        try:
            import openai
        except ImportError:  # a non-OpenAI langchain model; fall back to langchain's own classification
            openai = None  # type: ignore[assignment]
        if openai is not None:
            if isinstance(exc, openai.APIConnectionError | openai.RateLimitError):
                return True
            if isinstance(exc, openai.APIStatusError):
                return exc.status_code >= 500
        return bool(getattr(exc, "is_retryable", False))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _to_user_error(self, exc: BaseException) -> ModelUnavailableError:
        """Turn any failure into a message and a fix a support lead can act on."""
        if isinstance(exc, ModelUnavailableError):
            return exc
        where = f"The model server at {self.endpoint}" if self.endpoint else f"The model {self.name!r}"
        status = getattr(exc, "status_code", None)
        detail = self._redact(str(getattr(exc, "message", "") or exc))[:300]
        try:
            import openai

            timeout_types: tuple[type[BaseException], ...] = (openai.APITimeoutError,)
            connection_types: tuple[type[BaseException], ...] = (openai.APIConnectionError,)
        except ImportError:
            timeout_types, connection_types = (), ()
        from langchain_core.exceptions import ContextOverflowError, ModelConnectionError, ModelTimeoutError

        if isinstance(exc, _FirstTokenTimeout):
            return ModelUnavailableError(
                f"{where} sent no text within {self.first_token_timeout_s:g} s",
                "check that the server is not stuck or overloaded; a slow machine may need a longer model timeout",
            )
        if isinstance(exc, _TotalTimeout):
            return ModelUnavailableError(
                f"{where} did not finish its reply within {self.total_timeout_s:g} s",
                "ask for a shorter reply (lower max_tokens) or allow a longer model timeout",
            )
        if isinstance(exc, _EmptyResponse):
            return ModelUnavailableError(
                f"{where} returned an empty reply",
                "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 endpoint and the model works",
            )
        if isinstance(exc, (ModelTimeoutError, *timeout_types)):
            return ModelUnavailableError(
                f"{where} did not answer in time",
                "check that the server is running and not overloaded, or allow a longer model timeout",
            )
        if isinstance(exc, (ModelConnectionError, *connection_types)):
            return ModelUnavailableError(f"{where} is not answering", _START_FIX)
        if status == 401:
            # The server's own 401 text can echo part of the key, so it is not quoted.
            return ModelUnavailableError(f"{where} refused the API key (HTTP 401)", "check OPENAI_API_KEY")
        if status == 403:
            return ModelUnavailableError(
                f"{where} denied access (HTTP 403)", "check that OPENAI_API_KEY may use this model"
            )
        if status == 404:
            return ModelUnavailableError(
                f"{where} has no model named {self.name!r} (HTTP 404)",
                "check COPILOT_MODEL against the names the server lists at /v1/models",
            )
        if status == 429:
            return ModelUnavailableError(f"{where} is rate-limiting us (HTTP 429)", "wait a moment or check your quota")
        if isinstance(exc, ContextOverflowError) or (status == 400 and "context" in detail.lower()):
            return ModelUnavailableError(
                f"The prompt is too long for the model's context window: {detail}",
                "shorten the customer message or the guidance, or give the model a larger context (n_ctx)",
            )
        if isinstance(status, int):
            return ModelUnavailableError(
                f"{where} failed with HTTP {status}: {detail}",
                "check the model server's log; retry once it is healthy",
            )
        return ModelUnavailableError(
            f"{where} sent a response that is not a chat completion ({type(exc).__name__}: {detail})",
            "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 endpoint",
        )


def _is_openai_cloud(url: str | None) -> bool:
    return url is None or "api.openai.com" in url


def openai_chat_model(
    *, model: str, base_url: str | None, api_key: str | None, timeout_s: float = 60.0, max_retries: int = 2
) -> LangChainChatModel:
    """A ChatModel for any OpenAI-compatible endpoint, through ChatOpenAI and the openai SDK."""
    url = (base_url or os.environ.get("OPENAI_BASE_URL") or "").rstrip("/") or None
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if _is_openai_cloud(url):
            raise ModelUnavailableError(
                "No API key is set for the OpenAI API",
                "set OPENAI_API_KEY, or set OPENAI_BASE_URL to a local OpenAI-compatible server",
            )
        # Local servers ignore the key, but the SDK refuses to start without one.
        key = LOCAL_PLACEHOLDER_KEY
    try:
        import httpx
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise ModelUnavailableError(
            f"The OpenAI client libraries are not installed ({exc.name})",
            "reinstall the copilot: pip install -e .",
        ) from None

    chat = ChatOpenAI(
        model=model,
        base_url=url,
        api_key=key,  # type: ignore[arg-type]  # pydantic coerces str to SecretStr
        # connect fails fast (a dead local server refuses at once); read bounds each wait for bytes.
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        max_retries=0,  # LangChainChatModel owns retrying, and only before the first token
    )
    wrapped = LangChainChatModel(
        chat,
        model,
        first_token_timeout_s=timeout_s,
        total_timeout_s=max(180.0, 3 * timeout_s),
        max_retries=max_retries,
        endpoint=url or OPENAI_DEFAULT_URL,
        # ChatOpenAI sends max_tokens as max_completion_tokens, which llama-cpp-python's server ignores
        # (it would then generate to the end of the context); OpenAI itself rejects getting both.
        legacy_max_tokens=not _is_openai_cloud(url),
    )
    wrapped._secrets = (key,)
    return wrapped
