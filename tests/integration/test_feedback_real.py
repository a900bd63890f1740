"""Feedback through the real default stack: turns answered and handed off by the real graph (SmolLM2,
MiniLM, Qdrant local, SQLite checkpoints and tickets), rated from the CLI in a second process and from
the Python API, then exported, tuned and reviewed from the CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1agent.app import Agent, open_agent
from r1agent.cli import app
from r1agent.context import Context
from r1agent.deps import Deps
from r1agent.errors import InputError, NotFoundError
from r1agent.feedback.reward import RewardWeights, record_reward
from r1agent.feedback.store import FeedbackStore
from r1agent.intents.taxonomy import load_taxonomy
from r1agent.nodes.reasoning import SYSTEM_PROMPT
from r1agent.settings import Settings
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

ANSWER = Context(quality_threshold=0.0, max_new_tokens=32)  # every draft reaches the customer
HAND_OFF = Context(quality_threshold=1.01, max_new_tokens=32)  # every draft goes to a human
HUMAN_REPLY = "Hi, Sam here: you can return any item within 30 days of delivery for a full refund."


@pytest.fixture(scope="module")
def agent(real_deps: Deps) -> Iterator[Agent]:
    with open_agent(deps=real_deps) as a:
        yield a


@pytest.fixture
def overlay(settings: Settings) -> Iterator[Path]:
    """The intent overlay of the session's data dir, removed afterwards: later tests' agents must not see it."""
    path = settings.intents_overlay_path
    assert not path.exists()
    yield path
    path.unlink(missing_ok=True)


def cli_json(cli: list[str], env: dict[str, str], *args: str) -> object:
    done = run_cli(cli, env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # stdout is exactly one JSON object


def cli_error(env: dict[str, str], *args: str) -> tuple[int, str]:
    """A refused command, run in this process (the same code as the console script, without its start-up
    time): its exit code and its one-line message."""
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code != 0 and not result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    return result.exit_code, " ".join(result.stderr.split())  # rich wraps long lines


def test_feedback_from_rating_to_training_data(
    agent: Agent, r1agent_cli: list[str], cli_env: dict[str, str], settings: Settings, tmp_path: Path, overlay: Path
) -> None:
    order = agent.ask("Where is my order #W2611340?", customer_id="james_li_5688", context=ANSWER)
    assert order.handoff is None and order.tool_calls and order.tool_calls[0]["error"] is None
    weak = agent.ask("Do you sell gift cards?", context=ANSWER)
    assert weak.handoff is None
    policy = agent.ask("What is your return policy?", customer_id="yusuf_rossi_9620", context=HAND_OFF)
    assert policy.handoff is not None and policy.interrupted
    ticket = agent.deps.tickets.get(policy.handoff["ticket_id"])
    assert ticket.draft  # the model drafted an answer; a human replaces it
    agent.resume(ticket.id, HUMAN_REPLY)

    # --- rating from the CLI, in a second process ---
    rated = cli_json(r1agent_cli, cli_env, "feedback", order.thread_id, "--rating", "5", "--comment", "quick")
    assert isinstance(rated, dict)
    assert (rated["thread_id"], rated["turn"], rated["rating"], rated["comment"]) == (order.thread_id, 1, 5, "quick")
    assert (rated["intent"], rated["handed_off"], rated["completed"]) == ("order_status", False, True)
    assert rated["quality"] == order.quality["score"]  # type: ignore[index]
    assert rated["latency_s"] is not None and rated["latency_s"] > 0
    components = rated["reward"]["components"]
    assert components["satisfaction"] == 2.0 and components["completion"] == 1.5
    assert components["accuracy"] == pytest.approx(order.quality["score"], abs=1e-4)  # type: ignore[index]
    assert rated["reward"]["total"] == pytest.approx(min(5.0, sum(components.values())), abs=1e-3)

    # The handed-off thread belongs to the ticket's customer: nobody else finds it.
    theirs = cli_error(cli_env, "feedback", "rate", policy.thread_id, "--rating", "2", "--customer", "x_1")
    assert theirs == (3, f"error: unknown thread {policy.thread_id!r}")
    own = cli_json(
        r1agent_cli, cli_env, "feedback", "rate", policy.thread_id, "--rating", "2", "--customer", "yusuf_rossi_9620"
    )
    assert isinstance(own, dict)
    assert (own["customer_id"], own["handed_off"], own["completed"]) == ("yusuf_rossi_9620", True, False)
    assert own["reward"]["components"]["satisfaction"] == -1.0

    for args, code, message in [
        ((order.thread_id, "--rating", "7"), 2, "1 to 5"),
        (("nosuchthread", "--rating", "4"), 3, "unknown thread"),
        ((order.thread_id, "--rating", "4", "--turn", "2"), 3, "there is no turn 2"),
        ((order.thread_id, "--rating", "4", "--comment", "x" * 2001), 2, "the limit is 2,000"),
    ]:
        exit_code, printed = cli_error(cli_env, "feedback", *args)
        assert exit_code == code and message in printed, printed
    assert cli_error(cli_env, "feedback", "review", "--accept", "nosuchid") == (
        3,
        "error: no such intent suggestion: nosuchid",
    )

    # --- rating from the Python API ---
    low = agent.feedback(weak.thread_id, 1, comment="did not answer")
    assert (low.turn, low.rating, low.record.draft) == (1, 1, low.record.draft)
    assert low.record.quality == weak.quality["score"]  # type: ignore[index]
    with pytest.raises(InputError):
        agent.feedback(weak.thread_id, 0)
    with pytest.raises(NotFoundError):
        agent.feedback(weak.thread_id, 3, customer_id="james_li_5688")  # not their thread

    # --- export: what TRL will read ---
    out = tmp_path / "export"
    report = cli_json(r1agent_cli, cli_env, "feedback", "export", "--out", str(out), "--format", "both")
    assert isinstance(report, dict) and report["dpo_pairs"] >= 1
    pairs = [json.loads(line) for line in (out / "dpo.jsonl").read_text().splitlines()]
    (correction,) = [p for p in pairs if p["thread_id"] == policy.thread_id]
    assert correction["source"] == "correction"
    assert correction["chosen"] == [{"role": "assistant", "content": HUMAN_REPLY}]
    assert correction["rejected"] == [{"role": "assistant", "content": ticket.draft}]
    assert correction["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert correction["prompt"][-1]["role"] == "user"
    assert correction["prompt"][-1]["content"].endswith("Customer question: What is your return policy?")
    assert "<sources>" in correction["prompt"][-1]["content"]

    rows = {r["thread_id"]: r for r in map(json.loads, (out / "grpo.jsonl").read_text().splitlines())}
    assert rows[order.thread_id]["reward"] == pytest.approx(rated["reward"]["total"], abs=1e-3)
    assert rows[order.thread_id]["rating"] == 5
    assert rows[policy.thread_id]["corrected"] is True
    with FeedbackStore(settings.feedback_path) as store:
        weights = RewardWeights.from_settings(settings)
        for fb in store.ratings():
            if fb.thread_id in rows:
                assert rows[fb.thread_id]["reward"] == record_reward(fb.record, fb.rating, weights).total
    assert rows[weak.thread_id]["completion"] == [{"role": "assistant", "content": low.record.draft}]

    # --- the threshold that keeps the answer rated 1 from customers ---
    fit = cli_json(r1agent_cli, cli_env, "feedback", "tune-threshold", "--out", str(tmp_path / "threshold.json"))
    assert isinstance(fit, dict)
    assert fit["threshold"] > weak.quality["score"]  # type: ignore[index]
    assert json.loads((tmp_path / "threshold.json").read_text())["threshold"] == fit["threshold"]

    # --- an intent correction, reviewed, joins the taxonomy ---
    queued = cli_json(r1agent_cli, cli_env, "feedback", "intent", weak.thread_id, "--label", "product_inquiry")
    assert isinstance(queued, dict) and queued["status"] == "pending" and queued["text"] == "Do you sell gift cards?"
    exit_code, printed = cli_error(cli_env, "feedback", "intent", weak.thread_id, "--label", "billing")
    assert exit_code == 2 and "unknown intent 'billing'" in printed
    pending = cli_json(r1agent_cli, cli_env, "feedback", "review")
    assert [s["id"] for s in pending] == [queued["id"]]  # type: ignore[union-attr]
    accepted = cli_json(r1agent_cli, cli_env, "feedback", "review", "--accept", queued["id"])
    assert isinstance(accepted, dict) and accepted["status"] == "accepted"
    with overlay.open(newline="") as handle:
        assert list(csv.reader(handle)) == [["text", "label"], ["Do you sell gift cards?", "product_inquiry"]]
    assert ("Do you sell gift cards?", "product_inquiry") in load_taxonomy(overlay=overlay).examples
    assert cli_error(cli_env, "feedback", "review", "--reject", queued["id"]) == (
        4,
        f"error: suggestion {queued['id']} was already accepted",
    )


def test_a_thread_started_for_a_customer_is_theirs_alone(agent: Agent) -> None:
    first = agent.ask("Where is my order #W2611340?", customer_id="james_li_5688", context=ANSWER)
    # Their own thread: they continue it and rate it as themselves (the owner is in its checkpoints).
    again = agent.ask("Has it shipped yet?", thread_id=first.thread_id, customer_id="james_li_5688", context=ANSWER)
    assert again.thread_id == first.thread_id
    rated = agent.feedback(first.thread_id, 4, customer_id="james_li_5688")
    assert (rated.customer_id, rated.turn, rated.rating) == ("james_li_5688", 2, 4)
    # Anyone else, acting as a customer, is told the thread does not exist: no turn, no rating, no hint.
    with pytest.raises(NotFoundError, match="unknown thread"):
        agent.ask("Show me that order", thread_id=first.thread_id, customer_id="yusuf_rossi_9620")
    with pytest.raises(NotFoundError, match="unknown thread"):
        agent.ask("Show me that order", thread_id=first.thread_id, context=Context(customer_id="yusuf_rossi_9620"))
    with pytest.raises(NotFoundError, match="unknown thread"):
        agent.feedback(first.thread_id, 1, customer_id="yusuf_rossi_9620")
    assert agent.result(first.thread_id).answer == again.answer  # the trusted caller still sees it
    # A thread started by a trusted caller has no known owner: no customer can take it over.
    anonymous = agent.ask("Do you sell gift cards?", context=ANSWER)
    with pytest.raises(NotFoundError, match="unknown thread"):
        agent.ask("Add my order to it", thread_id=anonymous.thread_id, customer_id="james_li_5688")
