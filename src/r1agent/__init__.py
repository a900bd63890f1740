"""r1agent: a local, multimodal customer-service agent on LangGraph.

Architecture by folder: ``graphs/`` (wiring), ``nodes/`` (one step each), ``tools/`` and ``plugins/``
(what the agent can do), ``evals/`` (how well it does it). Start with :func:`open_agent` or
:func:`r1agent.graphs.build_graph`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Exports resolve on first use: `r1agent --help` or a bad-input error should not wait for torch.
_EXPORTS = {
    "Agent": "r1agent.app",
    "TurnResult": "r1agent.app",
    "open_agent": "r1agent.app",
    "Context": "r1agent.context",
    "Deps": "r1agent.deps",
    "build_deps": "r1agent.deps",
    "build_graph": "r1agent.graphs",
    "make_graph": "r1agent.graphs",
    "Settings": "r1agent.settings",
    "InputState": "r1agent.state",
    "OutputState": "r1agent.state",
}

if TYPE_CHECKING:
    from r1agent.app import Agent, TurnResult, open_agent
    from r1agent.context import Context
    from r1agent.deps import Deps, build_deps
    from r1agent.graphs import build_graph, make_graph
    from r1agent.settings import Settings
    from r1agent.state import InputState, OutputState

__all__ = [
    "Agent",
    "Context",
    "Deps",
    "InputState",
    "OutputState",
    "Settings",
    "TurnResult",
    "__version__",
    "build_deps",
    "build_graph",
    "make_graph",
    "open_agent",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'r1agent' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    # The lazy exports are real attributes to users: list them for dir() and tab completion.
    return sorted({*globals(), *__all__})
