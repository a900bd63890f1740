"""setup_telemetry from settings, end to end through real exporters: the console, OTLP over HTTP to a
receiver on 127.0.0.1 that records what it is sent, and a Prometheus endpoint scraped over HTTP.

The turns run through a small LangGraph graph with r1agent's node names and update shapes, the real
calculator tool and LangChain's fake chat model (the real stack is tests/integration/test_telemetry_real.py).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import ToolException
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from r1agent.errors import ConfigurationError
from r1agent.settings import Settings
from r1agent.telemetry import Telemetry, active_telemetry, setup_telemetry
from r1agent.telemetry.metrics import OBSERVER
from r1agent.tools.calculator import Calculator

SECRET = "I am a.b@example.com, card 4111 1111 1111 1111, 986 Sunset Drive, call +1 555 123 4567"
SECRETS = ["a.b@example.com", "4111 1111 1111 1111", "986 Sunset Drive", "555 123 4567"]


# --- a small graph with r1agent's node names and update shapes ---


class TurnState(TypedDict, total=False):
    text: str
    intent: dict[str, Any] | None
    tool_calls: list[dict[str, Any]]
    draft: str
    usage: dict[str, int]
    quality: dict[str, Any] | None
    handoff: dict[str, Any] | None


def tiny_graph() -> CompiledStateGraph[TurnState, None, TurnState, TurnState]:
    calculator = Calculator()
    chat = GenericFakeChatModel(messages=itertools.cycle([AIMessage("Twelve, as you asked.")]))

    def perceive(state: TurnState) -> TurnState:
        return {"text": state.get("text", ""), "intent": None, "tool_calls": [], "quality": None, "handoff": None}

    def detect_intent(state: TurnState) -> TurnState:
        text = state.get("text", "")
        wants_human = "person" in text
        intent = {"label": "small_talk", "confidence": 0.9, "entities": {}, "scores": {}, "wants_human": wants_human}
        return {"intent": intent}

    def act(state: TurnState) -> TurnState:
        expression = state.get("text", "").rpartition("calc:")[2].strip()
        call: dict[str, Any] = {"name": "calculator", "args": {"expression": expression}, "missing": []}
        try:
            return {"tool_calls": [{**call, "result": calculator.invoke({"expression": expression}), "error": None}]}
        except ToolException as exc:
            return {"tool_calls": [{**call, "result": None, "error": str(exc)}]}

    def reason(state: TurnState, config: RunnableConfig) -> TurnState:
        reply = chat.invoke([HumanMessage(state.get("text", ""))], config)
        return {"draft": str(reply.content), "usage": {"input_tokens": 5, "output_tokens": 4}}

    def score_quality(state: TurnState) -> TurnState:
        return {"quality": {"score": 0.75, "signals": {}, "threshold": 0.5}}

    def open_ticket(state: TurnState) -> TurnState:
        return {"handoff": {"ticket_id": "t-1", "reason": "requested", "status": "open"}}

    def route(state: TurnState) -> Literal["act", "reason", "open_ticket"]:
        intent = state.get("intent") or {}
        if intent.get("wants_human"):
            return "open_ticket"
        return "act" if "calc:" in state.get("text", "") else "reason"

    g = StateGraph(TurnState)
    for name, node in [
        ("perceive", perceive),
        ("detect_intent", detect_intent),
        ("act", act),
        ("reason", reason),
        ("score_quality", score_quality),
        ("open_ticket", open_ticket),
    ]:
        g.add_node(name, node)  # type: ignore[call-overload]
    g.add_edge(START, "perceive")
    g.add_edge("perceive", "detect_intent")
    g.add_conditional_edges("detect_intent", route, ["act", "reason", "open_ticket"])
    g.add_edge("act", "reason")
    g.add_edge("reason", "score_quality")
    g.add_edge("score_quality", END)
    g.add_edge("open_ticket", END)
    return g.compile(name="r1agent")


# --- a receiver of OTLP/HTTP posts ---


@dataclass
class Receiver:
    url: str
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(path, content type, body) of each POST."""

    def traces(self) -> list[Any]:
        spans = []
        for path, _, body in self.posts:
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                spans += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        return spans

    def metric_names(self) -> set[str]:
        names = set()
        for path, _, body in self.posts:
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                names |= {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        return names


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 that answers 200 to every POST and records it."""
    posts: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append((self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(url=f"http://127.0.0.1:{server.server_port}", posts=posts)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as r:
        yield r


# --- setting telemetry up and always down again (it is process-wide) ---

Setup = Callable[..., Telemetry]


@pytest.fixture
def telemetry(tmp_path: Path) -> Iterator[Setup]:
    if (leftover := active_telemetry()) is not None:
        leftover.shutdown()
    made: list[Telemetry] = []

    def setup(
        *, span_exporter: SpanExporter | None = None, metric_reader: InMemoryMetricReader | None = None, **fields: Any
    ) -> Telemetry:
        settings = Settings(data_dir=tmp_path, **fields)
        made.append(setup_telemetry(settings, span_exporter=span_exporter, metric_reader=metric_reader))
        return made[-1]

    yield setup
    for made_one in made:
        made_one.shutdown()
    assert active_telemetry() is None


def attribute(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found[metric.name] = [
                    (dict(p.attributes or {}), getattr(p, "value", None) or getattr(p, "count", None))
                    for p in metric.data.data_points
                ]
    return found


# --- settings ---


def test_exporters_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R1AGENT_OTEL_EXPORTER", "otlp, Prometheus")
    assert Settings().otel_exporter == ["otlp", "prometheus"]
    monkeypatch.setenv("R1AGENT_OTEL_EXPORTER", '["console"]')
    assert Settings().otel_exporter == ["console"]
    monkeypatch.delenv("R1AGENT_OTEL_EXPORTER")
    assert Settings().otel_exporter == ["none"]
    monkeypatch.setenv("R1AGENT_OTEL_EXPORTER", "jaeger")
    with pytest.raises(ValidationError, match="otel_exporter"):
        Settings()
    monkeypatch.setenv("R1AGENT_OTEL_EXPORTER", "none")
    monkeypatch.setenv("R1AGENT_PROMETHEUS_PORT", "70000")
    with pytest.raises(ValidationError, match="prometheus_port"):
        Settings()


def test_none_instruments_nothing(telemetry: Setup) -> None:
    from openinference.instrumentation.langchain import LangChainInstrumentor

    off = telemetry()
    assert not off.enabled and off.tracer_provider is None and off.meter_provider is None
    assert active_telemetry() is None
    assert not LangChainInstrumentor().is_instrumented_by_opentelemetry
    assert OBSERVER.metrics is None
    assert tiny_graph().invoke({"text": "hello"})["quality"]["score"] == 0.75


def test_setup_is_once_per_process(telemetry: Setup) -> None:
    first = telemetry(span_exporter=InMemorySpanExporter())
    assert telemetry(otel_exporter=["console"]) is first  # the running one, whatever the settings say
    with pytest.raises(ConfigurationError, match="already runs"):
        telemetry(span_exporter=InMemorySpanExporter())
    first.shutdown()
    second = telemetry(span_exporter=InMemorySpanExporter())
    assert second is not first and second.enabled


def test_in_memory_turns_spans_and_metrics(telemetry: Setup) -> None:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry(span_exporter=spans, metric_reader=reader)
    graph = tiny_graph()
    graph.invoke({"text": "calc: 15/100*80"})
    graph.invoke({"text": "calc: 1/0"})
    graph.invoke({"text": "a person please"})
    # A streamed turn: its first token is timed.
    list(graph.stream({"text": "hello"}, stream_mode="messages"))

    turns = [s for s in spans.get_finished_spans() if s.name == "r1agent"]
    assert [dict(s.attributes or {}).get("r1agent.outcome") for s in turns] == [
        "answered",
        "answered",
        "handoff",
        "answered",
    ]
    tool_spans = [s for s in spans.get_finished_spans() if s.name == "calculator"]
    assert [dict(s.attributes or {}).get("r1agent.tool.error") for s in tool_spans] == [None, "division by zero"]
    model = next(s for s in spans.get_finished_spans() if s.name == "GenericFakeChatModel")
    attrs = dict(model.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.input_tokens"] == 5 and attrs["gen_ai.usage.output_tokens"] == 4

    points = metric_points(reader)
    assert sum(v for _, v in points["r1agent.turns"]) == 4
    assert points["r1agent.handoffs"] == [({"r1agent.handoff.reason": "requested"}, 1)]
    assert points["r1agent.tool.errors"] == [({"r1agent.tool.name": "calculator"}, 1)]
    assert sorted(points["r1agent.tokens"], key=str) == [
        ({"gen_ai.token.type": "input"}, 15),
        ({"gen_ai.token.type": "output"}, 12),
    ]
    assert [v for _, v in points["r1agent.quality.score"]] == [3]  # counts: the three drafted answers
    assert [v for _, v in points["r1agent.turn.time_to_first_token"]] == [1]  # the streamed turn only
    assert sum(v for _, v in points["r1agent.turn.duration"]) == 4


def test_console_writes_spans_to_stderr_not_stdout(telemetry: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    console = telemetry(otel_exporter=["console"])
    assert console.exporters == ("console",)
    tiny_graph().invoke({"text": SECRET})
    console.shutdown()  # flushes the metrics too
    out, err = capsys.readouterr()
    assert out == ""  # stdout is the CLI's --json contract
    assert '"name": "r1agent"' in err and '"r1agent.outcome": "answered"' in err
    assert '"name": "r1agent.turns"' in err
    assert all(secret not in err for secret in SECRETS)


def test_otlp_posts_traces_and_metrics_to_the_endpoint(receiver: Receiver, telemetry: Setup) -> None:
    otlp = telemetry(otel_exporter=["otlp"], otlp_endpoint=receiver.url + "/")
    assert otlp.exporters == ("otlp",)
    tiny_graph().invoke({"text": f"{SECRET} calc: 15/100*80"})
    assert otlp.force_flush()

    assert {ctype for _, ctype, _ in receiver.posts} == {"application/x-protobuf"}
    spans = {s.name: s for s in receiver.traces()}
    assert {"r1agent", "perceive", "detect_intent", "act", "calculator", "reason", "GenericFakeChatModel"} <= set(spans)
    turn = {a.key: attribute(a.value) for a in spans["r1agent"].attributes}
    assert turn["r1agent.intent"] == "small_talk"
    assert turn["r1agent.tool.name"] == "calculator"
    assert turn["r1agent.quality.score"] == 0.75
    assert turn["r1agent.handoff"] is False
    assert spans["calculator"].parent_span_id == spans["act"].span_id
    assert spans["act"].parent_span_id == spans["r1agent"].span_id
    everything = str(receiver.traces())
    assert "[EMAIL]" in everything and all(secret not in everything for secret in SECRETS)
    assert {"r1agent.turns", "r1agent.turn.duration", "r1agent.quality.score"} <= receiver.metric_names()


def test_otlp_endpoint_defaults_to_the_standard_variables(
    receiver: Receiver, telemetry: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    otlp = telemetry(otel_exporter=["otlp"])
    tiny_graph().invoke({"text": "hello"})
    assert otlp.force_flush()
    assert {path for path, _, _ in receiver.posts} == {"/v1/traces", "/v1/metrics"}


def test_an_unreachable_collector_never_breaks_a_turn(telemetry: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    otlp = telemetry(otel_exporter=["otlp"], otlp_endpoint=f"http://127.0.0.1:{closed}")
    assert tiny_graph().invoke({"text": "calc: 2*3"})["tool_calls"][0]["result"] == "2*3 = 6"
    otlp.force_flush(timeout_millis=3000)  # fails, and says so in the log, but raises nothing


def test_an_exporter_that_raises_never_breaks_a_turn(telemetry: Setup, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            raise RuntimeError("disk full")

    telemetry(span_exporter=Broken())
    with caplog.at_level(logging.WARNING):
        assert tiny_graph().invoke({"text": "hello"})["draft"] == "Twelve, as you asked."
    assert "telemetry" in caplog.text or "Exception while exporting" in caplog.text


def test_prometheus_endpoint_on_localhost(telemetry: Setup) -> None:
    prom = telemetry(otel_exporter=["prometheus"], prometheus_port=0)
    assert prom.exporters == ("prometheus",) and prom.prometheus_port
    assert prom.tracer_provider is None  # metrics only: no tracing overhead
    graph = tiny_graph()
    graph.invoke({"text": "calc: 1/0"})
    graph.invoke({"text": "a person please"})
    with urllib.request.urlopen(f"http://127.0.0.1:{prom.prometheus_port}/metrics", timeout=5) as response:
        scraped = response.read().decode()
    assert re.search(r'^r1agent_turns_total\{[^}]*r1agent_outcome="handoff"[^}]*\} 1\.0$', scraped, re.M)
    assert re.search(r'^r1agent_handoffs_total\{[^}]*r1agent_handoff_reason="requested"[^}]*\} 1\.0$', scraped, re.M)
    assert re.search(r'^r1agent_tool_errors_total\{[^}]*r1agent_tool_name="calculator"[^}]*\} 1\.0$', scraped, re.M)
    assert re.search(r"^r1agent_turn_duration_seconds_count\{[^}]*\} 1\.0$", scraped, re.M)
    assert re.search(r'^r1agent_quality_score_bucket\{[^}]*le="0\.8"[^}]*\} 1\.0$', scraped, re.M)
    # Bound to the loopback interface only.
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", prom.prometheus_port)) == 0


def test_a_taken_prometheus_port_is_logged_not_raised(telemetry: Setup, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with caplog.at_level(logging.WARNING):
            prom = telemetry(otel_exporter=["prometheus"], prometheus_port=taken.getsockname()[1])
    assert not prom.enabled and prom.prometheus_port is None
    assert "Prometheus endpoint could not start" in caplog.text


def test_an_eval_case_span_parents_the_turn(telemetry: Setup) -> None:
    spans = InMemorySpanExporter()
    telemetry(span_exporter=spans)
    with trace.get_tracer("r1agent.evals").start_as_current_span("r1agent.eval.case") as case:
        tiny_graph().invoke({"text": "hello"})
    finished = {s.name: s for s in spans.get_finished_spans()}
    turn: ReadableSpan = finished["r1agent"]
    assert turn.parent is not None and turn.parent.span_id == case.get_span_context().span_id
    assert turn.context is not None and turn.context.trace_id == case.get_span_context().trace_id
    assert "r1agent.eval.case" in finished


def test_a_server_reload_keeps_one_instrumentation(telemetry: Setup) -> None:
    """Spans are not duplicated when setup runs again after a shutdown (``langgraph dev`` reloads)."""
    telemetry(span_exporter=InMemorySpanExporter()).shutdown()
    spans = InMemorySpanExporter()
    telemetry(span_exporter=spans)
    tiny_graph().invoke({"text": "hello"})
    assert [s.name for s in spans.get_finished_spans()].count("r1agent") == 1


def test_results_are_json_serialisable_for_the_console(telemetry: Setup) -> None:
    spans = InMemorySpanExporter()
    telemetry(span_exporter=spans)
    tiny_graph().invoke({"text": SECRET})
    for span in spans.get_finished_spans():
        assert json.loads(span.to_json())["name"] == span.name
