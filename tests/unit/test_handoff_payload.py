"""Handoff: why a turn goes to a person, what the person sees, and which replies are accepted."""

from __future__ import annotations

from typing import Any

import pytest

from r1agent.errors import InputError
from r1agent.nodes.handoff import MAX_REPLY_CHARS, handoff_reason, interrupt_payload, reply_text
from r1agent.state import Intent, Quality, State
from r1agent.tickets import Ticket


@pytest.mark.parametrize(
    "value",
    [
        "  It ships tomorrow.  ",
        {"reply": "It ships tomorrow."},
        {"type": "response", "args": "It ships tomorrow."},
        [{"type": "response", "args": "It ships tomorrow."}],
        [{"reply": " It ships tomorrow."}],
    ],
)
def test_reply_text_accepts(value: Any) -> None:
    assert reply_text(value) == "It ships tomorrow."


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   \n",
        None,
        42,
        ["a plain list"],
        [],
        {},
        {"reply": ""},
        {"reply": 5},
        [{"type": "ignore", "args": None}],
        [{"type": "response", "args": {"text": "nested"}}],
    ],
)
def test_reply_text_rejects(value: Any) -> None:
    with pytest.raises(InputError):
        reply_text(value)


def test_reply_text_length_limit() -> None:
    assert reply_text("x" * MAX_REPLY_CHARS) == "x" * MAX_REPLY_CHARS
    with pytest.raises(InputError, match=f"{MAX_REPLY_CHARS:,}"):
        reply_text("x" * (MAX_REPLY_CHARS + 1))
    with pytest.raises(InputError):
        reply_text([{"type": "response", "args": "x" * (MAX_REPLY_CHARS + 1)}])


def _intent(label: str = "order_status", *, wants_human: bool = False) -> Intent:
    return Intent(label=label, confidence=0.8, entities={}, scores={}, wants_human=wants_human)


LOW = Quality(score=0.1, signals={}, threshold=0.5)


def test_handoff_reason_requested_wins() -> None:
    assert handoff_reason(State(messages=[], intent=_intent(wants_human=True))) == "requested"
    assert handoff_reason(State(messages=[], intent=_intent("out_of_scope", wants_human=True))) == "requested"
    assert handoff_reason(State(messages=[], intent=_intent(wants_human=True), quality=LOW)) == "requested"


def test_handoff_reason_out_of_scope_before_any_answer() -> None:
    assert handoff_reason(State(messages=[], intent=_intent("out_of_scope"))) == "out_of_scope"
    assert handoff_reason(State(messages=[], intent=_intent("out_of_scope"), quality=None)) == "out_of_scope"


def test_handoff_reason_low_quality() -> None:
    assert handoff_reason(State(messages=[], intent=_intent(), quality=LOW)) == "low_quality"
    # Once an answer was drafted and scored, the score is the reason, whatever the label.
    assert handoff_reason(State(messages=[], intent=_intent("out_of_scope"), quality=LOW)) == "low_quality"
    assert handoff_reason(State(messages=[])) == "low_quality"


def test_interrupt_payload() -> None:
    ticket = Ticket(
        id="abc123def456",
        thread_id="t1",
        customer_id=None,
        reason="low_quality",
        summary="customer: where is my order?",
        draft="It might ship.",
        intent="order_status",
        confidence=0.31,
        status="open",
        created_at=1.0,
    )
    payload = interrupt_payload(State(messages=[]), ticket)
    assert {"action_request", "config", "description"} <= set(payload)
    assert payload["action_request"] == {"action": "reply_to_customer", "args": {"draft": "It might ship."}}
    assert payload["config"]["allow_respond"] is True
    assert payload["config"]["allow_accept"] is False
    assert "abc123def456" in payload["description"]
    assert "low_quality" in payload["description"]
    assert payload["description"].endswith("customer: where is my order?")
    assert payload["ticket_id"] == "abc123def456"
    assert payload["confidence"] == 0.31
