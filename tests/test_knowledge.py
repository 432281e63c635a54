"""The knowledge base: cleaned documents, incremental indexing, hybrid retrieval, embedded and server Chroma."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, free_port, wait_http

from copilot.documents import load_documents, read_document, split_passages
from copilot.embeddings import MiniLMEmbeddings
from copilot.errors import CopilotError, DataFileError, IndexUnavailableError
from copilot.index import build_index
from copilot.retrieval import Retriever
from copilot.store import open_store

SEEDS = ROOT.parent / "shared" / "seeds"
JUNK = [
    "Report This Essay",
    "We Will Write a Custom Essay",
    "order now",
    "Image courtesy of",
    "Become a member",
    "Submitted by",
    "Date Submitted",
    "Register or sign in",
    "Back To News",
]


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_knowledge_documents_are_clean_and_carry_front_matter() -> None:
    report = load_documents(ROOT / "knowledge", ROOT)
    assert report.problems == []
    assert len(report.documents) == 5
    for document in report.documents:
        text = document.path.read_text(encoding="utf-8")
        assert text.startswith("---\ntitle: ")
        assert re.search(r"^source: \d{3}_[0-9a-f]{16}\.txt$", text, flags=re.MULTILINE)
        for junk in JUNK:
            assert junk.lower() not in text.lower(), f"{document.source} still has web-page junk: {junk}"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not beside this checkout")
def test_guidance_text_is_not_reworded() -> None:
    """Every paragraph of the knowledge copy appears word for word in its seed document."""
    for path in sorted((ROOT / "knowledge").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        source = re.search(r"^source: (\S+)$", text, flags=re.MULTILINE)
        assert source is not None
        seed = _normal((SEEDS / source.group(1)).read_text(encoding="utf-8"))
        body = text.split("\n---\n", 1)[1]
        for paragraph in body.split("\n\n"):
            paragraph = paragraph.strip()
            if paragraph and not paragraph.startswith("# "):
                assert _normal(paragraph) in seed, f"{path.name}: reworded paragraph: {paragraph[:60]}"


def test_passages_keep_title_heading_and_repo_relative_source() -> None:
    document = read_document(ROOT / "knowledge" / "003-facing-the-music.md", ROOT)
    passages = split_passages(document)
    assert all(p.source == "knowledge/003-facing-the-music.md" for p in passages)
    assert all(p.title == "Facing the Music: Turning Difficult Customers into Allies" for p in passages)
    outline = [p for p in passages if "outline up to three actions" in p.text]
    assert outline and outline[0].heading == "Outline your response"
    assert all(len(p.text) <= 700 for p in passages)
    assert all("(?<=" not in p.text for p in passages)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("binary.md", b"\x00\x01\x02PK\x03\x04" * 50, "binary"),
        ("latin1.txt", "Caf\xe9 guidance: listen first.".encode("latin-1"), "not UTF-8"),
        ("empty.md", b"---\ntitle: Empty\n---\n\n   \n", "no text"),
        ("badfront.md", b"---\ntitle: A: B: C\n---\nListen to the customer.", "front-matter"),
        ("unknownkey.md", b"---\ntitle: T\nautor: me\n---\nListen to the customer.", "unknown front-matter key"),
    ],
)
def test_bad_documents_are_named_and_the_rest_still_load(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    shutil.copy(ROOT / "knowledge" / "002-five-steps-unhappy-customer.md", folder)
    (folder / name).write_bytes(content)
    report = load_documents(folder, tmp_path)
    assert [d.path.name for d in report.documents] == ["002-five-steps-unhappy-customer.md"]
    assert len(report.problems) == 1
    assert name in report.problems[0] and expected in report.problems[0]


def test_line_numbers_point_at_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_bytes(b"---\ntitle: ok\n---\nline one\nline two \xff\n")
    with pytest.raises(DataFileError) as info:
        read_document(path, tmp_path)
    assert info.value.line == 5 and "x.md:5" in str(info.value) and "UTF-8" in str(info.value)


def test_html_documents_become_text_with_headings(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Refund desk</title><script>alert(1)</script></head><body>"
        "<h2>Say what you can do</h2><p>Tell the customer what you can do, never a bare no.</p></body></html>"
    )
    document = read_document(path, tmp_path)
    assert document.title == "Refund desk"
    assert document.sections == [("Say what you can do", "Tell the customer what you can do, never a bare no.")]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CopilotError, match="does not exist"):
        load_documents(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CopilotError, match="No guidance could be read"):
        load_documents(tmp_path / "empty")


def test_indexing_is_incremental(tmp_path: Path, embedder: MiniLMEmbeddings) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    store = open_store(embedder, index_dir=tmp_path / "index", chroma_url=None, collection="guidance")
    first = build_index(store, embedder, folder, root=tmp_path)
    assert first.documents == 5 and first.added == first.passages > 30 and first.removed == 0
    again = build_index(store, embedder, folder, root=tmp_path)
    assert (again.added, again.kept, again.removed) == (0, first.passages, 0)

    edited = folder / "003-facing-the-music.md"
    edited.write_text(
        edited.read_text(encoding="utf-8") + "\nAlways thank the customer for raising the issue.\n", encoding="utf-8"
    )
    (folder / "004-dealing-with-customers.md").unlink()
    third = build_index(store, embedder, folder, root=tmp_path)
    assert third.documents == 4 and 1 <= third.added <= 3 and third.removed > 5
    assert store.count() == third.passages
    assert not any(p.source.endswith("004-dealing-with-customers.md") for p in store.all_passages())


def test_a_broken_document_keeps_its_last_good_passages(tmp_path: Path, embedder: MiniLMEmbeddings) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    store = open_store(embedder, index_dir=tmp_path / "index", chroma_url=None, collection="guidance")
    first = build_index(store, embedder, folder, root=tmp_path)
    (folder / "001-customer-relationship-management.md").write_bytes(b"\x00\x00binary junk\x00")
    report = build_index(store, embedder, folder, root=tmp_path)
    assert report.problems and "001-customer-relationship-management.md" in report.problems[0]
    assert report.removed == 0 and store.count() == first.passages


class _FailingEmbedder(MiniLMEmbeddings):
    """The real embedder that dies after its first batch, as a killed re-index would."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.batches += 1
        if self.batches > 1:
            raise RuntimeError("interrupted")
        return super().embed_documents(texts)


