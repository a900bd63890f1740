"""The LangGraph server as users run it (``make serve`` -> scripts/serve.py -> ``langgraph dev``), on a
free port on 127.0.0.1, driven by the official SDK: threads, each stream mode, interrupt and resume."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.langgraph_server import AGENT_TOKEN, JAMES_TOKEN, REPO, SERVE, Server, status_of

RETURNS = "How long do I have to return an item?"


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.slow
def test_handoff_interrupts_and_resumes_through_the_api(lg_server: Server) -> None:
    async def scenario() -> None:
        customer, agent = lg_server.client(JAMES_TOKEN), lg_server.client(AGENT_TOKEN)
        thread = await customer.threads.create()
        tid = thread["thread_id"]
        question = {"messages": [{"role": "user", "content": "Who will win the football world cup?"}]}
        out = await customer.runs.wait(tid, "r1agent", input=question)
        assert out["handoff"]["reason"] == "out_of_scope"
        state = await customer.threads.get(tid)
        assert state["status"] == "interrupted"
        (interrupt,) = next(iter(state["interrupts"].values()))
        payload = interrupt["value"]
        # Agent Inbox's human-interrupt shape, plus what r1agent's console reads.
        assert payload["action_request"]["action"] == "reply_to_customer"
        assert payload["config"]["allow_respond"] is True
        assert payload["ticket_id"] == out["handoff"]["ticket_id"]
        assert "football" in payload["summary"]

        # The human agent's reply resumes the customer's thread.
        resumed = await agent.runs.wait(tid, "r1agent", command={"resume": "A colleague here: no predictions!"})
        assert resumed["messages"][-1]["content"] == "A colleague here: no predictions!"
        assert resumed["handoff"]["status"] == "resolved"
        assert (await customer.threads.get(tid))["status"] == "idle"

    _run(scenario())


@pytest.mark.slow
def test_updates_stream_shows_each_node_and_context_is_per_run(lg_server: Server) -> None:
    async def scenario() -> list[str]:
        client = lg_server.client(JAMES_TOKEN)
        thread = await client.threads.create()
        nodes: list[str] = []
        async for part in client.runs.stream(
            thread["thread_id"],
            "r1agent",
            input={"messages": [{"role": "user", "content": RETURNS}]},
            context={"quality_threshold": 0.0, "max_new_tokens": 16},
            stream_mode="updates",
        ):
            if part.event == "updates" and isinstance(part.data, dict):
                nodes.extend(part.data)
        return nodes

    nodes = _run(scenario())
    assert nodes == ["perceive", "detect_intent", "recall", "retrieve", "reason", "score_quality", "remember", "answer"]


@pytest.mark.slow
def test_values_stream_ends_with_the_turns_full_state(lg_server: Server) -> None:
    async def scenario() -> list[dict[str, Any]]:
        client = lg_server.client(JAMES_TOKEN)
        thread = await client.threads.create()
        return [
            part.data
            async for part in client.runs.stream(
                thread["thread_id"],
                "r1agent",
                input={"messages": [{"role": "user", "content": RETURNS}]},
                context={"quality_threshold": 0.0, "max_new_tokens": 16},
                stream_mode="values",
            )
            if part.event == "values"
        ]

    values = _run(scenario())
    assert len(values) >= 3  # the input, then one snapshot per step
    assert [m["type"] for m in values[0]["messages"]] == ["human"]
    last = values[-1]
    assert last["intent"]["label"] == "after_sales"
    assert last["sources"] and last["quality"]["threshold"] == 0.0
    assert last["messages"][-1]["type"] == "ai" and last["messages"][-1]["content"]
    assert "thinking" in last and "draft" not in last  # the graph's output schema, not its internals


@pytest.mark.slow
def test_a_customers_messages_stream_carries_the_checked_answer_not_the_models_tokens(lg_server: Server) -> None:
    """``messages-tuple`` for a customer: the model's tokens (a draft before the quality gate and the PII mask,
    and a think trace on R1) stay on the server; the answer arrives as the answer node's message, the one
    the thread keeps. Embedded callers still stream tokens (tests/integration/test_think_stream_r1.py)."""

    async def scenario() -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], dict[str, Any]]:
        client = lg_server.client(JAMES_TOKEN)
        thread = await client.threads.create()
        parts = [
            (part.data[0], part.data[1])
            async for part in client.runs.stream(
                thread["thread_id"],
                "r1agent",
                input={"messages": [{"role": "user", "content": RETURNS}]},
                context={"quality_threshold": 0.0, "max_new_tokens": 24},
                stream_mode="messages-tuple",
            )
            if part.event == "messages"
        ]
        return parts, (await client.threads.get_state(thread["thread_id"]))["values"]

    parts, state = _run(scenario())
    nodes = {meta.get("langgraph_node") for _, meta in parts}
    assert "reason" not in nodes
    answers = [message for message, meta in parts if meta.get("langgraph_node") == "answer"]
    assert [a["content"] for a in answers] == [state["messages"][-1]["content"]]
    assert not any(m.get("additional_kwargs", {}).get("reasoning_content") for m, _ in parts)
    assert state["thinking"] == ""  # a customer's own thread keeps no trace


@pytest.mark.slow
def test_a_customer_cannot_stream_raw_events(lg_server: Server) -> None:
    async def scenario() -> int | None:
        client = lg_server.client(JAMES_TOKEN)
        thread = await client.threads.create()
        try:
            async for _ in client.runs.stream(
                thread["thread_id"],
                "r1agent",
                input={"messages": [{"role": "user", "content": RETURNS}]},
                stream_mode="events",
            ):
                pass
        except Exception as exc:  # the SDK raises httpx errors
            return status_of(exc)
        return None

    assert _run(scenario()) == 403


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


def test_the_server_config_has_absolute_paths_and_a_checkpointer_only_with_postgres() -> None:
    sys.path.insert(0, str(SERVE.parent))
    try:
        import serve  # scripts/serve.py
    finally:
        sys.path.remove(str(SERVE.parent))
    source = json.loads((REPO / "langgraph.json").read_text())
    assert source["auth"]["path"] == "./src/r1agent/server/auth.py:auth"
    assert source["checkpointer"]["path"] == "./src/r1agent/server/checkpointer.py:checkpointer"

    plain = serve.effective_config(REPO, postgres=False)
    assert "checkpointer" not in plain  # the server keeps its own default
    assert plain["auth"]["path"] == f"{REPO}/src/r1agent/server/auth.py:auth"
    assert plain["auth"]["disable_studio_auth"] is True  # no Studio bypass of the tokens
    assert plain["graphs"]["r1agent"] == f"{REPO}/src/r1agent/graphs/support.py:make_graph"
    assert plain["dependencies"] == [str(REPO)]
    assert Path(plain["env"]).is_absolute()
    with_pg = serve.effective_config(REPO, postgres=True)
    assert with_pg["checkpointer"]["path"] == f"{REPO}/src/r1agent/server/checkpointer.py:checkpointer"


def test_reload_needs_the_default_state_dir(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SERVE), "--reload", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--reload" in done.stderr
