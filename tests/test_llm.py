"""The model interface: fake-model behaviour, and error mapping against real loopback HTTP servers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from copilot.errors import ModelUnavailableError
from copilot.llm import ChatMessage, LangChainChatModel, openai_chat_model
from copilot.testing import RecordingChatModel, fake_chat_model

PROMPT = [ChatMessage("system", "You help customer-service agents."), ChatMessage("user", "My parcel is late.")]
SECRET_KEY = "sk-test-secret-123456789"


def collect(model: Any, **kwargs: Any) -> str:
    options = {"temperature": 0.2, "max_tokens": 64, **kwargs}
    return "".join(model.stream(PROMPT, **options))


# --- fake chat model ------------------------------------------------------------------------------


def test_fake_model_records_messages_and_streams_reply() -> None:
    model = fake_chat_model(["I am sorry your parcel is late.", "Second reply."])
    pieces = list(model.stream(PROMPT, temperature=0.3, max_tokens=50, seed=7))
    assert "".join(pieces) == "I am sorry your parcel is late."
    assert len(pieces) > 1, "the reply should arrive as several deltas"
    assert collect(model) == "Second reply."
    recorder = model.model
    assert isinstance(recorder, RecordingChatModel)
    assert recorder.chat_calls[0] == list(PROMPT)
    assert len(recorder.calls) == 2
    assert recorder.call_kwargs[0] == {"temperature": 0.3, "max_tokens": 50, "seed": 7}
    assert "seed" not in recorder.call_kwargs[1]


def test_connection_error_before_first_token_is_retried() -> None:
    refused = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    model = fake_chat_model([refused, "Recovered."], max_retries=2)  # type: ignore[list-item]
    assert collect(model) == "Recovered."
    assert len(model.model.calls) == 2


def test_retries_are_bounded() -> None:
    refused = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    model = fake_chat_model([refused, refused, refused, "never"], max_retries=1)  # type: ignore[list-item]
    with pytest.raises(ModelUnavailableError, match="not answering"):
        collect(model)
    assert len(model.model.calls) == 2


def test_empty_reply_is_an_error() -> None:
    model = fake_chat_model(["", "   "], max_retries=1)
    with pytest.raises(ModelUnavailableError, match="empty"):
        collect(model)


class _BreaksMidway(BaseChatModel):
    """Streams two words, then fails: the failure must surface without a retry duplicating text."""

    calls: int = 0

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        yield ChatGenerationChunk(message=AIMessageChunk(content="Hello "))
        yield ChatGenerationChunk(message=AIMessageChunk(content="there"))
        raise openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/"))

    @property
    def _llm_type(self) -> str:
        return "breaks-midway"


def test_failure_after_first_token_is_not_retried() -> None:
    inner = _BreaksMidway()
    model = LangChainChatModel(inner, "midway", max_retries=3, backoff_s=0)
    received: list[str] = []
    with pytest.raises(ModelUnavailableError):
        for piece in model.stream(PROMPT, temperature=0, max_tokens=10):
            received.append(piece)
    assert "".join(received) == "Hello there"
    assert inner.calls == 1


class _Silent(BaseChatModel):
    """Never sends a token until released: stands in for a stuck model."""

    release: Any = None

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.release.wait(30)
        yield ChatGenerationChunk(message=AIMessageChunk(content="late"))

    @property
    def _llm_type(self) -> str:
        return "silent"


def test_first_token_guard_fires_even_if_the_client_would_wait() -> None:
    release = threading.Event()
    model = LangChainChatModel(_Silent(release=release), "silent", first_token_timeout_s=0.5, max_retries=0)
    began = time.monotonic()
    try:
        with pytest.raises(ModelUnavailableError, match="no text within"):
            collect(model)
    finally:
        release.set()
    assert time.monotonic() - began < 3


# --- real loopback HTTP servers -------------------------------------------------------------------


class _Server:
    """A tiny threaded HTTP server on 127.0.0.1 whose behaviour each test scripts."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(body or b"{}"),
                }
                outer.requests.append(request)
                # The client may hang up first, as it should on a timeout.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    respond(self, request)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[Callable[..., _Server]]:
    servers: list[_Server] = []

    def make(respond: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]) -> _Server:
        server = _Server(respond)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _sse(words: list[str]) -> bytes:
    events = []
    for index, word in enumerate(words):
        delta: dict[str, Any] = {"content": word}
        if index == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def _model(url: str, **kwargs: Any) -> LangChainChatModel:
    options: dict[str, Any] = {"model": "m", "base_url": url, "api_key": None, "timeout_s": 2.0, "max_retries": 0}
    options.update(kwargs)
    model = openai_chat_model(**options)
    model.backoff_s = 0.05
    return model


