"""A parent LangGraph agent that answers the time itself and delegates customer service to r1agent.

r1agent is added as a *subgraph node*: the parent's ``messages`` go in, r1agent's new messages and its
``handoff`` come back out (the parent keeps only the keys its own state declares). The parent's
checkpointer is the only one: r1agent's steps and its handoff interrupt are saved inside the parent's
thread, so a handoff is resumed by resuming the parent with ``Command(resume=reply)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, StateSnapshot

from r1agent import Context
from r1agent.state import Handoff

SUPPORT_NODE = "support"
_TIME_QUESTION = re.compile(r"\bwhat(?:'s| is)? the time\b|\bwhat time is it\b|\bcurrent time\b", re.IGNORECASE)


@dataclass(frozen=True)
class ParentContext(Context):
    """r1agent's per-run :class:`~r1agent.Context`, plus the parent's own knobs.

    A subgraph sees its parent's run context, so the parent's context *is* r1agent's: extending the
    class keeps every field r1agent reads.
    """

    timezone_label: str = "UTC"


class ParentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    """Shared with r1agent (its InputState): the last message is the customer's turn."""
    route: NotRequired[Literal["clock", "support"]]
    handoff: NotRequired[Handoff | None]
    """Copied from r1agent's output when it handled the turn: null, or the open/resolved ticket."""


def route(state: ParentState) -> dict[str, Any]:
    """The parent's own router: the time is ours, everything else is customer service."""
    last = state["messages"][-1]
    text = last.content if isinstance(last.content, str) else ""
    is_time = isinstance(last, HumanMessage) and _TIME_QUESTION.search(text) is not None
    return {"route": "clock" if is_time else "support"}


def clock(state: ParentState, runtime: Runtime[ParentContext]) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%H:%M")
    label = runtime.context.timezone_label if runtime.context else "UTC"
    return {"messages": [AIMessage(content=f"It is {now} ({label}).", name="parent")], "handoff": None}


def pick_route(state: ParentState) -> Literal["clock", "support"]:
    return state.get("route", "support")


def build_parent_graph(
    support: CompiledStateGraph[Any, Any, Any, Any], *, checkpointer: Checkpointer = None
) -> CompiledStateGraph[ParentState, ParentContext, ParentState, ParentState]:
    """The parent agent; ``support`` is ``r1agent.graphs.build_graph(deps)`` (compiled *without* a checkpointer)."""
    g = StateGraph(ParentState, context_schema=ParentContext)
    g.add_node("router", route)
    g.add_node("clock", clock)
    g.add_node(SUPPORT_NODE, support)
    g.add_edge(START, "router")
    g.add_conditional_edges("router", pick_route, {"clock": "clock", "support": SUPPORT_NODE})
    g.add_edge("clock", END)
    g.add_edge(SUPPORT_NODE, END)
    return g.compile(checkpointer=checkpointer, name="parent-agent")


def pending_handoff(graph: CompiledStateGraph[Any, Any, Any, Any], config: RunnableConfig) -> tuple[str, str] | None:
    """The ticket r1agent waits on in this thread, and what it told the customer meanwhile.

    While r1agent waits for a human its turn is unfinished, so its holding message and ``handoff`` are
    still in the subgraph's checkpoint, not the parent's state: read them from there.
    """
    for task in graph.get_state(config, subgraphs=True).tasks:
        if task.name == SUPPORT_NODE and task.interrupts and isinstance(task.state, StateSnapshot):
            messages = task.state.values.get("messages") or []
            holding = str(messages[-1].content) if messages else ""
            return str(task.interrupts[0].value["ticket_id"]), holding
    return None
