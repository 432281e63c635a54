"""Incremental indexing of the knowledge folder into the guidance store."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from copilot.documents import Passage, load_documents, split_passages
from copilot.embeddings import MiniLMEmbeddings
from copilot.store import GuidanceStore

EMBED_BATCH = 64


@dataclass
class IndexReport:
    """What one indexing run did."""

    documents: int
    passages: int
    added: int
    kept: int
    removed: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.documents} documents, {self.passages} passages: {self.added} added, {self.kept} kept, "
            f"{self.removed} removed in {self.seconds:.1f} s"
            + (f"; {len(self.problems)} file(s) skipped" if self.problems else "")
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return asdict(self)


def build_index(
    store: GuidanceStore,
    embedder: MiniLMEmbeddings,
    knowledge_dir: Path,
    *,
    root: Path | None = None,
    progress: bool = False,
) -> IndexReport:
    """Bring the store in line with the knowledge folder, embedding only passages that changed.

    New passages are added before stale ones are removed, so an interrupted run leaves a usable index.
    """
    started = time.perf_counter()
    loaded = load_documents(knowledge_dir, root)
    passages: dict[str, Passage] = {}
    for document in loaded.documents:
        for passage in split_passages(document):
            passages.setdefault(passage.id, passage)
    existing_ids = store.ids()
    new = [p for pid, p in passages.items() if pid not in existing_ids]
    _embed_and_add(store, embedder, new, progress=progress)

    # A file that failed to load this time keeps its last good passages: nothing the agents rely on is lost.
    failed_sources = {problem.split(":", 1)[0] for problem in loaded.problems}
    stale = existing_ids - passages.keys()
    if failed_sources and stale:
        keep = {
            p.id for p in store.all_passages() if any(p.source and src.endswith(p.source) for src in failed_sources)
        }
        stale -= keep
    store.delete(stale)
    return IndexReport(
        documents=len(loaded.documents),
        passages=len(passages),
        added=len(new),
        kept=len(passages) - len(new),
        removed=len(stale),
        seconds=time.perf_counter() - started,
        problems=loaded.problems,
    )


def _embed_and_add(
    store: GuidanceStore, embedder: MiniLMEmbeddings, passages: list[Passage], *, progress: bool
) -> None:
    from tqdm import tqdm

    bar = tqdm(
        total=len(passages), unit="passage", desc="Embedding", disable=not progress or len(passages) < EMBED_BATCH
    )
    with bar:
        for start in range(0, len(passages), EMBED_BATCH):
            batch = passages[start : start + EMBED_BATCH]
            store.add(batch, embedder.embed_documents([p.embedding_text for p in batch]))
            bar.update(len(batch))
