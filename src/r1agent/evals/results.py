"""One row of ``results.jsonl``: what the agent did on a case, how long it took, and how it scored.

Each row carries the expectations it was scored against, so a run folder is self-contained: ``eval
diff`` and ``eval fit-threshold`` read it without the suite file, and an edited suite never changes
the meaning of an old run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from r1agent.errors import InputError, NotFoundError
from r1agent.evals.dataset import Expect

NO_TRACE = "0" * 32
"""The trace id recorded when no OpenTelemetry tracer provider is configured."""
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


class _Row(BaseModel):
    # extra="ignore": a newer r1agent may add fields; an older one must still read the run.
    model_config = ConfigDict(extra="ignore")


class ToolCallRecord(_Row):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    result: str | None = None
    error: str | None = None
    missing: list[str] = Field(default_factory=list)


class SourceRecord(_Row):
    source: str
    title: str = ""
    score: float = 0.0


class CaseResult(_Row):
    case_id: str
    tags: list[str] = Field(default_factory=list)
    expected: Expect = Field(default_factory=Expect)
    thread_id: str = ""
    trace_id: str = NO_TRACE
    """The case's OpenTelemetry trace (32 hex digits): look it up in your tracing backend."""
    turns_run: int = 0
    answer: str = ""
    """What the customer saw on the last turn (a holding message when it was handed off)."""
    draft: str = ""
    """The model's answer before the quality gate."""
    candidate: str | None = None
    """The answer the customer would have got had the gate passed (draft, notes and sources footer);
    None when the model did not run on the last turn (a tool question, a direct handoff)."""
    thinking: str = ""
    intent: str | None = None
    intent_confidence: float | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    sources: list[SourceRecord] = Field(default_factory=list)
    quality: float | None = None
    quality_signals: dict[str, float] = Field(default_factory=dict)
    quality_threshold: float | None = None
    handoff: bool = False
    handoff_reason: str | None = None
    interrupted: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    turn_s: list[float] = Field(default_factory=list)
    """Wall time of each turn, from sending the message to the graph's last update."""
    nodes: list[tuple[str, float]] = Field(default_factory=list)
    """(node, seconds) for every node run, all turns, in order."""
    turn_errors: list[str] = Field(default_factory=list)
    """Problems the graph reported on the last turn (an unreadable attachment)."""
    error: str | None = None
    """The case could not run to its end (bad input, a crash): it fails every check."""
    checks: dict[str, bool] = Field(default_factory=dict)
    acceptable: bool | None = None
    passed: bool = False


def read_results(run_dir: Path) -> list[CaseResult]:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise NotFoundError(f"no {RESULTS_FILE} in {run_dir}: is it a folder written by `r1agent eval run`?")
    rows: list[CaseResult] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(CaseResult.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "row"
                raise InputError(f"{path}:{number}: not a result row ({where}: {first['msg']})") from None
    return rows


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        raise NotFoundError(f"no {SUMMARY_FILE} in {run_dir}: is it a folder written by `r1agent eval run`?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise InputError(f"{path}: no 'metrics' object; is it a summary written by `r1agent eval run`?")
    return data
