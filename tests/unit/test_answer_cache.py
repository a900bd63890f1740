"""The answer cache's rules, on an in-memory Qdrant with a deterministic fake embedder (exact-match vectors)."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime
from qdrant_client import QdrantClient

from r1agent.context import Context
from r1agent.knowledge import KnowledgeBase
from r1agent.knowledge.cache import AnswerCache, CachedAnswer, normalise
from r1agent.nodes import cache as nodes
from r1agent.state import Source, State


@pytest.fixture
def kb() -> KnowledgeBase:
    kb = KnowledgeBase(lambda: QdrantClient(location=":memory:"), DeterministicFakeEmbedding(size=16), "kb")
    kb.add_text("# Returns\nReturns are accepted within 30 days.", source="policy.md")
    return kb


def answer(question: str, draft: str = "Within 30 days.") -> CachedAnswer:
    source = Source(id="1", source="policy.md", title="Returns", text="30 days", score=0.8)
    return CachedAnswer(question, draft, "", [source], [1], -0.5, True)


def test_a_question_is_found_again_in_other_case_and_spacing(kb: KnowledgeBase) -> None:
    cache = AnswerCache(kb)
    cache.store(answer("How long do I have to return an item?"), scope="s")
    hit = cache.lookup("  how long do I have to RETURN an item?  ", scope="s")
    assert hit is not None
    assert (hit.draft, hit.cited, hit.logprob, hit.finished) == ("Within 30 days.", [1], -0.5, True)
    assert hit.sources[0]["source"] == "policy.md"
    assert hit.similarity == pytest.approx(1.0, abs=1e-3)


def test_another_question_or_another_scope_misses(kb: KnowledgeBase) -> None:
    cache = AnswerCache(kb)
    cache.store(answer("How long do I have to return an item?"), scope="s")
    assert cache.lookup("Do you ship to Canada?", scope="s") is None
    assert cache.lookup("How long do I have to return an item?", scope="other model") is None


def test_a_change_to_the_knowledge_invalidates_every_entry(kb: KnowledgeBase) -> None:
    cache = AnswerCache(kb)
    cache.store(answer("How long do I have to return an item?"), scope="s")
    before = kb.revision()
    kb.add_text("# Returns\nReturns are accepted within 14 days now.", source="policy.md")
    assert kb.revision() != before
    assert cache.lookup("How long do I have to return an item?", scope="s") is None
    cache.store(answer("Do you ship to Canada?", "Yes."), scope="s")  # a write purges the stale entries
    assert cache.count() == 1
    kb.remove("policy.md")
    assert cache.lookup("Do you ship to Canada?", scope="s") is None


def test_entries_expire(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = AnswerCache(kb, ttl_s=60)
    cache.store(answer("How long do I have to return an item?"), scope="s")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    assert cache.lookup("How long do I have to return an item?", scope="s") is None


def test_the_table_is_bounded_and_the_oldest_go_first(kb: KnowledgeBase) -> None:
    cache = AnswerCache(kb, max_entries=3)
    for i in range(5):
        cache.store(answer(f"question number {i}"), scope="s")
    assert cache.count() == 3
    assert cache.lookup("question number 0", scope="s") is None
    assert cache.lookup("question number 4", scope="s") is not None


def test_the_same_question_overwrites_its_entry(kb: KnowledgeBase) -> None:
    cache = AnswerCache(kb)
    cache.store(answer("Where is the shop?", "Old."), scope="s")
    cache.store(answer("where is the shop?", "New."), scope="s")
    assert cache.count() == 1
    hit = cache.lookup("Where is the shop?", scope="s")
    assert hit is not None and hit.draft == "New."


def test_the_similarity_bound_is_checked() -> None:
    kb = KnowledgeBase(lambda: QdrantClient(location=":memory:"), DeterministicFakeEmbedding(size=8), "kb")
    with pytest.raises(ValueError, match="min_similarity"):
        AnswerCache(kb, min_similarity=0.0)
    assert normalise("Ｈｏｗ  LONG\u3000is it") == "how long is it"


# --- the nodes' rules -----------------------------------------------------------------------------


def run(context: Context | None = None) -> Runtime[Context]:
    return Runtime(context=context or Context())


def turn(text: str, **extra: Any) -> State:
    state: State = {"messages": [HumanMessage(text)], "text": text, "cached": None}
    state.update(extra)  # type: ignore[typeddict-item]
    return state


def test_recall_hits_and_the_turn_skips_retrieval(kb: KnowledgeBase) -> None:
    cache = AnswerCache(kb)
    state = turn("How long do I have to return an item?", draft="Within 30 days.", sources=[], cited=[])
    nodes.remember({**state, "cached": False}, run(), cache=cache, model="m", max_new_tokens=64)
    update = nodes.recall(
        turn("how long do I have to return an item?"), run(), cache=cache, model="m", max_new_tokens=64
    )
    assert update["cached"] is True and update["draft"] == "Within 30 days."
    assert update["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert nodes.route_after_recall({**turn("x"), **update}) == "score_quality"
    # Another token budget is another context: no hit.
    other = nodes.recall(
        turn("How long do I have to return an item?"),
        run(Context(max_new_tokens=8)),
        cache=cache,
        model="m",
        max_new_tokens=64,
    )
    assert other == {"cached": False}
    assert nodes.route_after_recall({**turn("x"), **other}) == "retrieve"


@pytest.mark.parametrize(
    "extra",
    [
        {"tool_calls": [{"name": "orders", "args": {}, "result": "shipped", "error": None, "missing": []}]},
        {"attachments": [{"kind": "image", "mime_type": "image/png", "name": "a.png", "size": 10}]},
        {"messages": [HumanMessage("hi"), AIMessage("hello"), HumanMessage("and for shoes?")]},
        {"intent": {"label": "x", "confidence": 1.0, "entities": {}, "scores": {}, "wants_human": True}},
        {"cached": None},  # never went through recall (a small-talk or tool turn)
        {"cached": True},  # already from the cache
    ],
    ids=["tool", "attachment", "follow-up", "wants-human", "no-recall", "already-cached"],
)
def test_remember_stores_only_public_first_turns_that_missed(kb: KnowledgeBase, extra: dict[str, Any]) -> None:
    cache = AnswerCache(kb)
    state = cast(State, {**turn("What is your return policy?", draft="30 days.", cached=False), **extra})
    nodes.remember(state, run(), cache=cache, model="m", max_new_tokens=64)
    assert cache.count() == 0
    nodes.remember(
        turn("What is your return policy?", draft="30 days.", cached=False),
        run(),
        cache=cache,
        model="m",
        max_new_tokens=64,
    )
    assert cache.count() == 1


def test_without_a_cache_recall_is_a_miss_and_remember_does_nothing() -> None:
    assert nodes.recall(turn("hi"), run(), cache=None, model="m", max_new_tokens=8) == {"cached": False}
    assert nodes.remember(turn("hi", cached=False, draft="x"), run(), cache=None, model="m", max_new_tokens=8) == {}
