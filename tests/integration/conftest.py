"""The LangGraph server on the default stack, started once per test session and shared by the server
test modules (a start costs 10-25 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.langgraph_server import Server, running_server


@pytest.fixture(scope="session")
def lg_server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Server]:
    """Demo tokens (R1AGENT_AUTH_TOKENS unset), the server's default checkpointer, SQLite orders."""
    root = tmp_path_factory.mktemp("lg-server")
    with running_server(data_dir=root / "data", state_dir=root / "state", cache_dir=cache_dir) as server:
        yield server
