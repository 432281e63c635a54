"""The labelled checker texts in evals/, read once, for tests that compare two ways of checking them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def labelled_texts() -> tuple[str, ...]:
    """The text of every case in every evals/checker*.jsonl set."""
    return tuple(
        json.loads(line)["text"]
        for path in sorted((ROOT / "evals").glob("checker*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
