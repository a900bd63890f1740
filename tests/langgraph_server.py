"""Start the real LangGraph server as users do (``make serve`` -> scripts/serve.py -> ``langgraph dev``), on a
free port on 127.0.0.1, with its own data and state folders, and stop it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVE = REPO / "scripts" / "serve.py"
START_TIMEOUT_S = 240

# The bundled demo tokens (src/r1agent/data/demo_tokens.json, documented in docs/server.md).
AGENT_TOKEN = "demo-agent-sam"
JAMES_TOKEN = "demo-customer-james"  # james_li_5688: orders #W2611340, #W3632959, #W4435622, #W3638028
AVA_TOKEN = "demo-customer-ava"  # ava_moore_2033: orders #W4817420, #W4135875, #W2173715, #W8951014
JAMES, AVA = "james_li_5688", "ava_moore_2033"


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    state_dir: Path
    log: Path

    def client(self, token: str | None) -> Any:
        from langgraph_sdk import get_client

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return get_client(url=self.url, headers=headers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    *, data_dir: Path, state_dir: Path, cache_dir: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """The server, up and answering ``/ok``; stopped with SIGTERM (a clean shutdown) on exit."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    # The answer cache off, as in tests/conftest.py: tests that repeat a question must reach the model.
    child_env.update(
        R1AGENT_DATA_DIR=str(data_dir),
        R1AGENT_CACHE_DIR=str(cache_dir),
        R1AGENT_MAX_NEW_TOKENS="32",
        R1AGENT_ANSWER_CACHE="false",
    )
    child_env.update(env or {})
    log = state_dir / f"server-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(SERVE), "--port", str(port), "--state-dir", str(state_dir)],
            env=child_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(url=f"http://127.0.0.1:{port}", data_dir=data_dir, state_dir=state_dir, log=log)
        try:
            _wait_until_up(proc, server)
            yield server
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _wait_until_up(proc: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # bounded: the deadline ends it
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/ok", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"server did not answer /ok within {START_TIMEOUT_S} s: {server.log.read_text()[-3000:]}")
        time.sleep(1)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK (httpx) error."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)
