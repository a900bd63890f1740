"""The console script as scripts use it: --json contract, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, str]:
    # Its own data dir: the session's in-process agent holds the embedded Qdrant folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env.update(
        R1AGENT_DATA_DIR=str(tmp_path_factory.mktemp("cli-data")),
        R1AGENT_CACHE_DIR=str(cache_dir),
        R1AGENT_MAX_NEW_TOKENS="48",
    )
    return env


@pytest.mark.slow
def test_ask_json_is_the_documented_contract(r1agent_cli: list[str], env: dict[str, str]) -> None:
    done = run_cli(r1agent_cli, env, "ask", "--json", "--customer", "james_li_5688", "Where is my order #W2611340?")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)  # stdout is exactly one JSON object
    for key in ("answer", "thinking", "intent", "sources", "tool_calls", "quality", "handoff", "thread_id"):
        assert key in out
    assert out["intent"]["label"] == "order_status"
    assert out["intent"]["entities"]["order_id"] == ["#W2611340"]
    (call,) = out["tool_calls"]
    assert call["name"] == "get_order_details"
    assert call["args"] == {"order_id": "#W2611340", "customer_id": "james_li_5688"}
    assert {"score", "signals"} <= set(out["quality"])
    assert out["handoff"] is None or {"ticket_id", "reason"} <= set(out["handoff"])

    tools = run_cli(r1agent_cli, env, "tools", "list", "--json")
    assert tools.returncode == 0, tools.stderr
    listed = {t["name"]: t for t in json.loads(tools.stdout)}
    assert listed["convert_units"]["distribution"] == "r1agent-units"
    assert listed["get_order_details"]["arguments"] == {"order_id": True, "customer_id": True}

    listing = run_cli(r1agent_cli, env, "kb", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert {s["source"] for s in json.loads(listing.stdout)} == {"r1agent-demo/policy.md", "r1agent-demo/products.md"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ask", ""), 2, "the message is empty"),
        (("ask", "x" * 100_000), 2, "the limit is 8,000"),
        (("handoff", "resume", "nosuchticket", "--reply", "hi"), 3, "no such ticket"),
        (("handoff", "resume", "nosuchticket", "--reply", " "), 2, "reply text"),
    ],
)
def test_bad_input_gets_a_message_and_an_exit_code(
    r1agent_cli: list[str], env: dict[str, str], args: tuple[str, ...], code: int, message: str
) -> None:
    done = run_cli(r1agent_cli, env, *args)
    assert done.returncode == code, done.stderr
    assert message in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_unknown_thread_is_refused(r1agent_cli: list[str], env: dict[str, str]) -> None:
    done = run_cli(r1agent_cli, env, "ask", "--thread", "no-such-thread", "hello")
    assert done.returncode == 3
    assert "unknown thread 'no-such-thread'" in done.stderr
    assert "Traceback" not in done.stderr
