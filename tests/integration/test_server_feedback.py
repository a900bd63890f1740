"""Feedback through the real server (``POST``/``GET /threads/{id}/feedback``, demo tokens): a customer rates
their answer and ``r1agent feedback export`` sees it; another customer gets 404; a human agent's correction
of a handed-off turn becomes a DPO pair; bad input gets a clear 4xx."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from r1agent.feedback.store import FeedbackStore
from tests.conftest import run_cli
from tests.langgraph_server import AGENT_TOKEN, AVA_TOKEN, JAMES, JAMES_TOKEN, Server

pytestmark = pytest.mark.slow

QUESTION = "Can I return opened headphones, and how many days do I have?"


def _http(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=300)


def _turn(http: httpx.Client, text: str, **run: Any) -> tuple[str, dict[str, Any]]:
    tid = str(http.post("/threads", json={}).json()["thread_id"])
    out = http.post(
        f"/threads/{tid}/runs/wait",
        json={"assistant_id": "r1agent", "input": {"messages": [{"role": "user", "content": text}]}, **run},
    )
    assert out.status_code == 200, out.text
    return tid, out.json()


@pytest.fixture(scope="module")
def answered(lg_server: Server) -> str:
    """James's thread with one answered turn."""
    with _http(lg_server, JAMES_TOKEN) as james:
        # A threshold every answer reaches: the tiny test model's answer is not handed to a human.
        tid, out = _turn(james, QUESTION, context={"quality_threshold": 0.0})
    assert out.get("handoff") is None, out
    return tid