def test_openai_path_streams_and_sends_per_call_options(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: _send(h, 200, _sse(["Sorry ", "about ", "that."]), "text/event-stream"))
    model = _model(server.url)
    assert collect(model, temperature=0.4, max_tokens=33, seed=5) == "Sorry about that."
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-local"
    body = sent["json"]
    assert body["stream"] is True
    assert body["temperature"] == 0.4
    assert body["seed"] == 5
    # Both spellings: llama-cpp-python reads only max_tokens, newer servers max_completion_tokens.
    assert body["max_tokens"] == 33
    assert body["max_completion_tokens"] == 33
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed: nobody listens on this port now.
    model = _model(f"http://127.0.0.1:{port}/v1", max_retries=2)
    began = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        collect(model)
    assert time.monotonic() - began < 5
    assert f"127.0.0.1:{port}" in caught.value.message and "not answering" in caught.value.message
    assert "copilot serve-model" in (caught.value.fix or "")


def test_server_that_never_answers_times_out(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: server.release.wait(30))
    model = _model(server.url, timeout_s=1.0, max_retries=1)
    began = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="in time|no text within"):
        collect(model)
    assert time.monotonic() - began < 6


def test_garbage_body_is_an_error(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: _send(h, 200, b"<html>definitely not a completion</html>", "text/html"))
    with pytest.raises(ModelUnavailableError):
        collect(_model(server.url))


def test_broken_event_stream_is_an_error(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: _send(h, 200, b'data: {"choices": [oops\n\n', "text/event-stream"))
    with pytest.raises(ModelUnavailableError, match="not a chat completion|empty"):
        collect(_model(server.url))


def test_http_500_is_retried_then_reported(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: _send(h, 500, b'{"error": {"message": "kaboom"}}'))
    with pytest.raises(ModelUnavailableError, match="HTTP 500"):
        collect(_model(server.url, max_retries=2))
    assert len(server.requests) == 3


def test_http_401_names_the_key_but_never_shows_it(http_server: Callable[..., _Server]) -> None:
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET_KEY}", "code": "invalid_api_key"}})
    server = http_server(lambda h, r: _send(h, 401, body.encode()))
    with pytest.raises(ModelUnavailableError) as caught:
        collect(_model(server.url, api_key=SECRET_KEY, max_retries=2))
    assert "OPENAI_API_KEY" in (caught.value.fix or "")
    assert SECRET_KEY not in str(caught.value)
    assert len(server.requests) == 1, "a refused key is not retried"
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"


def test_http_404_points_at_the_model_name(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: _send(h, 404, b'{"error": {"message": "model not found"}}'))
    with pytest.raises(ModelUnavailableError) as caught:
        collect(_model(server.url, model="no-such-model"))
    assert "no-such-model" in caught.value.message
    assert "COPILOT_MODEL" in (caught.value.fix or "")


def test_openai_cloud_without_a_key_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ModelUnavailableError, match="API key"):
        openai_chat_model(model="gpt-4o-mini", base_url=None, api_key=None)


def test_stopping_early_does_not_hang(http_server: Callable[..., _Server]) -> None:
    server = http_server(lambda h, r: _send(h, 200, _sse([f"w{i} " for i in range(200)]), "text/event-stream"))
    stream = _model(server.url).stream(PROMPT, temperature=0, max_tokens=500)
    assert next(stream).strip() == "w0"
    began = time.monotonic()
    stream.close()  # type: ignore[attr-defined]
    assert time.monotonic() - began < 2
