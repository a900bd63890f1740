"""open_ticket / await_human: hand the turn to a person and resume with their reply.

Two nodes, because LangGraph re-runs an interrupted node from its start on resume: the ticket and the
holding message are committed by ``open_ticket`` before ``await_human`` pauses, so they survive a
crash, a restart or a resume from another process exactly once.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from r1agent.context import Context, context_of
from r1agent.errors import InputError
from r1agent.intents.taxonomy import OUT_OF_SCOPE
from r1agent.nodes.acting import tool_errors
from r1agent.server.identity import customer_for_run
from r1agent.state import Handoff, HandoffReason, MessagesUpdate, State
from r1agent.tickets import Ticket, TicketStore, summarize, ticket_id_for

MAX_REPLY_CHARS = 8000


def handoff_reason(state: State) -> HandoffReason:
    intent = state.get("intent")
    if intent is not None and intent["wants_human"]:
        return "requested"
    if state.get("quality") is None and intent is not None and intent["label"] == OUT_OF_SCOPE:
        return "out_of_scope"
    return "low_quality"


def open_ticket(
    state: State, runtime: Runtime[Context], config: RunnableConfig, *, tickets: TicketStore
) -> MessagesUpdate:
    thread_id = str((config.get("configurable") or {}).get("thread_id", "no-thread"))
    turn = sum(isinstance(m, HumanMessage) for m in state["messages"])
    intent = state.get("intent")
    quality = state.get("quality")
    reason = handoff_reason(state)
    history = [("customer" if isinstance(m, HumanMessage) else "agent", str(m.content)) for m in state["messages"]]
    ticket = tickets.open(
        Ticket(
            id=ticket_id_for(thread_id, turn),
            thread_id=thread_id,
            customer_id=customer_for_run(config, context_of(runtime)),
            reason=reason,
            summary=summarize(history),
            draft=state.get("draft", ""),
            intent=intent["label"] if intent else None,
            confidence=quality["score"] if quality else (intent["confidence"] if intent else None),
            status="open",
            created_at=time.time(),
        )
    )
    problems = " ".join(f"I couldn't complete that: {e}" for e in tool_errors(state))
    holding = f"{problems} I've passed this to a colleague, who will reply here shortly (ticket {ticket.id}).".strip()
    return MessagesUpdate(
        messages=[AIMessage(content=holding, name="r1agent")],
        handoff=Handoff(ticket_id=ticket.id, reason=reason, status="open"),
    )


def interrupt_payload(state: State, ticket: Ticket) -> dict[str, Any]:
    """Agent Inbox's human-interrupt shape, plus the fields r1agent's own tools read."""
    return {
        "action_request": {"action": "reply_to_customer", "args": {"draft": ticket.draft}},
        "config": {"allow_ignore": False, "allow_respond": True, "allow_edit": False, "allow_accept": False},
        "description": f"Handoff ({ticket.reason}), ticket {ticket.id}.\n\n{ticket.summary}",
        "ticket_id": ticket.id,
        "reason": ticket.reason,
        "summary": ticket.summary,
        "draft": ticket.draft,
        "intent": ticket.intent,
        "confidence": ticket.confidence,
    }


def reply_text(value: Any) -> str:
    """The human's reply from a plain string or an Agent Inbox response ``{type, args}``."""
    if isinstance(value, dict):
        value = value.get("reply", value.get("args"))
    if isinstance(value, list) and value and isinstance(value[0], dict):  # Agent Inbox sends a list
        return reply_text(value[0])
    if not isinstance(value, str) or not value.strip():
        raise InputError("a handoff is resumed with the human agent's reply text")
    text = value.strip()
    if len(text) > MAX_REPLY_CHARS:
        raise InputError(f"the reply is {len(text):,} characters; the limit is {MAX_REPLY_CHARS:,}")
    return text


def await_human(state: State, *, tickets: TicketStore) -> MessagesUpdate:
    handoff = state.get("handoff")
    if handoff is None:  # defensive: the graph only routes here after open_ticket
        return MessagesUpdate()
    ticket = tickets.get(handoff["ticket_id"])
    reply = reply_text(interrupt(interrupt_payload(state, ticket)))
    tickets.resolve(ticket.id, reply)
    return MessagesUpdate(
        messages=[AIMessage(content=reply, name="human_agent")],
        handoff=Handoff(ticket_id=ticket.id, reason=handoff["reason"], status="resolved"),
    )
