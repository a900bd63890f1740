"""The Python API most callers want: open an agent, ask, resume a handoff.

    from r1agent import open_agent
    with open_agent() as agent:
        turn = agent.ask("What is your return policy?")
        print(turn.answer, turn.sources)

It owns the lifetimes (model, Qdrant, checkpointer connections) that ``build_graph`` leaves to its
caller, and checks thread state before a run so mistakes get a clear error instead of a silent fork.
"""

from __future__ import annotations

import base64
import mimetypes
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from r1agent.context import Context
from r1agent.deps import Deps, build_deps, open_checkpointer
from r1agent.errors import ConfigurationError, ConflictError, NotFoundError
from r1agent.feedback.store import Feedback, FeedbackStore, record_feedback
from r1agent.feedback.turns import OWNER_KEY, CheckpointHistory
from r1agent.graphs import build_graph
from r1agent.nodes.perception import validate_text
from r1agent.settings import Settings
from r1agent.state import InputState, OutputState, State
from r1agent.telemetry import setup_telemetry


@dataclass
class TurnResult:
    """One turn as the CLI's ``--json`` prints it: a public contract, extend but never break."""

    thread_id: str
    answer: str
    thinking: str = ""
    intent: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    quality: dict[str, Any] | None = None
    handoff: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    interrupted: bool = False
    perception: dict[str, Any] | None = None
    """What was read from attachments: OCR text and tags per image, transcript and segments per voice note."""
    cached: bool = False
    """The answer came from the semantic answer cache: no retrieval, no model call (``usage`` is zero)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Agent:
    """A compiled r1agent graph with its checkpointer: ask turns, resume handoffs, read results."""

    def __init__(self, graph: CompiledStateGraph[State, Context, InputState, OutputState], deps: Deps) -> None:
        self.graph = graph
        self.deps = deps

    def _config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    def run_config(self, thread_id: str, customer_id: str | None = None) -> RunnableConfig:
        """The config of a run on ``thread_id``; acting for ``customer_id``, it records them as the owner.

        LangGraph copies run metadata into every checkpoint, where feedback and later turns look for the
        owner (``metadata.owner``, as the server's auth stamps it): a thread started for a customer is theirs.
        """
        config = self._config(thread_id)
        if customer_id is not None:
            config["metadata"] = {OWNER_KEY: customer_id}
        return config

    def thread_exists(self, thread_id: str) -> bool:
        return bool(self.graph.get_state(self._config(thread_id)).values)

    def check_thread(self, thread_id: str, customer_id: str | None = None) -> None:
        """NotFoundError unless ``thread_id`` exists and, acting for ``customer_id``, is that customer's.

        Someone else's thread, or one whose owner is unknown (started by a trusted caller), is answered
        exactly like a thread that does not exist: a customer cannot continue, read or probe it.
        """
        missing = NotFoundError(f"unknown thread {thread_id!r}: leave out --thread to start a new one")
        if not self.thread_exists(thread_id):
            raise missing
        if customer_id is not None and self._history().owner(thread_id) != customer_id:
            raise missing

    def _history(self) -> CheckpointHistory:
        checkpointer = self.graph.checkpointer
        if not isinstance(checkpointer, BaseCheckpointSaver):
            raise ConfigurationError("this reads the thread's checkpoints: build the graph with a checkpointer")
        return CheckpointHistory(checkpointer, self.deps.tickets, max_history=self.deps.settings.max_history_messages)

    def pending_ticket(self, thread_id: str) -> str | None:
        snapshot = self.graph.get_state(self._config(thread_id))
        if not snapshot.interrupts:
            return None
        handoff = snapshot.values.get("handoff") or {}
        return str(handoff.get("ticket_id", "?"))

    def ask(
        self,
        text: str,
        *,
        thread_id: str | None = None,
        customer_id: str | None = None,
        context: Context | None = None,
        attachments: Sequence[Path] = (),
    ) -> TurnResult:
        """One turn. ``attachments``: image or audio files, sent as LangChain content blocks."""
        if not attachments:
            text = validate_text(text, max_chars=self.deps.settings.max_turn_chars)
        ctx = context or Context()
        if customer_id is not None:
            ctx = replace(ctx, customer_id=customer_id)
        if thread_id is None:
            thread_id = uuid.uuid4().hex
        else:
            self.check_thread(thread_id, ctx.customer_id)  # before anything about it is said
            if (ticket := self.pending_ticket(thread_id)) is not None:
                raise ConflictError(
                    f"thread {thread_id} is waiting for a human agent (ticket {ticket}); "
                    f"resume it with: r1agent handoff resume {ticket} --reply TEXT"
                )
        content: str | list[str | dict[str, Any]] = text
        if attachments:
            content = [{"type": "text", "text": text}, *(content_block(path) for path in attachments)]
        config = self.run_config(thread_id, ctx.customer_id)
        self.graph.invoke({"messages": [HumanMessage(content=content)]}, config, context=ctx)
        return self.result(thread_id)

    def resume(self, ticket_id: str, reply: str, *, context: Context | None = None) -> TurnResult:
        ticket = self.deps.tickets.get(ticket_id)
        if ticket.status != "open" or self.pending_ticket(ticket.thread_id) != ticket_id:
            raise ConflictError(f"ticket {ticket_id} is not waiting for a reply (status {ticket.status})")
        ctx = replace(context or Context(), customer_id=ticket.customer_id)
        config = self.run_config(ticket.thread_id, ticket.customer_id)
        self.graph.invoke(Command(resume=reply), config, context=ctx)
        return self.result(ticket.thread_id)

    def feedback(
        self,
        thread_id: str,
        rating: int,
        comment: str | None = None,
        turn: int | None = None,
        *,
        customer_id: str | None = None,
    ) -> Feedback:
        """Rate an answer of a thread from 1 to 5 (default: its last turn); rating it again replaces it.

        ``customer_id``: act for that customer, whose threads only are found; None: a trusted caller
        (the operator), any thread. See docs/feedback.md.
        """
        settings = self.deps.settings
        with FeedbackStore(settings.feedback_path) as store:
            return record_feedback(
                store,
                self._history(),
                thread_id,
                customer_id,
                rating,
                comment=comment,
                turn=turn,
                max_comment_chars=settings.feedback_max_comment_chars,
            )

    def result(self, thread_id: str) -> TurnResult:
        snapshot = self.graph.get_state(self._config(thread_id))
        values: dict[str, Any] = dict(snapshot.values)
        messages = values.get("messages") or []
        last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        intent = values.get("intent")
        return TurnResult(
            thread_id=thread_id,
            answer=str(last_ai.content) if last_ai is not None else "",
            thinking=values.get("thinking", ""),
            intent={k: intent[k] for k in ("label", "confidence", "entities")} if intent else None,
            sources=[{k: s[k] for k in ("source", "title", "score")} for s in values.get("sources") or []],
            tool_calls=list(values.get("tool_calls") or []),
            quality=dict(values["quality"]) if values.get("quality") else None,
            handoff=dict(values["handoff"]) if values.get("handoff") else None,
            errors=list(values.get("errors") or []),
            usage=dict(values["usage"]) if values.get("usage") else None,
            interrupted=bool(snapshot.interrupts),
            perception=dict(values["perception"]) if values.get("perception") else None,
            cached=bool(values.get("cached")),
        )


def content_block(path: Path) -> dict[str, Any]:
    """A file as LangChain's standard multimodal block; its type is checked from the bytes later."""
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    kind = mime.split("/", 1)[0] if mime.startswith(("image/", "audio/")) else "file"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return {"type": kind, "base64": data, "mime_type": mime, "name": path.name}


@contextmanager
def open_agent(settings: Settings | None = None, *, deps: Deps | None = None) -> Iterator[Agent]:
    """An :class:`Agent` on durable threads; closes what it opened (models, stores, checkpointer) on exit."""
    settings = settings or (deps.settings if deps else Settings())
    setup_telemetry(settings)  # once per process; R1AGENT_OTEL_EXPORTER=none (default) instruments nothing
    owned = deps is None
    deps = deps or build_deps(settings)
    try:
        with open_checkpointer(settings) as checkpointer:
            yield Agent(build_graph(deps, checkpointer=checkpointer), deps)
    finally:
        if owned:
            deps.close()
