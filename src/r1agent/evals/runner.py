"""Run eval cases through the real agent: one fresh thread per case, every node timed.

The compiled graph is streamed with ``stream_mode="updates"``: an update arrives as each node
finishes, so the time between two updates is the node's own time (checkpoint write included). Each
case runs inside an OpenTelemetry span from the ``r1agent.evals`` tracer; its trace id goes in the
result row, so a slow or wrong case can be opened in the tracing backend. With no tracer provider
configured the id is all zeros.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from r1agent.app import Agent, content_block
from r1agent.context import Context
from r1agent.errors import R1AgentError
from r1agent.evals.dataset import Case, CustomerTurn, Suite
from r1agent.evals.results import CaseResult, SourceRecord, ToolCallRecord
from r1agent.evals.scorers import score
from r1agent.evals.weather_stub import WeatherStub
from r1agent.nodes.perception import validate_text
from r1agent.nodes.respond import answer as deliver
from r1agent.settings import Settings
from r1agent.state import State

TRACER_NAME = "r1agent.evals"
MAX_TEXT_CHARS = 4000
"""Longer answers, drafts and tool results are cut in the row (the thread keeps them whole)."""


def message_for(turn: CustomerTurn, *, base_dir: Path, max_chars: int) -> HumanMessage:
    """The customer's turn as the graph takes it, attachments as LangChain content blocks."""
    if not turn.attachments:
        return HumanMessage(content=validate_text(turn.text, max_chars=max_chars))
    blocks: list[str | dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
    for name in turn.attachments:
        path = Path(name)
        blocks.append(content_block(path if path.is_absolute() else base_dir / path))
    return HumanMessage(content=blocks)


def run_case(
    agent: Agent,
    case: Case,
    *,
    context: Context,
    base_dir: Path,
    suite: str = "",
    tracer: trace.Tracer | None = None,
) -> CaseResult:
    """One case on a fresh thread, scored. Errors become the row's ``error``; they never end the run.
    ``tracer``: the global provider's ``r1agent.evals`` tracer unless given."""
    thread_id = uuid.uuid4().hex
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    ctx = replace(context, customer_id=case.customer_id)
    tracer = tracer or trace.get_tracer(TRACER_NAME)
    # Ids and tags only: the customer's words and data stay out of traces.
    attributes = {"r1agent.eval.suite": suite, "r1agent.eval.case_id": case.id, "r1agent.eval.tags": case.tags}
    with tracer.start_as_current_span("r1agent.eval.case", attributes=attributes) as span:
        row = CaseResult(case_id=case.id, thread_id=thread_id, trace_id=f"{span.get_span_context().trace_id:032x}")
        try:
            row = _converse(agent, case, config, ctx, base_dir, row)
        except R1AgentError as exc:
            row = row.model_copy(update={"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one broken case must not lose the others; it is recorded
            row = row.model_copy(update={"error": f"{type(exc).__name__}: {exc}"[:MAX_TEXT_CHARS]})
        row = score(case, row)
        span.set_attribute("r1agent.eval.passed", row.passed)
        span.set_attribute("r1agent.eval.handoff", row.handoff)
        if row.error is not None:
            span.set_status(Status(StatusCode.ERROR, "the case did not run to its end"))
    return row


def _converse(
    agent: Agent, case: Case, config: RunnableConfig, ctx: Context, base_dir: Path, row: CaseResult
) -> CaseResult:
    max_chars = agent.deps.settings.max_turn_chars
    nodes: list[tuple[str, float]] = []
    turn_s: list[float] = []
    tokens_in = tokens_out = 0
    notes: list[str] = []
    thread_id = str((config.get("configurable") or {})["thread_id"])
    for number, turn in enumerate(case.turns, start=1):
        if number > 1 and agent.pending_ticket(thread_id) is not None:
            notes.append(f"handed off on turn {number - 1} of {len(case.turns)}; the later turns were not sent")
            break
        message = message_for(turn, base_dir=base_dir, max_chars=max_chars)
        start = last = time.perf_counter()
        for update in agent.graph.stream({"messages": [message]}, config, context=ctx, stream_mode="updates"):
            now = time.perf_counter()
            nodes.extend((node, round(now - last, 4)) for node in cast(dict[str, Any], update) if node[:2] != "__")
            last = now
        turn_s.append(round(time.perf_counter() - start, 4))
        values = agent.graph.get_state(config).values
        usage = values.get("usage") or {}
        tokens_in += int(usage.get("input_tokens", 0))
        tokens_out += int(usage.get("output_tokens", 0))
    values = dict(agent.graph.get_state(config).values)
    final = agent.result(thread_id)
    quality = values.get("quality")
    handoff = values.get("handoff")
    intent = values.get("intent")
    candidate = None
    if quality is not None:
        # What the answer node would have sent had the gate passed: the draft judged for calibration.
        candidate = str(deliver(cast(State, values))["messages"][0].content)
    return row.model_copy(
        update={
            "turns_run": len(turn_s),
            "answer": final.answer[:MAX_TEXT_CHARS],
            "draft": str(values.get("draft", ""))[:MAX_TEXT_CHARS],
            "candidate": candidate[:MAX_TEXT_CHARS] if candidate is not None else None,
            "thinking": final.thinking[:MAX_TEXT_CHARS],
            "intent": intent["label"] if intent else None,
            "intent_confidence": intent["confidence"] if intent else None,
            "tool_calls": [
                ToolCallRecord(
                    name=c["name"],
                    args=c["args"],
                    result=c["result"][:MAX_TEXT_CHARS] if c["result"] is not None else None,
                    error=c["error"],
                    missing=c["missing"],
                )
                for c in values.get("tool_calls") or []
            ],
            "sources": [SourceRecord(source=s["source"], title=s["title"], score=s["score"]) for s in final.sources],
            "quality": quality["score"] if quality else None,
            "quality_signals": quality["signals"] if quality else {},
            "quality_threshold": quality["threshold"] if quality else None,
            "handoff": handoff is not None,
            "handoff_reason": handoff["reason"] if handoff else None,
            "interrupted": final.interrupted,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "turn_s": turn_s,
            "nodes": nodes,
            "turn_errors": [e["message"] for e in final.errors] + notes,
        }
    )


def run_cases(
    agent: Agent,
    suite: Suite,
    *,
    context: Context,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    rows: list[CaseResult] = []
    for case in suite.cases:
        row = run_case(agent, case, context=context, base_dir=suite.base_dir, suite=suite.name)
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows


@contextmanager
def eval_settings(base: Settings, *, data_dir: Path | None = None) -> Iterator[Settings]:
    """``base`` for an eval run: embedded stores in a throw-away data dir (threads, tickets, Qdrant and
    orders seeded from the demo data, so the user's own stores, servers included, are neither read nor
    filled with eval tickets) and the weather tool pointed at the local stub (offline, same answer
    every run). The models, cache dir and limits stay the user's."""
    with WeatherStub() as stub:
        owned = data_dir is None
        folder = Path(tempfile.mkdtemp(prefix="r1agent-eval-")) if data_dir is None else data_dir
        try:
            yield base.model_copy(
                update={
                    "data_dir": folder,
                    "orders_db": None,
                    "orders_postgres_url": None,
                    "qdrant_url": None,
                    "qdrant_api_key": None,
                    "postgres_url": None,
                    "seed_demo_kb": True,
                    # Every case must measure the model: a case answered from an earlier case's cached
                    # answer would score that earlier case twice.
                    "answer_cache": False,
                    "weather_geocoding_url": stub.geocoding_url,
                    "weather_forecast_url": stub.forecast_url,
                }
            )
        finally:
            if owned:
                shutil.rmtree(folder, ignore_errors=True)


def run_suite(
    suite: Suite,
    *,
    settings: Settings,
    context: Context,
    run_dir: Path,
    on_result: Callable[[CaseResult], None] | None = None,
) -> tuple[dict[str, Any], list[CaseResult]]:
    """Run ``suite`` on a fresh default stack built from ``settings`` (see :func:`eval_settings`) and
    write the run folder: ``results.jsonl`` row by row as cases finish (a crash keeps what ran), then
    ``summary.json``, ``report.md`` and the plots. Returns the summary and the rows."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from r1agent import __version__
    from r1agent.app import open_agent
    from r1agent.evals.report import write_report
    from r1agent.evals.results import RESULTS_FILE
    from r1agent.evals.scorers import summarize
    from r1agent.evals.threshold import fit_threshold

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    with (
        eval_settings(settings) as isolated,
        open_agent(isolated) as agent,
        (run_dir / RESULTS_FILE).open("w", encoding="utf-8") as sink,
    ):
        model = agent.deps.llm.name

        def record(row: CaseResult) -> None:
            sink.write(row.model_dump_json() + "\n")
            sink.flush()
            if on_result is not None:
                on_result(row)

        loop_started = time.perf_counter()
        rows = run_cases(agent, suite, context=context, on_result=record)
        cases_s = time.perf_counter() - loop_started
    summary = summarize(rows)
    pairs = [(r.quality, r.acceptable) for r in rows if r.quality is not None and r.acceptable is not None]
    if pairs:
        fit = fit_threshold(pairs).to_dict()
        fit.pop("curve")
        summary["threshold"] = fit
    # Set up (models, seeding the throw-away stores) is in duration_s; cases_s is the cases alone.
    summary["run"] = {
        "suite": suite.name,
        "suite_path": str(suite.path),
        "started_at": started_at,
        "duration_s": round(time.perf_counter() - started, 2),
        "cases_s": round(cases_s, 2),
        "model": model,
        "max_new_tokens_cap": settings.max_new_tokens,
        "context": asdict(context),
        "r1agent": __version__,
    }
    write_report(run_dir, summary, rows)
    return summary, rows
