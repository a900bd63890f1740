"""Turn metrics, measured from LangChain callbacks (so they need no tracing) and recorded with the
OpenTelemetry metrics API.

:class:`TurnObserver` is one process-wide callback handler, attached to every LangChain run through
``langchain_core``'s configure hook (how LangChain attaches its own tracers). A run without a parent
is a turn; the observer keeps its start time, the time of the chat model's first streamed token, and
the state updates its nodes return, and records the turn's metrics when it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook
from opentelemetry.metrics import Meter
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_REQUEST_MODEL, GEN_AI_TOKEN_TYPE

from r1agent.telemetry.facts import (
    HANDOFF_REASON,
    INTENT,
    OUTCOME,
    TOOL_NAME,
    TurnFacts,
    is_state_update,
    merge_updates,
    turn_facts,
)

MAX_OPEN_TURNS = 4096
MAX_OPEN_RUNS = 65536
_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300]
_SCORES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
# Control flow, not failure: an interrupt waits for a human, a Command hands over to a parent graph.
_CONTROL_FLOW = frozenset({"GraphInterrupt", "NodeInterrupt", "ParentCommand"})


class TurnMetrics:
    """The instruments. Names follow OpenTelemetry's conventions (dotted, unit apart); Prometheus shows
    them as ``r1agent_turns_total``, ``r1agent_turn_duration_seconds``..."""

    def __init__(self, meter: Meter) -> None:
        self.turns = meter.create_counter("r1agent.turns", unit="{turn}", description="Turns run, by outcome")
        self.duration = meter.create_histogram(
            "r1agent.turn.duration",
            unit="s",
            description="Turn latency, from the customer's message to the agent's last step",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.time_to_first_token = meter.create_histogram(
            "r1agent.turn.time_to_first_token",
            unit="s",
            description="From the turn's start to the chat model's first streamed token (streamed turns only)",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.tokens = meter.create_counter(
            "r1agent.tokens", unit="{token}", description="Chat model tokens, by gen_ai.token.type (input, output)"
        )
        self.tool_errors = meter.create_counter(
            "r1agent.tool.errors", unit="{error}", description="Tool calls that failed, by tool"
        )
        self.handoffs = meter.create_counter(
            "r1agent.handoffs", unit="{handoff}", description="Turns handed to a human, by reason"
        )
        self.quality = meter.create_histogram(
            "r1agent.quality.score",
            unit="1",
            description="The quality gate's score of each drafted answer",
            explicit_bucket_boundaries_advisory=_SCORES,
        )

    def record(self, facts: TurnFacts, *, duration_s: float, ttft_s: float | None, model: str | None) -> None:
        intent = {INTENT: facts.intent or "none"}
        self.turns.add(1, {OUTCOME: facts.outcome, **intent})
        self.duration.record(duration_s, {OUTCOME: facts.outcome})
        if ttft_s is not None:
            self.time_to_first_token.record(ttft_s)
        if facts.quality is not None:
            self.quality.record(facts.quality, intent)
        if facts.handed_off:
            self.handoffs.add(1, {HANDOFF_REASON: facts.handoff_reason or "unknown"})
        if facts.tool_error is not None:
            self.tool_errors.add(1, {TOOL_NAME: facts.tool or "unknown"})
        labels = {GEN_AI_REQUEST_MODEL: model} if model else {}
        if facts.input_tokens:
            self.tokens.add(facts.input_tokens, {GEN_AI_TOKEN_TYPE: "input", **labels})
        if facts.output_tokens:
            self.tokens.add(facts.output_tokens, {GEN_AI_TOKEN_TYPE: "output", **labels})


@dataclass
class _Turn:
    started: float
    first_token: float | None = None
    model: str | None = None
    updates: list[Mapping[str, Any]] = field(default_factory=list)


class TurnObserver(BaseCallbackHandler):
    """Measures turns for :class:`TurnMetrics`; does nothing while ``metrics`` is None."""

    run_inline = True  # cheap and non-blocking: no executor hop under the async server

    def __init__(self) -> None:
        self.metrics: TurnMetrics | None = None
        self._lock = threading.Lock()
        self._turns: dict[UUID, _Turn] = {}
        self._turn_of: dict[UUID, UUID] = {}
        """run id -> the id of its turn (root run), for runs that have started and not ended."""

    def _link(self, run_id: UUID, parent_run_id: UUID | None) -> _Turn | None:
        with self._lock:
            root = self._turn_of.get(parent_run_id) if parent_run_id is not None else None
            if root is None:
                return None
            self._turn_of[run_id] = root
            if len(self._turn_of) > MAX_OPEN_RUNS:
                del self._turn_of[next(iter(self._turn_of))]
            return self._turns.get(root)

    def _turn(self, run_id: UUID) -> _Turn | None:
        with self._lock:
            root = self._turn_of.get(run_id)
            return self._turns.get(root) if root is not None else None

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **_: Any,
    ) -> None:
        if self.metrics is None:
            return
        if parent_run_id is not None:
            self._link(run_id, parent_run_id)
            return
        with self._lock:
            self._turns[run_id] = _Turn(started=time.perf_counter())
            self._turn_of[run_id] = run_id
            if len(self._turns) > MAX_OPEN_TURNS:  # turns that never ended (an abandoned stream)
                del self._turns[next(iter(self._turns))]

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        turn = self._link(run_id, parent_run_id)
        if turn is not None and metadata and isinstance(name := metadata.get("ls_model_name"), str):
            turn.model = name

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **_: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **_: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **_: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **_: Any) -> None:
        # ``token``: the chunk's text, or its content blocks for multimodal models.
        turn = self._turn(run_id)
        if turn is not None and turn.first_token is None and (token or _reasoning(chunk)):
            turn.first_token = time.perf_counter()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, outputs, failed=False)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=type(error).__name__ not in _CONTROL_FLOW)

    def on_llm_end(self, response: Any, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=False)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=False)

    def on_tool_end(self, output: Any, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=False)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=False)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=False)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **_: Any) -> None:
        self._end(run_id, None, failed=False)

    def _end(self, run_id: UUID, outputs: Any, *, failed: bool) -> None:
        with self._lock:
            root = self._turn_of.pop(run_id, None)
            turn = self._turns.get(root) if root is not None else None
            if turn is None:
                return
            if is_state_update(outputs):  # a node's update (or the graph's output, last)
                turn.updates.append(outputs)
            if run_id != root:
                return
            del self._turns[run_id]
        metrics = self.metrics
        if metrics is None:
            return
        now = time.perf_counter()
        metrics.record(
            turn_facts(merge_updates(turn.updates), failed=failed),
            duration_s=now - turn.started,
            ttft_s=turn.first_token - turn.started if turn.first_token is not None else None,
            model=turn.model,
        )


def _reasoning(chunk: Any) -> bool:
    """A streamed chunk that carries only reasoning (an R1 think trace) is a first token too."""
    extra = getattr(getattr(chunk, "message", None), "additional_kwargs", None)
    return isinstance(extra, Mapping) and any(isinstance(v, str) and v for v in extra.values())


OBSERVER = TurnObserver()
# The configure hook adds the handler of this variable to every run; its default is seen from every
# thread and task, which a value set in one context would not be.
_OBSERVER_VAR: ContextVar[TurnObserver | None] = ContextVar("r1agent_turn_observer", default=OBSERVER)
_hooked = False
_hook_lock = threading.Lock()


def observe_turns(metrics: TurnMetrics | None) -> None:
    """Record turns into ``metrics`` from now on (None: stop recording)."""
    global _hooked
    with _hook_lock:
        OBSERVER.metrics = metrics
        if metrics is not None and not _hooked:
            # Once per process: LangChain has no way to unregister a hook. After a shutdown the
            # observer stays attached but returns at once.
            register_configure_hook(_OBSERVER_VAR, inheritable=True)
            _hooked = True
