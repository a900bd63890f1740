"""Conformance kit for tool plugins: run it in your own test suite.

    from r1agent.plugins.testing import check_plugin

    def test_my_plugin_conforms() -> None:
        check_plugin("units", samples=[({"value": 10, "from_unit": "km", "to_unit": "mi"}, "6.2")])

``check_plugin`` loads your entry point exactly as r1agent does at start-up, then checks every tool it
makes: a usable name and description, a pydantic argument schema with described fields, something it
serves (intents or triggers that compile), idempotent registration (a second load yields the same
tools), argument extraction that never raises on odd text, errors raised as ``ToolException`` (or a
validation error for bad arguments) rather than anything else, and a real sample call whose result
contains the text you expect. Failures raise ``AssertionError`` listing every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.tools import ToolException
from pydantic import BaseModel, ValidationError

from r1agent.plugins import discover, load_plugins
from r1agent.settings import Settings
from r1agent.tools.base import CUSTOMER_ARG, AgentTool, Turn

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_ODD_TEXTS = ("", " ", "?" * 3, "Ünïcödé 🚀 ñ", "x" * 10_000, "'; DROP TABLE t; --", "\x00\x1b[31m")


def check_plugin(
    entry_point: str,
    *,
    samples: Sequence[tuple[dict[str, Any], str]] = (),
    settings: Settings | None = None,
) -> list[AgentTool]:
    """Load ``entry_point`` from the installed distributions and check it; returns its tools.

    ``samples``: (arguments, text the result must contain) pairs, called for real. ``customer_id`` is
    added from ``Settings`` context only if you put it in the arguments yourself.
    """
    settings = settings or Settings()
    names = [ep.name for ep in discover()]
    assert entry_point in names, f"entry point {entry_point!r} is not installed (installed: {names})"
    first = load_plugins(settings, allow=[entry_point])
    second = load_plugins(settings, allow=[entry_point])
    problems: list[str] = []
    if [t.tool.name for t in first] != [t.tool.name for t in second]:
        problems.append("loading twice gave different tools: registration must be idempotent")
    tools = [loaded.tool for loaded in first]
    for tool in tools:
        problems += tool_problems(tool)
    by_name = {t.name: t for t in tools}
    for args, expected in samples:
        target = _tool_for(tools, args)
        if target is None:
            problems.append(f"no tool of {sorted(by_name)} accepts the sample arguments {sorted(args)}")
            continue
        try:
            result = str(target.invoke(args))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"{target.name}: sample {args} raised {type(exc).__name__}: {exc}")
            continue
        if expected not in result:
            problems.append(f"{target.name}: sample {args} returned {result!r}, which lacks {expected!r}")
    assert not problems, "plugin does not conform:\n- " + "\n- ".join(problems)
    return tools


def tool_problems(tool: AgentTool) -> list[str]:
    """Everything wrong with one tool instance (empty when it conforms)."""
    problems: list[str] = []
    label = getattr(tool, "name", type(tool).__name__)
    if not isinstance(tool, AgentTool):
        return [f"{label}: is a {type(tool).__name__}, not an r1agent AgentTool"]
    if not _NAME.match(tool.name):
        problems.append(f"{label}: name must be lower_snake_case, 2-64 characters")
    if len(tool.description.strip()) < 20:
        problems.append(f"{label}: description must say what the tool does (20+ characters)")
    schema = tool.get_input_schema()
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        problems.append(f"{label}: args_schema must be a pydantic model")
    else:
        for name, field in schema.model_fields.items():
            if name != CUSTOMER_ARG and not field.description:
                problems.append(f"{label}: argument {name!r} has no description")
    if not tool.intents and not tool.triggers:
        problems.append(f"{label}: serves nothing: set intents and/or triggers")
    for pattern in tool.triggers:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{label}: trigger {pattern!r} does not compile: {exc}")
    fields = tool.schema_fields()
    for text in _ODD_TEXTS:
        turn = Turn(text=text, intent="out_of_scope", entities={})
        try:
            found = tool.extract(turn)
            tool.serves(turn)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"{label}: extract/serves raised {type(exc).__name__} on {text[:20]!r}")
            continue
        if not isinstance(found, dict) or set(found) - set(fields):
            problems.append(f"{label}: extract must return a dict of its own argument names, got {found!r}")
    if any(fields.values()):
        try:
            tool.invoke({})
            problems.append(f"{label}: invoking without its required arguments did not fail")
        except (ValidationError, ToolException):
            pass
        except Exception as exc:  # noqa: BLE001 - the wrong kind of failure is the finding
            problems.append(f"{label}: bad arguments raised {type(exc).__name__}, not a validation error")
    return problems


def _tool_for(tools: Sequence[AgentTool], args: dict[str, Any]) -> AgentTool | None:
    for tool in tools:
        fields = tool.schema_fields()
        if set(args) <= set(fields) and all(k in args for k, required in fields.items() if required):
            return tool
    return None
