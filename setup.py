"""Compiles the checker's engine to C with mypyc when the package is installed, with the learned rules' sums and the
word index in C (copilot/_sentence_model.c, _word_index.c), so a reply is checked about 1.65 times faster; everything
else is in pyproject.toml.

The compiled modules are built from the very same source files, which stay the reference: with no C compiler, or
with COPILOT_PURE_PYTHON=1 at install time, the package installs and runs as plain Python, only slower. A source
file edited after the build is noticed on import and run as source (see copilot/native.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
# Keep in step with copilot/native.py, which compares these files with the record written here.
COMPILED = ["checker", "classifier"]
C_SOURCES = ["_sentence_model.c", "_word_index.c"]


def native_modules() -> list:
    if os.environ.get("COPILOT_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    # A build that fails leaves no C module behind to pass for one made from today's source.
    stems = [*COMPILED, *(f"{name}__mypyc" for name in COMPILED), *(source[:-2] for source in C_SOURCES)]
    for stem in stems:
        for suffix in EXTENSION_SUFFIXES:
            (HERE / "copilot" / f"{stem}{suffix}").unlink(missing_ok=True)
    files = [f"{name}.py" for name in COMPILED] + C_SOURCES
    record = {name: hashlib.sha256((HERE / "copilot" / name).read_bytes()).hexdigest() for name in files}
    (HERE / "copilot" / "native-build.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    try:
        modules = mypycify([f"copilot/{name}.py" for name in COMPILED], opt_level="3", separate=True)
    except (Exception, SystemExit) as exc:  # mypyc's own type check refused the source here (it exits on errors)
        print(f"copilot: no C build ({exc!r}); the package installs and runs as plain Python", file=sys.stderr)
        return []
    for source in C_SOURCES:
        modules.append(Extension(f"copilot.{source[:-2]}", [f"copilot/{source}"], extra_compile_args=["-O3"]))
    for module in modules:
        module.optional = True  # a machine without a compiler still installs the package
    return modules


setup(ext_modules=native_modules())
