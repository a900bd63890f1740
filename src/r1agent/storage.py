"""The SQLite files r1agent keeps beside its threads (handoff tickets, feedback)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_sqlite(path: Path | str, schema: str) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder if missing) with ``schema`` applied.

    One connection is shared across the graph's worker threads, so the store serialises its calls with a
    lock of its own; autocommit, so every statement is its own transaction unless a store opens one. WAL
    lets another process (the operator's CLI) read while the server writes, and a busy writer is waited
    for up to 5 s instead of failing at once. ``path`` may be ``":memory:"`` (a str) in tests.
    """
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(schema)
    return conn
