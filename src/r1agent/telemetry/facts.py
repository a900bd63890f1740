"""What a turn decided, read from the partial updates its nodes returned (``IntentUpdate``,
``ActUpdate``, ``QualityUpdate``...), and the attributes and metric labels that say it.

One reading for both consumers: span enrichment parses the updates back from OpenInference's
``output.value`` JSON, the metrics observer gets them as Python objects from callbacks; the shapes
are the same, so the span attributes and the metrics can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
)
from opentelemetry.util.types import AttributeValue

INTENT = "r1agent.intent"
INTENT_CONFIDENCE = "r1agent.intent.confidence"
QUALITY_SCORE = "r1agent.quality.score"
HANDOFF = "r1agent.handoff"
"""True when the turn ended waiting for a human (a ticket is open)."""
HANDOFF_REASON = "r1agent.handoff.reason"
HANDOFF_STATUS = "r1agent.handoff.status"
TICKET_ID = "r1agent.handoff.ticket_id"
TOOL_NAME = "r1agent.tool.name"
TOOL_ERROR = "r1agent.tool.error"
OUTCOME = "r1agent.outcome"

Outcome = Literal["answered", "handoff", "clarify", "rejected", "resumed", "error"]
_STATE_KEYS = frozenset({"intent", "tool_calls", "quality", "handoff", "usage", "text"})


@dataclass(frozen=True)
class TurnFacts:
    intent: str | None = None
    confidence: float | None = None
    quality: float | None = None
    handoff_reason: str | None = None
    handoff_status: str | None = None
    ticket_id: str | None = None
    tool: str | None = None
    tool_error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    outcome: Outcome = "answered"

    @property
    def handed_off(self) -> bool:
        return self.handoff_status == "open"


def is_state_update(value: Any) -> bool:
    """A node's partial update (or the graph's output) that says something this module reads."""
    return isinstance(value, Mapping) and not _STATE_KEYS.isdisjoint(value)


def merge_updates(updates: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The turn's values from its nodes' updates in the order they ran: a later update wins."""
    merged: dict[str, Any] = {}
    for update in updates:
        merged.update(update)
    return merged


def turn_facts(values: Mapping[str, Any], *, failed: bool = False) -> TurnFacts:
    """Facts from merged updates. Tolerant: the values may come back from JSON, or be missing."""
    intent = _mapping(values.get("intent"))
    quality = _mapping(values.get("quality"))
    handoff = _mapping(values.get("handoff"))
    usage = _mapping(values.get("usage"))
    calls = [c for c in values.get("tool_calls") or [] if isinstance(c, Mapping)]
    last = calls[-1] if calls else {}
    return TurnFacts(
        intent=_str(intent.get("label")),
        confidence=_float(intent.get("confidence")),
        quality=_float(quality.get("score")),
        handoff_reason=_str(handoff.get("reason")),
        handoff_status=_str(handoff.get("status")),
        ticket_id=_str(handoff.get("ticket_id")),
        tool=_str(last.get("name")),
        tool_error=_str(last.get("error")),
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        outcome=_outcome(values, intent, handoff, calls, failed=failed),
    )


def _outcome(
    values: Mapping[str, Any],
    intent: Mapping[str, Any],
    handoff: Mapping[str, Any],
    calls: list[Mapping[str, Any]],
    *,
    failed: bool,
) -> Outcome:
    if failed:
        return "error"
    if handoff.get("status") == "open":
        return "handoff"
    if handoff.get("status") == "resolved":
        return "resumed"
    if any(c.get("missing") for c in calls):
        return "clarify"
    if "text" in values and not intent:  # perceived, never classified: the turn was unreadable
        return "rejected"
    return "answered"


def facts_attributes(facts: TurnFacts) -> dict[str, AttributeValue]:
    """The turn span's attributes: everything the turn decided, and its outcome."""
    attrs = _present(
        {
            INTENT: facts.intent,
            INTENT_CONFIDENCE: facts.confidence,
            QUALITY_SCORE: facts.quality,
            HANDOFF_REASON: facts.handoff_reason,
            HANDOFF_STATUS: facts.handoff_status,
            TICKET_ID: facts.ticket_id,
            TOOL_NAME: facts.tool,
            TOOL_ERROR: facts.tool_error,
            GEN_AI_USAGE_INPUT_TOKENS: facts.input_tokens,
            GEN_AI_USAGE_OUTPUT_TOKENS: facts.output_tokens,
        }
    )
    attrs[HANDOFF] = facts.handed_off
    attrs[OUTCOME] = facts.outcome
    return attrs


def update_attributes(update: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """A node span's attributes: only what that node's own update says (``detect_intent`` the intent,
    ``act`` the tool, ``reason`` the token usage...)."""
    facts = turn_facts(update)
    attrs = facts_attributes(facts)
    del attrs[OUTCOME]
    # perceive resets every field at the start of a turn: a reset is not a decision worth an attribute.
    if not isinstance(update.get("handoff"), Mapping):
        del attrs[HANDOFF]
    if not facts.input_tokens and not facts.output_tokens:
        attrs.pop(GEN_AI_USAGE_INPUT_TOKENS, None)
        attrs.pop(GEN_AI_USAGE_OUTPUT_TOKENS, None)
    return attrs


def _present(values: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {k: v for k, v in values.items() if v is not None}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
