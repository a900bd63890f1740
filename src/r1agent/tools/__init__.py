"""Tools the graph can call. The contract is in :mod:`r1agent.tools.base`; the built-ins are
``calculator``, ``weather`` and ``orders``, registered through the ``r1agent.tools`` entry points like
any third-party plugin (see :mod:`r1agent.plugins`)."""

from r1agent.tools.base import CUSTOMER_ARG, ENTRY_POINT_GROUP, AgentTool, ToolFactory, Turn, choose_tool

__all__ = ["CUSTOMER_ARG", "ENTRY_POINT_GROUP", "AgentTool", "ToolFactory", "Turn", "choose_tool"]
