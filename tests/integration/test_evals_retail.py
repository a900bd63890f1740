"""The whole shipped retail suite through the real default stack (SmolLM2-135M, MiniLM, embedded Qdrant,
SQLite, the real tools, the weather stub on 127.0.0.1), in a second process as a user runs it:
`r1agent eval run --max-new-tokens 8 --json`. The summary is held to floors set a little below what
was measured (docs/evals.md), so a regression in routing, tools, refusals or the run itself fails here.

The 135M model is a plumbing model: most drafts are weak and the quality gate hands them to a human.
The floors on what the model writes (facts) are low on purpose; those on what the code decides
(intents, tools, arguments, refusals, no leaks, valid citations) are high."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from r1agent.evals.dataset import load_suite
from r1agent.evals.results import read_results
from tests.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

MAX_NEW_TOKENS = "8"
"""Enough for the short facts (a status, a sum) and cheap: the model's time is mostly reading the prompt."""
# No timed assertion here (house rule: speed lives in benchmarks); the run's time is in its summary.

# Measured on the default stack with --max-new-tokens 8 (docs/evals.md): intent accuracy 0.965, macro-F1
# 0.947, tool selection 0.993, arguments 1.0, no leak 1.0, citations 1.0, refusals 1.0, handoff recall 1.0,
# precision 0.526, facts in the candidate 0.206, pass rate 0.623 (2026-12-03). Floors a little below; the exact ones
# (1.0) are decisions the code makes, not the model. Requests for a person are checked exactly below.
FLOORS = {
    "intent_accuracy": 0.93,
    "intent_macro_f1": 0.91,
    "tool_selection_accuracy": 0.97,
    "tool_args_accuracy": 1.0,
    "no_leak": 1.0,
    "citation_validity": 1.0,
    "refusal_accuracy": 1.0,
    "handoff_recall": 0.95,  # 1.0 measured, but one out-of-scope turn (taken for small talk) is caught by the gate
    "handoff_precision": 0.4,
    "facts_candidate": 0.12,
    "pass_rate": 0.5,
}


@pytest.fixture(scope="module")
def run(r1agent_cli: list[str], cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("eval") / "retail"
    bars = [arg for metric in ("errors=0", "no_leak=1", "refusal_accuracy=1") for arg in ("--fail-under", metric)]
    started = time.perf_counter()
    done = run_cli(
        r1agent_cli,
        cli_env,
        *("eval", "run", "--out", str(out), "--max-new-tokens", MAX_NEW_TOKENS, "--json", *bars),
        timeout=3500,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return {"out": out, "summary": json.loads(done.stdout), "elapsed": elapsed}


def test_the_suite_meets_its_floors(run: dict[str, Any]) -> None:
    summary = run["summary"]
    assert summary["cases"] == len(load_suite().cases) >= 150
    metrics = summary["metrics"]
    below = {name: metrics[name] for name, floor in FLOORS.items() if metrics[name] is None or metrics[name] < floor}
    assert not below, f"below the floors {FLOORS}: {below}"
    assert metrics["errors"] == 0
    # Every request for a person and every out-of-scope turn goes to a human, for the stated reason.
    reasons = Counter(c.expect.handoff_reason for c in load_suite().cases if c.expect.handoff)
    assert summary["handoff"]["by_reason"]["requested"] == reasons["requested"]
    assert summary["handoff"]["by_reason"]["out_of_scope"] >= reasons["out_of_scope"] - 2
    assert summary["by_tag"]["clarify"] >= 0.95  # measured 0.97: one signed-out request's intent is missed
    assert summary["run"]["context"]["max_new_tokens"] == int(MAX_NEW_TOKENS)
    assert summary["run"]["model"] == "SmolLM2-135M-Instruct"


def test_the_run_folder_holds_every_case(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    rows = read_results(out)
    assert [r.case_id for r in rows] == [c.id for c in load_suite().cases]
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{32}", row.trace_id)
        assert row.turn_s and row.nodes and row.nodes[0][0] == "perceive"
        assert row.turns_run >= 1 and row.thread_id
    weather = [r for r in rows if "weather" in r.tags and r.tool_calls and r.tool_calls[0].result]
    assert weather and all("(Open-Meteo)" in r.tool_calls[0].result for r in weather if r.tool_calls[0].result)
    judged = [r for r in rows if r.acceptable is not None]
    assert judged and all(r.quality is not None and r.candidate for r in judged)
    for name in ("summary.json", "report.md", "confusion.png", "reliability.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    assert "## Intents" in (out / "report.md").read_text(encoding="utf-8")


def test_fit_threshold_and_diff_on_the_run(
    run: dict[str, Any], r1agent_cli: list[str], cli_env: dict[str, str]
) -> None:
    out: Path = run["out"]
    fit = run_cli(r1agent_cli, cli_env, "eval", "fit-threshold", str(out), "--json")
    assert fit.returncode == 0, fit.stderr
    fitted = json.loads(fit.stdout)
    assert 0.0 <= fitted["threshold"] <= 1.01 and fitted["n"] == run["summary"]["calibration"]["n"]
    assert json.loads((out / "threshold.json").read_text(encoding="utf-8"))["threshold"] == fitted["threshold"]
    same = run_cli(r1agent_cli, cli_env, "eval", "diff", str(out), str(out), "--json")
    assert same.returncode == 0, same.stderr
    diff = json.loads(same.stdout)
    assert diff["improved"] == diff["regressed"] == [] and diff["unchanged"] == run["summary"]["cases"]
    assert {m["verdict"] for m in diff["metrics"]} <= {"same", "n/a"}
