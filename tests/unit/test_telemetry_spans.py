"""The span pipeline's logic on hand-made spans: turn facts, enrichment, masking, holding per turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, set_span_in_context

from r1agent.telemetry import spans as spans_module
from r1agent.telemetry.facts import facts_attributes, merge_updates, turn_facts, update_attributes
from r1agent.telemetry.spans import LANGCHAIN_SCOPE, TurnSpanProcessor, enrich, mask_span

TRACE = 0x1234
LC = InstrumentationScope(LANGCHAIN_SCOPE)

INTENT: dict[str, Any] = {
    "intent": {"label": "order_status", "confidence": 0.97, "entities": {}, "scores": {}, "wants_human": False}
}
CALL: dict[str, Any] = {"name": "get_order_details", "args": {"order_id": "#W0000000"}, "result": None, "missing": []}
ACT = {"tool_calls": [{**CALL, "error": "I could not find order #W0000000 for your account"}]}
REASON = {"draft": "Sorry.", "thinking": "", "usage": {"input_tokens": 209, "output_tokens": 24}}
QUALITY = {"quality": {"score": 0.42, "signals": {}, "threshold": 0.5}}
HANDOFF: dict[str, Any] = {"messages": [], "handoff": {"ticket_id": "t-1", "reason": "low_quality", "status": "open"}}
PERCEIVE: dict[str, Any] = {
    "text": "Where is my order?",
    "intent": None,
    "tool_calls": [],
    "quality": None,
    "handoff": None,
}


def span(
    span_id: int,
    name: str,
    kind: str,
    *,
    parent: int | None = None,
    output: Any = None,
    end: int = 0,
    status: Status | None = None,
    events: tuple[Event, ...] = (),
    **attributes: Any,
) -> ReadableSpan:
    """A span as OpenInference leaves it: kind, output as JSON, and any other attribute."""
    attrs: dict[str, Any] = {
        "openinference.span.kind": kind,
        **{k.replace("__", "."): v for k, v in attributes.items()},
    }
    if output is not None:
        attrs["output.value"] = json.dumps(output)
        attrs["output.mime_type"] = "application/json"
    return ReadableSpan(
        name=name,
        context=SpanContext(TRACE, span_id, is_remote=False),
        parent=SpanContext(TRACE, parent, is_remote=False) if parent is not None else None,
        attributes=attrs,
        events=events,
        status=status or Status(StatusCode.OK),
        start_time=1,
        end_time=end or span_id,
        instrumentation_scope=LC,
    )


def a_turn(*, llm_tokens: dict[str, int] | None = None) -> list[ReadableSpan]:
    """The order-lookup turn as OpenInference records it: nodes, a failing tool, a model call."""
    tool_error = Event("exception", {"exception.message": "I could not find order #W0000000 for your account"})
    error = Status(StatusCode.ERROR, "ToolException(...)")
    llm_attrs: dict[str, Any] = {
        "llm__provider": "huggingface",
        "llm__model_name": "SmolLM2",
        "llm__invocation_parameters": json.dumps({"pipeline_kwargs": {"max_new_tokens": 24}}),
        **{f"llm__token_count__{k}": v for k, v in (llm_tokens or {}).items()},
    }
    return [
        span(2, "perceive", "CHAIN", parent=1, output=PERCEIVE),
        span(3, "detect_intent", "CHAIN", parent=1, output=INTENT),
        span(4, "route_after_intent", "CHAIN", parent=3, output="act"),
        span(
            6, "get_order_details", "TOOL", parent=5, status=error, events=(tool_error,), tool__name="get_order_details"
        ),
        span(5, "act", "CHAIN", parent=1, output=ACT),
        span(8, "ChatHuggingFace", "LLM", parent=7, **llm_attrs),
        span(7, "reason", "CHAIN", parent=1, output=REASON),
        span(9, "score_quality", "CHAIN", parent=1, output=QUALITY),
        span(10, "open_ticket", "CHAIN", parent=1, output=HANDOFF),
        span(11, "r1agent", "AGENT", output={"messages": [], **INTENT, **QUALITY, "handoff": HANDOFF["handoff"]}),
    ]


def test_the_turn_span_carries_what_the_turn_decided() -> None:
    extra = enrich(a_turn(), turn=11)
    assert extra[11] == {
        "r1agent.intent": "order_status",
        "r1agent.intent.confidence": 0.97,
        "r1agent.quality.score": 0.42,
        "r1agent.handoff": True,
        "r1agent.handoff.reason": "low_quality",
        "r1agent.handoff.status": "open",
        "r1agent.handoff.ticket_id": "t-1",
        "r1agent.tool.name": "get_order_details",
        "r1agent.tool.error": "I could not find order #W0000000 for your account",
        "gen_ai.usage.input_tokens": 209,
        "gen_ai.usage.output_tokens": 24,
        "r1agent.outcome": "handoff",
    }


def test_node_tool_and_model_spans_carry_their_own_part() -> None:
    extra = enrich(a_turn(), turn=11)
    assert extra[3] == {"r1agent.intent": "order_status", "r1agent.intent.confidence": 0.97}
    assert extra[9] == {"r1agent.quality.score": 0.42}
    assert extra[6] == {
        "r1agent.tool.name": "get_order_details",
        "r1agent.tool.error": "I could not find order #W0000000 for your account",
    }
    assert extra[8] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "huggingface",
        "gen_ai.request.model": "SmolLM2",
        "gen_ai.request.max_tokens": 24,
        # The model reported no usage: the counts its node measured.
        "gen_ai.usage.input_tokens": 209,
        "gen_ai.usage.output_tokens": 24,
    }
    assert extra[2] == {}  # perceive's resets are not decisions
    assert 4 not in extra  # a routing function's output is a node name


def test_a_model_that_reports_usage_is_believed() -> None:
    extra = enrich(a_turn(llm_tokens={"prompt": 11, "completion": 5}), turn=11)
    assert extra[8]["gen_ai.usage.input_tokens"] == 11
    assert extra[8]["gen_ai.usage.output_tokens"] == 5


def test_a_node_with_two_model_calls_does_not_lend_its_counts() -> None:
    spans = [*a_turn(), span(12, "ChatHuggingFace", "LLM", parent=7)]
    extra = enrich(spans, turn=11)
    assert "gen_ai.usage.input_tokens" not in extra[8]
    assert "gen_ai.usage.input_tokens" not in extra[12]


def test_without_the_turn_no_turn_attributes() -> None:
    """A part of a turn passed on early (overflow, flush) gets node attributes only."""
    extra = enrich(a_turn()[:5])
    assert all("r1agent.outcome" not in attrs for attrs in extra.values())


@pytest.mark.parametrize(
    ("updates", "failed", "outcome"),
    [
        ([PERCEIVE, INTENT, REASON, QUALITY], False, "answered"),
        ([PERCEIVE, INTENT, QUALITY, HANDOFF], False, "handoff"),
        ([PERCEIVE, INTENT, {"tool_calls": [{**CALL, "error": None, "missing": ["order_id"]}]}], False, "clarify"),
        ([PERCEIVE], False, "rejected"),
        ([{"handoff": {**HANDOFF["handoff"], "status": "resolved"}}], False, "resumed"),
        ([PERCEIVE, INTENT], True, "error"),
    ],
)
def test_outcomes(updates: list[dict[str, Any]], failed: bool, outcome: str) -> None:
    facts = turn_facts(merge_updates(updates), failed=failed)
    assert facts.outcome == outcome
    assert facts_attributes(facts)["r1agent.outcome"] == outcome
    assert facts.handed_off is (outcome == "handoff")


def test_facts_tolerate_junk() -> None:
    facts = turn_facts({"intent": "nope", "quality": {"score": "high"}, "tool_calls": [None, 3], "usage": []})
    assert facts.intent is None and facts.quality is None and facts.tool is None and facts.input_tokens is None
    assert update_attributes({"usage": {"input_tokens": True}}) == {}


def test_a_failed_turn_is_an_error() -> None:
    spans = a_turn()
    root = spans[-1]
    failed = ReadableSpan(
        name=root.name,
        context=root.context,
        attributes=root.attributes,
        status=Status(StatusCode.ERROR, "boom"),
        start_time=1,
        end_time=99,
        instrumentation_scope=LC,
    )
    assert enrich([*spans[:-1], failed], turn=11)[11]["r1agent.outcome"] == "error"


# --- masking ---


def test_mask_span_masks_every_string_that_leaves() -> None:
    secret = "mail a.b@example.com or call +1 555 123 4567"
    original = ReadableSpan(
        name="turn for a.b@example.com",
        context=SpanContext(TRACE, 1, is_remote=False),
        attributes={
            "input.value": json.dumps({"text": secret}),
            "input.mime_type": "application/json",
            "llm.input_messages.0.message.content": "card 4111 1111 1111 1111",
            "tags": ["986 Sunset Drive", "ok"],
            "card_as_number": 4111111111111111,
            "count": 3,
        },
        events=[Event("exception", {"exception.message": secret, "exception.stacktrace": f"Error: {secret}"})],
        links=[Link(SpanContext(TRACE, 9, is_remote=False), {"note": secret})],
        status=Status(StatusCode.ERROR, secret),
        instrumentation_scope=LC,
    )
    masked = mask_span(original, {"r1agent.intent": "order_status"}, max_chars=10_000)
    assert masked.name == "turn for [EMAIL]"
    attrs = dict(masked.attributes or {})
    assert json.loads(str(attrs["input.value"])) == {"text": "mail [EMAIL] or call [PHONE]"}
    assert attrs["input.mime_type"] == "application/json"
    assert attrs["llm.input_messages.0.message.content"] == "card [CARD]"
    assert attrs["tags"] == ["[ADDRESS]", "ok"]
    assert attrs["card_as_number"] == "[CARD]"
    assert attrs["count"] == 3
    assert attrs["r1agent.intent"] == "order_status"
    assert masked.events[0].attributes == {
        "exception.message": "mail [EMAIL] or call [PHONE]",
        "exception.stacktrace": "Error: mail [EMAIL] or call [PHONE]",
    }
    assert masked.links[0].attributes == {"note": "mail [EMAIL] or call [PHONE]"}
    assert masked.status.description == "mail [EMAIL] or call [PHONE]"
    assert masked.context == original.context and masked.instrumentation_scope == LC


def test_long_values_are_cut_where_no_pii_is_split() -> None:
    value = json.dumps({"history": ["x" * 300, "reach me at a.b@example.com", "y" * 300]})
    cut_at = value.index("a.b@") + 3  # a naive cut would leave "a.b" + "@exa..." half visible
    original = span(1, "reason", "CHAIN", input__value=value, input__mime_type="application/json")
    for limit in (cut_at, cut_at + 4, cut_at + 12):
        attrs = dict(mask_span(original, {}, max_chars=limit).attributes or {})
        kept = str(attrs["input.value"])
        assert kept.endswith(" …[cut]") and "a.b" not in kept and "example.com" not in kept
        assert attrs["input.mime_type"] == "text/plain"  # no longer JSON


# --- holding spans per turn, through a real SDK pipeline ---


@pytest.fixture
def pipeline() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(TurnSpanProcessor([SimpleSpanProcessor(exporter)], max_attribute_chars=4096))
    yield provider, exporter
    provider.shutdown()


def test_a_turns_spans_wait_for_the_turn(pipeline: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = pipeline
    langchain = provider.get_tracer(LANGCHAIN_SCOPE)
    turn = langchain.start_span("r1agent", attributes={"openinference.span.kind": "AGENT"})
    node = langchain.start_span("detect_intent", context=set_span_in_context(turn))
    node.set_attributes({"openinference.span.kind": "CHAIN", "output.mime_type": "application/json"})
    node.set_attribute("output.value", json.dumps(INTENT))
    node.end()
    assert exporter.get_finished_spans() == ()  # held: the turn is not over
    turn.end()
    finished = {s.name: s for s in exporter.get_finished_spans()}
    assert set(finished) == {"r1agent", "detect_intent"}
    assert finished["r1agent"].attributes is not None
    assert finished["r1agent"].attributes["r1agent.intent"] == "order_status"
    assert finished["detect_intent"].parent is not None
    assert finished["detect_intent"].parent.span_id == finished["r1agent"].context.span_id


def test_other_spans_pass_at_once_masked(pipeline: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = pipeline
    with provider.get_tracer("r1agent.evals").start_as_current_span("case", attributes={"who": "a.b@example.com"}):
        pass
    (case,) = exporter.get_finished_spans()
    assert case.attributes == {"who": "[EMAIL]"}


def test_a_runaway_turn_is_passed_on_in_parts(
    pipeline: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spans_module, "MAX_SPANS_PER_TURN", 3)
    provider, exporter = pipeline
    langchain = provider.get_tracer(LANGCHAIN_SCOPE)
    turn = langchain.start_span("r1agent")
    for i in range(7):
        langchain.start_span(f"step-{i}", context=set_span_in_context(turn)).end()
    assert len(exporter.get_finished_spans()) == 6  # two full parts of three; memory stays bounded
    turn.end()
    assert len(exporter.get_finished_spans()) == 8


def test_force_flush_passes_on_what_is_held(pipeline: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = pipeline
    langchain = provider.get_tracer(LANGCHAIN_SCOPE)
    turn = langchain.start_span("r1agent")
    langchain.start_span("perceive", context=set_span_in_context(turn)).end()
    assert provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["perceive"]
    turn.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["perceive", "r1agent"]
