"""`r1agent eval` commands on hand-made run folders (no models): exit codes, --json, files written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from r1agent.cli import app
from r1agent.evals import runner
from r1agent.evals.dataset import Expect, Suite
from r1agent.evals.report import CONFUSION_PNG, LATENCY_PNG, RELIABILITY_PNG, REPORT_MD, write_report
from r1agent.evals.results import RESULTS_FILE, CaseResult, read_results, read_summary
from r1agent.evals.scorers import summarize

cli = CliRunner()


def _says(output: str, message: str) -> bool:
    """Rich wraps long lines to the terminal width anywhere in a path: compare without whitespace."""
    return "".join(message.split()) in "".join(output.split())


def _rows(good: int) -> list[CaseResult]:
    """Four judged answers; the first ``good`` pass."""
    rows = []
    for i in range(4):
        ok = i < good
        rows.append(
            CaseResult(
                case_id=f"case-{i}",
                expected=Expect(intent="order_status", facts=["pending"], handoff=False),
                intent="order_status" if ok else "account",
                answer="It is pending." if ok else "Sorry.",
                candidate="It is pending." if ok else "Sorry.",
                quality=0.2 + 0.2 * i,
                checks={"intent": ok, "facts": ok, "handoff": True},
                acceptable=ok,
                passed=ok,
                turns_run=1,
                turn_s=[1.0 + i],
                nodes=[("perceive", 0.01), ("reason", 0.9 + i)],
                tags=["t"],
            )
        )
    return rows


def _run_folder(path: Path, rows: list[CaseResult]) -> Path:
    path.mkdir(parents=True)
    (path / RESULTS_FILE).write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
    summary = summarize(rows)
    summary["run"] = {"suite": "unit", "model": "none", "context": {}}
    write_report(path, summary, rows)
    return path


def test_the_report_and_plots_are_written(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run", _rows(2))
    for name in (CONFUSION_PNG, RELIABILITY_PNG, LATENCY_PNG):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (run / REPORT_MD).read_text(encoding="utf-8")
    assert "| intent_accuracy | 0.5 | higher |" in report
    assert "## Failed cases (2)" in report and "case-3" in report
    assert read_summary(run)["metrics"]["pass_rate"] == 0.5
    assert [r.case_id for r in read_results(run)] == [f"case-{i}" for i in range(4)]


def test_diff_json_lists_regressions(tmp_path: Path) -> None:
    a = _run_folder(tmp_path / "a", _rows(3))
    b = _run_folder(tmp_path / "b", _rows(1))
    done = cli.invoke(app, ["eval", "diff", str(a), str(b), "--json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert [c["case_id"] for c in out["regressed"]] == ["case-1", "case-2"]
    assert out["regressed"][0]["checks"]["intent"] == {"a": True, "b": False}
    assert out["improved"] == [] and out["unchanged"] == 2
    pass_rate = next(m for m in out["metrics"] if m["metric"] == "pass_rate")
    assert pass_rate == {"metric": "pass_rate", "a": 0.75, "b": 0.25, "delta": -0.5, "verdict": "worse"}
    human = cli.invoke(app, ["eval", "diff", str(a), str(b)])
    assert human.exit_code == 0 and "regressed: 2" in human.stdout


def test_diff_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    a = _run_folder(tmp_path / "a", _rows(1))
    done = cli.invoke(app, ["eval", "diff", str(a), str(tmp_path)])
    assert done.exit_code == 3
    assert _says(done.output, "no summary.json in")
    (a / RESULTS_FILE).write_text('{"case_id": 3}\n', encoding="utf-8")
    done = cli.invoke(app, ["eval", "diff", str(a), str(a)])
    assert done.exit_code == 2 and _says(done.output, "results.jsonl:1: not a result row")


def test_fit_threshold_writes_the_fit_and_says_how_to_apply_it(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run", _rows(2))  # scores 0.2, 0.4 good; 0.6, 0.8 not: no clean cut
    done = cli.invoke(app, ["eval", "fit-threshold", str(run), "--json"])
    assert done.exit_code == 0, done.output
    fit = json.loads(done.stdout)
    assert fit["threshold"] == json.loads((run / "threshold.json").read_text())["threshold"]
    assert fit["n"] == 4 and fit["n_acceptable"] == 2
    human = cli.invoke(app, ["eval", "fit-threshold", str(run), "--target-precision", "0.9"])
    assert human.exit_code == 0
    assert "Context(quality_threshold=0.8001)" in human.stdout
    assert _says(human.output, "no threshold reaches precision 0.9")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--fail-under", "accuracy=1"], 2, "unknown metric 'accuracy'"),
        (["--tag", "no-such-tag"], 2, "has the tag(s) no-such-tag"),
        (["--max-new-tokens", "0"], 2, "--max-new-tokens must be at least 1"),
        (["--quality-threshold", "2"], 2, "--quality-threshold must be between 0 and 1"),
        (["missing.jsonl"], 3, "no such suite file"),
    ],
)
def test_run_rejects_bad_arguments_before_loading_models(args: list[str], code: int, message: str) -> None:
    done = cli.invoke(app, ["eval", "run", *args])
    assert done.exit_code == code, done.output
    assert _says(done.output, message)


def test_run_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run", _rows(1))
    done = cli.invoke(app, ["eval", "run", "--out", str(run), "--limit", "1"])
    assert done.exit_code == 4 and _says(done.output, "already holds a run")


def test_fail_under_exits_6_and_names_the_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_suite(suite: Suite, **kwargs: Any) -> tuple[dict[str, Any], list[CaseResult]]:
        seen.update(kwargs, cases=len(suite.cases))
        rows = _rows(2)
        return {**summarize(rows), "run": {"suite": suite.name}}, rows

    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    out = tmp_path / "run"
    args = ["eval", "run", "--out", str(out), "--limit", "3", "--max-new-tokens", "7", "--json"]
    done = cli.invoke(app, [*args, "--fail-under", "intent_accuracy=0.9", "--fail-under", "pass_rate=0.5"])
    assert done.exit_code == 6
    assert _says(done.output, "intent_accuracy is 0.5, below the floor 0.9")
    assert "pass_rate" not in done.stderr  # met: 0.5 is not below 0.5
    printed = json.loads(done.stdout)
    assert printed["failed_bars"] == ["intent_accuracy is 0.5, below the floor 0.9"]
    assert printed["run_dir"] == str(out)
    assert seen["cases"] == 3 and seen["context"].max_new_tokens == 7 and seen["run_dir"] == out
    passed = cli.invoke(app, ["eval", "run", "--out", str(tmp_path / "ok"), "--fail-under", "pass_rate=0.5"])
    assert passed.exit_code == 0, passed.output


def test_schema_prints_the_case_schema() -> None:
    done = cli.invoke(app, ["eval", "schema"])
    assert done.exit_code == 0
    assert json.loads(done.stdout)["title"] == "r1agent eval case"
