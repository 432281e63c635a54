"""Crash safety: a process killed mid-write leaves the feedback file, the prompt files and the index readable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import ROOT

from copilot.feedback import FeedbackStore
from copilot.prompts import parse_prompt
from copilot.retrieval import Retriever
from copilot.store import open_store

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _run_then_kill(script: str, ready: Path, after_s: float) -> None:
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=ENV)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None, "the writer died on its own"
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.05)
    time.sleep(after_s)
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def test_feedback_survives_a_kill_mid_append(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    ready = tmp_path / "ready"
    _run_then_kill(
        f"""
        from pathlib import Path
        from copilot.feedback import FeedbackStore
        store = FeedbackStore(Path({str(path)!r}))
        i = 0
        while True:
            store.record("used_after_edit", "draft " * 200, f"final {{i}} " * 200, None, [], f"m{{i}}")
            i += 1
            if i == 5:
                Path({str(ready)!r}).touch()
    """,
        ready,
        0.7,
    )
    records = FeedbackStore(path).load()
    assert len(records) >= 5
    assert [r["message_id"] for r in records] == [f"m{i}" for i in range(len(records))], "no record lost or torn"
    FeedbackStore(path).record("rejected", "d", "f", "too formal", [], "after-crash")
    assert FeedbackStore(path).load()[-1]["message_id"] == "after-crash"


def test_prompt_saves_survive_a_kill_mid_write(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    original = (prompts / "draft.md").read_text(encoding="utf-8")
    edited = original.replace("Keep it short", "Keep it brief")
    ready = tmp_path / "ready"
    _run_then_kill(
        f"""
        from pathlib import Path
        from copilot.settings import load_settings
        from copilot.workshop import Workshop
        settings = load_settings({{"COPILOT_DATA_DIR": {str(tmp_path / "data")!r},
                                   "COPILOT_PROMPTS_DIR": {str(prompts)!r}}})
        workshop = Workshop(settings)
        texts = [{original!r}, {edited!r}]
        i = 0
        while True:
            workshop.save("draft.md", texts[i % 2])
            i += 1
            if i == 2:
                Path({str(ready)!r}).touch()
    """,
        ready,
        1.0,
    )
    text = (prompts / "draft.md").read_text(encoding="utf-8")
    assert text in (original, edited)
    parse_prompt(prompts / "draft.md", text)
    assert not [
        p
        for p in prompts.iterdir()
        if p.name not in {q.name for q in (ROOT / "prompts").iterdir()} and not p.name.startswith(".")
    ], "no stray temporary files left beside the prompts"


def test_index_survives_a_kill_mid_reindex(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    index_dir = tmp_path / "index"
    store = open_store(embedder, index_dir=index_dir, chroma_url=None, collection="guidance")
    from copilot.index import build_index

    before = build_index(store, embedder, knowledge, root=tmp_path).passages
    del store
    for path in knowledge.glob("*.md"):
        path.write_text(path.read_text(encoding="utf-8").replace("customer", "client"), encoding="utf-8")
    ready = tmp_path / "ready"
    _run_then_kill(
        f"""
        from pathlib import Path
        import copilot.index
        from copilot.embeddings import MiniLMEmbeddings
        from copilot.store import open_store
        copilot.index.EMBED_BATCH = 2
        embedder = MiniLMEmbeddings()
        store = open_store(embedder, index_dir=Path({str(index_dir)!r}), chroma_url=None, collection="guidance")
        original_add = store.add
        def add(passages, embeddings):
            original_add(passages, embeddings)
            Path({str(ready)!r}).touch()
        store.add = add
        copilot.index.build_index(store, embedder, Path({str(knowledge)!r}), root=Path({str(tmp_path)!r}))
    """,
        ready,
        0.5,
    )
    reopened = open_store(embedder, index_dir=index_dir, chroma_url=None, collection="guidance")
    assert reopened.count() >= before
    hits = Retriever(reopened, embedder).retrieve("should I tell an upset customer to calm down?", 6)
    assert hits and any("calm down" in h.text for h in hits)
    report = build_index(reopened, embedder, knowledge, root=tmp_path)  # the next run completes the job
    assert reopened.count() == report.passages
