"""The LangGraph server as users run it (``make serve`` -> scripts/serve.py -> ``langgraph dev``), on a
free port on 127.0.0.1, driven by the official SDK."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "scripts" / "serve.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[str]:
    port = _free_port()
    data = tmp_path_factory.mktemp("server-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env.update(R1AGENT_DATA_DIR=str(data), R1AGENT_CACHE_DIR=str(cache_dir), R1AGENT_MAX_NEW_TOKENS="32")
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:  # bounded: the deadline ends it
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {(data / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /ok within 240 s")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.slow
def test_handoff_interrupts_and_resumes_through_the_api(server: str) -> None:
    from langgraph_sdk import get_client

    async def scenario() -> None:
        client = get_client(url=server)
        thread = await client.threads.create()
        tid = thread["thread_id"]
        question = {"messages": [{"role": "user", "content": "Who will win the football world cup?"}]}
        out = await client.runs.wait(tid, "r1agent", input=question)
        assert out["handoff"]["reason"] == "out_of_scope"
        state = await client.threads.get(tid)
        assert state["status"] == "interrupted"
        (interrupt,) = next(iter(state["interrupts"].values()))
        payload = interrupt["value"]
        # Agent Inbox's human-interrupt shape, plus what r1agent's console reads.
        assert payload["action_request"]["action"] == "reply_to_customer"
        assert payload["config"]["allow_respond"] is True
        assert payload["ticket_id"] == out["handoff"]["ticket_id"]
        assert "football" in payload["summary"]

        resumed = await client.runs.wait(tid, "r1agent", command={"resume": "A colleague here: no predictions!"})
        assert resumed["messages"][-1]["content"] == "A colleague here: no predictions!"
        assert resumed["handoff"]["status"] == "resolved"
        assert (await client.threads.get(tid))["status"] == "idle"

    _run(scenario())


@pytest.mark.slow
def test_updates_stream_shows_each_node_and_context_is_per_run(server: str) -> None:
    from langgraph_sdk import get_client

    async def scenario() -> list[str]:
        client = get_client(url=server)
        thread = await client.threads.create()
        nodes: list[str] = []
        async for part in client.runs.stream(
            thread["thread_id"],
            "r1agent",
            input={"messages": [{"role": "user", "content": "How long do I have to return an item?"}]},
            context={"quality_threshold": 0.0, "max_new_tokens": 16},
            stream_mode="updates",
        ):
            if part.event == "updates" and isinstance(part.data, dict):
                nodes.extend(part.data)
        return nodes

    nodes = _run(scenario())
    assert nodes == ["perceive", "detect_intent", "retrieve", "reason", "score_quality", "answer"]


def test_an_explicit_port_that_is_taken_is_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = subprocess.run(
            [sys.executable, str(SERVE), "--port", str(port)], capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
