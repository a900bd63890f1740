"""A thread's turns as feedback sees them, read back from its checkpoints (no model is loaded).

A turn is the ``N``-th customer message of a thread (1-based, as handoff tickets count them). Its
values are those of the last checkpoint that holds exactly ``N`` customer messages and is not the next
turn's input checkpoint: every field but ``messages`` describes the current turn (``perceive`` resets
them), so that checkpoint shows what the turn saw and decided. The graph records no timings, so a
turn's latency is read from checkpoint timestamps: from its input checkpoint to the checkpoint where
the agent's part ended (the answer, or the ticket opened for a human); a human's time to reply is
not counted.

A thread's owner is the customer the server authenticated for its runs (``metadata.owner``, which
the server's auth stamps on every customer run and LangGraph copies into each checkpoint's metadata; in
process, ``Agent.run_config`` stamps it for a run acting for a customer), else the customer of a ticket it
opened. A thread started without a customer has no known owner: only a trusted caller (the operator's CLI,
``Agent.feedback``) may act on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from r1agent.errors import NotFoundError
from r1agent.nodes.reasoning import build_prompt
from r1agent.state import State
from r1agent.tickets import TicketStore

MAX_CHECKPOINTS = 20_000
"""Checkpoints read for one thread (about 8 a turn): bounds the work on a pathological thread."""
OWNER_KEY = "owner"
HUMAN_AGENT = "human_agent"


@dataclass(frozen=True)
class TurnRecord:
    """One turn, as plain JSON-able data: what the model was asked, what it drafted, what happened."""

    thread_id: str
    turn: int
    text: str
    """The customer's words (typed, read from images, heard in voice notes)."""
    prompt: list[dict[str, str]]
    """The chat messages the model was given (system, history, question with sources), as role/content."""
    draft: str
    """The model's answer before the quality gate; empty when the model was not asked (a clarifying
    question, a handoff the customer requested, an unreadable turn)."""
    reply: str
    """What the agent said to the customer: the answer, a clarifying question or a holding message."""
    human_reply: str | None = None
    """A human agent's reply to a handed-off turn: a correction of ``draft``."""
    intent: str | None = None
    intent_confidence: float | None = None
    quality: float | None = None
    threshold: float | None = None
    tool_calls: int = 0
    tools_ok: bool = True
    """Every tool call returned a result (no error, no missing argument)."""
    handoff_reason: str | None = None
    ticket_id: str | None = None
    latency_s: float | None = None
    rejected: bool = False
    """The turn could not be read (nothing was classified)."""
    errors: list[str] = field(default_factory=list)

    @property
    def handed_off(self) -> bool:
        return self.ticket_id is not None

    @property
    def completed(self) -> bool:
        """The agent finished the task itself: understood the turn, answered it, every tool worked."""
        return not self.rejected and not self.handed_off and self.tools_ok and bool(self.reply)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class TurnHistory(Protocol):
    """Where feedback reads turns from (a checkpointer; a fake in unit tests)."""

    def turns(self, thread_id: str) -> list[TurnRecord]:
        """The thread's turns, oldest first; NotFoundError for an unknown thread."""
        ...

    def owner(self, thread_id: str) -> str | None:
        """The customer the thread belongs to, when known."""
        ...


class CheckpointHistory:
    """:class:`TurnHistory` over a LangGraph checkpointer (SQLite or Postgres) and the ticket store."""

    def __init__(self, checkpointer: BaseCheckpointSaver[Any], tickets: TicketStore, *, max_history: int) -> None:
        self._checkpointer = checkpointer
        self._tickets = tickets
        self._max_history = max_history

    def _tuples(self, thread_id: str) -> list[CheckpointTuple]:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        tuples = list(self._checkpointer.list(config, limit=MAX_CHECKPOINTS))
        if not tuples:
            raise NotFoundError(f"unknown thread {thread_id!r}")
        return tuples

    def turns(self, thread_id: str) -> list[TurnRecord]:
        tickets = self._tickets
        records = turns_from_checkpoints(thread_id, self._tuples(thread_id), max_history=self._max_history)
        return [_with_ticket_reply(r, tickets) for r in records]

    def owner(self, thread_id: str) -> str | None:
        tuples = self._tuples(thread_id)
        for item in tuples:  # newest first
            owner = (item.metadata or {}).get(OWNER_KEY)
            if isinstance(owner, str) and owner:
                return owner
        for record in turns_from_checkpoints(thread_id, tuples, max_history=0):
            if record.ticket_id is not None:
                try:
                    customer = self._tickets.get(record.ticket_id).customer_id
                except NotFoundError:
                    continue
                if customer:
                    return customer
        return None


