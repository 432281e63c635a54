"""Errors the copilot reports to people: each says what happened and what to do."""

from __future__ import annotations

from pathlib import Path


class CopilotError(Exception):
    """Base class for errors shown to users as a message, never as a traceback."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class DataFileError(CopilotError):
    """A file a trainer edits (prompt, checker rule, guidance, eval set) is invalid.

    The message names the file and line so a non-programmer can find the spot.
    """

    def __init__(self, path: Path | str, message: str, *, line: int | None = None, fix: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line else f"{self.path}"
        super().__init__(f"{where}: {message}", fix)


class ModelUnavailableError(CopilotError):
    """The language model could not be reached or did not answer in time."""


class IndexUnavailableError(CopilotError):
    """The guidance index (Chroma) could not be opened or queried."""


class InputError(CopilotError):
    """The customer message or reply text cannot be processed as given."""


def yaml_error(
    path: Path | str, exc: Exception, *, fix: str, what: str = "not valid YAML", first_line: int = 1
) -> DataFileError:
    """A DataFileError for a YAML parse error at its line in the file (`first_line`: where the YAML starts)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + first_line if mark is not None else None
    return DataFileError(path, f"{what} ({getattr(exc, 'problem', None) or exc})", line=line, fix=fix)
