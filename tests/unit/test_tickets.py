"""The SQLite ticket store: idempotent open and resolve, filters, and sharing one file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from r1agent.errors import ConflictError, NotFoundError
from r1agent.tickets import SqliteTicketStore, Ticket, summarize, ticket_id_for


def _ticket(thread: str = "t1", turn: int = 1, *, created_at: float = 100.0, summary: str = "customer: help") -> Ticket:
    return Ticket(
        id=ticket_id_for(thread, turn),
        thread_id=thread,
        customer_id="yusuf_rossi_9620",
        reason="low_quality",
        summary=summary,
        draft="I think it ships Friday.",
        intent="order_status",
        confidence=0.31,
        status="open",
        created_at=created_at,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "tickets.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteTicketStore]:
    store = SqliteTicketStore(db)
    yield store
    store.close()


def test_open_and_get_round_trip(store: SqliteTicketStore) -> None:
    ticket = _ticket()
    assert store.open(ticket) == ticket
    assert store.get(ticket.id) == ticket


def test_open_is_idempotent_for_the_same_id(store: SqliteTicketStore) -> None:
    first = store.open(_ticket(summary="first"))
    # A re-run of the node opens the same ticket again: the original is kept, not replaced.
    again = store.open(_ticket(summary="second", created_at=200.0))
    assert again == first
    assert again.summary == "first"
    assert len(store.list(status=None)) == 1


def test_get_unknown_raises_not_found(store: SqliteTicketStore) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        store.get("nope")


def test_resolve_unknown_raises_not_found(store: SqliteTicketStore) -> None:
    with pytest.raises(NotFoundError):
        store.resolve("nope", "hello")


def test_list_filters_by_status_in_creation_order(store: SqliteTicketStore) -> None:
    late = store.open(_ticket("b", created_at=300.0))
    early = store.open(_ticket("a", created_at=100.0))
    done = store.open(_ticket("c", created_at=200.0))
    store.resolve(done.id, "Sorted.")
    assert [t.id for t in store.list()] == [early.id, late.id]
    assert [t.id for t in store.list("open")] == [early.id, late.id]
    assert [t.id for t in store.list("resolved")] == [done.id]
    assert [t.id for t in store.list(None)] == [early.id, done.id, late.id]


def test_resolve_sets_reply_and_status(store: SqliteTicketStore) -> None:
    ticket = store.open(_ticket())
    resolved = store.resolve(ticket.id, "It ships tomorrow.")
    assert resolved.status == "resolved"
    assert resolved.reply == "It ships tomorrow."
    assert resolved.resolved_at is not None
    assert resolved.resolved_at >= resolved.created_at
    assert replace(resolved, status="open", reply=None, resolved_at=None) == ticket
    assert store.get(ticket.id) == resolved


def test_resolving_again_with_the_same_reply_is_idempotent(store: SqliteTicketStore) -> None:
    ticket = store.open(_ticket())
    first = store.resolve(ticket.id, "Done.")
    assert store.resolve(ticket.id, "Done.") == first


def test_resolving_again_with_another_reply_conflicts(store: SqliteTicketStore) -> None:
    ticket = store.open(_ticket())
    store.resolve(ticket.id, "Done.")
    with pytest.raises(ConflictError, match=ticket.id):
        store.resolve(ticket.id, "Something else.")
    assert store.get(ticket.id).reply == "Done."


def test_two_stores_on_one_file_see_each_others_writes(db: Path) -> None:
    a, b = SqliteTicketStore(db), SqliteTicketStore(db)
    try:
        ticket = a.open(_ticket())
        assert b.get(ticket.id) == ticket
        b.resolve(ticket.id, "From the other process.")
        assert a.get(ticket.id).reply == "From the other process."
        assert a.list() == []
        with pytest.raises(ConflictError):
            a.resolve(ticket.id, "A different reply.")
    finally:
        a.close()
        b.close()


def test_store_accepts_a_str_path(tmp_path: Path) -> None:
    store = SqliteTicketStore(str(tmp_path / "t.sqlite"))
    try:
        assert store.open(_ticket()).status == "open"
    finally:
        store.close()


def test_ticket_id_for_is_deterministic() -> None:
    assert ticket_id_for("thread-1", 3) == ticket_id_for("thread-1", 3)
    assert len(ticket_id_for("thread-1", 3)) == 12
    int(ticket_id_for("thread-1", 3), 16)
    assert ticket_id_for("thread-1", 3) != ticket_id_for("thread-1", 4)
    assert ticket_id_for("thread-1", 3) != ticket_id_for("thread-2", 3)


def test_summarize_keeps_the_last_turns_flattened_and_cut() -> None:
    messages = [("customer", f"message {i}") for i in range(10)]
    messages.append(("agent", "a  long\n\nanswer " + "x" * 400))
    summary = summarize(messages, limit=3, width=20)
    lines = summary.split("\n")
    assert lines[:2] == ["customer: message 8", "customer: message 9"]
    assert lines[2] == "agent: a long answer xxxxxx…"


def test_summarize_does_not_mark_text_that_fits() -> None:
    assert summarize([("customer", "x" * 300)]) == "customer: " + "x" * 300
    assert summarize([]) == ""