def test_an_interrupted_reindex_leaves_the_old_index_usable(
    tmp_path: Path, embedder: MiniLMEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copilot.index

    monkeypatch.setattr(copilot.index, "EMBED_BATCH", 8)
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    store = open_store(embedder, index_dir=tmp_path / "index", chroma_url=None, collection="guidance")
    before = build_index(store, embedder, folder, root=tmp_path).passages
    for path in folder.glob("*.md"):  # every passage changes, so the re-index must embed them all
        path.write_text(path.read_text(encoding="utf-8").replace("customer", "client"), encoding="utf-8")
    failing = _FailingEmbedder()
    with pytest.raises(RuntimeError, match="interrupted"):
        build_index(store, failing, folder, root=tmp_path)
    assert store.count() >= before
    # Old and half-written new passages coexist until the next full run, so look a little deeper than 3.
    hits = Retriever(store, embedder).retrieve("should I tell an upset customer to calm down?", 6)
    assert any("to calm down" in h.text for h in hits)


def test_retrieval_finds_the_calm_down_guidance(retriever: Retriever) -> None:
    hits = retriever.retrieve("should I tell an upset customer to calm down?", 3)
    assert len(hits) == 3
    assert any("avoid telling your customer to calm down" in h.text for h in hits)
    assert all(h.source.startswith("knowledge/") and h.title for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert retriever.retrieve("   ", 3) == []


def test_chroma_server_serves_index_and_retrieval_and_recovers(
    chroma_server: tuple[str, subprocess.Popen[bytes], Path], embedder: MiniLMEmbeddings, tmp_path: Path
) -> None:
    url, process, path = chroma_server
    store = open_store(embedder, index_dir=tmp_path / "unused", chroma_url=url, collection="guidance")
    report = build_index(store, embedder, ROOT / "knowledge", root=ROOT)
    assert report.passages > 30 and store.count() == report.passages
    hits = Retriever(store, embedder).retrieve("can I pass an angry caller to another department?", 3)
    assert any("department" in h.text for h in hits)

    process.terminate()
    process.wait(10)
    with pytest.raises(IndexUnavailableError) as info:
        store.count()
    assert "could not be used" in info.value.message and info.value.fix

    port = int(url.rsplit(":", 1)[1])
    exe = Path(sys.executable).with_name("chroma")
    restarted = subprocess.Popen(
        [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"{url}/api/v2/heartbeat", 60)
        reopened = open_store(embedder, index_dir=tmp_path / "unused", chroma_url=url, collection="guidance")
        assert reopened.count() == report.passages  # nothing was lost while the server was down
    finally:
        restarted.terminate()
        restarted.wait(10)


def test_unreachable_chroma_server_is_a_clear_error(embedder: MiniLMEmbeddings, tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailableError) as info:
        open_store(embedder, index_dir=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}", collection="guidance")
    assert "Could not open the guidance index" in info.value.message
    assert "chroma run" in (info.value.fix or "")


def test_cli_index_then_retrieve_json(tmp_path: Path) -> None:
    env = dict(os.environ, COPILOT_DATA_DIR=str(tmp_path / "data"))
    index = subprocess.run(
        [sys.executable, "-m", "copilot.cli", "index", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(index.stdout)["documents"] == 5
    out = subprocess.run(
        [sys.executable, "-m", "copilot.cli", "retrieve", "should I tell an upset customer to calm down?", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    hits = json.loads(out.stdout)
    assert {"text", "title", "source", "score"} <= set(hits[0])
    assert any(
        "calm down" in h["text"] and h["source"] == "knowledge/001-customer-relationship-management.md"
        for h in hits[:3]
    )
