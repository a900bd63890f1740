"""Tools: which ones serve an intent, how their arguments are filled, and how act records calls."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.runtime import Runtime
from pydantic import BaseModel

from r1agent.context import Context
from r1agent.nodes.acting import MAX_RESULT_CHARS, MAX_TOOL_CALLS, act
from r1agent.state import Intent, State
from r1agent.tools import arguments_for, tool_intents, tools_for_intent


class OrderArgs(BaseModel):
    order_id: str
    customer_id: str


class SearchArgs(BaseModel):
    query: str
    limit: int = 5


def _order_status(order_id: str, customer_id: str) -> str:
    return f"{order_id} for {customer_id}: shipped"


def _failing(order_id: str, customer_id: str) -> str:
    raise ValueError("order backend is down")


def _tool(
    name: str = "order_status", func: Any = _order_status, intents: tuple[str, ...] = ("order_status",)
) -> BaseTool:
    return StructuredTool.from_function(
        func=func,
        name=name,
        description="Look up an order.",
        args_schema=OrderArgs,
        metadata={"intents": list(intents)},
    )


def _state(label: str = "order_status", **entities: list[str]) -> State:
    intent = Intent(label=label, confidence=0.9, entities=dict(entities), scores={}, wants_human=False)
    return State(messages=[], intent=intent)


def _runtime(customer_id: str | None = "yusuf_rossi_9620") -> Runtime[Context]:
    return Runtime(context=Context(customer_id=customer_id))


def test_tool_intents_and_tools_for_intent() -> None:
    order = _tool()
    both = _tool("both", intents=("order_status", "after_sales"))
    untagged = StructuredTool.from_function(func=_order_status, name="untagged", description="x", args_schema=OrderArgs)
    assert tool_intents(both) == frozenset({"order_status", "after_sales"})
    assert tool_intents(untagged) == frozenset()
    assert tools_for_intent([order, both, untagged], "order_status") == [order, both]
    assert tools_for_intent([order, both, untagged], "after_sales") == [both]
    assert tools_for_intent([order, both, untagged], "small_talk") == []


def test_arguments_from_entities_and_customer_from_context() -> None:
    args, missing = arguments_for(
        _tool(), {"order_id": ["#W2378156", "#W1111111"], "email": ["a@b.co"]}, "yusuf_rossi_9620"
    )
    assert args == {"order_id": "#W2378156", "customer_id": "yusuf_rossi_9620"}
    assert missing == []


def test_customer_id_never_comes_from_the_message() -> None:
    entities = {"order_id": ["#W2378156"], "customer_id": ["someone_else_0001"]}
    args, missing = arguments_for(_tool(), entities, None)
    assert args == {"order_id": "#W2378156"}
    assert missing == ["customer_id"]

    args, _ = arguments_for(_tool(), entities, "yusuf_rossi_9620")
    assert args["customer_id"] == "yusuf_rossi_9620"


def test_missing_required_arguments_are_reported() -> None:
    args, missing = arguments_for(_tool(), {}, None)
    assert args == {}
    assert missing == ["order_id", "customer_id"]


def test_optional_arguments_are_not_missing() -> None:
    search = StructuredTool.from_function(
        func=lambda query, limit=5: query, name="search", description="x", args_schema=SearchArgs
    )
    assert arguments_for(search, {}, None) == ({}, ["query"])
    assert arguments_for(search, {"query": ["kettle"]}, None) == ({"query": "kettle"}, [])


def test_act_calls_the_tool() -> None:
    update = act(_state(order_id=["#W2378156"]), _runtime(), tools=[_tool()])
    assert update["tool_calls"] == [
        {
            "name": "order_status",
            "args": {"order_id": "#W2378156", "customer_id": "yusuf_rossi_9620"},
            "result": "#W2378156 for yusuf_rossi_9620: shipped",
            "error": None,
        }
    ]


def test_act_records_a_failing_tool_without_raising() -> None:
    update = act(_state(order_id=["#W2378156"]), _runtime(), tools=[_tool(func=_failing)])
    [call] = update["tool_calls"]
    assert call["result"] is None
    assert call["error"] == "ValueError: order backend is down"


def test_act_records_missing_arguments_without_calling() -> None:
    calls: list[str] = []

    def spy(order_id: str, customer_id: str) -> str:
        calls.append(order_id)
        return "called"

    update = act(_state(), _runtime(customer_id=None), tools=[_tool(func=spy)])
    [call] = update["tool_calls"]
    assert call["error"] == "missing order_id, customer_id"
    assert call["result"] is None
    assert calls == []


def test_act_caps_tool_calls() -> None:
    tools = [_tool(f"tool_{i}") for i in range(MAX_TOOL_CALLS + 2)]
    update = act(_state(order_id=["#W2378156"]), _runtime(), tools=tools)
    assert [c["name"] for c in update["tool_calls"]] == [f"tool_{i}" for i in range(MAX_TOOL_CALLS)]


def test_act_truncates_long_results() -> None:
    long = _tool(func=lambda order_id, customer_id: "x" * (MAX_RESULT_CHARS + 50))
    [call] = act(_state(order_id=["#W2378156"]), _runtime(), tools=[long])["tool_calls"]
    assert call["result"] == "x" * MAX_RESULT_CHARS


@pytest.mark.parametrize("state", [State(messages=[]), State(messages=[], intent=None)])
def test_act_without_intent_calls_nothing(state: State) -> None:
    assert act(state, _runtime(), tools=[_tool()]) == {"tool_calls": []}


def test_act_ignores_tools_for_other_intents() -> None:
    assert act(_state("small_talk", order_id=["#W2378156"]), _runtime(), tools=[_tool()]) == {"tool_calls": []}
