"""--fail-under bars, run diffs and threshold fitting: the decisions built on a run's numbers."""

from __future__ import annotations

import pytest

from r1agent.errors import InputError
from r1agent.evals.diff import case_changes, diff_runs, metric_deltas
from r1agent.evals.gates import Bar, failures, parse_bars
from r1agent.evals.results import CaseResult
from r1agent.evals.threshold import curve, fit_threshold

# --- fail-under ------------------------------------------------------------------------------------


def test_bars_parse_and_name_what_is_wrong() -> None:
    assert parse_bars(["intent_accuracy=0.8", " ece = 0.2", "reason_p95_s=3"]) == [
        Bar("intent_accuracy", 0.8),
        Bar("ece", 0.2),
        Bar("reason_p95_s", 3.0),
    ]
    with pytest.raises(InputError, match="METRIC=VALUE"):
        parse_bars(["intent_accuracy"])
    with pytest.raises(InputError, match=r"unknown metric 'accuracy'.*intent_accuracy"):
        parse_bars(["accuracy=0.8"])
    with pytest.raises(InputError, match="'high' is not a number"):
        parse_bars(["pass_rate=high"])
    with pytest.raises(InputError, match="finite"):
        parse_bars(["pass_rate=nan"])


def test_a_bar_fails_when_the_metric_is_worse_in_its_own_direction() -> None:
    metrics = {"intent_accuracy": 0.75, "ece": 0.3, "turn_p95_s": 1.0, "handoff_recall": None}
    bars = parse_bars(["intent_accuracy=0.8", "ece=0.2", "turn_p95_s=2", "handoff_recall=0.5", "errors=0"])
    assert failures(bars, metrics) == [
        "intent_accuracy is 0.75, below the floor 0.8",
        "ece is 0.3, above the ceiling 0.2",
        "handoff_recall was not measured in this run (no case states it); the bar is 0.5",
        "errors was not measured in this run (no case states it); the bar is 0",
    ]
    assert failures(parse_bars(["intent_accuracy=0.75", "ece=0.3"]), metrics) == []  # equal is not worse


# --- diff ------------------------------------------------------------------------------------------


def _row(case_id: str, passed: bool, **checks: bool) -> CaseResult:
    return CaseResult(case_id=case_id, passed=passed, checks=checks)


def test_metric_deltas_know_which_way_is_better() -> None:
    a = {"intent_accuracy": 0.8, "ece": 0.2, "turn_p95_s": 2.0, "facts_answer": None, "pass_rate": 0.5}
    b = {"intent_accuracy": 0.7, "ece": 0.1, "turn_p95_s": 2.0, "facts_answer": 0.4, "pass_rate": 0.6, "new_p50_s": 1}
    verdicts = {d.metric: (d.delta, d.verdict) for d in metric_deltas(a, b)}
    assert verdicts == {
        "intent_accuracy": (pytest.approx(-0.1), "worse"),
        "ece": (pytest.approx(-0.1), "better"),
        "turn_p95_s": (0.0, "same"),
        "facts_answer": (None, "n/a"),
        "pass_rate": (pytest.approx(0.1), "better"),
        "new_p50_s": (None, "n/a"),
    }


def test_cases_that_improved_regressed_or_appear_in_one_run_only() -> None:
    a = [_row("x", False, intent=False, tool=True), _row("y", True, facts=True), _row("z", True), _row("gone", True)]
    b = [_row("x", True, intent=True, tool=True), _row("y", False, facts=False, handoff=False), _row("z", True)]
    b.append(_row("new", False))
    diff = case_changes(a, b)
    assert [(c.case_id, c.checks) for c in diff.improved] == [("x", {"intent": (False, True)})]
    assert [(c.case_id, c.checks) for c in diff.regressed] == [
        ("y", {"facts": (True, False), "handoff": (None, False)})
    ]
    assert (diff.only_in_a, diff.only_in_b, diff.unchanged) == (["gone"], ["new"], 1)
    whole = diff_runs({"metrics": {"pass_rate": 0.75}}, a, {"metrics": {"pass_rate": 0.5}}, b).to_dict()
    assert whole["metrics"][0]["verdict"] == "worse"
    assert whole["regressed"][0]["checks"]["facts"] == {"a": True, "b": False}


# --- threshold -------------------------------------------------------------------------------------

PAIRS = [(0.1, False), (0.2, False), (0.3, True), (0.4, False), (0.6, True), (0.7, True), (0.8, True), (0.9, True)]


def test_the_curve_counts_what_each_threshold_answers() -> None:
    points = {p.threshold: p for p in curve(PAIRS)}
    assert points[0.1].answered == 8 and points[0.1].precision == round(5 / 8, 4)
    # At 0.6: answers the four acceptable above it and holds back 0.1, 0.2, 0.4 (bad) and 0.3 (good).
    assert points[0.6].precision == 1.0 and points[0.6].coverage == 0.5 and points[0.6].gate_accuracy == 0.875
    last = curve(PAIRS)[-1]
    assert last.threshold == 0.9001 and last.answered == 0 and last.precision is None


def test_fit_by_gate_accuracy_and_by_target_precision() -> None:
    best = fit_threshold(PAIRS)
    assert best.threshold == 0.6 and best.gate_accuracy == 0.875 and best.reached
    assert best.n == 8 and best.n_acceptable == 5
    # Precision 0.8 over at least 3 answered turns: 0.3 answers 0.3..0.9 (5 of 6 good), the lowest that does.
    target = fit_threshold(PAIRS, target_precision=0.8, min_answered=3)
    assert target.threshold == 0.3 and target.precision == round(5 / 6, 4)
    unreachable = fit_threshold([(0.5, False), (0.6, False)], target_precision=0.9, min_answered=1)
    assert not unreachable.reached and unreachable.threshold == 0.6001  # hands everything to a human
    with pytest.raises(InputError, match="no \\(quality score, acceptable\\) pairs"):
        fit_threshold([])
    with pytest.raises(InputError, match="target-precision"):
        fit_threshold(PAIRS, target_precision=1.5)
