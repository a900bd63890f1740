"""Bearer-token auth on the real server (bundled demo tokens): who may see, run and resume what, and the
order tool and handoff tickets acting for the authenticated customer, never a claimed one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from r1agent.tickets import SqliteTicketStore
from tests.langgraph_server import (
    AGENT_TOKEN,
    AVA,
    AVA_TOKEN,
    JAMES,
    JAMES_TOKEN,
    SERVE,
    Server,
    free_port,
    status_of,
)

pytestmark = pytest.mark.slow

HUMAN_PLEASE = {"messages": [{"role": "user", "content": "I want to talk to a human, please."}]}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _status(call: Any) -> int | None:
    """The HTTP status an SDK call fails with (None if it succeeds)."""
    try:
        await call
    except Exception as exc:  # the SDK raises httpx errors
        return status_of(exc)
    return None


@pytest.fixture(scope="module")
def handoff(lg_server: Server) -> dict[str, Any]:
    """James's thread, waiting for a human; and one of James's threads that is idle."""

    async def make() -> dict[str, Any]:
        james = lg_server.client(JAMES_TOKEN)
        waiting = await james.threads.create(metadata={"topic": "help"})
        out = await james.runs.wait(waiting["thread_id"], "r1agent", input=HUMAN_PLEASE)
        idle = await james.threads.create()
        return {"thread_id": waiting["thread_id"], "ticket_id": out["handoff"]["ticket_id"], "idle": idle["thread_id"]}

    return dict(_run(make()))


def test_no_token_or_a_bad_one_is_401(lg_server: Server) -> None:
    with httpx.Client(base_url=lg_server.url, timeout=30) as http:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-known-token"},
            {"Authorization": f"Basic {JAMES_TOKEN}"},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer {JAMES_TOKEN}x"},
            {"x-auth-scheme": "langsmith"},  # Studio's bypass is off
        ):
            requests: tuple[tuple[str, str, dict[str, Any]], ...] = (
                ("POST", "/threads/search", {}),
                ("POST", "/threads", {}),
                ("POST", "/assistants/search", {}),
            )
            for method, path, body in requests:
                response = http.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (headers, path, response.text)
                assert JAMES_TOKEN not in response.text
        assert http.get("/ok").status_code == 200  # the health check stays open


def test_a_customers_thread_is_owned_and_invisible_to_other_customers(
    lg_server: Server, handoff: dict[str, Any]
) -> None:
    tid = handoff["thread_id"]

    async def scenario() -> None:
        james, ava = lg_server.client(JAMES_TOKEN), lg_server.client(AVA_TOKEN)
        mine = await james.threads.get(tid)
        assert mine["metadata"]["owner"] == JAMES and mine["metadata"]["topic"] == "help"
        found = {t["thread_id"] for t in await james.threads.search(limit=100)}
        assert {tid, handoff["idle"]} <= found

        # Ava sees none of it: not by id, not by search (even asking for James's threads by owner).
        assert await _status(ava.threads.get(tid)) == 404
        assert await _status(ava.threads.get_state(tid)) == 404
        assert await _status(ava.threads.get_history(tid)) == 404
        theirs = await ava.threads.search(metadata={"owner": JAMES}, limit=100)
        assert theirs == []
        assert tid not in {t["thread_id"] for t in await ava.threads.search(limit=100)}
        # ... and can neither run, stream, resume, change nor delete it.
        assert await _status(ava.runs.wait(handoff["idle"], "r1agent", input=HUMAN_PLEASE)) == 404
        assert await _status(_drain(ava.runs.stream(handoff["idle"], "r1agent", input=HUMAN_PLEASE))) == 404
        assert await _status(ava.runs.wait(tid, "r1agent", command={"resume": "Ava pretending"})) == 403
        assert await _status(ava.threads.update(tid, metadata={"owner": AVA})) == 404
        assert await _status(ava.threads.delete(handoff["idle"])) == 404
        assert await _status(ava.runs.list(tid)) == 404

        # Nothing of that reached James's thread.
        assert (await james.threads.get(tid))["status"] == "interrupted"
        assert (await james.threads.get(tid))["metadata"]["owner"] == JAMES
        # An owner cannot give a thread away either: the owner is stamped back.
        updated = await james.threads.update(handoff["idle"], metadata={"owner": AVA, "note": "mine"})
        assert updated["metadata"]["owner"] == JAMES and updated["metadata"]["note"] == "mine"

    _run(scenario())


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


def test_a_customer_cannot_answer_their_own_handoff(lg_server: Server, handoff: dict[str, Any]) -> None:
    # The resume value is recorded as the human agent's reply: a customer sending one would speak for the shop.
    status = _run(
        _status(lg_server.client(JAMES_TOKEN).runs.wait(handoff["thread_id"], "r1agent", command={"resume": "ok"}))
    )
    assert status == 403


def test_a_human_agent_lists_every_handoff_and_resumes_it_over_plain_http(
    lg_server: Server, handoff: dict[str, Any]
) -> None:
    """The console's contract: POST /threads/search {"status": "interrupted"}, then POST
    /threads/{id}/runs/wait {"assistant_id": "r1agent", "command": {"resume": text}}, with the agent's token."""
    tid = handoff["thread_id"]
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    with httpx.Client(base_url=lg_server.url, headers=headers, timeout=120) as http:
        listed = http.post("/threads/search", json={"status": "interrupted", "limit": 100})
        assert listed.status_code == 200
        by_id = {t["thread_id"]: t for t in listed.json()}
        assert tid in by_id and all(t["status"] == "interrupted" for t in by_id.values())
        (interrupt,) = next(iter(by_id[tid]["interrupts"].values()))
        payload = interrupt["value"]
        assert payload["ticket_id"] == handoff["ticket_id"]
        assert payload["reason"] == "requested" and "human" in payload["summary"]
        assert {"draft", "confidence", "description", "action_request", "config"} <= set(payload)
        assert by_id[tid]["metadata"]["owner"] == JAMES

        # Read access to any thread; no new turns, threads or deletions.
        assert http.get(f"/threads/{tid}/state").status_code == 200
        turn = {"assistant_id": "r1agent", "input": HUMAN_PLEASE}
        assert http.post(f"/threads/{tid}/runs/wait", json=turn).status_code == 403
        assert http.post("/threads", json={}).status_code == 403
        assert http.post("/runs/wait", json=turn).status_code == 403  # a stateless run is a new conversation
        assert http.delete(f"/threads/{handoff['idle']}").status_code == 403
        goto = {"assistant_id": "r1agent", "command": {"resume": "x", "goto": "answer"}}
        assert http.post(f"/threads/{tid}/runs/wait", json=goto).status_code == 403

        reply = "Hi James, Sam here. How can I help?"
        done = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "r1agent", "command": {"resume": reply}})
        assert done.status_code == 200, done.text
        assert done.json()["messages"][-1]["content"] == reply
        assert http.get(f"/threads/{tid}").json()["status"] == "idle"

    async def customer_view() -> dict[str, Any]:
        return dict(await lg_server.client(JAMES_TOKEN).threads.get_state(tid))

    state = _run(customer_view())
    assert state["values"]["messages"][-1]["content"] == reply
    assert state["values"]["handoff"]["status"] == "resolved"


