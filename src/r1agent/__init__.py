"""r1agent: a local, multimodal customer-service agent on LangGraph.

Architecture by folder: ``graphs/`` (wiring), ``nodes/`` (one step each), ``tools/`` and ``plugins/``
(what the agent can do), ``evals/`` (how well it does it). Start with :func:`open_agent` or
:func:`r1agent.graphs.build_graph`.
"""

from r1agent.app import Agent, TurnResult, open_agent
from r1agent.context import Context
from r1agent.deps import Deps, build_deps
from r1agent.graphs import build_graph, make_graph
from r1agent.settings import Settings

__version__ = "0.1.0"
__all__ = [
    "Agent",
    "Context",
    "Deps",
    "Settings",
    "TurnResult",
    "__version__",
    "build_deps",
    "build_graph",
    "make_graph",
    "open_agent",
]
