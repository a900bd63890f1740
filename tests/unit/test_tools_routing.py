"""The tool contract: which tool serves a turn, how its arguments are filled, how act records calls."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import ToolException
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from r1agent.context import Context
from r1agent.nodes.acting import MAX_RESULT_CHARS, act, route_after_act, tool_errors
from r1agent.nodes.intent import route_after_intent
from r1agent.nodes.respond import answer, clarify
from r1agent.state import Intent, State
from r1agent.tools import AgentTool, Turn, choose_tool


class OrderArgs(BaseModel):
    order_id: str = Field(description="An order id.")
    customer_id: str


class ListArgs(BaseModel):
    customer_id: str


class CityArgs(BaseModel):
    city: str = Field(description="A city.")


class GetOrder(AgentTool):
    name: str = "get_order"
    description: str = "Look up one of the customer's orders."
    args_schema: type[BaseModel] = OrderArgs
    intents: frozenset[str] = frozenset({"order_status"})
    behaviour: str = "ok"

    def _run(self, order_id: str, customer_id: str) -> str:
        if self.behaviour == "not_found":
            raise ToolException(f"I could not find order {order_id} for your account")
        if self.behaviour == "crash":
            raise KeyError("bug")
        if self.behaviour == "huge":
            return "x" * (MAX_RESULT_CHARS * 3)
        return f"{order_id} of {customer_id}: shipped"


class ListOrders(AgentTool):
    name: str = "list_orders"
    description: str = "List the customer's orders."
    args_schema: type[BaseModel] = ListArgs
    intents: frozenset[str] = frozenset({"order_status"})

    def _run(self, customer_id: str) -> str:
        return f"orders of {customer_id}: #W1111111"


class Weather(AgentTool):
    name: str = "weather"
    description: str = "The weather in a city."
    args_schema: type[BaseModel] = CityArgs
    triggers: tuple[str, ...] = (r"\bweather\b",)

    def extract(self, turn: Turn) -> dict[str, Any]:
        return {"city": "Paris"} if "Paris" in turn.text else {}

    def _run(self, city: str) -> str:
        return f"{city}: 18 °C"


def _intent(label: str, confidence: float = 0.95, wants_human: bool = False, **entities: list[str]) -> Intent:
    return Intent(label=label, confidence=confidence, entities=dict(entities), scores={}, wants_human=wants_human)


def _state(text: str, intent: Intent) -> State:
    return State(messages=[], text=text, intent=intent)


def _runtime(customer_id: str | None = "yusuf_rossi_9620") -> Runtime[Context]:
    return Runtime(context=Context(customer_id=customer_id))


def _turn(text: str, label: str = "order_status", customer: str | None = "c1", **entities: list[str]) -> Turn:
    return Turn(text=text, intent=label, entities=dict(entities), customer_id=customer)


def test_customer_id_comes_from_the_context_never_from_the_message() -> None:
    turn = _turn("order #W1234567 of bob", order_id=["#W1234567"], customer_id=["bob_smith_1111"])
    args, missing = GetOrder().arguments(turn)
    assert args == {"order_id": "#W1234567", "customer_id": "c1"}
    assert missing == []
    args, missing = GetOrder().arguments(_turn("x", customer=None, order_id=["#W1234567"]))
    assert "customer_id" not in args
    assert missing == ["customer_id"]


def test_the_most_specific_ready_tool_wins() -> None:
    tools = [ListOrders(), GetOrder()]
    chosen = choose_tool(tools, _turn("where is #W1234567", order_id=["#W1234567"]))
    assert chosen is not None and chosen[0].name == "get_order"
    chosen = choose_tool(tools, _turn("where are my orders"))
    assert chosen is not None and chosen[0].name == "list_orders"
    chosen = choose_tool(tools, _turn("where are my orders", customer=None))
    assert chosen is not None and chosen[2] == ["customer_id"]  # nothing ready: say what is missing
    assert choose_tool(tools, _turn("hello", label="small_talk")) is None


def test_a_trigger_serves_a_turn_whatever_its_intent() -> None:
    assert Weather().serves(_turn("weather in Paris?", label="out_of_scope"))
    assert not Weather().serves(_turn("where is my order", label="order_status"))


def test_a_tool_turn_outranks_out_of_scope_but_not_a_request_for_a_person() -> None:
    tools = [Weather(), GetOrder()]
    runtime = _runtime()
    assert route_after_intent(_state("weather in Paris?", _intent("out_of_scope")), runtime, tools=tools) == "act"
    assert route_after_intent(_state("who wins the cup?", _intent("out_of_scope")), runtime, tools=tools) == (
        "open_ticket"
    )
    human = _intent("order_status", wants_human=True, order_id=["#W1234567"])
    assert route_after_intent(_state("#W1234567, get me a person", human), runtime, tools=tools) == "open_ticket"
    assert route_after_intent(_state("hi", _intent("small_talk")), runtime, tools=tools) == "reason"
    assert route_after_intent(_state("returns?", _intent("after_sales")), runtime, tools=tools) == "retrieve"


def test_act_calls_the_tool_and_records_the_result() -> None:
    state = _state("where is #W1234567", _intent("order_status", order_id=["#W1234567"]))
    update = act(state, _runtime(), tools=[GetOrder()])
    (call,) = update["tool_calls"]
    assert call == {
        "name": "get_order",
        "args": {"order_id": "#W1234567", "customer_id": "yusuf_rossi_9620"},
        "result": "#W1234567 of yusuf_rossi_9620: shipped",
        "error": None,
        "missing": [],
    }
    assert route_after_act({**state, **update}) == "reason"  # type: ignore[typeddict-item]


def test_a_missing_argument_is_asked_for_not_guessed() -> None:
    state = _state("weather please", _intent("out_of_scope"))
    update = act(state, _runtime(), tools=[Weather()])
    assert update["tool_calls"][0]["missing"] == ["city"]
    assert update["draft"] == "To help with that I need your city. Could you tell me?"
    merged: State = {**state, **update}  # type: ignore[typeddict-item]
    assert route_after_act(merged) == "clarify"
    assert clarify(merged)["messages"][0].content == update["draft"]
    signed_out = act(
        _state("#W1234567?", _intent("order_status", order_id=["#W1234567"])), _runtime(None), tools=[GetOrder()]
    )
    assert signed_out["draft"].startswith("Please sign in")


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("not_found", "I could not find order #W1234567 for your account"),
        ("crash", "the get_order tool failed (KeyError)"),
    ],
)
def test_tool_errors_are_recorded_and_shown_in_plain_words(behaviour: str, error: str) -> None:
    state = _state("where is #W1234567", _intent("order_status", order_id=["#W1234567"]))
    update = act(state, _runtime(), tools=[GetOrder(behaviour=behaviour)])
    (call,) = update["tool_calls"]
    assert call["error"] == error
    assert call["result"] is None
    merged: State = {**state, **update, "draft": "Sorry about that."}  # type: ignore[typeddict-item]
    assert tool_errors(merged) == [error + "."]
    assert f"Note: {error}." in answer(merged)["messages"][0].content


def test_results_are_capped_and_cited() -> None:
    state = _state("where is #W1234567", _intent("order_status", order_id=["#W1234567"]))
    update = act(state, _runtime(), tools=[GetOrder(behaviour="huge")])
    assert len(update["tool_calls"][0]["result"] or "") == MAX_RESULT_CHARS
    merged: State = {**state, **update, "draft": "It has shipped."}  # type: ignore[typeddict-item]
    assert answer(merged)["messages"][0].content.endswith("Sources: get_order tool")


def test_order_lookup_claims_after_sales_turns_only_when_they_name_an_order(tmp_path: Any) -> None:
    from r1agent.settings import Settings
    from r1agent.tools.orders import make_tools

    tools = make_tools(Settings(data_dir=tmp_path, cache_dir=tmp_path))
    policy = Turn("What is your return policy?", "after_sales", {}, customer_id=None)
    assert choose_tool(tools, policy) is None  # the knowledge base answers it
    named = Turn("I want to return #W2611340", "after_sales", {"order_id": ["#W2611340"]}, customer_id=None)
    chosen = choose_tool(tools, named)
    assert chosen is not None and chosen[0].name == "get_order_details" and chosen[2] == ["customer_id"]


def test_tools_release_their_resources_and_can_close_twice(tmp_path: Any) -> None:
    from r1agent.settings import Settings
    from r1agent.tools.orders import make_tools

    list_orders = next(
        t for t in make_tools(Settings(data_dir=tmp_path, cache_dir=tmp_path)) if t.name == "list_my_orders"
    )
    assert "#W" in list_orders.invoke({"customer_id": "james_li_5688"})
    list_orders.close()
    list_orders.close()
    assert "#W" in list_orders.invoke({"customer_id": "james_li_5688"})  # reconnects lazily
    Weather().close()  # the base no-op is safe on a tool that never ran


def test_a_tool_whose_result_speaks_for_itself_answers_without_the_model() -> None:
    from r1agent.nodes.reasoning import reason
    from r1agent.tools.calculator import Calculator

    class NoModel:  # reaching the model would be the bug
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the model was used ({name})")

    state = _state("what is 15% of 80?", _intent("out_of_scope"))
    update = act(state, _runtime(), tools=[Calculator()])
    (call,) = update["tool_calls"]
    assert call["answer"] == "15/100*80 = 12."
    drafted = reason({**state, **update}, _runtime(), {}, llm=NoModel(), max_history=4, max_new_tokens=8)  # type: ignore[typeddict-item,arg-type]
    assert drafted["draft"] == "15/100*80 = 12."
    assert drafted["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_tools_without_a_direct_answer_leave_the_wording_to_the_model() -> None:
    from r1agent.nodes.reasoning import direct_answer

    state = _state("where is #W1234567", _intent("order_status", order_id=["#W1234567"]))
    update = act(state, _runtime(), tools=[GetOrder()])
    assert "answer" not in update["tool_calls"][0]
    assert direct_answer({**state, **update}) is None  # type: ignore[typeddict-item]


def test_nodes_run_with_the_default_context_when_a_caller_passes_none() -> None:
    from r1agent.context import DEFAULT_CONTEXT, context_of

    assert context_of(Runtime(context=None)) is DEFAULT_CONTEXT
    assert context_of(Runtime(context={"top_k": 5})).top_k == 5  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"r1agent\.Context"):
        context_of(Runtime(context=42))  # type: ignore[arg-type]
    update = act(
        _state("where is #W1234567", _intent("order_status", order_id=["#W1234567"])), Runtime(), tools=[GetOrder()]
    )
    assert update["tool_calls"][0]["missing"] == ["customer_id"]  # no context: nobody signed in
