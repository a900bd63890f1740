"""The LangGraph server on the default stack, started once per test session and shared by the server
test modules (a start costs 10-25 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.langgraph_server import Server, running_server


@pytest.fixture(scope="session")
def lg_server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Server]:
    """Demo tokens (R1AGENT_AUTH_TOKENS unset), the server's default checkpointer, SQLite orders.

    Rate limits off: many modules share this server and its demo callers (the fuzzer alone sends
    hundreds of requests); tests/integration/test_server_ratelimit.py starts its own, limited one."""
    root = tmp_path_factory.mktemp("lg-server")
    no_limits = {"R1AGENT_RATE_LIMIT_PER_MINUTE": "0", "R1AGENT_RATE_LIMIT_READS_PER_MINUTE": "0"}
    with running_server(data_dir=root / "data", state_dir=root / "state", cache_dir=cache_dir, env=no_limits) as server:
        yield server
