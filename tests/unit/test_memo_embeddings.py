"""The embedding memo: one turn's text is embedded once, whoever asks; bulk ingestion is not remembered."""

from __future__ import annotations

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from r1agent.models.embeddings import MemoEmbeddings


class Counting(Embeddings):
    def __init__(self) -> None:
        self.inner = DeterministicFakeEmbedding(size=8)
        self.documents: list[str] = []
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self.inner.embed_query(text)


def test_a_symmetric_model_embeds_a_turn_once_for_classifier_cache_and_search() -> None:
    inner = Counting()
    memo = MemoEmbeddings(inner, symmetric=True)
    first = memo.embed_documents(["where is my order"])  # the intent classifier
    assert memo.embed_query("where is my order") == first[0]  # the answer cache, then retrieval
    assert memo.embed_query("where is my order") == first[0]
    assert inner.documents == ["where is my order"] and inner.queries == []


def test_an_asymmetric_model_keeps_queries_and_documents_apart() -> None:
    inner = Counting()
    memo = MemoEmbeddings(inner)
    memo.embed_documents(["hello"])
    memo.embed_query("hello")
    memo.embed_query("hello")
    assert inner.documents == ["hello"] and inner.queries == ["hello"]


def test_only_missing_texts_are_embedded_and_order_is_kept() -> None:
    inner = Counting()
    memo = MemoEmbeddings(inner)
    a, b = memo.embed_documents(["a", "b"])
    inner.documents.clear()
    assert memo.embed_documents(["b", "c", "a"]) == [b, inner.inner.embed_documents(["c"])[0], a]
    assert inner.documents == ["c"]


def test_the_memo_is_bounded_and_bulk_batches_are_not_remembered() -> None:
    inner = Counting()
    memo = MemoEmbeddings(inner, maxsize=2)
    for text in ["a", "b", "c"]:
        memo.embed_query(text)
    inner.queries.clear()
    memo.embed_query("a")  # evicted: the oldest went first
    memo.embed_query("c")
    assert inner.queries == ["a"]
    chunks = [f"chunk {i}" for i in range(20)]
    memo.embed_documents(chunks)
    inner.documents.clear()
    memo.embed_documents(chunks[:1])
    assert inner.documents == ["chunk 0"]
    assert memo.model_name == "Counting"
