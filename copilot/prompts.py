"""The prompt library trainers edit: Markdown files with a front-matter, validated on load, rendered safely."""

from __future__ import annotations

import difflib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from copilot.analysis import CUSTOMER_TYPES
from copilot.errors import DataFileError, yaml_error

# What the code supplies to each prompt: a placeholder outside these sets could never be filled.
SUPPLIED_INPUTS: dict[str, frozenset[str]] = {
    "draft": frozenset(
        {
            "message",
            "customer_name",
            "issue",
            "issues",
            "customer_type",
            "guidance",
            "language",
            "tone",
            "channel",
            "signals",
        }
    ),
    "revise": frozenset(
        {
            "sentence",
            "problem",
            "fix",
            "message",
            "customer_name",
            "issue",
            "customer_type",
            "guidance",
            "language",
            "tone",
            "channel",
            "draft",
            "findings",
        }
    ),
}
# Only {{ name }} is a placeholder, so "$20", "{braces}" and "{{ }}"-free text stay literal.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LOOSE_BRACES = re.compile(r"\{\{|\}\}")
_SECTION = re.compile(r"^#\s*(system|user)\s*$", re.IGNORECASE)


class ModelOptions(BaseModel):
    """Model settings a prompt may set for its own calls."""

    model_config = ConfigDict(extra="forbid")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=16, le=4096)


class PromptHeader(BaseModel):
    """The front-matter of a prompt file."""

    model_config = ConfigDict(extra="forbid")
    id: str
    description: str
    inputs: list[str]
    model: ModelOptions = ModelOptions()


@dataclass(frozen=True)
class Prompt:
    """A validated prompt: static system instructions and a user template with placeholders."""

    path: Path
    header: PromptHeader
    system: str
    user: str

    @property
    def id(self) -> str:
        """The prompt's id (its file name without .md)."""
        return self.header.id

    def render(self, values: dict[str, str]) -> tuple[str, str]:
        """(system, user) with placeholders filled in one pass, so a value that looks like {{x}} stays literal."""
        missing = [name for name in self.header.inputs if name not in values]
        if missing:
            raise KeyError(f"prompt {self.id} needs values for {missing}")

        def fill(match: re.Match[str]) -> str:
            return values[match.group(1)]

        return PLACEHOLDER.sub(fill, self.system).strip(), PLACEHOLDER.sub(fill, self.user).strip()


