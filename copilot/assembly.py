"""The composition root: the one place where the copilot is built from settings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.checker import Checker
from copilot.errors import CopilotError
from copilot.privacy import should_redact
from copilot.prompts import PromptLibrary
from copilot.settings import Settings

if TYPE_CHECKING:
    from copilot.embeddings import MiniLMEmbeddings
    from copilot.index import IndexReport
    from copilot.llm import ChatModel
    from copilot.local_model import LocalModelServer
    from copilot.pipeline import Copilot
    from copilot.retrieval import Retriever
    from copilot.store import GuidanceStore

log = logging.getLogger("copilot")


def load_checker(settings: Settings) -> Checker:
    """The checker alone: no model, no index, so `copilot check` answers at once (its compiled patterns are kept in
    the data folder for the next start)."""
    return Checker.load(settings.prompts_dir / "checker", keep=settings.data_dir / "cache")


def open_guidance(settings: Settings) -> tuple[MiniLMEmbeddings, GuidanceStore]:
    """The embedder and the guidance store named by the settings."""
    from copilot.embeddings import MiniLMEmbeddings
    from copilot.store import open_store

    embedder = MiniLMEmbeddings()
    store = open_store(
        embedder, index_dir=settings.index_dir, chroma_url=settings.chroma_url, collection=settings.collection
    )
    return embedder, store


def make_retriever(settings: Settings, embedder: MiniLMEmbeddings, store: GuidanceStore) -> Retriever:
    """The hybrid retriever with the trainers' synonym groups."""
    from copilot.retrieval import Retriever, Thesaurus

    return Retriever(store, embedder, thesaurus=Thesaurus.load(settings.prompts_dir / "synonyms.yaml"))


def reindex(
    settings: Settings, embedder: MiniLMEmbeddings, store: GuidanceStore, progress: bool = False
) -> IndexReport:
    """Bring the index in line with the knowledge folder."""
    from copilot.index import build_index

    return build_index(store, embedder, settings.knowledge_dir, root=settings.knowledge_dir.parent, progress=progress)


def model_name_for(settings: Settings) -> str:
    """The model to ask an OpenAI-compatible endpoint for."""
    if settings.model:
        return settings.model
    if not settings.openai_base_url or "api.openai.com" in settings.openai_base_url:
        return "gpt-4o-mini"
    return "default"


def start_local_server(settings: Settings, progress: bool = True) -> LocalModelServer:
    """Assemble (once) and start the embedded llama.cpp server on loopback."""
    from copilot.local_model import LocalModelServer, ensure_model_file

    model_path = settings.local_model or ensure_model_file(settings.models_dir, progress=progress)
    if not Path(model_path).is_file():
        raise CopilotError(
            f"The model file {model_path} does not exist.", fix="point COPILOT_LOCAL_MODEL at a .gguf file"
        )
    # The RAM prompt cache keeps the draft and revise prefixes (and each customer type's guidance) warm at once.
    server = LocalModelServer(
        Path(model_path),
        port=settings.local_model_port,
        log_path=settings.data_dir / "logs" / "llama-server.log",
        prompt_cache=True,
    )
    server.start()
    return server


def chat_model_for(settings: Settings, server: LocalModelServer | None) -> ChatModel:
    """The chat model: the configured endpoint, or the embedded server."""
    from copilot.llm import openai_chat_model

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if server is not None:
        return openai_chat_model(
            model=server.model_name,
            base_url=server.base_url,
            api_key=None,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_retries,
        )
    return openai_chat_model(
        model=model_name_for(settings),
        base_url=settings.openai_base_url,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_retries,
    )


@dataclass
class Assembly:
    """A built copilot and the resources it holds (store, retriever, embedded model server)."""

    settings: Settings
    copilot: Copilot
    embedder: MiniLMEmbeddings | None = None
    store: GuidanceStore | None = None
    retriever: Retriever | None = None
    server: LocalModelServer | None = None
    startup_notices: list[str] = field(default_factory=list)

    def reindex(self, progress: bool = False) -> IndexReport:
        """Re-index the knowledge folder and refresh the keyword index."""
        if self.store is None or self.embedder is None or self.retriever is None:
            raise CopilotError("The guidance index is not available in this session.", fix="restart the app")
        report = reindex(self.settings, self.embedder, self.store, progress=progress)
        self.retriever.refresh()
        return report

    def close(self) -> None:
        """Stop the embedded model server, if this assembly started one."""
        if self.server is not None:
            self.server.stop()


def build_copilot(
    settings: Settings,
    *,
    with_model: bool = True,
    with_index: bool = True,
    chat: ChatModel | None = None,
    progress: bool = False,
) -> Assembly:
    """Build the copilot from settings: checker, prompts, guidance index (built if empty), and model."""
    from copilot.pipeline import Copilot

    checker = load_checker(settings)
    prompts = PromptLibrary(settings.prompts_dir)
    notices: list[str] = []
    embedder = store = retriever = None
    if with_index:
        embedder, store = open_guidance(settings)
        if store.count() == 0:
            report = reindex(settings, embedder, store, progress=progress)
            notices.append(f"Built the guidance index: {report.summary()}")
            notices.extend(report.problems)
        retriever = make_retriever(settings, embedder, store)
        retriever.warm()  # load the embedding model and keyword index now, not on the agent's first request
    server = None
    injected_chat = chat
    if chat is None and with_model:
        if settings.uses_embedded_model:
            server = start_local_server(settings, progress=progress)
        chat = chat_model_for(settings, server)
    copilot = Copilot(
        checker=checker,
        prompts=prompts,
        chat=chat,
        retriever=retriever,
        top_k=settings.top_k,
        revise_rounds=settings.revise_rounds,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        seed=settings.seed,
        max_message_chars=settings.max_message_chars,
        before_model_call=server.ensure_running if server is not None else None,
        # An injected chat model (tests, embedding apps) runs in this process: mask only when asked to.
        redact_pii=should_redact(settings.redact_pii, settings.openai_base_url, embedded=server is not None)
        if injected_chat is None
        else settings.redact_pii == "on",
    )
    return Assembly(
        settings=settings,
        copilot=copilot,
        embedder=embedder,
        store=store,
        retriever=retriever,
        server=server,
        startup_notices=notices,
    )


@contextlib.contextmanager
def assembled(settings: Settings, **options: object) -> Iterator[Assembly]:
    """build_copilot as a context manager that always stops what it started."""
    assembly = build_copilot(settings, **options)  # type: ignore[arg-type]
    try:
        yield assembly
    finally:
        assembly.close()
