"""act: call the tools that serve the turn's intent, with arguments taken from its entities."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from r1agent.context import Context
from r1agent.state import ActUpdate, State, ToolCall
from r1agent.tools import arguments_for, tools_for_intent

MAX_TOOL_CALLS = 3
MAX_RESULT_CHARS = 4000


def act(state: State, runtime: Runtime[Context], *, tools: Sequence[BaseTool]) -> ActUpdate:
    intent = state.get("intent")
    if intent is None:
        return ActUpdate(tool_calls=[])
    calls: list[ToolCall] = []
    for tool in tools_for_intent(tools, intent["label"])[:MAX_TOOL_CALLS]:
        args, missing = arguments_for(tool, intent["entities"], runtime.context.customer_id)
        if missing:
            # Not an exception: the model is told what to ask the customer for.
            calls.append(ToolCall(name=tool.name, args=args, result=None, error=f"missing {', '.join(missing)}"))
            continue
        try:
            result = str(tool.invoke(args))[:MAX_RESULT_CHARS]
            calls.append(ToolCall(name=tool.name, args=args, result=result, error=None))
        except Exception as exc:  # noqa: BLE001 - a failing tool must not end the customer's turn
            calls.append(ToolCall(name=tool.name, args=args, result=None, error=f"{type(exc).__name__}: {exc}"))
    return ActUpdate(tool_calls=calls)
