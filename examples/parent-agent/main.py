"""Run the parent agent: it answers the time itself and hands customer service to r1agent.

    python examples/parent-agent/main.py "What time is it?"
    python examples/parent-agent/main.py --customer james_li_5688 "Where is my order #W2611340?"
    python examples/parent-agent/main.py "I want to talk to a human"          # prints the ticket and thread
    python examples/parent-agent/main.py --thread THREAD --resume "Hi, Sam here: ..."   # answer the handoff

Settings come from the R1AGENT_* environment, as for r1agent itself. The parent keeps its own threads
in ``$R1AGENT_DATA_DIR/parent-agent.sqlite``.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere

from parent_agent import ParentContext, build_parent_graph, pending_handoff

from r1agent.deps import build_deps
from r1agent.errors import ConflictError, R1AgentError
from r1agent.graphs import build_graph
from r1agent.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", nargs="?", help="the customer's turn")
    parser.add_argument("--thread", help="continue this parent thread (default: a new one)")
    parser.add_argument("--customer", help="the authenticated customer id (scopes the order tools)")
    parser.add_argument("--resume", metavar="REPLY", help="answer the thread's pending handoff with this reply")
    args = parser.parse_args(argv)
    if (args.question is None) == (args.resume is None):
        parser.error("give a question, or --thread and --resume REPLY")
    if args.resume is not None and args.thread is None:
        parser.error("--resume needs --thread")

    try:
        settings = Settings()
        deps = build_deps(settings)
    except R1AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    conn = sqlite3.connect(str(settings.data_dir / "parent-agent.sqlite"), check_same_thread=False)
    try:
        parent = build_parent_graph(build_graph(deps), checkpointer=SqliteSaver(conn))
        return run_turn(parent, args.thread or uuid.uuid4().hex, args.question, args.resume, args.customer)
    except R1AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        conn.close()
        deps.close()


def run_turn(
    parent: CompiledStateGraph[Any, Any, Any, Any],
    thread_id: str,
    question: str | None,
    reply: str | None,
    customer: str | None,
) -> int:
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    waiting = pending_handoff(parent, config)
    if reply is not None and waiting is None:
        raise ConflictError(f"thread {thread_id} has no handoff waiting for a reply")
    if question is not None and waiting is not None:
        raise ConflictError(f"thread {thread_id} waits for a human (ticket {waiting[0]}): answer it with --resume")
    turn: Any = Command(resume=reply) if reply is not None else {"messages": [HumanMessage(content=question)]}
    # The context goes with every call, the resume too: it is per run, never stored in the thread.
    out = parent.invoke(turn, config, context=ParentContext(customer_id=customer))
    pending = pending_handoff(parent, config)
    if pending is None:
        print(out["messages"][-1].content)
        return 0
    ticket, holding = pending
    print(holding)
    print(f"\n[handoff: ticket {ticket}] answer it with:")
    print(f"  python {sys.argv[0]} --thread {thread_id} --resume TEXT")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
