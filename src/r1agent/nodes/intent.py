"""detect_intent: label, calibrated confidence and entities; then choose the turn's path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langgraph.runtime import Runtime

from r1agent.context import Context, context_of
from r1agent.intents import IntentClassifier, extract_entities, wants_human
from r1agent.intents.taxonomy import OUT_OF_SCOPE
from r1agent.state import Intent, IntentUpdate, State
from r1agent.tools import AgentTool, Turn, choose_tool

SMALL_TALK = "small_talk"
Route = Literal["act", "retrieve", "reason", "open_ticket"]


def detect_intent(state: State, runtime: Runtime[Context], *, classifier: IntentClassifier) -> IntentUpdate:
    text = state.get("text", "")
    prediction = classifier.predict(text)
    return IntentUpdate(
        intent=Intent(
            label=prediction.label,
            confidence=round(prediction.confidence, 4),
            entities=extract_entities(text),
            scores=prediction.scores,
            wants_human=wants_human(text),
        )
    )


def turn_for_tools(state: State, context: Context) -> Turn:
    intent = state.get("intent")
    return Turn(
        text=state.get("text", ""),
        intent=intent["label"] if intent else "",
        entities=intent["entities"] if intent else {},
        customer_id=context.customer_id,
    )


def route_after_intent(state: State, runtime: Runtime[Context], *, tools: Sequence[AgentTool]) -> Route:
    intent = state.get("intent")
    if intent is None:
        return "retrieve"
    if intent["wants_human"]:
        return "open_ticket"
    # Before out-of-scope: a tool may serve what the shop's taxonomy calls out of scope (weather, sums).
    if choose_tool(tools, turn_for_tools(state, context_of(runtime))) is not None:
        return "act"
    sure = intent["confidence"] >= context_of(runtime).intent_threshold
    if sure and intent["label"] == OUT_OF_SCOPE:
        return "open_ticket"
    if sure and intent["label"] == SMALL_TALK:
        return "reason"
    return "retrieve"
