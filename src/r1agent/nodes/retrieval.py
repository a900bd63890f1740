"""retrieve: the knowledge-base chunks most similar to the turn, with their scores."""

from __future__ import annotations

from langgraph.runtime import Runtime

from r1agent.context import Context, context_of
from r1agent.knowledge import KnowledgeBase
from r1agent.state import RetrieveUpdate, State


def retrieve(state: State, runtime: Runtime[Context], *, kb: KnowledgeBase) -> RetrieveUpdate:
    ctx = context_of(runtime)
    return RetrieveUpdate(sources=kb.search(state.get("text", ""), k=ctx.top_k, min_score=ctx.min_source_score))
