"""Feedback on answers, and intent corrections waiting for review, in a SQLite file beside the tickets.

One rating per turn: rating a turn again replaces the earlier rating (the customer changed their
mind), under the same id. Each row keeps a snapshot of the turn (:class:`TurnRecord`, as JSON) taken
when the feedback arrived, so training data survives a thread being deleted. The snapshot holds
conversation text: the file is as private as the threads themselves.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from r1agent.errors import ConflictError, InputError, NotFoundError
from r1agent.feedback.reward import check_rating
from r1agent.feedback.turns import TurnHistory, TurnRecord
from r1agent.storage import open_sqlite

SuggestionStatus = Literal["pending", "accepted", "rejected"]
_NAMESPACE = uuid.UUID("6f0b8a52-55d1-4b0e-9a43-0c1f0f5e7a21")
MAX_LABEL_CHARS = 64


@dataclass(frozen=True)
class Feedback:
    id: str
    thread_id: str
    turn: int
    customer_id: str | None
    rating: int
    comment: str | None
    record: TurnRecord
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["record"] = self.record.to_dict()
        return data


@dataclass(frozen=True)
class IntentSuggestion:
    id: str
    thread_id: str
    turn: int
    customer_id: str | None
    text: str
    predicted: str | None
    label: str
    status: SuggestionStatus
    created_at: float
    reviewed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feedback_id_for(thread_id: str, turn: int) -> str:
    return uuid.uuid5(_NAMESPACE, f"{thread_id}/{turn}").hex[:12]


def check_comment(comment: str | None, *, max_chars: int) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise InputError("a comment is text")
    text = comment.strip()
    if len(text) > max_chars:
        raise InputError(f"the comment is {len(text):,} characters; the limit is {max_chars:,}")
    return text or None


class FeedbackStore:
    """Ratings and intent suggestions: parameterised SQL on one connection, serialised by a lock (WAL)."""

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS feedback (
        id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, turn INTEGER NOT NULL, customer_id TEXT,
        rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5), comment TEXT, record TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (thread_id, turn)
    );
    CREATE TABLE IF NOT EXISTS intent_suggestions (
        id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, turn INTEGER NOT NULL, customer_id TEXT,
        text TEXT NOT NULL, predicted TEXT, label TEXT NOT NULL, status TEXT NOT NULL,
        created_at REAL NOT NULL, reviewed_at REAL, UNIQUE (thread_id, turn)
    );
    CREATE INDEX IF NOT EXISTS intent_suggestions_status ON intent_suggestions(status, created_at);
    """

    def __init__(self, path: Path | str) -> None:
        self._conn = open_sqlite(path, self._SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _rows(self, query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(query, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # --- ratings ---

    def rate(
        self, record: TurnRecord, *, customer_id: str | None, rating: int, comment: str | None, max_comment_chars: int
    ) -> Feedback:
        rating = check_rating(rating)
        comment = check_comment(comment, max_chars=max_comment_chars)
        fid = feedback_id_for(record.thread_id, record.turn)
        now = time.time()
        row = {
            "id": fid,
            "thread_id": record.thread_id,
            "turn": record.turn,
            "customer_id": customer_id,
            "rating": rating,
            "comment": comment,
            "record": json.dumps(record.to_dict(), ensure_ascii=False),
            "now": now,
        }
        with self._lock:
            self._conn.execute(
                "INSERT INTO feedback (id, thread_id, turn, customer_id, rating, comment, record, created_at,"
                " updated_at) VALUES (:id, :thread_id, :turn, :customer_id, :rating, :comment, :record, :now, :now)"
                " ON CONFLICT(thread_id, turn) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,"
                " record = excluded.record, customer_id = COALESCE(feedback.customer_id, excluded.customer_id),"
                " updated_at = excluded.updated_at",
                row,
            )
        return self.get(fid)

    def get(self, feedback_id: str) -> Feedback:
        rows = self._rows("SELECT * FROM feedback WHERE id = ?", (feedback_id,))
        if not rows:
            raise NotFoundError(f"no such feedback: {feedback_id}")
        return _feedback(rows[0])

    def ratings(self, *, thread_id: str | None = None) -> list[Feedback]:
        if thread_id is None:
            return [_feedback(r) for r in self._rows("SELECT * FROM feedback ORDER BY created_at, id")]
        rows = self._rows("SELECT * FROM feedback WHERE thread_id = ? ORDER BY turn", (thread_id,))
        return [_feedback(r) for r in rows]

    # --- intent corrections ---

    def suggest_intent(self, record: TurnRecord, *, customer_id: str | None, label: str) -> IntentSuggestion:
        """Queue ``label`` as the right intent of the turn's text, for review; again on the same turn replaces it."""
        if not record.text.strip():
            raise InputError(f"turn {record.turn} of thread {record.thread_id} has no text to label")
        sid = feedback_id_for(record.thread_id, record.turn)
        row = {
            "id": sid,
            "thread_id": record.thread_id,
            "turn": record.turn,
            "customer_id": customer_id,
            "text": " ".join(record.text.split()),
            "predicted": record.intent,
            "label": label,
            "now": time.time(),
        }
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO intent_suggestions (id, thread_id, turn, customer_id, text, predicted, label, status,"
                " created_at) VALUES (:id, :thread_id, :turn, :customer_id, :text, :predicted, :label, 'pending',"
                " :now) ON CONFLICT(thread_id, turn) DO UPDATE SET label = excluded.label,"
                " created_at = excluded.created_at WHERE intent_suggestions.status = 'pending'",
                row,
            )
            changed = cur.rowcount
        if not changed:
            current = self.suggestion(sid)
            raise ConflictError(f"suggestion {current.id} for that turn was already {current.status}")
        return self.suggestion(sid)

    def suggestion(self, suggestion_id: str) -> IntentSuggestion:
        rows = self._rows("SELECT * FROM intent_suggestions WHERE id = ?", (suggestion_id,))
        if not rows:
            raise NotFoundError(f"no such intent suggestion: {suggestion_id}")
        return IntentSuggestion(**rows[0])

    def suggestions(self, status: SuggestionStatus | None = "pending") -> list[IntentSuggestion]:
        if status is None:
            rows = self._rows("SELECT * FROM intent_suggestions ORDER BY created_at, id")
        else:
            rows = self._rows("SELECT * FROM intent_suggestions WHERE status = ? ORDER BY created_at, id", (status,))
        return [IntentSuggestion(**r) for r in rows]

    def review(self, suggestion_id: str, status: Literal["accepted", "rejected"]) -> IntentSuggestion:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE intent_suggestions SET status = ?, reviewed_at = ? WHERE id = ? AND status = 'pending'",
                (status, time.time(), suggestion_id),
            )
            changed = cur.rowcount
        current = self.suggestion(suggestion_id)  # NotFoundError for an unknown id
        if not changed:
            raise ConflictError(f"suggestion {suggestion_id} was already {current.status}")
        return current


def _feedback(row: dict[str, Any]) -> Feedback:
    record = TurnRecord.from_dict(json.loads(row.pop("record")))
    return Feedback(record=record, **row)


def pick_turn(turns: list[TurnRecord], thread_id: str, turn: int | None) -> TurnRecord:
    """The turn asked for (1-based), by default the thread's last."""
    if not turns:
        raise NotFoundError(f"thread {thread_id!r} has no turns yet")
    if turn is None:
        return turns[-1]
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 1:
        raise InputError(f"a turn is a number from 1, not {turn!r}")
    found = next((t for t in turns if t.turn == turn), None)
    if found is None:
        raise NotFoundError(f"thread {thread_id!r} has {len(turns)} turn(s); there is no turn {turn}")
    return found


def owned_turn(
    history: TurnHistory, thread_id: str, customer_id: str | None, turn: int | None
) -> tuple[TurnRecord, str | None]:
    """The turn, and the customer the feedback is stored under.

    ``customer_id`` None: a trusted caller (the operator's CLI, ``Agent.feedback``) acting on any
    thread. Otherwise the caller acts for that customer, and a thread owned by someone else, or by
    nobody known, is answered exactly like a thread that does not exist: its existence is not leaked.
    """
    if not isinstance(thread_id, str) or not thread_id.strip() or len(thread_id) > 256:
        raise InputError("a thread id is a non-empty string of at most 256 characters")
    owner = history.owner(thread_id)
    if customer_id is not None and owner != customer_id:
        raise NotFoundError(f"unknown thread {thread_id!r}")
    return pick_turn(history.turns(thread_id), thread_id, turn), owner or customer_id


def record_feedback(
    store: FeedbackStore,
    history: TurnHistory,
    thread_id: str,
    customer_id: str | None,
    rating: int,
    *,
    comment: str | None = None,
    turn: int | None = None,
    max_comment_chars: int = 2000,
) -> Feedback:
    """Store a rating of one turn (default: the last) of a thread.

    The server calls this with the authenticated customer's id: another customer's thread is "unknown"
    (NotFoundError). In-process callers pass None (see :func:`owned_turn`).
    """
    check_rating(rating)  # bad input is refused before the thread is read
    check_comment(comment, max_chars=max_comment_chars)
    record, owner = owned_turn(history, thread_id, customer_id, turn)
    return store.rate(record, customer_id=owner, rating=rating, comment=comment, max_comment_chars=max_comment_chars)


def check_label(label: str, labels: list[str]) -> str:
    text = label.strip() if isinstance(label, str) else ""
    if not text or len(text) > MAX_LABEL_CHARS:
        raise InputError("an intent label is a short non-empty name")
    if text not in labels:
        raise InputError(f"unknown intent {text!r}; the taxonomy has: {', '.join(labels)}")
    return text
