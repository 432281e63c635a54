"""20 agents at once through the Gradio API: no errors, no mixed-up drafts, every feedback record stored."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from load_bench import run_load  # noqa: E402


def test_twenty_agents_at_once_get_their_own_drafts_and_feedback_is_kept(tmp_path: Path) -> None:
    figures = run_load(tmp_path / "data", agents=20, requests=2, pace=0.005, deadline_s=240)
    assert figures["errors"] == []
    assert figures["mismatches"] == [], "every response must match its own request"
    assert figures["completed"] == 40
    assert figures["feedback_records"] == 40