def _line_of_key(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*{re.escape(key)}\s*:", line):
            return number
    return None


def parse_prompt(path: Path, text: str) -> Prompt:
    """Parse and validate one prompt file's text; errors name the file, the line and the fix."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise DataFileError(
            path,
            "must start with a front-matter block",
            line=1,
            fix="begin the file with ---, then id/description/inputs lines, then ---",
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise DataFileError(
            path,
            "the front-matter block is never closed",
            line=1,
            fix="add a line with three dashes (---) after the header",
        ) from None
    header_text = "\n".join(lines[1:end])
    try:
        raw = yaml.safe_load(header_text) or {}
    except yaml.YAMLError as exc:
        raise yaml_error(
            path,
            exc,
            what="the front-matter is not valid YAML",
            fix="each header line is `key: value`; lists look like [a, b]",
            first_line=2,
        ) from exc
    if not isinstance(raw, dict):
        raise DataFileError(path, "the front-matter must be `key: value` lines", line=2, fix="see prompts/README.md")
    try:
        header = PromptHeader(**raw)
    except ValidationError as exc:
        # A misspelt key shows up as both "extra" and "missing": the misspelling is the one to report.
        error = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        key = ".".join(str(p) for p in error["loc"]) or "?"
        top = str(error["loc"][0]) if error["loc"] else ""
        line = (_line_of_key(header_text, str(error["loc"][-1])) or _line_of_key(header_text, top) or 0) + 1
        if error["type"] == "extra_forbidden":
            valid = list(ModelOptions.model_fields if len(error["loc"]) > 1 else PromptHeader.model_fields)
            close = difflib.get_close_matches(str(error["loc"][-1]), valid, n=1)
            fix = f"did you mean `{close[0]}`?" if close else f"valid keys here: {', '.join(valid)}"
            raise DataFileError(path, f"unknown key `{key}`", line=line, fix=fix) from exc
        if error["type"] == "missing":
            raise DataFileError(
                path, f"missing key `{key}`", line=2, fix=f"add a line `{key}: ...` to the header"
            ) from exc
        raise DataFileError(path, f"`{key}`: {error['msg']}", line=line, fix="correct the value") from exc
    if header.id != path.stem:
        raise DataFileError(
            path,
            f"id `{header.id}` does not match the file name",
            line=(_line_of_key(header_text, "id") or 0) + 1,
            fix=f"use `id: {path.stem}` or rename the file to {header.id}.md",
        )
    supplied = SUPPLIED_INPUTS.get(header.id)
    if supplied is None:
        raise DataFileError(
            path,
            f"no part of the copilot uses a prompt called `{header.id}`",
            line=2,
            fix=f"prompt ids in use: {', '.join(sorted(SUPPLIED_INPUTS))}",
        )
    for name in header.inputs:
        if name not in supplied:
            raise DataFileError(
                path,
                f"input `{name}` is not something the copilot can supply",
                line=(_line_of_key(header_text, "inputs") or 0) + 1,
                fix=f"inputs available to `{header.id}`: {', '.join(sorted(supplied))}",
            )

    sections: dict[str, list[str]] = {}
    current: str | None = None
    first_line: dict[str, int] = {}
    for number, row in enumerate(lines[end + 1 :], start=end + 2):
        if re.match(r"^#\s*\w+\s*$", row.strip()) and not _SECTION.match(row.strip()):
            raise DataFileError(
                path,
                f"unknown section `{row.strip()}`",
                line=number,
                fix="sections are `# system` and `# user`; use ## for a heading inside a section",
            )
        match = _SECTION.match(row.strip())
        if match:
            current = match.group(1).lower()
            if current in sections:
                raise DataFileError(path, f"a second `# {current}` section", line=number, fix="merge the two sections")
            sections[current] = []
            first_line[current] = number
            continue
        if current is None:
            if row.strip():
                raise DataFileError(
                    path,
                    "text before the first section heading",
                    line=number,
                    fix="put instructions under `# system` and the template under `# user`",
                )
            continue
        sections[current].append(row)
        for placeholder in PLACEHOLDER.findall(row):
            if placeholder not in header.inputs:
                hint = (
                    f"add `{placeholder}` to inputs"
                    if placeholder in supplied
                    else f"placeholders available: {', '.join('{{' + s + '}}' for s in sorted(supplied))}"
                )
                raise DataFileError(
                    path, f"placeholder {{{{{placeholder}}}}} is not declared in inputs", line=number, fix=hint
                )
        stripped = PLACEHOLDER.sub("", row)
        if _LOOSE_BRACES.search(stripped):
            raise DataFileError(
                path,
                "`{{` or `}}` that is not a placeholder like {{message}}",
                line=number,
                fix="write a placeholder as {{name}}, or use single braces for literal text",
            )
        if current == "system" and PLACEHOLDER.search(row):
            raise DataFileError(
                path,
                "placeholders are not allowed in `# system`",
                line=number,
                fix="keep `# system` fixed so the model server can reuse its cache; "
                "move the placeholder under `# user`",
            )
    for required in ("system", "user"):
        if required not in sections or not "\n".join(sections[required]).strip():
            raise DataFileError(
                path,
                f"the `# {required}` section is missing or empty",
                line=end + 2,
                fix=f"add a line `# {required}` followed by its text",
            )
    used = set(PLACEHOLDER.findall("\n".join(sections["user"])))
    unused = [name for name in header.inputs if name not in used]
    if unused:
        raise DataFileError(
            path,
            f"inputs {unused} are declared but never used",
            line=(_line_of_key(header_text, "inputs") or 0) + 1,
            fix="remove them from inputs, or use them as {{name}} under `# user`",
        )
    return Prompt(
        path=path, header=header, system="\n".join(sections["system"]).strip(), user="\n".join(sections["user"]).strip()
    )


class TypeGuidance(BaseModel):
    """What to look up, and what to stress, for one difficult-customer type."""

    model_config = ConfigDict(extra="forbid")
    query: str
    focus: str


def load_type_guidance(path: Path) -> dict[str, TypeGuidance]:
    """Read customer_types.yaml: one entry per difficult-customer type."""
    text = _read(path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, what="not valid YAML", fix="check indentation and colons") from exc
    if not isinstance(raw, dict):
        raise DataFileError(
            path, "must map each customer type to its query and focus", line=1, fix="see the comment at the top"
        )
    result: dict[str, TypeGuidance] = {}
    for key, value in raw.items():
        if key not in CUSTOMER_TYPES:
            close = difflib.get_close_matches(str(key), CUSTOMER_TYPES, n=1)
            raise DataFileError(
                path,
                f"unknown customer type `{key}`",
                line=_line_of_key(text, str(key)),
                fix=f"did you mean `{close[0]}`?" if close else f"types: {', '.join(CUSTOMER_TYPES)}",
            )
        try:
            result[key] = TypeGuidance(**(value or {}))
        except (ValidationError, TypeError) as exc:
            raise DataFileError(
                path,
                f"`{key}` needs exactly `query:` and `focus:`",
                line=_line_of_key(text, str(key)),
                fix="give the type a `query` (what to look up) and a `focus` (one line for the model)",
            ) from exc
    missing = [t for t in CUSTOMER_TYPES if t not in result]
    if missing:
        raise DataFileError(path, f"no entry for {missing}", fix="add an entry for every customer type")
    return result


def _read(path: Path) -> str:
    if not path.is_file():
        raise DataFileError(
            path, "is missing", fix="restore it from git (git checkout -- prompts/) or the workshop history"
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(path, "is not UTF-8 text", fix="re-save it with UTF-8 encoding") from exc


class PromptLibrary:
    """All prompts, loaded and validated together; a failed reload keeps the last good library serving."""

    REQUIRED = ("draft", "revise")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self.prompts, self.types = self._load()

    def _load(self) -> tuple[dict[str, Prompt], dict[str, TypeGuidance]]:
        prompts = {}
        for name in self.REQUIRED:
            path = self.directory / f"{name}.md"
            prompts[name] = parse_prompt(path, _read(path))
        types = load_type_guidance(self.directory / "customer_types.yaml")
        return prompts, types

    def reload(self) -> None:
        """Re-read the files; on any error the previous prompts stay in use and the error is raised."""
        prompts, types = self._load()
        with self._lock:
            self.prompts, self.types = prompts, types

    def get(self, name: str) -> Prompt:
        """A prompt by id."""
        return self.prompts[name]


def check_library(directory: Path) -> list[DataFileError]:
    """Validate every prompt file; returns all problems found rather than stopping at the first."""
    problems: list[DataFileError] = []
    for name in PromptLibrary.REQUIRED:
        path = directory / f"{name}.md"
        try:
            parse_prompt(path, _read(path))
        except DataFileError as exc:
            problems.append(exc)
    try:
        load_type_guidance(directory / "customer_types.yaml")
    except DataFileError as exc:
        problems.append(exc)
    extra = sorted(p for p in directory.glob("*.md") if p.stem not in SUPPLIED_INPUTS and p.name.lower() != "readme.md")
    for path in extra:
        problems.append(
            DataFileError(path, "is not a prompt the copilot uses", fix=f"known prompts: {', '.join(SUPPLIED_INPUTS)}")
        )
    return problems


def as_text(value: Any) -> str:
    """Render a value for a placeholder: lists become bullet lines, None becomes 'unknown'."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, list | tuple):
        return "\n".join(f"- {item}" for item in value) or "none"
    return str(value)
