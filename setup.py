"""Compiles the checker's engine to C with mypyc when the package is installed, with the learned rules' sums and the
word index in C (copilot/_sentence_model.c, _word_index.c), so a reply is checked about 1.65 times faster; everything
else is in pyproject.toml.

The compiled modules are built from the very same source files, which stay the reference: with no C compiler, or
with COPILOT_PURE_PYTHON=1 at install time, the package installs and runs as plain Python, only slower. A source
file edited after the build is noticed on import and run as source (see copilot/native.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "copilot"


def _native() -> ModuleType:
    """copilot/native.py read on its own (standard library only), so the build records exactly the files and hashes
    that module checks on import."""
    spec = importlib.util.spec_from_file_location("copilot_native_at_build", PACKAGE / "native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def native_modules() -> list:
    if os.environ.get("COPILOT_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    native = _native()
    compiled, c_sources = native.COMPILED, native.C_SOURCES
    # A build that fails leaves no C module behind to pass for one made from today's source.
    stems = [*compiled, *(f"{name}__mypyc" for name in compiled), *(source[:-2] for source in c_sources)]
    for stem in stems:
        for suffix in EXTENSION_SUFFIXES:
            (PACKAGE / f"{stem}{suffix}").unlink(missing_ok=True)
    record = native.source_hashes(PACKAGE)
    (PACKAGE / native.RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    try:
        modules = mypycify([f"copilot/{name}.py" for name in compiled], opt_level="3", separate=True)
    except (Exception, SystemExit) as exc:  # mypyc's own type check refused the source here (it exits on errors)
        print(f"copilot: no C build ({exc!r}); the package installs and runs as plain Python", file=sys.stderr)
        return []
    for source in c_sources:
        modules.append(Extension(f"copilot.{source[:-2]}", [f"copilot/{source}"], extra_compile_args=["-O3"]))
    for module in modules:
        module.optional = True  # a machine without a compiler still installs the package
    return modules


setup(ext_modules=native_modules())
