"""Whether the checker's engine runs compiled: the C build (see setup.py) when it was made from the source files
as they are now, the source files otherwise.

A stale build would be worse than none: a C module beside its edited source shadows it on import, so a developer's
change would silently not run. The build writes the hash of each source it compiled; a mismatch, or
COPILOT_PURE_PYTHON=1, makes every compiled module load from its source instead (all of them, since compiled
modules call each other directly), and leaves the C parts (copilot/_sentence_model.c, _word_index.c) unused.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType

COMPILED = ("checker", "classifier")
# Built with them and trusted only with them: the learned rules' sums and the word index in C (see
# copilot/classifier.py and copilot/checker.py).
C_SOURCES = ("_sentence_model.c", "_word_index.c")
RECORD = "native-build.json"
PACKAGE = Path(__file__).resolve().parent


def source_files() -> list[str]:
    """The files a build is made from, as the build records them."""
    return [f"{name}.py" for name in COMPILED] + list(C_SOURCES)


def source_hashes(package: Path = PACKAGE) -> dict[str, str]:
    """SHA-256 of each file the build is made from."""
    return {name: hashlib.sha256((package / name).read_bytes()).hexdigest() for name in source_files()}


def status(package: Path = PACKAGE) -> str:
    """``compiled``, ``pure`` (COPILOT_PURE_PYTHON is set), ``stale`` (a source changed since the build) or
    ``absent`` (no build: no compiler at install time, or installed with COPILOT_PURE_PYTHON=1)."""
    if os.environ.get("COPILOT_PURE_PYTHON"):
        return "pure"
    if not any((package / f"{name}{suffix}").exists() for name in COMPILED for suffix in EXTENSION_SUFFIXES):
        return "absent"
    try:
        built = json.loads((package / RECORD).read_text(encoding="utf-8"))
        return "compiled" if built == source_hashes(package) else "stale"
    except (OSError, ValueError):  # no record, or a source missing: nothing shows the build matches
        return "stale"


def describe(state: str) -> str:
    """One line saying which engine runs and why, for the benchmark's report."""
    return {
        "compiled": "compiled (mypyc C build)",
        "pure": "pure Python (COPILOT_PURE_PYTHON is set)",
        "stale": "pure Python (the C build is older than the source: reinstall with `pip install -e .` to rebuild)",
        "absent": "pure Python (no C build: no compiler at install time)",
    }[state]


def extension(name: str) -> ModuleType | None:
    """The C part ``name`` (one of C_SOURCES, without ".c") when the build is in use, else None: it is part of the same
    build, recorded with it, and trusted only with it."""
    if STATE != "compiled":
        return None
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return None


class _SourceFirst(MetaPathFinder):
    """Finds the compiled modules' source files ahead of the C modules beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package == __package__ and name in COMPILED:
            return spec_from_file_location(fullname, PACKAGE / f"{name}.py")
        return None


STATE = status()
# Only as the package's own module: setup.py reads this file on its own to write the build's record.
if __package__ and STATE in ("pure", "stale"):
    sys.meta_path.insert(0, _SourceFirst())
