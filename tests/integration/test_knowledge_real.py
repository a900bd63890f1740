"""The knowledge base on real MiniLM embeddings and real embedded Qdrant (a folder on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from r1agent.errors import ConfigurationError, InputError, NotFoundError
from r1agent.knowledge import KnowledgeBase
from r1agent.knowledge.store import demo_kb_files
from r1agent.models.embeddings import load_embeddings

POLICY = """# Shop policy

## Returns
Delivered orders can be returned within 30 days. The refund goes to the original payment method.

## Shipping
Standard shipping takes 3 to 5 business days. Express shipping takes one day.
"""


@pytest.fixture(scope="module")
def embeddings() -> Embeddings:
    return load_embeddings()


@pytest.fixture
def kb(tmp_path: Path, embeddings: Embeddings) -> KnowledgeBase:
    return KnowledgeBase.open(embeddings, collection="test", path=tmp_path / "qdrant")


def test_search_finds_the_relevant_section_with_its_title(kb: KnowledgeBase, tmp_path: Path) -> None:
    doc = tmp_path / "policy.md"
    doc.write_text(POLICY)
    report = kb.add_file(doc)
    assert report.chunks == 2
    hits = kb.search("how many days do I have to send something back?", k=2)
    assert hits[0]["title"] == "Shop policy › Returns"
    assert hits[0]["source"] == str(doc.resolve())
    assert hits[0]["score"] > hits[1]["score"]
    assert kb.search("how fast is express delivery?", k=1)[0]["title"] == "Shop policy › Shipping"


def test_re_adding_a_file_replaces_its_chunks(kb: KnowledgeBase, tmp_path: Path) -> None:
    doc = tmp_path / "policy.md"
    doc.write_text(POLICY)
    kb.add_file(doc)
    kb.add_file(doc)
    assert kb.count() == 2  # stable ids: idempotent
    doc.write_text("# Shop policy\n\n## Returns\nReturns are accepted for 60 days.\n")
    kb.add_file(doc)
    assert kb.count() == 1  # the shipping chunk of the old version is gone
    assert "60 days" in kb.search("return window", k=1)[0]["text"]


def test_store_persists_across_clients(tmp_path: Path, embeddings: Embeddings) -> None:
    doc = tmp_path / "policy.md"
    doc.write_text(POLICY)
    first = KnowledgeBase.open(embeddings, collection="test", path=tmp_path / "q")
    first.add_file(doc, source="policy")
    first.close()
    second = KnowledgeBase.open(embeddings, collection="test", path=tmp_path / "q")
    assert second.sources() == {"policy": 2}
    second.remove("policy")
    assert second.sources() == {}
    with pytest.raises(NotFoundError):
        second.remove("policy")
    second.close()


def test_a_second_client_on_the_same_folder_gets_a_clear_error(tmp_path: Path, embeddings: Embeddings) -> None:
    first = KnowledgeBase.open(embeddings, collection="test", path=tmp_path / "q")
    first.count()  # opens the folder
    second = KnowledgeBase.open(embeddings, collection="test", path=tmp_path / "q")
    with pytest.raises(ConfigurationError, match="in use by another r1agent process"):
        second.count()
    first.close()


def test_bad_files_are_refused_with_a_reason(kb: KnowledgeBase, tmp_path: Path) -> None:
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(b"%PDF-1.7")
    with pytest.raises(InputError, match=r"unsupported file type \.pdf"):
        kb.add_file(pdf)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        kb.add_file(latin)
    with pytest.raises(NotFoundError):
        kb.add_file(tmp_path / "missing.md")
    assert kb.count() == 0


def test_seed_files_are_ingested_once_when_empty(tmp_path: Path, embeddings: Embeddings) -> None:
    doc = tmp_path / "policy.md"
    doc.write_text(POLICY)
    kb = KnowledgeBase.open(embeddings, collection="t", path=tmp_path / "q", seed=[(doc, "demo/policy.md")])
    assert kb.sources() == {"demo/policy.md": 2}
    kb.clear()
    kb.close()
    reopened = KnowledgeBase.open(embeddings, collection="t", path=tmp_path / "q", seed=[(doc, "demo/policy.md")])
    assert reopened.count() == 2  # an emptied store is re-seeded on next start
    reopened.close()


class CountingEmbeddings(Embeddings):
    """The real model, counting the documents it is asked to embed."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.model_name = getattr(inner, "model_name", "")
        self.documents = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def test_the_demo_seed_is_embedded_once_per_cache_not_once_per_data_dir(tmp_path: Path, embeddings: Embeddings) -> None:
    counting = CountingEmbeddings(embeddings)
    seed = [(p, "demo/" + p.name) for p in demo_kb_files()]
    question = "How long do I have to return an item?"
    kbs = []
    for data in ("first", "second"):
        kb = KnowledgeBase.open(
            counting, collection="demo", path=tmp_path / data, seed=seed, cache_dir=tmp_path / "cache"
        )
        kbs.append((kb.count(), counting.documents, kb.search(question, k=1)))
        kb.close()
    (n1, embedded1, hit1), (n2, embedded2, hit2) = kbs
    assert n1 == n2 == embedded1 > 0  # every chunk embedded by the first start...
    assert embedded2 == embedded1  # ...and none again by the second
    assert hit1[0]["source"] == hit2[0]["source"] and hit1[0]["score"] == pytest.approx(hit2[0]["score"], abs=1e-5)
