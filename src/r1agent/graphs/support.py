"""The support graph: wiring only. Node logic lives in ``r1agent.nodes``.

perceive ─┬─ reject (unreadable turn) ─► END
          └─ detect_intent ─┬─ refuse (the content filter blocks the turn) ─► END
                            ├─ act ─┬─ clarify (a tool argument is missing) ─► END
                            │       └─► reason
                            ├─ recall ─┬─ (cached answer) ─► score_quality
                            │          └─ retrieve ─► reason
                            ├─ (small talk) ─► reason
                            └─ (wants a human, out of scope) ─► open_ticket
reason ─► score_quality ─┬─ remember ─► answer ─► END
                         └─ (below the threshold) ─► open_ticket ─► await_human (interrupt) ─► END
"""

from __future__ import annotations

import functools
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from r1agent.context import Context
from r1agent.deps import Deps
from r1agent.nodes import acting, cache, handoff, intent, perception, quality, reasoning, respond, retrieval
from r1agent.state import InputState, OutputState, State

GRAPH_NAME = "r1agent"


def build_graph(
    deps: Deps, *, checkpointer: Checkpointer = None, store: Any = None
) -> CompiledStateGraph[State, Context, InputState, OutputState]:
    """The support graph, compiled: run it on its own or add it as a node of another LangGraph graph.

    Args:
        deps: the live models, stores and tools (``r1agent.deps.build_deps(Settings())``); the caller
            owns them and closes them (``deps.close()``).
        checkpointer: where threads persist. Required on its own for handoffs (``interrupt`` needs
            one); leave it ``None`` inside a parent graph, which then checkpoints r1agent's steps in its
            own threads.
        store: an optional LangGraph store, passed through (r1agent's nodes do not use one).

    Input is :class:`~r1agent.state.InputState` (``messages``; the last is the customer's turn), output
    :class:`~r1agent.state.OutputState`. Send a :class:`~r1agent.context.Context` as ``context=`` on
    every call, resumes included: the nodes read their per-run knobs from it. See docs/embedding.md.
    """
    settings = deps.settings
    bind = functools.partial
    g = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    g.add_node(
        "perceive",
        bind(
            perception.perceive,
            max_chars=settings.max_turn_chars,
            max_attachments=settings.max_attachments,
            images=deps.images,
            audio=deps.audio,
        ),
    )
    g.add_node("reject", respond.reject)
    g.add_node("refuse", bind(respond.refuse, content_filter=deps.content_filter))
    g.add_node("clarify", respond.clarify)
    g.add_node("detect_intent", bind(intent.detect_intent, classifier=deps.classifier))
    g.add_node("act", bind(acting.act, tools=deps.tools))
    g.add_node("retrieve", bind(retrieval.retrieve, kb=deps.kb))
    answers, model, cap = deps.answer_cache, deps.llm.name, settings.max_new_tokens
    g.add_node("recall", bind(cache.recall, cache=answers, model=model, max_new_tokens=cap))
    g.add_node("remember", bind(cache.remember, cache=answers, model=model, max_new_tokens=cap))
    g.add_node(
        "reason",
        bind(
            reasoning.reason,
            llm=deps.llm,
            max_history=settings.max_history_messages,
            max_new_tokens=settings.max_new_tokens,
        ),
    )
    g.add_node("score_quality", quality.score_quality)
    g.add_node("answer", respond.answer)
    g.add_node("open_ticket", bind(handoff.open_ticket, tickets=deps.tickets))
    g.add_node("await_human", bind(handoff.await_human, tickets=deps.tickets))

    g.add_edge(START, "perceive")
    g.add_conditional_edges("perceive", perception.route_after_perceive, ["detect_intent", "reject"])
    g.add_conditional_edges(
        "detect_intent",
        bind(respond.route_after_intent, tools=deps.tools, content_filter=deps.content_filter),
        # A knowledge turn looks in the answer cache first (``recall``), and retrieves on a miss.
        {"act": "act", "retrieve": "recall", "reason": "reason", "open_ticket": "open_ticket", "refuse": "refuse"},
    )
    g.add_conditional_edges("recall", cache.route_after_recall, ["score_quality", "retrieve"])
    g.add_conditional_edges("act", acting.route_after_act, ["clarify", "reason"])
    g.add_edge("clarify", END)
    g.add_edge("retrieve", "reason")
    g.add_edge("reason", "score_quality")
    g.add_conditional_edges(
        "score_quality", quality.route_after_quality, {"answer": "remember", "open_ticket": "open_ticket"}
    )
    g.add_edge("remember", "answer")
    g.add_edge("open_ticket", "await_human")
    g.add_edge("await_human", END)
    g.add_edge("answer", END)
    g.add_edge("reject", END)
    g.add_edge("refuse", END)
    return g.compile(checkpointer=checkpointer, store=store, name=GRAPH_NAME)


@functools.cache
def _server_deps() -> Deps:
    from r1agent.deps import build_deps
    from r1agent.settings import Settings
    from r1agent.telemetry import setup_telemetry

    settings = Settings()
    setup_telemetry(settings)  # the server's runs are traced and measured like open_agent's
    return build_deps(settings)


def make_graph() -> CompiledStateGraph[State, Context, InputState, OutputState]:
    """Factory for ``langgraph.json``: the server supplies the checkpointer and store.

    Models load once per server process; later calls reuse them.
    """
    return build_graph(_server_deps())
