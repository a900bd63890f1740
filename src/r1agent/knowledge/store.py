"""Qdrant-backed knowledge base.

Embedded local mode (a folder) by default, a Qdrant server by URL. Chunk ids are derived from the
file's source key and the chunk's position, and re-adding a file first deletes its old chunks, so
``kb add`` is idempotent and an edited file never leaves stale chunks behind.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter
from qdrant_client import QdrantClient, models

from r1agent.errors import ConfigurationError, InputError, NotFoundError
from r1agent.models.embeddings import embed_documents_cached
from r1agent.state import Source

SUPPORTED_SUFFIXES = {".md", ".markdown", ".txt"}
MAX_FILE_BYTES = 5_000_000
CHUNK_CHARS = 900
CHUNK_OVERLAP = 120
_NAMESPACE = uuid.UUID("6c1f6a52-8f0e-4c7e-9a53-6f1a2f1c0b7d")


@dataclass(frozen=True)
class Chunk:
    title: str
    text: str


@dataclass(frozen=True)
class IngestReport:
    source: str
    chunks: int


def demo_kb_files() -> list[Path]:
    """The bundled retail policy and product catalogue (MIT, from tau-bench; see data/kb/LICENSE)."""
    folder = Path(str(resources.files("r1agent") / "data" / "kb"))
    return [folder / "policy.md", folder / "products.md"]


def chunk_document(text: str, *, markdown: bool) -> list[Chunk]:
    """Split by Markdown headings first so a chunk never straddles two topics, then by size.

    Headings leave the text and become the chunk's title (embedded with it), so a size split never
    produces a chunk holding only a heading.
    """
    sizer = RecursiveCharacterTextSplitter(chunk_size=CHUNK_CHARS, chunk_overlap=CHUNK_OVERLAP)
    if not markdown:
        return [Chunk("", piece) for piece in sizer.split_text(text) if piece.strip()]
    headers = [("#", "h1"), ("##", "h2"), ("###", "h3")]
    sections = MarkdownHeaderTextSplitter(headers, strip_headers=True).split_text(text)
    chunks: list[Chunk] = []
    for section in sections:
        title = " › ".join(str(section.metadata[k]) for k in ("h1", "h2", "h3") if k in section.metadata)
        chunks.extend(Chunk(title, piece) for piece in sizer.split_text(section.page_content) if piece.strip())
    return chunks


class KnowledgeBase:
    """Chunks in a Qdrant collection. The client is opened on first use: embedded Qdrant locks its
    folder to one process, and commands that never search (``handoff resume``) should not take it."""

    def __init__(
        self,
        connect: Callable[[], QdrantClient],
        embeddings: Embeddings,
        collection: str,
        *,
        remote: bool = False,
        seed: Sequence[tuple[Path, str]] = (),
        cache_dir: Path | None = None,
    ) -> None:
        self._connect = connect
        self._conn: QdrantClient | None = None
        self._embeddings = embeddings
        self._collection = collection
        self._remote = remote
        self._seed = list(seed)
        self._seed_cache = cache_dir

    @classmethod
    def open(
        cls,
        embeddings: Embeddings,
        *,
        collection: str,
        path: Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        seed: Sequence[tuple[Path, str]] = (),
        cache_dir: Path | None = None,
    ) -> KnowledgeBase:
        """``seed``: (file, source) pairs ingested when the collection is first found empty, their vectors
        kept in ``cache_dir`` (the same files at every first start of a data dir)."""

        def connect() -> QdrantClient:
            if url:
                return QdrantClient(url=url, api_key=api_key)
            if path is None:
                return QdrantClient(location=":memory:")
            path.mkdir(parents=True, exist_ok=True)
            try:
                return QdrantClient(path=str(path))
            except RuntimeError as exc:  # portalocker: another process holds the folder
                raise ConfigurationError(
                    f"the knowledge base in {path} is in use by another r1agent process (embedded Qdrant "
                    "serves one process); stop it, or run a Qdrant server and set R1AGENT_QDRANT_URL"
                ) from exc

        return cls(connect, embeddings, collection, remote=bool(url), seed=seed, cache_dir=cache_dir)

    @property
    def _client(self) -> QdrantClient:
        if self._conn is None:
            self._conn = self._connect()
            if self._seed and self.count() == 0:
                for file, source in self._seed:
                    self.add_file(file, source=source, cache_dir=self._seed_cache)
        return self._conn

    @property
    def client(self) -> QdrantClient:
        """The Qdrant client, opened (and the demo seeded) on first use; the answer cache shares it."""
        return self._client

    @property
    def collection(self) -> str:
        return self._collection

    def embed_query(self, text: str) -> list[float]:
        return self._embeddings.embed_query(text)

    def revision(self) -> str:
        """Changes whenever the knowledge changes (kept in the collection's metadata, so every process
        sharing a Qdrant server sees it): what cached answers were written under. Empty: no knowledge."""
        if not self._client.collection_exists(self._collection):
            return ""
        metadata = self._client.get_collection(self._collection).config.metadata or {}
        return str(metadata.get("revision", ""))

    def _touch(self) -> None:
        self._client.update_collection(self._collection, metadata={"revision": uuid.uuid4().hex})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _ensure_collection(self) -> None:
        if self._client.collection_exists(self._collection):
            return
        size = len(self._embeddings.embed_query("dimension probe"))
        self._client.create_collection(
            self._collection,
            vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE),
        )
        if self._remote:  # local mode scans payloads anyway and warns that indexes do nothing
            # Keyed lookups by source make "replace this file's chunks" a cheap filtered delete.
            self._client.create_payload_index(self._collection, "source", models.PayloadSchemaType.KEYWORD)

    def count(self) -> int:
        if not self._client.collection_exists(self._collection):
            return 0
        return self._client.count(self._collection, exact=True).count

    def add_file(self, path: Path, *, source: str | None = None, cache_dir: Path | None = None) -> IngestReport:
        """``cache_dir``: keep the chunks' vectors there by content (for files ingested again and again)."""
        if not path.is_file():
            raise NotFoundError(f"no such file: {path}")
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InputError(
                f"{path}: unsupported file type {path.suffix or '(none)'}; "
                f"the knowledge base takes {', '.join(sorted(SUPPORTED_SUFFIXES))}"
            )
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit per file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        key = source or str(path.resolve())
        return self.add_text(text, source=key, markdown=path.suffix.lower() != ".txt", cache_dir=cache_dir)

    def add_text(self, text: str, *, source: str, markdown: bool = True, cache_dir: Path | None = None) -> IngestReport:
        chunks = chunk_document(text, markdown=markdown)
        self._ensure_collection()
        self._delete_source(source)
        if chunks:
            texts = [_embed_text(c) for c in chunks]
            vectors = (
                embed_documents_cached(self._embeddings, texts, cache_dir, kind="kb").tolist()
                if cache_dir is not None
                else self._embeddings.embed_documents(texts)
            )
            points = [
                models.PointStruct(
                    id=str(uuid.uuid5(_NAMESPACE, f"{source}#{i}")),
                    vector=vector,
                    payload={"source": source, "title": c.title, "text": c.text, "position": i},
                )
                for i, (c, vector) in enumerate(zip(chunks, vectors, strict=True))
            ]
            self._client.upsert(self._collection, points=points, wait=True)
        self._touch()
        return IngestReport(source=source, chunks=len(chunks))

    def _delete_source(self, source: str) -> None:
        selector = models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))])
        )
        self._client.delete(self._collection, points_selector=selector, wait=True)

    def remove(self, source: str) -> None:
        if source not in self.sources():
            raise NotFoundError(f"no such source in the knowledge base: {source}")
        self._delete_source(source)
        self._touch()

    def sources(self) -> dict[str, int]:
        """Each source with its number of chunks."""
        if not self._client.collection_exists(self._collection):
            return {}
        counts: Counter[str] = Counter()
        offset = None
        while True:
            points, offset = self._client.scroll(
                self._collection, limit=256, offset=offset, with_payload=["source"], with_vectors=False
            )
            counts.update(str((p.payload or {}).get("source")) for p in points)
            if offset is None:
                return dict(sorted(counts.items()))

    def clear(self) -> None:
        if self._client.collection_exists(self._collection):
            self._client.delete_collection(self._collection)

    def search(self, query: str, *, k: int = 4, min_score: float = 0.0) -> list[Source]:
        if not query.strip() or not self._client.collection_exists(self._collection):
            return []
        vector = self._embeddings.embed_query(query)
        hits = self._client.query_points(
            self._collection, query=vector, limit=k, with_payload=True, score_threshold=min_score
        ).points
        results: list[Source] = []
        for hit in hits:
            payload = hit.payload or {}
            results.append(
                Source(
                    id=str(hit.id),
                    source=str(payload.get("source", "")),
                    title=str(payload.get("title", "")),
                    text=str(payload.get("text", "")),
                    score=round(float(hit.score), 4),
                )
            )
        return results


def _embed_text(chunk: Chunk) -> str:
    # The heading path gives a chunk its topic even when its body never names it.
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text