def _with_ticket_reply(record: TurnRecord, tickets: TicketStore) -> TurnRecord:
    """The human's reply from the ticket when the checkpoint does not show it (resumed elsewhere)."""
    if record.ticket_id is None or record.human_reply is not None:
        return record
    try:
        ticket = tickets.get(record.ticket_id)
    except NotFoundError:
        return record
    if ticket.status != "resolved" or not ticket.reply:
        return record
    return TurnRecord.from_dict({**record.to_dict(), "human_reply": ticket.reply})


def turns_from_checkpoints(thread_id: str, tuples: Sequence[CheckpointTuple], *, max_history: int) -> list[TurnRecord]:
    """Turn records from a thread's checkpoints (any order)."""
    ordered = sorted(tuples, key=lambda t: (_step(t), t.checkpoint["ts"]))
    by_turn: dict[int, list[CheckpointTuple]] = {}
    starts: dict[int, CheckpointTuple] = {}
    for item in ordered:
        n = _humans(_values(item).get("messages") or [])
        if (item.metadata or {}).get("source") == "input":
            starts[n + 1] = item  # the input checkpoint of the next turn: its clock starts here
            continue
        if n > 0:
            by_turn.setdefault(n, []).append(item)
    return [
        _record(thread_id, n, items, starts.get(n), max_history=max_history) for n, items in sorted(by_turn.items())
    ]


def _record(
    thread_id: str, n: int, items: list[CheckpointTuple], start: CheckpointTuple | None, *, max_history: int
) -> TurnRecord:
    values = _values(items[-1])
    messages: list[BaseMessage] = list(values.get("messages") or [])
    at = _nth_human(messages, n)
    after = messages[at + 1 :]
    agent = [m for m in after if isinstance(m, AIMessage) and m.name != HUMAN_AGENT]
    human = [m for m in after if isinstance(m, AIMessage) and m.name == HUMAN_AGENT]
    intent = values.get("intent") or None
    quality = values.get("quality") or None
    handoff = values.get("handoff") or None
    calls = list(values.get("tool_calls") or [])
    # The agent's part ends where a ticket was opened (then the turn waits for a human) or at its end.
    end = next((i for i in items if (_values(i).get("handoff") or {}).get("status") == "open"), items[-1])
    # `draft` also carries a tool's clarifying question; only the reasoning node records usage.
    reasoned = bool((values.get("usage") or {}).get("input_tokens"))
    turn_state: State = {**values, "messages": messages[: at + 1]}  # type: ignore[typeddict-item]
    return TurnRecord(
        thread_id=thread_id,
        turn=n,
        text=str(values.get("text") or _text(messages[at])),
        prompt=to_chat(build_prompt(turn_state, max_history=max_history)),
        draft=str(values.get("draft") or "") if reasoned else "",
        reply=_text(agent[0]) if agent else "",
        human_reply=_text(human[-1]) if human else None,
        intent=intent["label"] if intent else None,
        intent_confidence=float(intent["confidence"]) if intent else None,
        quality=float(quality["score"]) if quality else None,
        threshold=float(quality["threshold"]) if quality else None,
        tool_calls=len(calls),
        tools_ok=all(c.get("error") is None and not c.get("missing") for c in calls),
        handoff_reason=handoff["reason"] if handoff else None,
        ticket_id=handoff["ticket_id"] if handoff else None,
        latency_s=_seconds(start, end),
        rejected=intent is None and bool(values.get("errors")),
        errors=[str(e.get("message", "")) for e in values.get("errors") or []],
    )


def to_chat(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the role/content dicts chat templates (and TRL) read."""
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
    return [{"role": roles.get(type(m), "user"), "content": _text(m)} for m in messages]


def _values(item: CheckpointTuple) -> dict[str, Any]:
    return dict(item.checkpoint.get("channel_values") or {})


def _step(item: CheckpointTuple) -> int:
    step = (item.metadata or {}).get("step")
    return step if isinstance(step, int) else -1


def _humans(messages: Sequence[Any]) -> int:
    return sum(isinstance(m, HumanMessage) for m in messages)


def _nth_human(messages: Sequence[BaseMessage], n: int) -> int:
    seen = 0
    for i, m in enumerate(messages):
        if isinstance(m, HumanMessage):
            seen += 1
            if seen == n:
                return i
    return len(messages) - 1


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    # Multimodal turns: only the text blocks (attachments are described by ``text`` in state).
    return " ".join(
        str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
    ).strip()


def _seconds(start: CheckpointTuple | None, end: CheckpointTuple) -> float | None:
    if start is None:
        return None
    try:
        begun = datetime.fromisoformat(start.checkpoint["ts"])
        ended = datetime.fromisoformat(end.checkpoint["ts"])
    except (KeyError, ValueError):
        return None
    return round(max(0.0, (ended - begun).total_seconds()), 3)
