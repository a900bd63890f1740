"""Graph wiring: ``build_graph(deps)`` for embedding, ``make_graph()`` for the LangGraph server."""

from r1agent.graphs.support import GRAPH_NAME, build_graph, make_graph

__all__ = ["GRAPH_NAME", "build_graph", "make_graph"]
