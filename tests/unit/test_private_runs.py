"""A server customer's run keeps the model's raw output to itself: no model tokens in the customer's stream, no
think trace in the thread they can read, no other customer's PII in the draft the state keeps."""

from __future__ import annotations

import functools
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from r1agent.context import Context
from r1agent.nodes import reasoning
from r1agent.server.identity import AUTH_USER_KEY
from r1agent.state import Source, State
from tests.guard_stack import ParrotChat, ParrotModel

FOREIGN = "ava.moore@example.com"
TRACE = f"the policy page lists {FOREIGN} as a contact"


def run(configurable: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[BaseMessage, dict[str, Any]]]]:
    llm = ParrotChat(model=ParrotModel(think=TRACE))
    graph = StateGraph(State, context_schema=Context)
    graph.add_node("reason", functools.partial(reasoning.reason, llm=llm, max_history=4, max_new_tokens=16))
    graph.add_edge(START, "reason")
    graph.add_edge("reason", END)
    source = Source(id="1", source="policy.md", title="Contact", text=f"Write to {FOREIGN}.", score=0.9)
    state: State = {"messages": [HumanMessage("Who do I write to?")], "text": "Who do I write to?", "sources": [source]}
    messages: list[tuple[BaseMessage, dict[str, Any]]] = []
    final: dict[str, Any] = {}
    for mode, part in graph.compile().stream(
        state, {"configurable": configurable}, context=Context(), stream_mode=["messages", "values"]
    ):
        if mode == "messages":
            messages.append(part)
        else:
            final = part
    return final, messages


def test_a_server_customers_run_streams_no_model_output_and_keeps_no_trace() -> None:
    final, messages = run({AUTH_USER_KEY: {"identity": "james_li_5688", "role": "customer"}})
    assert messages == []  # the customer gets the answer node's message, after the gate and the mask
    assert final["thinking"] == ""
    assert FOREIGN not in final["draft"] and "[EMAIL]" in final["draft"]


def test_an_embedded_run_streams_and_keeps_the_trace_masked() -> None:
    final, messages = run({"thread_id": "t"})
    assert messages, "embedded callers (the CLI, a parent graph) still see the model as it writes"
    assert "the policy page lists" in final["thinking"] and FOREIGN not in final["thinking"]
    assert FOREIGN not in final["draft"]


def test_the_customers_own_address_is_kept() -> None:
    own = "james.li@example.com"
    llm = ParrotChat()
    update = reasoning.reason(
        {"messages": [HumanMessage(f"my email is {own}")], "text": f"my email is {own}", "sources": []},
        _runtime(),
        {"configurable": {AUTH_USER_KEY: {"identity": "james_li_5688", "role": "customer"}}},
        llm=llm,
        max_history=4,
        max_new_tokens=16,
    )
    assert own in update["draft"]


def _runtime() -> Runtime[Context]:
    return Runtime(context=Context())
