"""The server on Postgres (``R1AGENT_POSTGRES_URL``): checkpoints in Postgres, a pending handoff that
survives a server restart, the order tool on Postgres (``R1AGENT_ORDERS_POSTGRES_URL``), and tokens from
a YAML file (``R1AGENT_AUTH_TOKENS``).

Needs a Postgres database: ``R1AGENT_TEST_POSTGRES_URL`` (``.ci/run`` starts one, see
``scripts/start-postgres.sh``). Skipped without it, failed without it in CI.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.langgraph_server import JAMES_TOKEN, SERVE, Server, free_port, running_server, status_of

pytestmark = pytest.mark.slow

CUSTOMER_TOKEN = "yaml-customer-token-0001"
AGENT_TOKEN = "yaml-agent-token-00000001"
CUSTOMER = "yusuf_rossi_9620"  # orders #W6247578 (pending), #W9711842 (cancelled), ...
TOKENS_YAML = f"""# tokens for the Postgres server test
{CUSTOMER_TOKEN}:
  identity: {CUSTOMER}
  role: customer
{AGENT_TOKEN}:
  identity: alex
  role: agent
"""


@pytest.fixture(scope="module")
def postgres_url() -> str:
    url = os.environ.get("R1AGENT_TEST_POSTGRES_URL")
    if not url:
        reason = "R1AGENT_TEST_POSTGRES_URL is not set (bash scripts/start-postgres.sh prints one, as root)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must test the Postgres checkpointer")
        pytest.skip(reason)
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(f"R1AGENT_TEST_POSTGRES_URL is set but Postgres does not answer: {type(exc).__name__}")
    return url


@pytest.fixture(scope="module")
def server_setup(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, postgres_url: str) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pg-server")
    tokens = root / "tokens.yaml"
    tokens.write_text(TOKENS_YAML)
    env = {
        "R1AGENT_POSTGRES_URL": postgres_url,
        "R1AGENT_ORDERS_POSTGRES_URL": postgres_url,
        "R1AGENT_AUTH_TOKENS": str(tokens),
    }
    return {"data_dir": root / "data", "state_dir": root / "state", "cache_dir": cache_dir, "env": env}


class Restartable:
    """One server at a time on the same state folder and database; ``restart`` stops it and starts another."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.setup = setup
        self._stack = ExitStack()
        self.server = self._start()

    def _start(self) -> Server:
        return self._stack.enter_context(running_server(**self.setup))

    def restart(self) -> Server:
        self._stack.close()  # SIGTERM: the server shuts down cleanly, as an operator's restart would
        self._stack = ExitStack()
        self.server = self._start()
        return self.server

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def pg(server_setup: dict[str, Any]) -> Iterator[Restartable]:
    servers = Restartable(server_setup)
    try:
        yield servers
    finally:
        servers.close()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute(query, params).fetchall())


def test_the_yaml_tokens_file_replaces_the_demo_tokens(pg: Restartable) -> None:
    async def status(token: str) -> int | None:
        try:
            await pg.server.client(token).threads.search()
        except Exception as exc:
            return status_of(exc)
        return 200

    assert _run(status(JAMES_TOKEN)) == 401  # a demo token is not valid here
    assert _run(status(CUSTOMER_TOKEN)) == 200
    assert "bundled demo tokens" not in pg.server.log.read_text()


def test_orders_come_from_postgres(pg: Restartable, postgres_url: str) -> None:
    async def ask() -> dict[str, Any]:
        client = pg.server.client(CUSTOMER_TOKEN)
        thread = await client.threads.create()
        return dict(
            await client.runs.wait(
                thread["thread_id"],
                "r1agent",
                input={"messages": [{"role": "user", "content": "What is the status of order #W6247578?"}]},
                context={"quality_threshold": 0.0},
            )
        )

    out = _run(ask())
    (call,) = out["tool_calls"]
    assert call["args"] == {"order_id": "#W6247578", "customer_id": CUSTOMER}
    assert call["error"] is None and "Order #W6247578: pending" in call["result"]
    assert _rows(postgres_url, "SELECT user_id FROM orders WHERE order_id = %s", "#W6247578") == [(CUSTOMER,)]
    assert not (pg.server.data_dir / "orders.sqlite").exists()


def test_a_pending_handoff_survives_a_restart(pg: Restartable, postgres_url: str) -> None:
    async def hand_off() -> tuple[str, str]:
        client = pg.server.client(CUSTOMER_TOKEN)
        thread = await client.threads.create()
        out = await client.runs.wait(
            thread["thread_id"],
            "r1agent",
            input={"messages": [{"role": "user", "content": "Please let me speak to a real person."}]},
        )
        assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"
        return thread["thread_id"], out["handoff"]["ticket_id"]

    tid, ticket = _run(hand_off())
    # The thread's checkpoints are in Postgres, not in the server's own files.
    assert _rows(postgres_url, "SELECT count(*) FROM checkpoints WHERE thread_id = %s", tid)[0][0] > 0

    server = pg.restart()
    reply = "Alex here, after the restart."

    async def resume() -> tuple[dict[str, Any], dict[str, Any]]:
        agent = server.client(AGENT_TOKEN)
        waiting = await agent.threads.search(status="interrupted", limit=100)
        assert tid in {t["thread_id"] for t in waiting}
        (interrupt,) = next(iter((await agent.threads.get(tid))["interrupts"].values()))
        assert interrupt["value"]["ticket_id"] == ticket
        done = dict(await agent.runs.wait(tid, "r1agent", command={"resume": reply}))
        return done, dict(await server.client(CUSTOMER_TOKEN).threads.get(tid))

    done, thread = _run(resume())
    assert done["messages"][-1]["content"] == reply
    assert done["handoff"] == {"ticket_id": ticket, "reason": "requested", "status": "resolved"}
    assert thread["status"] == "idle" and thread["metadata"]["owner"] == CUSTOMER


def test_an_unreachable_database_stops_the_server_at_start_without_showing_the_password(
    tmp_path: Path, cache_dir: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env.update(
        R1AGENT_POSTGRES_URL="postgresql://r1agent:hunter2-secret@127.0.0.1:9/nowhere",
        R1AGENT_DATA_DIR=str(tmp_path / "data"),
        R1AGENT_CACHE_DIR=str(cache_dir),
    )
    done = subprocess.run(
        [sys.executable, str(SERVE), "--port", str(free_port()), "--state-dir", str(tmp_path / "state")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "R1AGENT_POSTGRES_URL: no connection to 127.0.0.1:9/nowhere" in output
    assert "hunter2" not in output
