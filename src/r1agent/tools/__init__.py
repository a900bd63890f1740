"""Tools the graph can call, and the small contract they follow.

A tool is a LangChain ``BaseTool`` with a pydantic argument schema. Its ``metadata["intents"]`` lists
the intents it serves; the graph routes a turn to it when the detected intent is one of them. Arguments
are filled from the turn's entities by name (an ``order_id`` entity fills an ``order_id`` argument),
and ``customer_id`` always comes from the run's authenticated context, never from the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel

CUSTOMER_ARG = "customer_id"


def tool_intents(tool: BaseTool) -> frozenset[str]:
    return frozenset(str(i) for i in (tool.metadata or {}).get("intents", ()))


def tools_for_intent(tools: Sequence[BaseTool], label: str) -> list[BaseTool]:
    return [tool for tool in tools if label in tool_intents(tool)]


def arguments_for(
    tool: BaseTool, entities: dict[str, list[str]], customer_id: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The call's arguments from entities, and the required ones that are missing."""
    schema = tool.get_input_schema()
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return {}, []  # a tool without a pydantic v2 schema takes no entity arguments
    args: dict[str, Any] = {}
    missing: list[str] = []
    for name, field in schema.model_fields.items():
        if name == CUSTOMER_ARG:
            value: Any = customer_id
        else:
            values = entities.get(name)
            value = values[0] if values else None
        if value is not None:
            args[name] = value
        elif field.is_required():
            missing.append(name)
    return args, missing
