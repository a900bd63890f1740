"""Telemetry on the real default stack (SmolLM2, MiniLM, embedded Qdrant, SQLite orders and tickets):
real turns are traced as a tree with r1agent and GenAI attributes, measured, and no personal data
leaves in any span; and the LangGraph server exports to OTLP and Prometheus from its settings."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from r1agent import Agent, Context, open_agent
from r1agent.app import TurnResult
from r1agent.deps import Deps
from r1agent.settings import Settings
from r1agent.telemetry import active_telemetry, setup_telemetry
from tests.langgraph_server import JAMES_TOKEN, free_port, running_server
from tests.unit.test_telemetry_setup import Receiver, attribute, metric_points, otlp_receiver

pytestmark = pytest.mark.slow

JAMES = "james_li_5688"
FAST = Context(quality_threshold=0.0, max_new_tokens=8)  # the answer path, with a short generation


@dataclass
class Traced:
    agent: Agent
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture(scope="module")
def traced(real_deps: Deps, settings: Settings) -> Iterator[Traced]:
    if (leftover := active_telemetry()) is not None:
        leftover.shutdown()
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = setup_telemetry(settings, span_exporter=spans, metric_reader=metrics)
    try:
        with open_agent(deps=real_deps) as agent:  # its own setup_telemetry call finds this one running
            yield Traced(agent, spans, metrics)
    finally:
        telemetry.shutdown()


def in_case(traced: Traced, name: str, text: str, **kwargs: Any) -> tuple[TurnResult, ReadableSpan, int]:
    """One turn inside an eval-style case span, as the eval runner runs it: (result, turn span, case span id)."""
    traced.spans.clear()
    with trace.get_tracer("r1agent.evals").start_as_current_span(f"case {name}") as case:
        result = traced.agent.ask(text, **kwargs)
    (turn,) = [s for s in traced.spans.get_finished_spans() if s.name == "r1agent"]
    return result, turn, case.get_span_context().span_id


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def children(traced: Traced, parent: ReadableSpan) -> dict[str, ReadableSpan]:
    assert parent.context is not None
    return {
        s.name: s
        for s in traced.spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    }


def test_turns_are_a_tree_of_node_tool_and_model_spans(traced: Traced, real_deps: Deps) -> None:
    turns: list[TurnResult] = []

    # A knowledge question: retrieve, then the model.
    result, turn, case = in_case(traced, "policy", "What is your return policy?", context=FAST)
    turns.append(result)
    assert turn.parent is not None and turn.parent.span_id == case  # the eval's trace finds the turn
    nodes = children(traced, turn)
    assert {"perceive", "detect_intent", "retrieve", "reason", "score_quality", "answer"} <= set(nodes)
    assert attrs(turn)["r1agent.intent"] == "after_sales"
    assert attrs(turn)["r1agent.intent.confidence"] == pytest.approx(
        result.intent["confidence"] if result.intent else -1
    )
    assert attrs(turn)["r1agent.quality.score"] == pytest.approx(result.quality["score"] if result.quality else -1)
    assert attrs(turn)["r1agent.handoff"] is False and attrs(turn)["r1agent.outcome"] == "answered"
    (model,) = [
        s for s in children(traced, nodes["reason"]).values() if attrs(s).get("openinference.span.kind") == "LLM"
    ]
    assert result.usage is not None
    assert attrs(model)["gen_ai.request.model"] == real_deps.llm.name
    assert attrs(model)["gen_ai.operation.name"] == "chat" and attrs(model)["gen_ai.provider.name"] == "huggingface"
    assert attrs(model)["gen_ai.usage.input_tokens"] == result.usage["input_tokens"] > 0
    assert attrs(model)["gen_ai.usage.output_tokens"] == result.usage["output_tokens"]
    assert 0 < result.usage["output_tokens"] <= 8
    assert attrs(turn)["gen_ai.usage.output_tokens"] == result.usage["output_tokens"]
    assert model.end_time and model.start_time and model.end_time > model.start_time  # its latency

    # A calculator turn: the tool's span sits under the act node.
    result, turn, _ = in_case(traced, "calculator", "What is 15% of 80?", context=FAST)
    turns.append(result)
    act = children(traced, turn)["act"]
    tool = children(traced, act)["calculator"]
    assert attrs(tool)["r1agent.tool.name"] == "calculator" and "r1agent.tool.error" not in attrs(tool)
    assert attrs(turn)["r1agent.tool.name"] == "calculator"

    # The order lookup for a signed-in customer, then one for an order that is not theirs.
    result, turn, _ = in_case(traced, "order", "Where is my order #W2611340?", customer_id=JAMES, context=FAST)
    turns.append(result)
    tool = children(traced, children(traced, turn)["act"])["get_order_details"]
    assert attrs(turn)["r1agent.intent"] == "order_status" and "r1agent.tool.error" not in attrs(turn)
    assert "r1agent.tool.error" not in attrs(tool)
    result, turn, _ = in_case(traced, "not-mine", "Where is my order #W4817420?", customer_id=JAMES, context=FAST)
    turns.append(result)
    error = result.tool_calls[0]["error"]
    assert error and attrs(turn)["r1agent.tool.error"] == error
    assert attrs(children(traced, children(traced, turn)["act"])["get_order_details"])["r1agent.tool.error"] == error

    # A request for a person: a ticket and an interrupt, no model call.
    result, turn, _ = in_case(traced, "person", "Can I talk to a real person please?")
    turns.append(result)
    assert result.handoff is not None
    assert attrs(turn)["r1agent.handoff"] is True and attrs(turn)["r1agent.outcome"] == "handoff"
    assert attrs(turn)["r1agent.handoff.reason"] == "requested"
    assert attrs(turn)["r1agent.handoff.ticket_id"] == result.handoff["ticket_id"]
    assert {"open_ticket", "await_human"} <= set(children(traced, turn))

    points = metric_points(traced.metrics)
    assert sum(v for _, v in points["r1agent.turns"]) >= 5
    assert ({"r1agent.handoff.reason": "requested"}, 1) in points["r1agent.handoffs"]
    assert ({"r1agent.tool.name": "get_order_details"}, 1) in points["r1agent.tool.errors"]
    inputs = sum(v for labels, v in points["r1agent.tokens"] if labels["gen_ai.token.type"] == "input")
    assert inputs >= sum(t.usage["input_tokens"] for t in turns if t.usage)
    model_labels = {labels.get("gen_ai.request.model") for labels, _ in points["r1agent.tokens"]}
    assert model_labels == {real_deps.llm.name}
    assert sum(v for _, v in points["r1agent.turn.duration"]) >= 5
    assert sum(v for _, v in points["r1agent.quality.score"]) >= 4  # every drafted answer was scored


def test_a_streamed_turn_measures_time_to_first_token(traced: Traced) -> None:
    before = sum(v for _, v in metric_points(traced.metrics).get("r1agent.turn.time_to_first_token", []))
    config: Any = {"configurable": {"thread_id": "telemetry-streamed"}}
    chunks = list(
        traced.agent.graph.stream(
            {"messages": [HumanMessage("Do you sell an espresso machine?")]},
            config,
            context=FAST,
            stream_mode="messages",
        )
    )
    assert chunks
    after = sum(v for _, v in metric_points(traced.metrics)["r1agent.turn.time_to_first_token"])
    assert after == before + 1


# The seeded personal data, and fragments of it that must not survive either.
SEEDED = {
    "email": "jane.roe@example.com",
    "phone": "+1 415 555 0142",
    "card": "4111 1111 1111 1111",
    "address": "742 Evergreen Terrace",
}
FRAGMENTS = [*SEEDED.values(), "jane.roe", "415 555 0142", "4111111111111111", "Evergreen Terrace", JAMES]


def everything_exported(spans: tuple[ReadableSpan, ...]) -> list[str]:
    """Every string an exporter would send: names, attribute values, events, links, statuses."""
    found: list[str] = []

    def add(attributes: Any) -> None:
        for value in (attributes or {}).values():
            found.extend(str(v) for v in (value if isinstance(value, list | tuple) else [value]))

    for span in spans:
        found.append(span.name)
        add(span.attributes)
        for event in span.events:
            found.append(event.name)
            add(event.attributes)
        for link in span.links:
            add(link.attributes)
        found.append(span.status.description or "")
    return found


def test_seeded_pii_never_leaves_in_any_span(traced: Traced) -> None:
    traced.spans.clear()
    # Through the model, the order tool and its arguments (the customer id too)...
    traced.agent.ask(
        f"My email is {SEEDED['email']} and my phone is {SEEDED['phone']}. Where is my order #W2611340?",
        customer_id=JAMES,
        context=FAST,
    )
    # ...and through a handoff, whose interrupt is recorded as an exception event with the ticket summary.
    handed = traced.agent.ask(
        f"Charge my card {SEEDED['card']} and send it to {SEEDED['address']}, Springfield. "
        "I want to talk to a real person."
    )
    assert handed.handoff is not None

    spans = traced.spans.get_finished_spans()
    exported = everything_exported(spans)
    assert len(spans) >= 15 and len(exported) > 150
    leaks = [(fragment, s[:200]) for s in exported for fragment in FRAGMENTS if fragment in s]
    assert leaks == []
    # Not vacuous: the data did reach the spans, and was masked there.
    joined = "\n".join(exported)
    for placeholder in ("[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]", "[USER_ID]"):
        assert placeholder in joined, placeholder
    interrupts = [
        e for s in spans if s.name == "await_human" for e in s.events if e.name == "exception" and e.attributes
    ]
    assert interrupts and "[CARD]" in str(dict(interrupts[0].attributes or {})["exception.message"])


def test_the_langgraph_server_exports_to_otlp_and_prometheus(tmp_path: Path, cache_dir: Path) -> None:
    with otlp_receiver() as receiver:
        server_exports(receiver, tmp_path, cache_dir)


def server_exports(receiver: Receiver, tmp_path: Path, cache_dir: Path) -> None:
    prometheus = free_port()
    env = {
        "R1AGENT_OTEL_EXPORTER": "otlp,prometheus",
        "R1AGENT_OTLP_ENDPOINT": receiver.url,
        "R1AGENT_PROMETHEUS_PORT": str(prometheus),
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach the receiver soon after the turn
    }
    with running_server(data_dir=tmp_path / "data", state_dir=tmp_path / "state", cache_dir=cache_dir, env=env) as srv:

        async def handoff() -> dict[str, Any]:
            client = srv.client(JAMES_TOKEN)
            thread = await client.threads.create()
            text = f"My email is {SEEDED['email']}, can I talk to a real person?"
            out: dict[str, Any] = await client.runs.wait(
                thread["thread_id"], "r1agent", input={"messages": [{"role": "user", "content": text}]}
            )
            return out

        out = asyncio.run(handoff())
        assert out["handoff"]["reason"] == "requested"
        deadline = time.monotonic() + 60
        turns: list[Any] = []
        while not turns and time.monotonic() < deadline:  # bounded by the deadline
            turns = [s for s in receiver.traces() if s.name == "r1agent"]
            time.sleep(0.5)
        assert turns, f"no turn span reached the OTLP receiver: {srv.log.read_text()[-2000:]}"
        turn = {a.key: attribute(a.value) for a in turns[-1].attributes}
        assert turn["r1agent.handoff"] is True and turn["r1agent.handoff.ticket_id"] == out["handoff"]["ticket_id"]
        assert SEEDED["email"] not in str(receiver.traces())

        with urllib.request.urlopen(f"http://127.0.0.1:{prometheus}/metrics", timeout=5) as response:
            scraped = response.read().decode()
        assert re.search(
            r'^r1agent_handoffs_total\{[^}]*r1agent_handoff_reason="requested"[^}]*\} 1\.0$', scraped, re.M
        )
        assert SEEDED["email"] not in srv.log.read_text()
