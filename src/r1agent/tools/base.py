"""The tool contract: what a built-in or third-party tool is, and how the graph chooses and calls one.

A tool is an :class:`AgentTool`: a LangChain ``BaseTool`` with a pydantic argument schema, plus
- ``intents``: the intents it serves (the graph routes a turn with that intent to it);
- ``triggers``: regexes that make it serve a turn whatever the intent ("weather in Paris" is out of
  scope for a shop, but a weather tool can still answer it);
- ``extract(turn)``: its arguments, found in the customer's turn by patterns. The default fills a
  schema field from the turn's entity of the same name (``order_id`` from the ``order_id`` entity).

``customer_id`` is special: it is never read from the message, always injected from the run's
customer, so a customer cannot ask for someone else's data by typing their id. Under the LangGraph
server that is the authenticated customer, whatever the run's ``context`` claims (the ``act`` node sets
``Turn.customer_id`` from :func:`r1agent.server.identity.customer_for_run`).

Tools are installed through the entry-point group ``r1agent.tools`` (built-ins use it too): each entry
point names a :data:`ToolFactory`, a callable taking the :class:`~r1agent.settings.Settings` and
returning one tool or a sequence of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel

if TYPE_CHECKING:
    from r1agent.settings import Settings

CUSTOMER_ARG = "customer_id"
ENTRY_POINT_GROUP = "r1agent.tools"


@dataclass(frozen=True)
class Turn:
    """What a tool may read of the customer's turn to find its arguments."""

    text: str
    intent: str
    entities: dict[str, list[str]]
    customer_id: str | None = None


class AgentTool(BaseTool):
    """Subclass this (set ``name``, ``description``, ``args_schema``, ``intents``; write ``_run``)."""

    intents: frozenset[str] = frozenset()
    triggers: tuple[str, ...] = ()
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = False
    """Errors propagate to the graph, which records them; they are never turned into a result."""

    # Tools raise ToolException with a message a customer can read; anything else is a bug.
    user_errors: ClassVar[tuple[type[Exception], ...]] = (ToolException,)

    def serves(self, turn: Turn) -> bool:
        return turn.intent in self.intents or any(re.search(t, turn.text, re.IGNORECASE) for t in self.triggers)

    def schema_fields(self) -> dict[str, bool]:
        """Argument name -> required, from the pydantic schema."""
        schema = self.get_input_schema()
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            return {}
        return {name: field.is_required() for name, field in schema.model_fields.items()}

    def extract(self, turn: Turn) -> dict[str, Any]:
        """Arguments found in the turn; the default matches entity names to argument names."""
        args: dict[str, Any] = {}
        for name in self.schema_fields():
            values = turn.entities.get(name)
            if values and name != CUSTOMER_ARG:
                args[name] = values[0]
        return args

    def direct_answer(self, result: str) -> str | None:
        """The customer's answer in the tool's own words, when the result speaks for itself (a computed
        number): the graph then answers with it and skips the model, which can only restate it, and
        worse. None (the default): the model writes the answer from the result."""
        return None

    def close(self) -> None:
        """Release what the tool holds (connections, clients). Called once when the agent shuts down;
        must be safe to call on a tool that never ran, and more than once."""

    def ask_for(self, missing: Sequence[str]) -> str:
        """What to ask the customer when arguments are missing (asking beats guessing)."""
        if CUSTOMER_ARG in missing:
            return "Please sign in first, so that I can look at your account."
        wanted = " and ".join(name.replace("_", " ") for name in missing)
        return f"To help with that I need your {wanted}. Could you tell me?"

    def arguments(self, turn: Turn) -> tuple[dict[str, Any], list[str]]:
        """The call's arguments (``customer_id`` from the context) and the required ones missing."""
        fields = self.schema_fields()
        args = {k: v for k, v in self.extract(turn).items() if k in fields and k != CUSTOMER_ARG}
        if CUSTOMER_ARG in fields and turn.customer_id is not None:
            args[CUSTOMER_ARG] = turn.customer_id
        missing = [name for name, required in fields.items() if required and name not in args]
        return args, missing


ToolFactory = Callable[["Settings"], "AgentTool | Sequence[AgentTool]"]


def choose_tool(tools: Sequence[AgentTool], turn: Turn) -> tuple[AgentTool, dict[str, Any], list[str]] | None:
    """The tool for this turn: among those that serve it, the most specific one whose arguments are all
    present (most required arguments); else the first that serves it, with what it is missing."""
    serving = [tool for tool in tools if tool.serves(turn)]
    if not serving:
        return None
    planned = [(tool, *tool.arguments(turn)) for tool in serving]
    ready = [p for p in planned if not p[2]]
    if ready:
        return max(ready, key=lambda p: sum(p[0].schema_fields().values()))
    return planned[0]
