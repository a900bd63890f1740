"""The one place where settings become live objects: models, stores, tools and the checkpointer.

Nodes never import these; the graph receives a :class:`Deps` and binds what each node needs, so a
test builds a ``Deps`` from tiny real parts (an in-memory Qdrant, a small model) or fakes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from langchain_core.embeddings import Embeddings
from langgraph.checkpoint.base import BaseCheckpointSaver

from r1agent.errors import ConfigurationError
from r1agent.guardrails import ContentFilter
from r1agent.intents import IntentClassifier, load_taxonomy
from r1agent.knowledge import KnowledgeBase, demo_kb_files
from r1agent.knowledge.cache import AnswerCache
from r1agent.models.adapter import apply_adapter
from r1agent.models.allocator import reuse_freed_memory
from r1agent.models.backend import ChatBackend
from r1agent.models.chat import load_chat_model
from r1agent.models.embeddings import load_embeddings, memo_embeddings
from r1agent.models.int4 import pack_linears
from r1agent.nodes.perception import AudioPerceiver, ImagePerceiver
from r1agent.perception.audio import AudioPerceiver as WhisperPerceiver
from r1agent.perception.images import ImagePerceiver as TesseractPerceiver
from r1agent.plugins import load_plugins
from r1agent.settings import Settings
from r1agent.tickets import SqliteTicketStore, TicketStore
from r1agent.tools import AgentTool

DEMO_SOURCE_PREFIX = "r1agent-demo/"


@dataclass
class Deps:
    """The live objects the graph's nodes use; build them with :func:`build_deps`, close with :meth:`close`."""

    settings: Settings
    llm: ChatBackend
    embeddings: Embeddings
    kb: KnowledgeBase
    classifier: IntentClassifier
    tickets: TicketStore
    tools: tuple[AgentTool, ...] = field(default_factory=tuple)
    images: ImagePerceiver | None = None
    audio: AudioPerceiver | None = None
    answer_cache: AnswerCache | None = None
    """The semantic answer cache (``R1AGENT_ANSWER_CACHE``); None: every knowledge turn runs the model."""
    content_filter: ContentFilter = field(default_factory=ContentFilter.load)
    """The input content filter (``R1AGENT_BLOCKLIST``); the shipped default list unless given."""

    def close(self) -> None:
        self.kb.close()
        for tool in self.tools:
            tool.close()
        for owner in (self.tickets, self.llm):  # optional: not every store or backend holds resources
            close = getattr(owner, "close", None)
            if callable(close):
                close()


def open_knowledge_base(settings: Settings, embeddings: Embeddings) -> KnowledgeBase:
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    seed = [(p, DEMO_SOURCE_PREFIX + p.name) for p in demo_kb_files()] if settings.seed_demo_kb else []
    return KnowledgeBase.open(
        embeddings,
        collection=settings.collection,
        path=None if settings.qdrant_url else settings.qdrant_path,
        url=settings.qdrant_url,
        api_key=api_key,
        seed=seed,
        cache_dir=settings.cache_dir,
    )


def open_answer_cache(settings: Settings, kb: KnowledgeBase) -> AnswerCache | None:
    if not settings.answer_cache:
        return None
    return AnswerCache(
        kb,
        min_similarity=settings.answer_cache_min_similarity,
        ttl_s=settings.answer_cache_ttl_s,
        max_entries=settings.answer_cache_max_entries,
    )


def load_llm(settings: Settings) -> ChatBackend:
    """The chat model: on the server at ``R1AGENT_LLM_URL`` when set, else a local transformers folder."""
    if settings.llm_url is None:
        llm = load_chat_model(
            settings.model,
            cache_dir=settings.cache_dir,
            device=settings.device,
            max_new_tokens=settings.max_new_tokens,
            repetition_penalty=settings.repetition_penalty,
            torch_threads=settings.torch_threads,
            max_batch=settings.max_batch,
            batch_window_ms=settings.batch_window_ms,
            generate_workers=settings.generate_workers,
            # PEFT merges into plain linear layers: with an adapter, pack (or not) after the merge.
            weights="full" if settings.adapter else settings.weights,
            lean_layers=settings.lean_layers,
        )
        if settings.adapter is None:
            return llm
        merged = apply_adapter(llm, settings.adapter)  # R1AGENT_ADAPTER: a LoRA from `r1agent train dpo`, merged in
        packed = pack_linears(
            merged.model, settings.weights, penalty=settings.repetition_penalty, lean=settings.lean_layers
        )
        return replace(merged, weights=packed)
    if settings.adapter is not None:
        # The weights live on the server: an adapter is the server's to load (vLLM: --enable-lora).
        raise ConfigurationError("R1AGENT_ADAPTER cannot apply to a remote model (R1AGENT_LLM_URL): load it there")
    try:
        from r1agent.models.remote import load_remote_chat_model
    except ImportError as exc:
        raise ConfigurationError(
            "R1AGENT_LLM_URL needs the OpenAI-compatible client: pip install 'r1agent[remote]'"
        ) from exc
    return load_remote_chat_model(
        settings.llm_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        max_new_tokens=settings.max_new_tokens,
        think=settings.llm_think,
    )


def build_deps(settings: Settings) -> Deps:
    """Everything the graph needs, from settings alone."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.malloc_reuse:
        reuse_freed_memory()  # before the models load: their tensors are what it is for
    content_filter = ContentFilter.load(settings.blocklist)  # first: a bad list fails before models load
    # One turn embeds its text for intent, the answer cache and retrieval: the memo makes that one embedding.
    embeddings = memo_embeddings(load_embeddings(settings.embedding_model))
    kb = open_knowledge_base(settings, embeddings)
    taxonomy = load_taxonomy(settings.taxonomy, overlay=settings.intents_overlay_path)  # + reviewed corrections
    classifier = IntentClassifier.fit(taxonomy, embeddings, cache_dir=settings.cache_dir)
    llm = load_llm(settings)
    return Deps(
        settings=settings,
        llm=llm,
        embeddings=embeddings,
        kb=kb,
        classifier=classifier,
        tickets=SqliteTicketStore(settings.tickets_path),
        tools=tuple(loaded.tool for loaded in load_plugins(settings)),
        content_filter=content_filter,
        answer_cache=open_answer_cache(settings, kb),
        # Both load their models on first use: a text-only deployment pays nothing for them.
        images=TesseractPerceiver(max_bytes=settings.max_image_bytes, ocr_languages=settings.ocr_languages),
        audio=WhisperPerceiver(
            max_bytes=settings.max_audio_bytes,
            max_seconds=settings.max_audio_seconds,
            model_folder=settings.speech_model,
        ),
    )


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver[str]]:
    """Durable threads: Postgres when ``R1AGENT_POSTGRES_URL`` is set, else a SQLite file."""
    if settings.postgres_url is not None:
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as exc:
            from r1agent.errors import ConfigurationError

            raise ConfigurationError("R1AGENT_POSTGRES_URL needs: pip install 'r1agent[postgres]'") from exc
        with PostgresSaver.from_conn_string(settings.postgres_url.get_secret_value()) as saver:
            saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(settings.checkpoint_path), check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()
