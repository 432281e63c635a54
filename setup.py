"""Compiles the checker's engine to C with mypyc when the package is installed, so a reply is checked several
times faster; everything else is in pyproject.toml.

The compiled modules are built from the very same source files, which stay the reference: with no C compiler, or
with COPILOT_PURE_PYTHON=1 at install time, the package installs and runs as plain Python, only slower. A source
file edited after the build is noticed on import and run as source (see copilot/native.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
# Keep in step with copilot/native.py, which compares these files with the record written here.
COMPILED = ["checker", "classifier"]


def native_modules() -> list:
    if os.environ.get("COPILOT_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    # A build that fails leaves no C module behind to pass for one made from today's source.
    for name in COMPILED:
        for old in (HERE / "copilot").glob(f"{name}.*.so"):
            old.unlink()
        for old in (HERE / "copilot").glob(f"{name}__mypyc.*.so"):
            old.unlink()
    sources = {name: (HERE / "copilot" / f"{name}.py").read_bytes() for name in COMPILED}
    record = {f"{name}.py": hashlib.sha256(raw).hexdigest() for name, raw in sources.items()}
    (HERE / "copilot" / "native-build.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    modules = mypycify([f"copilot/{name}.py" for name in COMPILED], opt_level="3", separate=True)
    for module in modules:
        module.optional = True  # a machine without a compiler still installs the package
    return modules


setup(ext_modules=native_modules())
