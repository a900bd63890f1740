"""Per-run configuration, read by nodes through ``Runtime[Context]``.

Everything here is plain data a caller may set on each run (``graph.invoke(..., context=Context(...))``
or the LangGraph server's ``context`` field). Live objects (models, stores) are never here: they are
:class:`r1agent.deps.Deps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Context:
    """Per-run knobs, sent with each ``invoke``/``stream`` (and each resume) as ``context=``."""

    customer_id: str | None = None
    """The customer a run acts for when r1agent is embedded (``Agent.ask``, ``build_graph``): tools that read
    private data are scoped to it. Under the LangGraph server it is ignored: the server's authenticated
    customer wins (:func:`r1agent.server.identity.customer_for_run`), because a caller sets the context."""
    top_k: int = 3
    min_source_score: float = 0.2
    """Chunks less similar than this (cosine) are not shown to the model."""
    intent_threshold: float = 0.5
    """Out-of-scope is only acted on (handed off) when the classifier is at least this sure."""
    quality_threshold: float = 0.5
    """Answers scoring below this go to a human instead of the customer."""
    max_new_tokens: int | None = None
    """Token budget for this run; None uses R1AGENT_MAX_NEW_TOKENS, which also caps it."""

    def token_budget(self, cap: int) -> int:
        """The run's token budget: what it asks for, never more than the settings' cap."""
        asked = cap if self.max_new_tokens is None else self.max_new_tokens
        return max(1, min(asked, cap))


DEFAULT_CONTEXT = Context()


def context_of(runtime: Any) -> Context:
    """The run's context; the defaults when a caller ran the graph without ``context=`` (LangGraph then
    hands nodes ``None``, and a node must not crash on a missing optional argument)."""
    ctx = getattr(runtime, "context", None)
    if ctx is None:
        return DEFAULT_CONTEXT
    if isinstance(ctx, dict):  # a caller's plain mapping: the same fields, checked by the dataclass
        return Context(**ctx)
    if not isinstance(ctx, Context):
        raise TypeError(f"the run's context must be r1agent.Context, not {type(ctx).__name__}")
    return ctx
