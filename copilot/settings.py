"""The one typed settings object: packaged defaults, an optional settings file, then environment variables."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from copilot.errors import DataFileError, yaml_error

# The source checkout holds the trainer-edited folders; the package is installed editable from it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
# Nothing may reach a model hub or send telemetry: set by the CLI, the tests and the benchmarks before heavy imports.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def default_data_dir() -> Path:
    """Where the app writes its index, caches, model files and feedback unless told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "empathetic-copilot"


class Settings(BaseModel):
    """Everything configurable, built once by `load_settings` and passed down explicitly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    knowledge_dir: Path
    prompts_dir: Path
    evals_dir: Path
    # Vector store: embedded Chroma in data_dir unless a server URL is given.
    chroma_url: str | None = None
    collection: str = "guidance"
    top_k: int = 3
    # Language model: any OpenAI-compatible endpoint; the embedded llama.cpp server when none is configured.
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    model: str | None = None
    local_model: Path | None = None
    local_model_port: int | None = None
    llm_timeout_s: float = 60.0
    llm_total_timeout_s: float = 180.0
    llm_retries: int = 2
    temperature: float = 0.3
    max_tokens: int = 320
    seed: int = 7
    revise_rounds: int = 2
    max_message_chars: int = 6000
    # UI
    host: str = "127.0.0.1"
    port: int = 7860
    workshop_user: str | None = None
    workshop_password: SecretStr | None = None
    # Privacy: mask emails, phones, cards, addresses before a call to a model off this machine.
    redact_pii: Literal["auto", "on", "off"] = "auto"

    @property
    def uses_embedded_model(self) -> bool:
        """True when no endpoint is configured, so the app starts its own llama.cpp server."""
        return not self.openai_base_url and self.openai_api_key is None

    @property
    def index_dir(self) -> Path:
        """Folder of the embedded Chroma store."""
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        """Folder of assembled model files (read-only cache)."""
        return self.data_dir / "models"

    @property
    def feedback_file(self) -> Path:
        """Append-only JSON-lines file of the agents' feedback."""
        return self.data_dir / "feedback.jsonl"

    @property
    def reports_dir(self) -> Path:
        """Default folder for eval reports."""
        return self.data_dir / "reports"


# Environment variables with conventional names; everything of ours is COPILOT_<FIELD>.
_CONVENTIONAL_ENV = {"OPENAI_API_KEY": "openai_api_key", "OPENAI_BASE_URL": "openai_base_url"}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, fix="each setting is one `name: value` line") from exc
    except OSError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror})", fix="check the path in COPILOT_SETTINGS") from exc
    if not isinstance(data, dict):
        raise DataFileError(
            path, "must be a mapping of setting names to values", line=1, fix="write one `name: value` line per setting"
        )
    return data


def _line_of(path: Path, key: str) -> int | None:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.split(":", 1)[0].strip() == key:
            return number
    return None


def load_settings(environ: Mapping[str, str] | None = None, settings_file: Path | None = None) -> Settings:
    """Build the settings: packaged defaults, then a settings file (COPILOT_SETTINGS), then the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {
        "data_dir": default_data_dir(),
        "knowledge_dir": PROJECT_ROOT / "knowledge",
        "prompts_dir": PROJECT_ROOT / "prompts",
        "evals_dir": PROJECT_ROOT / "evals",
    }
    sources: dict[str, Path] = {}
    files = [DEFAULTS_FILE]
    user_file = settings_file or (Path(env["COPILOT_SETTINGS"]) if env.get("COPILOT_SETTINGS") else None)
    if user_file is not None:
        files.append(user_file)
    for path in files:
        for key, value in _read_yaml(path).items():
            if key not in Settings.model_fields:
                close = difflib.get_close_matches(str(key), list(Settings.model_fields), n=1)
                hint = f"did you mean `{close[0]}`?" if close else "see the README's settings table"
                raise DataFileError(path, f"unknown setting `{key}`", line=_line_of(path, str(key)), fix=hint)
            values[key] = value
            sources[key] = path
    for name, field in _CONVENTIONAL_ENV.items():
        if env.get(name):
            values[field] = env[name]
            sources[field] = Path(f"${name}")
    for field in Settings.model_fields:
        name = f"COPILOT_{field.upper()}"
        if env.get(name) not in (None, ""):
            values[field] = env[name]
            sources[field] = Path(f"${name}")
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        origin = sources.get(field, DEFAULTS_FILE)
        line = _line_of(origin, field) if origin.exists() else None
        raise DataFileError(
            origin,
            f"setting `{field}`: {first['msg']} (got {first.get('input')!r})",
            line=line,
            fix=f"give `{field}` a value of the right type",
        ) from exc
    return settings
