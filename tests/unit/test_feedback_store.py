"""The feedback store: validation, one rating per turn, ownership, and the intent review queue."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from r1agent.errors import ConflictError, InputError, NotFoundError
from r1agent.feedback.store import FeedbackStore, check_label, pick_turn, record_feedback
from r1agent.feedback.turns import TurnRecord


def turn(thread_id: str, n: int, **changes: object) -> TurnRecord:
    data: dict[str, object] = {
        "thread_id": thread_id,
        "turn": n,
        "text": f"question {n}",
        "prompt": [{"role": "user", "content": f"question {n}"}],
        "draft": f"draft {n}",
        "reply": f"answer {n}",
        "intent": "product_inquiry",
        "quality": 0.7,
    }
    data.update(changes)
    return TurnRecord.from_dict(data)


class FakeHistory:
    """Threads in memory: {thread: (owner, turns)}; counts reads to show what was not read."""

    def __init__(self, threads: dict[str, tuple[str | None, int]]) -> None:
        self.threads = threads
        self.reads = 0

    def _get(self, thread_id: str) -> tuple[str | None, int]:
        self.reads += 1
        if thread_id not in self.threads:
            raise NotFoundError(f"unknown thread {thread_id!r}")
        return self.threads[thread_id]

    def turns(self, thread_id: str) -> list[TurnRecord]:
        return [turn(thread_id, n) for n in range(1, self._get(thread_id)[1] + 1)]

    def owner(self, thread_id: str) -> str | None:
        return self._get(thread_id)[0]


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    with FeedbackStore(tmp_path / "data" / "feedback.sqlite") as s:
        yield s  # type: ignore[misc]


HISTORY = {"t-alice": ("alice_1", 3), "t-nobody": (None, 1)}


def test_rating_the_last_turn_by_default_and_again_replaces(store: FeedbackStore) -> None:
    history = FakeHistory(HISTORY)
    first = record_feedback(store, history, "t-alice", None, 2, comment="  too vague  ")
    assert (first.turn, first.rating, first.comment, first.customer_id) == (3, 2, "too vague", "alice_1")
    assert first.record.draft == "draft 3"
    again = record_feedback(store, history, "t-alice", None, 5, comment="   ")
    assert again.id == first.id
    assert (again.rating, again.comment, again.created_at) == (5, None, first.created_at)
    assert again.updated_at >= first.updated_at
    other = record_feedback(store, history, "t-alice", None, 4, turn=1)
    assert [(f.turn, f.rating) for f in store.ratings(thread_id="t-alice")] == [(1, 4), (3, 5)]
    assert store.get(other.id).record.text == "question 1"


@pytest.mark.parametrize("rating", [0, 6, True, 3.5])
def test_bad_ratings_are_refused_before_the_thread_is_read(store: FeedbackStore, rating: object) -> None:
    history = FakeHistory(HISTORY)
    with pytest.raises(InputError, match="1 to 5"):
        record_feedback(store, history, "t-alice", None, rating)  # type: ignore[arg-type]
    assert history.reads == 0
    assert store.ratings() == []


def test_comment_length_is_limited(store: FeedbackStore) -> None:
    history = FakeHistory(HISTORY)
    with pytest.raises(InputError, match="2,001 characters; the limit is 2,000"):
        record_feedback(store, history, "t-alice", None, 3, comment="x" * 2001)
    ok = record_feedback(store, history, "t-alice", None, 3, comment="y" * 2000)
    assert ok.comment is not None and len(ok.comment) == 2000


def test_unknown_threads_and_turns(store: FeedbackStore) -> None:
    history = FakeHistory(HISTORY)
    with pytest.raises(NotFoundError, match="unknown thread"):
        record_feedback(store, history, "nope", None, 3)
    with pytest.raises(NotFoundError, match="has 3 turn"):
        record_feedback(store, history, "t-alice", None, 3, turn=4)
    with pytest.raises(InputError, match="a turn is a number from 1"):
        record_feedback(store, history, "t-alice", None, 3, turn=0)
    with pytest.raises(InputError, match="thread id"):
        record_feedback(store, history, "", None, 3)
    with pytest.raises(NotFoundError, match="no turns"):
        pick_turn([], "t", None)


def test_a_customer_only_finds_their_own_threads(store: FeedbackStore) -> None:
    history = FakeHistory(HISTORY)
    mine = record_feedback(store, history, "t-alice", "alice_1", 4)
    assert mine.customer_id == "alice_1"
    # Someone else's thread, and a thread of no known customer, read exactly like a missing thread.
    for thread in ("t-alice", "t-nobody", "missing"):
        customer = "mallory_2" if thread == "t-alice" else "alice_1"
        with pytest.raises(NotFoundError) as caught:
            record_feedback(store, history, thread, customer, 1)
        assert str(caught.value) == f"unknown thread {thread!r}"
    assert [f.rating for f in store.ratings()] == [4]


def test_sql_is_parameterised(store: FeedbackStore, tmp_path: Path) -> None:
    sneaky = "x'); DROP TABLE feedback; --"
    fb = record_feedback(store, FakeHistory({sneaky: (None, 1)}), sneaky, None, 5)
    assert store.get(fb.id).thread_id == sneaky
    assert len(store.ratings()) == 1


def test_the_file_is_wal_and_shared_by_connections(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    history = FakeHistory({f"t{i}": (None, 1) for i in range(8)})
    with FeedbackStore(path) as a, FeedbackStore(path) as b:
        workers = [
            threading.Thread(target=record_feedback, args=(a if i % 2 else b, history, f"t{i}", None, 1 + i % 5))
            for i in range(8)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(a.ratings()) == 8
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_intent_suggestions_are_reviewed_once(store: FeedbackStore) -> None:
    record = turn("t-alice", 2, intent="small_talk", text="my  charger\nis broken")
    queued = store.suggest_intent(record, customer_id="alice_1", label="tech_support")
    assert (queued.status, queued.predicted, queued.label, queued.text) == (
        "pending",
        "small_talk",
        "tech_support",
        "my charger is broken",
    )
    changed = store.suggest_intent(record, customer_id="alice_1", label="after_sales")  # pending: replaced
    assert (changed.id, changed.label) == (queued.id, "after_sales")
    assert [s.id for s in store.suggestions()] == [queued.id]
    accepted = store.review(queued.id, "accepted")
    assert accepted.status == "accepted" and accepted.reviewed_at is not None
    assert store.suggestions() == []
    assert [s.id for s in store.suggestions("accepted")] == [queued.id]
    with pytest.raises(ConflictError, match="already accepted"):
        store.review(queued.id, "rejected")
    with pytest.raises(ConflictError, match="already accepted"):
        store.suggest_intent(record, customer_id=None, label="account")
    with pytest.raises(NotFoundError):
        store.review("nope", "accepted")
    with pytest.raises(InputError, match="no text"):
        store.suggest_intent(turn("t", 1, text="  "), customer_id=None, label="account")


def test_labels_must_be_in_the_taxonomy() -> None:
    labels = ["account", "tech_support"]
    assert check_label(" account ", labels) == "account"
    with pytest.raises(InputError, match="unknown intent 'billing'; the taxonomy has: account, tech_support"):
        check_label("billing", labels)
    with pytest.raises(InputError):
        check_label("x" * 65, labels)
