"""The eval runner on the real agent, in process: turns that need no chat model (a request for a person,
a missing argument), so it is quick; the whole suite runs in test_evals_retail.py. Checks per-node
timing, multi-turn threads, stopping after a handoff, the trace id of a configured tracer, and the
weather stub the runner points the real weather tool at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from r1agent.app import Agent, open_agent
from r1agent.context import Context
from r1agent.deps import Deps
from r1agent.evals.dataset import Case
from r1agent.evals.results import NO_TRACE
from r1agent.evals.runner import eval_settings, run_case
from r1agent.evals.weather_stub import CITIES, WeatherStub
from r1agent.settings import Settings
from r1agent.tools.weather import make_tools


@pytest.fixture(scope="module")
def agent(real_deps: Deps) -> Iterator[Agent]:
    with open_agent(deps=real_deps) as agent:
        yield agent


def _case(turns: list[str], **fields: object) -> Case:
    return Case.model_validate({"id": "t", "turns": [{"text": t} for t in turns], **fields})


@pytest.mark.slow
def test_a_requested_handoff_is_timed_per_node_and_traced(agent: Agent) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    case = _case(
        ["I want to talk to a human about order #W2611340."],
        customer_id="james_li_5688",
        expect={"handoff": True, "handoff_reason": "requested"},
        tags=["handoff"],
    )
    row = run_case(agent, case, context=Context(), base_dir=Path("."), suite="unit", tracer=provider.get_tracer("t"))
    assert row.passed, row.checks
    assert row.handoff and row.handoff_reason == "requested" and row.interrupted
    # await_human pauses (interrupt) rather than finishing, so it sends no update of its own.
    assert [node for node, _ in row.nodes] == ["perceive", "detect_intent", "open_ticket"]
    assert all(seconds >= 0 for _, seconds in row.nodes)
    assert row.turn_s[0] >= sum(seconds for _, seconds in row.nodes) * 0.9
    assert row.quality is None and row.candidate is None and row.acceptable is None  # no model ran
    (span,) = exporter.get_finished_spans()
    assert row.trace_id == f"{span.context.trace_id:032x}" != NO_TRACE
    assert span.attributes is not None and span.attributes["r1agent.eval.case_id"] == "t"
    assert span.attributes["r1agent.eval.passed"] is True
    assert "james" not in str(dict(span.attributes))  # ids of cases, never customers, in traces


@pytest.mark.slow
def test_without_a_tracer_provider_the_trace_id_is_zeros(agent: Agent) -> None:
    case = _case(["What's the weather like?"], expect={"tool": {"name": "weather"}, "refusal": "clarify"})
    row = run_case(agent, case, context=Context(), base_dir=Path("."))
    # Another test in the session may have installed a global provider: then the id is a real one.
    configured = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)
    assert (row.trace_id != NO_TRACE) == configured
    assert re.fullmatch(r"[0-9a-f]{32}", row.trace_id)
    assert row.passed, row.checks
    assert row.tool_calls[0].missing == ["city"] and not row.handoff


@pytest.mark.slow
def test_a_conversation_stops_when_a_human_takes_over(agent: Agent) -> None:
    case = _case(["Please connect me with a human agent.", "Hello? Anyone there?"])
    row = run_case(agent, case, context=Context(), base_dir=Path("."))
    assert row.turns_run == 1 and row.handoff
    assert row.turn_errors == ["handed off on turn 1 of 2; the later turns were not sent"]
    two = _case(["What's the weather going to be like?", "I want to speak to a real person."])
    row = run_case(agent, two, context=Context(), base_dir=Path("."))
    assert row.turns_run == 2 and len(row.turn_s) == 2 and row.handoff_reason == "requested"


@pytest.mark.slow
def test_bad_input_in_a_case_is_recorded_not_raised(agent: Agent, tmp_path: Path) -> None:
    case = Case.model_validate({"id": "t", "turns": [{"text": "look", "attachments": ["missing.png"]}]})
    row = run_case(agent, case, context=Context(), base_dir=tmp_path)
    assert row.error is not None and "no such file" in row.error
    assert row.checks == {"ran": False} and not row.passed


def test_the_weather_stub_answers_the_real_weather_tool(tmp_path: Path) -> None:
    with eval_settings(Settings(data_dir=tmp_path, cache_dir=tmp_path)) as settings:
        assert settings.data_dir != tmp_path and settings.data_dir.is_dir()  # a throw-away data dir
        assert settings.weather_geocoding_url.startswith("http://127.0.0.1:")
        (tool,) = make_tools(settings)
        try:
            paris = tool.invoke({"city": "Paris", "day": "tomorrow"})
            assert "Paris, France — tomorrow (2026-05-02): 12.1–18.4 °C, 40% chance of rain" in paris
            assert "New York" in tool.invoke({"city": "new york"})
            with pytest.raises(Exception, match="could not find a place called 'Atlantis'"):
                tool.invoke({"city": "Atlantis"})
        finally:
            tool.close()
        data_dir = settings.data_dir
    assert not data_dir.exists()  # removed with the run
    assert {c.name for c in CITIES.values()} >= {"Paris", "London", "New York", "Tokyo"}
    with WeatherStub() as stub:
        assert stub.forecast_url.endswith("/v1/forecast")
