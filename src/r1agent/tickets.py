"""Handoff tickets: what a human agent works from, kept beside the thread's checkpoints.

A ticket's id is derived from the thread and the turn, so a node that re-runs (LangGraph re-executes
a node on resume) opens the same ticket instead of a second one.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from r1agent.errors import ConflictError, NotFoundError
from r1agent.storage import open_sqlite

TicketStatus = Literal["open", "resolved"]
_NAMESPACE = uuid.UUID("0b7f3f0e-3f55-4a53-9d1e-5d0c6c3e2f11")


@dataclass(frozen=True)
class Ticket:
    id: str
    thread_id: str
    customer_id: str | None
    reason: str
    summary: str
    draft: str
    intent: str | None
    confidence: float | None
    status: TicketStatus
    created_at: float
    reply: str | None = None
    resolved_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ticket_id_for(thread_id: str, turn: int) -> str:
    return uuid.uuid5(_NAMESPACE, f"{thread_id}/{turn}").hex[:12]


class TicketStore(Protocol):
    def open(self, ticket: Ticket) -> Ticket: ...
    def get(self, ticket_id: str) -> Ticket: ...
    def list(self, status: TicketStatus | None = "open") -> list[Ticket]: ...
    def resolve(self, ticket_id: str, reply: str) -> Ticket: ...


class SqliteTicketStore:
    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS tickets (
        id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, customer_id TEXT, reason TEXT NOT NULL,
        summary TEXT NOT NULL, draft TEXT NOT NULL, intent TEXT, confidence REAL,
        status TEXT NOT NULL, created_at REAL NOT NULL, reply TEXT, resolved_at REAL
    );
    CREATE INDEX IF NOT EXISTS tickets_status ON tickets(status, created_at);
    """

    def __init__(self, path: Path | str) -> None:
        self._conn = open_sqlite(path, self._SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    _INSERT = (
        "INSERT OR IGNORE INTO tickets (id, thread_id, customer_id, reason, summary, draft, intent, confidence,"
        " status, created_at, reply, resolved_at) VALUES (:id, :thread_id, :customer_id, :reason, :summary,"
        " :draft, :intent, :confidence, :status, :created_at, :reply, :resolved_at)"
    )

    def open(self, ticket: Ticket) -> Ticket:
        with self._lock:
            self._conn.execute(self._INSERT, ticket.to_dict())
        return self.get(ticket.id)

    def get(self, ticket_id: str) -> Ticket:
        with self._lock:
            cur = self._conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if row is None:
            raise NotFoundError(f"no such ticket: {ticket_id}")
        return Ticket(**dict(zip(names, row, strict=True)))

    def list(self, status: TicketStatus | None = "open") -> list[Ticket]:
        query = "SELECT * FROM tickets"
        args: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._lock:
            cur = self._conn.execute(query + " ORDER BY created_at", args)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        return [Ticket(**dict(zip(names, row, strict=True))) for row in rows]

    def resolve(self, ticket_id: str, reply: str) -> Ticket:
        ticket = self.get(ticket_id)
        if ticket.status == "resolved":
            if ticket.reply == reply:  # a re-run of the same resume: idempotent
                return ticket
            raise ConflictError(f"ticket {ticket_id} is already resolved")
        with self._lock:
            self._conn.execute(
                "UPDATE tickets SET status = 'resolved', reply = ?, resolved_at = ? WHERE id = ?",
                (reply, time.time(), ticket_id),
            )
        return self.get(ticket_id)


def summarize(messages: list[tuple[str, str]], *, limit: int = 6, width: int = 300) -> str:
    """The last few turns as 'role: text' lines, each cut to ``width`` characters."""
    lines = []
    for role, text in messages[-limit:]:
        flat = " ".join(text.split())
        lines.append(f"{role}: {flat[:width]}{'…' if len(flat) > width else ''}")
    return "\n".join(lines)
