"""recall / remember: a knowledge question asked before is answered from the semantic answer cache.

``recall`` sits where ``retrieve`` was (after ``detect_intent`` chose knowledge). On a hit it fills the
turn with the cached draft and the signals that scored it, and the turn goes on to ``score_quality`` (the
run's own threshold still applies) and ``answer``, skipping retrieval and the model. ``remember`` sits on
the way to ``answer`` and stores what passed the gate. See ``r1agent.knowledge.cache`` for what is safe to
cache; the turn-level rules are :func:`cacheable`'s.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from r1agent.context import Context, context_of
from r1agent.knowledge.cache import AnswerCache, CachedAnswer
from r1agent.state import RecallUpdate, State, Usage


def cacheable(state: State) -> bool:
    """Public knowledge only, and nothing the answer could depend on besides the question itself."""
    if state.get("attachments") or state.get("tool_calls") or state.get("errors"):
        return False  # a picture, a voice note or a tool's result is the customer's own data
    intent = state.get("intent")
    if intent is not None and intent["wants_human"]:
        return False
    # An earlier turn in the thread can change what a question means ("and for shoes?").
    return sum(1 for m in state["messages"] if m.type == "human") == 1


def scope(state: State, ctx: Context, *, model: str, max_new_tokens: int) -> str:
    """Cached answers are only shared between turns run the same way, on the same kind of question."""
    intent = state.get("intent")
    label = intent["label"] if intent else ""
    return f"{model}|{ctx.token_budget(max_new_tokens)}|{ctx.top_k}|{ctx.min_source_score}|{label}"


def recall(
    state: State, runtime: Runtime[Context], *, cache: AnswerCache | None, model: str, max_new_tokens: int
) -> RecallUpdate:
    if cache is None or not cacheable(state):
        return RecallUpdate(cached=False)
    key = scope(state, context_of(runtime), model=model, max_new_tokens=max_new_tokens)
    hit = cache.lookup(state.get("text", ""), scope=key)
    if hit is None:
        return RecallUpdate(cached=False)
    return RecallUpdate(
        cached=True,
        draft=hit.draft,
        thinking=hit.thinking,
        sources=hit.sources,
        cited=hit.cited,
        logprob=hit.logprob,
        finished=hit.finished,
        usage=Usage(input_tokens=0, output_tokens=0),  # no model call
    )


def route_after_recall(state: State) -> Literal["score_quality", "retrieve"]:
    return "score_quality" if state.get("cached") else "retrieve"


def remember(
    state: State, runtime: Runtime[Context], *, cache: AnswerCache | None, model: str, max_new_tokens: int
) -> RecallUpdate:
    # Only turns that went through recall and missed (cached is False, not absent): tool and small-talk
    # turns never reach recall, so they are never stored.
    if cache is None or state.get("cached") is not False or not cacheable(state) or not state.get("draft"):
        return RecallUpdate()
    key = scope(state, context_of(runtime), model=model, max_new_tokens=max_new_tokens)
    cache.store(
        CachedAnswer(
            question=state.get("text", ""),
            draft=state.get("draft", ""),
            thinking=state.get("thinking", ""),
            sources=state.get("sources") or [],
            cited=state.get("cited") or [],
            logprob=state.get("logprob"),
            finished=state.get("finished"),
        ),
        scope=key,
    )
    return RecallUpdate()