def _export(server: Server, out: Path) -> dict[str, list[dict[str, Any]]]:
    """``r1agent feedback export`` in a second process on the server's data folder, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env["R1AGENT_DATA_DIR"] = str(server.data_dir)
    done = run_cli([sys.executable, "-m", "r1agent"], env, "feedback", "export", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    return {
        name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines() if line.strip()]
        for name in ("dpo", "grpo")
    }


def test_a_customer_rates_their_answer_and_the_export_sees_it(lg_server: Server, answered: str, tmp_path: Path) -> None:
    tid = answered
    with _http(lg_server, JAMES_TOKEN) as james:
        rated = james.post(f"/threads/{tid}/feedback", json={"rating": 2, "comment": "too vague"})
        assert rated.status_code == 200, rated.text
        again = james.post(f"/threads/{tid}/feedback", json={"rating": 5, "comment": "clear after all", "turn": 1})
        assert again.status_code == 200, again.text
        body = again.json()
        assert body["id"] == rated.json()["id"]  # one rating per turn: the second replaced the first
        assert (body["thread_id"], body["turn"], body["rating"], body["customer_id"]) == (tid, 1, 5, JAMES)
        assert body["comment"] == "clear after all" and body["handed_off"] is False and body["corrected"] is False
        assert body["reward"]["components"]["satisfaction"] == pytest.approx(2.0)
        listed = james.get(f"/threads/{tid}/feedback")
        assert listed.status_code == 200
        assert [(f["turn"], f["rating"]) for f in listed.json()] == [(1, 5)]

    # The server wrote the feedback store every entry point shares, with the turn's snapshot.
    with FeedbackStore(lg_server.data_dir / "feedback.sqlite") as store:
        (stored,) = store.ratings(thread_id=tid)
    assert stored.rating == 5 and stored.customer_id == JAMES
    assert stored.record.text == QUESTION and stored.record.draft  # the model's draft, from the checkpoints
    assert stored.record.prompt[0]["role"] == "system" and QUESTION in stored.record.prompt[-1]["content"]

    exported = _export(lg_server, tmp_path / "export")
    (row,) = [r for r in exported["grpo"] if r["thread_id"] == tid]
    assert row["rating"] == 5 and row["completion"][0]["content"] == stored.record.draft.strip()


def test_another_customers_thread_is_404_exactly_like_no_thread(lg_server: Server, answered: str) -> None:
    tid, nowhere = answered, str(uuid.uuid4())
    with _http(lg_server, AVA_TOKEN) as ava:
        for method, body in (("POST", {"rating": 1, "comment": "spam"}), ("GET", None)):
            theirs = ava.request(method, f"/threads/{tid}/feedback", json=body)
            missing = ava.request(method, f"/threads/{nowhere}/feedback", json=body)
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json()["detail"].replace(tid, "ID") == missing.json()["detail"].replace(nowhere, "ID")
    with FeedbackStore(lg_server.data_dir / "feedback.sqlite") as store:
        assert all(f.comment != "spam" for f in store.ratings())  # nothing of Ava's was stored


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"rating": 6}, 422, "rating"),
        ({"rating": 0}, 422, "rating"),
        ({"rating": "5"}, 422, "rating"),
        ({"rating": True}, 422, "rating"),
        ({"rating": 4.5}, 422, "rating"),
        ({}, 422, "rating"),
        ({"rating": 4, "stars": 4}, 422, "stars"),
        ({"rating": 4, "turn": 0}, 422, "turn"),
        ({"rating": 4, "turn": 9}, 404, "no turn 9"),
        ({"rating": 4, "comment": "x" * 2001}, 422, "2,000"),
        ([4], 422, "JSON object"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    lg_server: Server, answered: str, body: Any, status: int, says: str
) -> None:
    with FeedbackStore(lg_server.data_dir / "feedback.sqlite") as store:
        before = [(f.rating, f.comment, f.updated_at) for f in store.ratings(thread_id=answered)]
    with _http(lg_server, JAMES_TOKEN) as james:
        response = james.post(f"/threads/{answered}/feedback", json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    with FeedbackStore(lg_server.data_dir / "feedback.sqlite") as store:
        assert [(f.rating, f.comment, f.updated_at) for f in store.ratings(thread_id=answered)] == before


def test_malformed_requests_are_4xx_never_5xx(lg_server: Server, answered: str) -> None:
    with _http(lg_server, JAMES_TOKEN) as james, _http(lg_server, None) as stranger:
        raw = {"content-type": "application/json"}
        assert james.post(f"/threads/{answered}/feedback", content=b"{not json", headers=raw).status_code == 400
        big = json.dumps({"rating": 4, "comment": "x" * 20_000}).encode()
        assert james.post(f"/threads/{answered}/feedback", content=big, headers=raw).status_code == 413
        assert james.post("/threads/not-a-uuid/feedback", json={"rating": 4}).status_code == 422
        fresh = james.post("/threads", json={}).json()["thread_id"]  # James's, but never run
        empty = james.post(f"/threads/{fresh}/feedback", json={"rating": 4})
        assert empty.status_code == 404 and "no turns yet" in empty.json()["detail"]
        # Another method falls through to the API's own routes, which have no such path.
        assert james.put(f"/threads/{answered}/feedback", json={"rating": 4}).status_code == 404
        refused = stranger.post(f"/threads/{answered}/feedback", json={"rating": 4})
        assert refused.status_code == 401
        with _http(lg_server, "not-a-known-token") as forger:
            assert forger.get(f"/threads/{answered}/feedback").status_code == 401


def test_a_human_agents_correction_of_a_handoff_is_feedback_and_a_dpo_pair(
    lg_server: Server, answered: str, tmp_path: Path
) -> None:
    with _http(lg_server, JAMES_TOKEN) as james, _http(lg_server, AGENT_TOKEN) as sam:
        # A threshold no answer reaches: the model drafts an answer and the turn goes to a human.
        tid, out = _turn(james, "Do you sell replacement ear cushions?", context={"quality_threshold": 1.0})
        assert out["handoff"]["reason"] == "low_quality", out
        waiting = sam.post(f"/threads/{tid}/feedback", json={"rating": 2})
        assert waiting.status_code == 409 and "answer it first" in waiting.json()["detail"]
        # The customer rates the holding answer; the agent's correction must not erase that.
        assert james.post(f"/threads/{tid}/feedback", json={"rating": 3, "comment": "ok"}).status_code == 200

        reply = "Hi James, Sam here: yes, replacement ear cushions are sold as a spare part."
        resumed = sam.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "r1agent", "command": {"resume": reply}})
        assert resumed.status_code == 200, resumed.text

        corrected = sam.post(f"/threads/{tid}/feedback", json={"rating": 2})
        assert corrected.status_code == 200, corrected.text
        body = corrected.json()
        assert body["corrected"] is True and body["handed_off"] is True and body["customer_id"] == JAMES
        assert body["kept_customer_rating"] is True and (body["rating"], body["comment"]) == (3, "ok")
        # An agent corrects handed-off turns only, and reads every thread's feedback.
        assert sam.post(f"/threads/{answered}/feedback", json={"rating": 1}).status_code == 409
        assert [f["thread_id"] for f in sam.get(f"/threads/{answered}/feedback").json()] == [answered]

    exported = _export(lg_server, tmp_path / "export")
    (pair,) = [p for p in exported["dpo"] if p["thread_id"] == tid and p["source"] == "correction"]
    assert pair["chosen"] == [{"role": "assistant", "content": reply}]
    assert pair["rejected"][0]["content"] and pair["rejected"][0]["content"] != reply
