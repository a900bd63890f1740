"""r1agent embedded in another LangGraph agent (examples/parent-agent), on the real default stack.

The parent has its own router and checkpointer; r1agent is a subgraph node. Delegated turns are
answered by r1agent, its handoff interrupt surfaces in the parent and is resumed through the parent
(also from a fresh graph on the same SQLite file, as a second process would), and the parent's own
turns never enter r1agent.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from r1agent import Context, build_graph
from r1agent.deps import Deps
from r1agent.errors import ConflictError
from r1agent.state import OutputState
from tests.conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "parent-agent"

pytestmark = pytest.mark.slow


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name; main imports parent_agent
    spec.loader.exec_module(module)
    return module


parent_agent = _load_example("parent_agent")
example_main = _load_example("main")


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _turn(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text)]}


def _namespaces(graph: Any, turn: Any, config: RunnableConfig, context: Context) -> list[tuple[tuple[str, ...], str]]:
    """(namespace, node) for every step of the run, subgraphs included."""
    steps: list[tuple[tuple[str, ...], str]] = []
    for namespace, update in graph.stream(turn, config, context=context, stream_mode="updates", subgraphs=True):
        steps.extend((tuple(namespace), node) for node in update)
    return steps


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "parent.sqlite"


@pytest.fixture
def saver(sqlite_path: Path) -> Iterator[SqliteSaver]:
    conn = sqlite3.connect(str(sqlite_path), check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


def test_support_turn_is_delegated_to_r1agent(real_deps: Deps) -> None:
    parent = parent_agent.build_parent_graph(build_graph(real_deps), checkpointer=InMemorySaver())
    context = parent_agent.ParentContext(quality_threshold=0.0, max_new_tokens=16)
    steps = _namespaces(parent, _turn("How long do I have to return an item?"), _config("delegate"), context)

    parent_steps = [node for ns, node in steps if not ns]
    inner = [node for ns, node in steps if ns and ns[0].startswith(f"{parent_agent.SUPPORT_NODE}:")]
    assert parent_steps == ["router", parent_agent.SUPPORT_NODE]
    assert inner == ["perceive", "detect_intent", "recall", "retrieve", "reason", "score_quality", "remember", "answer"]

    state = parent.get_state(_config("delegate")).values
    assert state["route"] == "support"
    assert state["handoff"] is None
    last = state["messages"][-1]
    assert isinstance(last, AIMessage)
    assert last.name == "r1agent"
    assert "Sources:" in str(last.content)  # r1agent's answer, with its citation footer
    # Only the keys the parent declares come back: r1agent's other outputs stay inside the subgraph.
    assert "intent" not in state
    assert "sources" not in state


def test_handoff_interrupt_surfaces_in_the_parent_and_resumes_from_a_fresh_graph(
    real_deps: Deps, saver: SqliteSaver, sqlite_path: Path
) -> None:
    parent = parent_agent.build_parent_graph(build_graph(real_deps), checkpointer=saver)
    config = _config("handoff")
    context = parent_agent.ParentContext(customer_id="james_li_5688")
    out = parent.invoke(_turn("I want to talk to a human, please"), config, context=context)

    (interrupt,) = out["__interrupt__"]
    ticket_id = interrupt.value["ticket_id"]
    assert interrupt.value["action_request"]["action"] == "reply_to_customer"
    # r1agent has not finished its turn: its output reaches the parent's state only when it does. Until
    # then the holding message and the open handoff are in the subgraph's own checkpoint.
    assert "handoff" not in out
    snapshot = parent.get_state(config, subgraphs=True)
    assert snapshot.next == (parent_agent.SUPPORT_NODE,)
    assert [i.value["ticket_id"] for i in snapshot.interrupts] == [ticket_id]
    # The example's turn runner refuses what would lose the handoff: a new turn while it waits, a reply after.
    with pytest.raises(ConflictError, match="waits for a human"):
        example_main.run_turn(parent, "handoff", "Hello?", None, None)
    (task,) = snapshot.tasks
    inner = task.state.values
    assert inner["handoff"] == {"ticket_id": ticket_id, "reason": "requested", "status": "open"}
    assert ticket_id in inner["messages"][-1].content  # "I've passed this to a colleague ... (ticket X)"
    assert parent_agent.pending_handoff(parent, config) == (ticket_id, inner["messages"][-1].content)
    ticket = real_deps.tickets.get(ticket_id)
    assert ticket.status == "open"
    assert ticket.thread_id == "handoff"  # the parent's thread: the one to resume
    assert ticket.customer_id == "james_li_5688"

    # Resume with a new parent graph and a new connection to the same file: what another process does.
    conn = sqlite3.connect(str(sqlite_path), check_same_thread=False)
    try:
        later = parent_agent.build_parent_graph(build_graph(real_deps), checkpointer=SqliteSaver(conn))
        reply = "Hi, Sam here: I'm a person, and I'm happy to help."
        done = later.invoke(Command(resume=reply), config, context=context)
        assert "__interrupt__" not in done
        assert done["messages"][-1].content == reply
        assert done["messages"][-1].name == "human_agent"
        assert done["handoff"] == {"ticket_id": ticket_id, "reason": "requested", "status": "resolved"}
        assert later.get_state(config).next == ()
        with pytest.raises(ConflictError, match="has no handoff waiting"):
            example_main.run_turn(later, "handoff", None, "Late reply", None)
    finally:
        conn.close()
    resolved = real_deps.tickets.get(ticket_id)
    assert resolved.status == "resolved"
    assert resolved.reply == reply


def test_a_non_support_turn_never_enters_r1agent(real_deps: Deps, saver: SqliteSaver) -> None:
    parent = parent_agent.build_parent_graph(build_graph(real_deps), checkpointer=saver)
    tickets_before = len(real_deps.tickets.list(status=None))
    steps = _namespaces(parent, _turn("What time is it?"), _config("clock"), parent_agent.ParentContext())

    assert steps == [((), "router"), ((), "clock")]
    state = parent.get_state(_config("clock"), subgraphs=True)
    assert all(not task.state for task in state.tasks)  # no subgraph checkpoint was written
    last = state.values["messages"][-1]
    assert last.name == "parent"
    assert str(last.content).startswith("It is ")
    assert len(real_deps.tickets.list(status=None)) == tickets_before


def test_build_graph_alone_with_a_checkpointer_and_context(real_deps: Deps) -> None:
    graph = build_graph(real_deps, checkpointer=InMemorySaver())
    config = _config("alone")
    out = graph.invoke(_turn("I need to speak to a real person"), config, context=Context(customer_id="ava_moore_2033"))
    assert out["handoff"]["status"] == "open"
    assert set(out) <= OutputState.__required_keys__ | OutputState.__optional_keys__ | {"__interrupt__"}
    done = graph.invoke(Command(resume={"reply": "A human here."}), config, context=Context())
    assert done["messages"][-1].content == "A human here."


def test_the_example_runs_as_a_script(cli_env: dict[str, str], tmp_path: Path) -> None:
    # Its own data dir: the session's embedded Qdrant folder is open in this process.
    env = {**cli_env, "R1AGENT_DATA_DIR": str(tmp_path)}
    script = [sys.executable, str(EXAMPLE / "main.py")]
    asked = run_cli(script, env, "--thread", "t1", "--customer", "james_li_5688", "I want to talk to a human")
    assert asked.returncode == 0, asked.stderr[-2000:]
    assert "passed this to a colleague" in asked.stdout
    assert "--thread t1 --resume TEXT" in asked.stdout
    resumed = run_cli(script, env, "--thread", "t1", "--resume", "Hi, Sam here.")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.strip() == "Hi, Sam here."
