"""The LangGraph server's checkpointer: ``langgraph.json`` → ``"checkpointer": {"path": ...:checkpointer}``.

With ``R1AGENT_POSTGRES_URL`` the server keeps its checkpoints (thread state, pending handoffs) in
Postgres through LangGraph's ``AsyncPostgresSaver`` on a small connection pool, so they outlive the
server process. Without it, ``scripts/serve.py`` leaves this hook out of the server's config and the
server keeps its own default; started some other way (a bare ``langgraph dev``), this hook hands back
that same default saver.

The server enters :func:`checkpointer` once per event loop and closes it on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from r1agent.errors import ConfigurationError
from r1agent.settings import Settings

POOL_MAX_SIZE = 8
"""Concurrent checkpoint reads/writes; a dev server runs one graph step at a time per run."""
CONNECT_TIMEOUT_S = 15.0


def describe(url: str) -> str:
    """``host:port/dbname`` of a connection URL: enough to say where, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a malformed URL is described, not echoed (it may hold a password)
        return "an unparseable URL"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


@asynccontextmanager
async def open_async_postgres(url: str, *, max_size: int = POOL_MAX_SIZE) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """An ``AsyncPostgresSaver`` with its tables set up, on a pool that is closed on exit."""
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool, PoolTimeout
    except ImportError as exc:
        raise ConfigurationError("R1AGENT_POSTGRES_URL needs: pip install 'r1agent[postgres]'") from exc
    # The saver's own settings: autocommit, no server-side prepared statements (poolers), dict rows.
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except PoolTimeout:
        await pool.close()
        raise ConfigurationError(
            f"R1AGENT_POSTGRES_URL: no connection to {describe(url)} within {CONNECT_TIMEOUT_S:.0f} s"
        ) from None
    try:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        yield saver
    finally:
        await pool.close()


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The hook ``langgraph.json`` names."""
    settings = Settings()
    if settings.postgres_url is None:
        from langgraph_runtime.checkpoint import Checkpointer  # type: ignore[import-untyped]  # the server's default

        yield Checkpointer()
        return
    async with open_async_postgres(settings.postgres_url.get_secret_value()) as saver:
        yield saver
