"""Shared fixtures: the real embedding model, a real Chroma (embedded and `chroma run`), the real model server."""

from __future__ import annotations

import os

from copilot.settings import OFFLINE_ENV  # settings imports nothing heavy

# Set before anything imports huggingface or gradio: tests must never reach a hub.
os.environ.update(OFFLINE_ENV)

import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from llm_fixtures import local_server, model_file  # noqa: E402, F401

from copilot.embeddings import MiniLMEmbeddings  # noqa: E402
from copilot.settings import PROJECT_ROOT, Settings, load_settings  # noqa: E402

ROOT = PROJECT_ROOT

# A scripted model run for the app tests: a flagged first draft, then one fix per blocked sentence.
FIRST_DRAFT = (
    "Hi Dana, I'm sorry for any inconvenience. You should have chosen insured shipping. "
    "I'll email you on Thursday to confirm it arrived."
)
# Blocked sentences are revised one at a time, last first, and spliced back into the draft.
FIX_BLAME = "I've sent a replacement by express today."
FIX_APOLOGY = "Hi Dana, I can see why a broken order is so frustrating."
SCRIPT = [FIRST_DRAFT, FIX_BLAME, FIX_APOLOGY]
REVISION = f"{FIX_APOLOGY} {FIX_BLAME} I'll email you on Thursday to confirm it arrived."
MESSAGE = "My order arrived broken AGAIN. I paid for express shipping and I want this fixed now. — Dana"


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbeddings:
    """The real all-MiniLM-L6-v2 from the installed package, loaded once."""
    return MiniLMEmbeddings()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private data directory, everything else from the repo."""
    return load_settings({"COPILOT_DATA_DIR": str(tmp_path / "data")})


def project_settings(tmp: Path, **extra: str) -> Settings:
    """Settings over a private copy of prompts/ and knowledge/, so saves never touch the repo."""
    shutil.copytree(ROOT / "prompts", tmp / "prompts")
    shutil.copytree(ROOT / "knowledge", tmp / "knowledge")
    env = {
        "COPILOT_DATA_DIR": str(tmp / "data"),
        "COPILOT_PROMPTS_DIR": str(tmp / "prompts"),
        "COPILOT_KNOWLEDGE_DIR": str(tmp / "knowledge"),
        **extra,
    }
    return load_settings(env)


@pytest.fixture(scope="session")
def indexed(embedder: MiniLMEmbeddings, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An embedded Chroma holding the repo's knowledge base, built once per session."""
    from copilot.index import build_index
    from copilot.store import open_store

    store = open_store(embedder, index_dir=tmp_path_factory.mktemp("index"), chroma_url=None, collection="guidance")
    build_index(store, embedder, ROOT / "knowledge", root=ROOT)
    return store


@pytest.fixture(scope="session")
def retriever(indexed, embedder):  # type: ignore[no-untyped-def]
    """A hybrid retriever over the session index."""
    from copilot.retrieval import Retriever

    return Retriever(indexed, embedder)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float) -> None:
    """Poll a URL until it answers 200 or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A real `chroma run` on a free loopback port; yields (url, process, data path) and stops it."""
    exe = shutil.which("chroma") or str(Path(os.sys.executable).with_name("chroma"))
    port = free_port()
    path = tmp_path / "chroma-server"
    log = open(tmp_path / "chroma.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v2/heartbeat", 60)
        yield url, process, path
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
