"""act: call the one tool that serves the turn, with arguments found in it; or ask for what is missing.

The customer id a tool receives is the run's customer (:func:`r1agent.server.identity.customer_for_run`):
under the LangGraph server, the authenticated customer, never one named in the message or the run's
context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, Optional

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import ToolException
from langgraph.runtime import Runtime
from pydantic import ValidationError

from r1agent.context import Context, context_of
from r1agent.nodes.intent import turn_for_tools
from r1agent.server.identity import customer_for_run
from r1agent.state import ActUpdate, State, ToolCall
from r1agent.tools import AgentTool, choose_tool

MAX_RESULT_CHARS = 4000


def act(
    state: State,
    runtime: Runtime[Context],
    # LangGraph injects the run's config only under these exact annotations ("X | None" is skipped).
    config: Optional[RunnableConfig] = None,  # noqa: UP045
    *,
    tools: Sequence[AgentTool],
) -> ActUpdate:
    ctx = context_of(runtime)
    turn = dataclasses.replace(turn_for_tools(state, ctx), customer_id=customer_for_run(config, ctx))
    chosen = choose_tool(tools, turn)
    if chosen is None:
        return ActUpdate(tool_calls=[])
    tool, args, missing = chosen
    if missing:
        return ActUpdate(
            tool_calls=[ToolCall(name=tool.name, args=args, result=None, error=None, missing=missing)],
            draft=tool.ask_for(missing),
        )
    try:
        result = str(tool.invoke(args))[:MAX_RESULT_CHARS]
    except (ToolException, ValidationError) as exc:
        # The tool's own words ("I could not find order #W… for your account") reach the customer.
        return ActUpdate(tool_calls=[ToolCall(name=tool.name, args=args, result=None, error=_plain(exc), missing=[])])
    except Exception as exc:  # noqa: BLE001 - a broken tool must not end the turn; it is recorded and shown
        error = f"the {tool.name} tool failed ({type(exc).__name__})"
        return ActUpdate(tool_calls=[ToolCall(name=tool.name, args=args, result=None, error=error, missing=[])])
    call = ToolCall(name=tool.name, args=args, result=result, error=None, missing=[])
    if (direct := tool.direct_answer(result)) is not None:
        call["answer"] = direct
    return ActUpdate(tool_calls=[call])


def route_after_act(state: State) -> Literal["clarify", "reason"]:
    calls = state.get("tool_calls") or []
    return "clarify" if any(call["missing"] for call in calls) else "reason"


def tool_errors(state: State) -> list[str]:
    return [f"{call['error']}." for call in state.get("tool_calls") or [] if call["error"]]


def _plain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc) or type(exc).__name__
