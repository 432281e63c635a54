"""Session fixtures for tests that need the real embedded model (import them in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.local_model import LocalModelServer, ensure_model_file
from copilot.settings import default_data_dir


@pytest.fixture(scope="session")
def model_file() -> Path:
    """The packaged GGUF, assembled and verified once in the shared data directory."""
    return ensure_model_file(default_data_dir() / "models", progress=False)


@pytest.fixture(scope="session")
def local_server(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """A started llama.cpp server for the whole session, stopped at the end."""
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    server = LocalModelServer(model_file, log_path=log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
