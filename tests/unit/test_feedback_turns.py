"""Reading a thread's turns back from real SQLite checkpoints.

The graph is a stand-in for the model-driven nodes (intent, reasoning, quality are scripted), but
perceive, answer, open_ticket and await_human are the real nodes, the checkpointer is LangGraph's
SqliteSaver and the tickets a real SqliteTicketStore: the checkpoints have the real graph's shape.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from r1agent.context import Context
from r1agent.errors import NotFoundError
from r1agent.feedback.turns import CheckpointHistory
from r1agent.nodes import handoff, perception, respond
from r1agent.nodes.reasoning import SYSTEM_PROMPT
from r1agent.state import InputState, OutputState, State
from r1agent.tickets import SqliteTicketStore

SCRIPT = {
    "What is your return policy?": ("product_inquiry", "Returns are free within 30 days [1].", 0.9, None),
    "Where is order #W1?": ("order_status", "I could not look that up.", 0.8, "order not found"),
    "Tell me a secret": ("out_of_scope", "Sure, here it is.", 0.2, None),
    "Where is my order?": ("order_status", "", 0.0, None),
}


def detect(state: State) -> dict[str, Any]:
    label = SCRIPT[state["text"]][0]
    return {"intent": {"label": label, "confidence": 0.9, "entities": {}, "scores": {}, "wants_human": False}}


def retrieve(state: State) -> dict[str, Any]:
    source = {"id": "1", "source": "policy.md", "title": "Returns", "text": "Returns: 30 days.", "score": 0.8}
    error = SCRIPT[state["text"]][3]
    call = {"name": "orders", "args": {"order_id": "#W1"}, "result": None, "error": error, "missing": []}
    return {"sources": [source], "tool_calls": [call] if error else []}


def reason(state: State) -> dict[str, Any]:
    return {"draft": SCRIPT[state["text"]][1], "usage": {"input_tokens": 40, "output_tokens": 9}}


def ask_back(state: State) -> dict[str, Any]:
    # Like `act` when an argument is missing: the question is in `draft`, but the model wrote none of it.
    call = {"name": "orders", "args": {}, "result": None, "error": None, "missing": ["order_id"]}
    return {"tool_calls": [call], "draft": "Which order number?"}


def after_detect(state: State) -> Literal["ask_back", "retrieve"]:
    return "ask_back" if state["text"] == "Where is my order?" else "retrieve"


def score(state: State) -> dict[str, Any]:
    return {"quality": {"score": SCRIPT[state["text"]][2], "signals": {}, "threshold": 0.5}}


def route(state: State) -> Literal["answer", "open_ticket"]:
    quality = state.get("quality")
    return "answer" if quality and quality["score"] >= quality["threshold"] else "open_ticket"


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Any, SqliteSaver, SqliteTicketStore]]:
    tickets = SqliteTicketStore(tmp_path / "tickets.sqlite")
    conn = sqlite3.connect(str(tmp_path / "threads.sqlite"), check_same_thread=False)
    saver = SqliteSaver(conn)
    g = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    g.add_node("perceive", functools.partial(perception.perceive, max_chars=8000))
    for name, fn in [("detect", detect), ("retrieve", retrieve), ("reason", reason), ("score", score)]:
        g.add_node(name, fn)
    g.add_node("answer", respond.answer)
    g.add_node("open_ticket", functools.partial(handoff.open_ticket, tickets=tickets))
    g.add_node("await_human", functools.partial(handoff.await_human, tickets=tickets))
    g.add_edge(START, "perceive")
    g.add_edge("perceive", "detect")
    g.add_node("ask_back", ask_back)
    g.add_node("clarify", respond.clarify)
    g.add_conditional_edges("detect", after_detect, ["ask_back", "retrieve"])
    g.add_edge("ask_back", "clarify")
    g.add_edge("clarify", END)
    g.add_edge("retrieve", "reason")
    g.add_edge("reason", "score")
    g.add_conditional_edges("score", route, ["answer", "open_ticket"])
    g.add_edge("open_ticket", "await_human")
    g.add_edge("await_human", END)
    g.add_edge("answer", END)
    yield g.compile(checkpointer=saver), saver, tickets
    tickets.close()
    conn.close()


def ask(graph: Any, thread: str, text: str, *, owner: str | None = None, customer: str | None = None) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    if owner:
        config["metadata"] = {"owner": owner}  # what the server's auth stamps on a customer's run
    graph.invoke({"messages": [HumanMessage(content=text)]}, config, context=Context(customer_id=customer))


def test_turns_of_a_thread(stores: tuple[Any, SqliteSaver, SqliteTicketStore]) -> None:
    graph, saver, tickets = stores
    ask(graph, "t1", "What is your return policy?")
    ask(graph, "t1", "Where is order #W1?")
    ask(graph, "t1", "Tell me a secret", customer="alice_1")
    ticket = tickets.list("open")[0]
    graph.invoke(Command(resume="We cannot share that."), {"configurable": {"thread_id": "t1"}}, context=Context())

    history = CheckpointHistory(saver, tickets, max_history=8)
    turns = history.turns("t1")
    assert [t.turn for t in turns] == [1, 2, 3]
    first, second, third = turns

    assert first.text == "What is your return policy?"
    assert first.draft == "Returns are free within 30 days [1]."
    assert first.reply.startswith("Returns are free within 30 days [1].") and "Sources: policy.md" in first.reply
    assert (first.intent, first.quality, first.threshold, first.ticket_id) == ("product_inquiry", 0.9, 0.5, None)
    assert first.completed and first.tools_ok and first.human_reply is None
    # The prompt the model was given: the system prompt, then the question with its sources.
    assert first.prompt[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert first.prompt[-1]["role"] == "user"
    assert "Returns: 30 days." in first.prompt[-1]["content"]
    assert first.prompt[-1]["content"].endswith("Customer question: What is your return policy?")
    assert first.latency_s is not None and 0 <= first.latency_s < 5

    assert (second.tool_calls, second.tools_ok, second.completed) == (1, False, False)
    # Earlier turns are history in the prompt; the answer with its footer, as the customer saw it.
    assert [m["role"] for m in second.prompt] == ["system", "user", "assistant", "user"]
    assert second.prompt[2]["content"] == first.reply

    assert third.ticket_id == ticket.id and third.handoff_reason == "low_quality"
    assert third.draft == "Sure, here it is."
    assert "passed this to a colleague" in third.reply
    assert third.human_reply == "We cannot share that."
    assert not third.completed

    # Owner: the ticket's customer (this thread never ran under the server).
    assert history.owner("t1") == "alice_1"
    with pytest.raises(NotFoundError, match="unknown thread 'nope'"):
        history.turns("nope")


def test_a_clarifying_question_is_no_model_draft(stores: tuple[Any, SqliteSaver, SqliteTicketStore]) -> None:
    graph, saver, tickets = stores
    ask(graph, "t5", "Where is my order?")
    ask(graph, "t5", "What is your return policy?")
    asked, answered = CheckpointHistory(saver, tickets, max_history=8).turns("t5")
    assert (asked.reply, asked.draft, asked.tools_ok, asked.completed) == ("Which order number?", "", False, False)
    assert asked.quality is None and asked.intent == "order_status"
    # The next turn starts clean (perceive resets the turn's fields): its own draft and no tool calls.
    assert (answered.draft, answered.tool_calls, answered.completed) == (
        "Returns are free within 30 days [1].",
        0,
        True,
    )


def test_owner_from_the_servers_run_metadata(stores: tuple[Any, SqliteSaver, SqliteTicketStore]) -> None:
    graph, saver, tickets = stores
    ask(graph, "t2", "What is your return policy?", owner="bob_2")
    ask(graph, "t3", "What is your return policy?")
    history = CheckpointHistory(saver, tickets, max_history=8)
    assert history.owner("t2") == "bob_2"
    assert history.owner("t3") is None


def test_a_reply_given_elsewhere_comes_from_the_ticket(stores: tuple[Any, SqliteSaver, SqliteTicketStore]) -> None:
    graph, saver, tickets = stores
    ask(graph, "t4", "Tell me a secret")
    ticket = tickets.list("open")[0]
    history = CheckpointHistory(saver, tickets, max_history=8)
    waiting = history.turns("t4")[0]
    assert (waiting.ticket_id, waiting.human_reply) == (ticket.id, None)
    # Resolved in the ticket store, the thread not resumed (yet): the reply is known all the same.
    tickets.resolve(ticket.id, "A human answer.")
    assert history.turns("t4")[0].human_reply == "A human answer."
