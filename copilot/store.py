"""The vector store: Chroma embedded in the data directory, or a Chroma server when a URL is configured."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from copilot.documents import Passage
from copilot.embeddings import MiniLMEmbeddings
from copilot.errors import IndexUnavailableError


def _embedding_function_class() -> Any:
    from chromadb.api.types import Documents, EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class CopilotMiniLM(EmbeddingFunction[Documents]):
        """Chroma's view of our embedder; storing no path keeps the collection valid after the venv moves."""

        def __init__(self, embedder: MiniLMEmbeddings | None = None) -> None:
            self.embedder = embedder or MiniLMEmbeddings()

        def __call__(self, input: Documents) -> Any:
            import numpy as np

            return [np.asarray(v, dtype=np.float32) for v in self.embedder.embed_documents(list(input))]

        @staticmethod
        def name() -> str:
            return "copilot-minilm"

        def default_space(self) -> Any:
            return "cosine"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> CopilotMiniLM:
            return CopilotMiniLM()

    return CopilotMiniLM


_EF_CLASS: Any = None


def chroma_embedding_function(embedder: MiniLMEmbeddings) -> Any:
    """Wrap our embedder for Chroma; always passed, so Chroma never falls back to its downloading default."""
    global _EF_CLASS
    if _EF_CLASS is None:
        _EF_CLASS = _embedding_function_class()
    return _EF_CLASS(embedder)


@dataclass(frozen=True)
class StoredPassage:
    """A passage as read back from the store."""

    id: str
    text: str
    title: str
    heading: str
    source: str


class GuidanceStore:
    """The guidance collection, behind the few operations the indexer and retriever need."""

    def __init__(self, collection: Any, location: str) -> None:
        self._collection = collection
        self.location = location

    def count(self) -> int:
        """Number of stored passages."""
        return int(self._guard(self._collection.count))

    def ids(self) -> set[str]:
        """Ids of every stored passage."""
        result = self._guard(lambda: self._collection.get(include=[]))
        return set(result["ids"])

    def add(self, passages: Sequence[Passage], embeddings: Sequence[Sequence[float]]) -> None:
        """Store passages with their precomputed embeddings (upsert, so a retried add is harmless)."""
        if not passages:
            return
        self._guard(
            lambda: self._collection.upsert(
                ids=[p.id for p in passages],
                documents=[p.text for p in passages],
                embeddings=[list(e) for e in embeddings],
                metadatas=[
                    {"title": p.title, "heading": p.heading, "source": p.source, "position": p.position}
                    for p in passages
                ],
            )
        )

    def delete(self, ids: Iterable[str]) -> None:
        """Remove passages by id."""
        ids = list(ids)
        if ids:
            self._guard(lambda: self._collection.delete(ids=ids))

    def all_passages(self) -> list[StoredPassage]:
        """Every stored passage (for the keyword index and listings)."""
        result = self._guard(lambda: self._collection.get(include=["documents", "metadatas"]))
        return [
            _stored(i, d, m) for i, d, m in zip(result["ids"], result["documents"], result["metadatas"], strict=True)
        ]

    def query(self, embedding: Sequence[float], k: int) -> list[tuple[StoredPassage, float]]:
        """Nearest passages by cosine similarity, best first."""
        n = min(k, self.count())
        if n == 0:
            return []
        result = self._guard(
            lambda: self._collection.query(
                query_embeddings=[list(embedding)], n_results=n, include=["documents", "metadatas", "distances"]
            )
        )
        rows = zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        )
        return [(_stored(i, d, m), 1.0 - float(dist)) for i, d, m, dist in rows]

    def _guard(self, call: Any) -> Any:
        try:
            return call()
        except IndexUnavailableError:
            raise
        except Exception as exc:  # Chroma raises many types; all mean the same to the agent.
            raise IndexUnavailableError(
                f"The guidance index at {self.location} could not be used ({type(exc).__name__}: {exc}).",
                fix="check that the Chroma server is running, or run `copilot index` to rebuild the index",
            ) from exc


def _stored(pid: str, document: str | None, metadata: Any) -> StoredPassage:
    meta = dict(metadata or {})
    return StoredPassage(
        id=pid,
        text=document or "",
        title=str(meta.get("title", "")),
        heading=str(meta.get("heading", "")),
        source=str(meta.get("source", "")),
    )


def open_store(
    embedder: MiniLMEmbeddings, *, index_dir: Path, chroma_url: str | None, collection: str
) -> GuidanceStore:
    """Open (or create) the guidance collection, embedded or on a server."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if len(collection) < 3:
        raise IndexUnavailableError(f"Collection name {collection!r} is too short.", fix="use at least 3 characters")
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if chroma_url:
            url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            location = chroma_url
        else:
            index_dir.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(index_dir), settings=chroma_settings)
            location = str(index_dir)
        handle = client.get_or_create_collection(
            name=collection,
            embedding_function=chroma_embedding_function(embedder),
            configuration={"hnsw": {"space": "cosine"}},
        )
    except Exception as exc:
        where = chroma_url or str(index_dir)
        raise IndexUnavailableError(
            f"Could not open the guidance index at {where} ({type(exc).__name__}: {exc}).",
            fix="start the Chroma server (chroma run --path DIR --port N) or unset COPILOT_CHROMA_URL",
        ) from exc
    return GuidanceStore(handle, location)