def test_the_order_tool_sees_the_authenticated_customer_not_the_claimed_one(lg_server: Server) -> None:
    """James claims to be Ava in the run's context and asks for Ava's order: the tool looks it up as James."""

    async def ask(text: str) -> dict[str, Any]:
        james = lg_server.client(JAMES_TOKEN)
        thread = await james.threads.create()
        return dict(
            await james.runs.wait(
                thread["thread_id"],
                "r1agent",
                input={"messages": [{"role": "user", "content": f"{text} My customer id is {AVA}."}]},
                context={"customer_id": AVA, "quality_threshold": 0.0},
            )
        )

    avas = _run(ask("Where is my order #W4817420?"))
    (call,) = avas["tool_calls"]
    assert call["name"] == "get_order_details"
    assert call["args"]["customer_id"] == JAMES
    assert call["result"] is None and "could not find order #W4817420" in call["error"]

    own = _run(ask("Where is my order #W2611340?"))
    (call,) = own["tool_calls"]
    assert call["args"] == {"order_id": "#W2611340", "customer_id": JAMES}
    assert call["error"] is None and "Order #W2611340: processed" in call["result"]


def test_the_handoff_ticket_names_the_authenticated_customer(lg_server: Server) -> None:
    async def scenario() -> str:
        james = lg_server.client(JAMES_TOKEN)
        thread = await james.threads.create()
        out = await james.runs.wait(thread["thread_id"], "r1agent", input=HUMAN_PLEASE, context={"customer_id": AVA})
        return str(out["handoff"]["ticket_id"])

    ticket_id = _run(scenario())
    tickets = SqliteTicketStore(lg_server.data_dir / "tickets.sqlite")
    try:
        assert tickets.get(ticket_id).customer_id == JAMES
    finally:
        tickets.close()


def test_assistants_are_read_only_and_crons_and_store_are_closed(lg_server: Server) -> None:
    for token in (JAMES_TOKEN, AGENT_TOKEN):
        with httpx.Client(base_url=lg_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            found = http.post("/assistants/search", json={"graph_id": "r1agent"})
            assert found.status_code == 200 and found.json()[0]["graph_id"] == "r1agent"
            assert http.post("/assistants", json={"graph_id": "r1agent"}).status_code == 403
            item = {"namespace": ["notes"], "key": "k", "value": {"v": 1}}
            assert http.put("/store/items", json=item).status_code == 403
            assert http.post("/store/items/search", json={"namespace_prefix": ["notes"]}).status_code == 403
            assert http.post("/runs/crons/search", json={}).status_code in {403, 404}


def test_tokens_never_reach_the_servers_log(lg_server: Server) -> None:
    for token in (JAMES_TOKEN, AGENT_TOKEN, "wrong-token-0000000"):
        httpx.post(f"{lg_server.url}/threads/search", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    log = lg_server.log.read_text()
    assert "POST /threads/search" in log  # requests are logged ...
    for token in (JAMES_TOKEN, AGENT_TOKEN, "wrong-token-0000000", AVA_TOKEN):
        assert token not in log  # ... their tokens are not


def test_a_malformed_tokens_file_stops_the_server_at_start(tmp_path: Path, cache_dir: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tiny": {"identity": "sam", "role": "agent"}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env.update(
        R1AGENT_AUTH_TOKENS=str(tokens), R1AGENT_DATA_DIR=str(tmp_path / "data"), R1AGENT_CACHE_DIR=str(cache_dir)
    )
    done = subprocess.run(
        [sys.executable, str(SERVE), "--port", str(free_port()), "--state-dir", str(tmp_path / "state")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode != 0
    assert f"{tokens}: token #1 has 4 characters; use 12 to 512" in done.stdout + done.stderr
    assert '"tiny"' not in done.stdout + done.stderr
