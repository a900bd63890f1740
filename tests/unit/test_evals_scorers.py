"""Scorers are pure functions: each checked on small inputs whose right answer is worked out by hand."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
from sklearn.metrics import f1_score

from r1agent.evals.dataset import Case, Expect
from r1agent.evals.results import CaseResult, SourceRecord, ToolCallRecord
from r1agent.evals.scorers import (
    args_match,
    binary_metrics,
    calibration,
    check_case,
    citations_valid,
    contains_all,
    contains_none,
    footer_labels,
    intent_metrics,
    is_acceptable,
    percentile,
    score,
    summarize,
)
from r1agent.nodes.respond import answer
from r1agent.state import State

KB = [
    SourceRecord(source="r1agent-demo/policy.md", title="Retail agent policy › Return delivered order", score=0.6),
    SourceRecord(source="r1agent-demo/products.md", title="Product catalogue › Tea Kettle", score=0.5),
]


def _expect(**kwargs: Any) -> Expect:
    return Expect.model_validate(kwargs)


def _row(**kwargs: Any) -> CaseResult:
    return CaseResult.model_validate({"case_id": "c", **kwargs})


def _delivered(draft: str, sources: list[SourceRecord], cited: list[int], tools: list[dict[str, Any]]) -> str:
    """The text respond.answer really writes: scorers must read its footer, not a copy of it."""
    state = {
        "messages": [],
        "draft": draft,
        "sources": [{"id": "", "source": s.source, "title": s.title, "text": "", "score": s.score} for s in sources],
        "cited": cited,
        "tool_calls": tools,
        "errors": [],
    }
    return str(answer(cast(State, state))["messages"][0].content)


# --- text ------------------------------------------------------------------------------------------


def test_facts_match_case_and_whitespace_insensitively() -> None:
    assert contains_all("Refunds take 5 to 7\nBusiness Days.", ["5 to 7 business days"])
    assert not contains_all("Refunds take 5-7 business days.", ["5 to 7 business days"])
    assert contains_all("anything", [])
    assert contains_none("Order #W1 is pending", ["gift_card_1"])
    assert not contains_none("paid via GIFT_CARD_1", ["gift_card_1"])


def test_args_are_a_subset_and_strings_compare_loosely() -> None:
    actual = {"city": "New York ", "day": "today", "n": 3}
    assert args_match({"city": "new york"}, actual)
    assert args_match({}, actual)
    assert not args_match({"city": "Paris"}, actual)
    assert not args_match({"country": "US"}, actual)
    assert not args_match({"n": 4}, actual)


# --- citations -------------------------------------------------------------------------------------


def test_citations_in_the_real_footer_are_checked_against_what_was_retrieved() -> None:
    text = _delivered("Returns go back to the original payment method [1].", KB, [1], [])
    assert footer_labels(text) == ["policy.md › Retail agent policy › Return delivered order"]
    assert citations_valid(text, KB, []) is True
    # The same answer judged against other retrieved sources: it cites something never retrieved.
    assert citations_valid(text, KB[1:], []) is False


def test_tool_sources_and_inline_markers() -> None:
    calls: list[dict[str, Any]] = [
        {"name": "calculator", "args": {}, "result": "3*2 = 6", "error": None, "missing": []}
    ]
    text = _delivered("It is 6.", [], [], calls)
    assert footer_labels(text) == ["calculator tool"]
    records = [ToolCallRecord.model_validate(c) for c in calls]
    assert citations_valid(text, [], records) is True
    failed = [ToolCallRecord(name="calculator", error="division by zero")]
    assert citations_valid(text, [], failed) is False  # a tool that returned nothing is no source
    assert citations_valid("See [3] for details.", KB, []) is False  # only two sources were given
    assert citations_valid("See [2] for details.", KB, []) is True
    assert citations_valid("No citations here.", KB, []) is None


# --- one case --------------------------------------------------------------------------------------


def test_checks_cover_only_what_the_case_states() -> None:
    expect = _expect(
        intent="order_status",
        tool={"name": "get_order_details", "args": {"order_id": "#W1"}},
        facts=["pending"],
        handoff=False,
    )
    good = _row(
        intent="order_status",
        tool_calls=[{"name": "get_order_details", "args": {"order_id": "#W1", "customer_id": "u"}, "result": "x"}],
        answer="Your order is pending.\n\nSources: get_order_details tool",
        quality=0.8,
        candidate="Your order is pending.\n\nSources: get_order_details tool",
    )
    checks = check_case(expect, good)
    assert checks == {
        "intent": True,
        "tool": True,
        "tool_args": True,
        "facts": True,
        "handoff": True,
        "citations": True,
    }
    assert is_acceptable(expect, good, checks) is True
    wrong_tool = good.model_copy(update={"tool_calls": [ToolCallRecord(name="list_my_orders", result="y")]})
    checks = check_case(expect, wrong_tool)
    assert checks["tool"] is False and "tool_args" not in checks  # args are judged only for the right tool
    assert is_acceptable(expect, wrong_tool, checks) is False
    assert check_case(_expect(), good)["tool"] is False  # a tool call where none belongs


def test_handoff_and_its_reason() -> None:
    expect = _expect(handoff=True, handoff_reason="out_of_scope")
    assert check_case(expect, _row(handoff=True, handoff_reason="out_of_scope"))["handoff"] is True
    assert check_case(expect, _row(handoff=True, handoff_reason="low_quality"))["handoff"] is False
    assert check_case(expect, _row(handoff=False))["handoff"] is False
    assert "handoff" not in check_case(_expect(), _row(handoff=True))  # None: either is fine


def test_refusals_decline_and_clarify() -> None:
    decline = _expect(
        tool={"name": "get_order_details", "error": "could not find order"}, refusal="decline", forbidden=["9999"]
    )
    refused = _row(
        tool_calls=[{"name": "get_order_details", "error": "I could not find order #W1 for your account"}],
        answer="I couldn't complete that: I could not find order #W1 for your account.",
    )
    assert check_case(decline, refused) == {"tool": True, "refusal": True, "no_leak": True}
    leaked = refused.model_copy(update={"draft": "Item 9999 ships soon"})
    assert check_case(decline, leaked)["no_leak"] is False  # the draft counts: it reaches a human or a customer
    answered = _row(tool_calls=[{"name": "get_order_details", "result": "Order #W1: pending"}])
    assert check_case(decline, answered)["refusal"] is False

    clarify = _expect(tool={"name": "weather"}, refusal="clarify")
    asked = _row(tool_calls=[{"name": "weather", "missing": ["city"]}], answer="Which city?")
    assert check_case(clarify, asked)["refusal"] is True
    assert check_case(clarify, asked.model_copy(update={"handoff": True}))["refusal"] is False
    ran = _row(tool_calls=[{"name": "weather", "result": "sunny"}])
    assert check_case(clarify, ran)["refusal"] is False


def test_a_case_that_did_not_run_fails_and_is_not_judged() -> None:
    case = Case.model_validate({"id": "x", "turns": [{"text": "hi"}], "expect": {"facts": ["a"]}})
    row = score(case, _row(error="the message is empty", quality=0.9, candidate="a"))
    assert row.checks == {"ran": False}
    assert row.passed is False and row.acceptable is None
    assert score(case, _row(answer="a", quality=0.9, candidate="a")).passed is True


def test_acceptable_is_judged_on_the_candidate_and_needs_facts() -> None:
    expect = _expect(facts=["pending"])
    held = _row(answer="I've passed this to a colleague", quality=0.2, candidate="It is pending.")
    checks = check_case(expect, held)
    assert checks["facts"] is False  # the customer saw the holding message
    assert is_acceptable(expect, held, checks) is True  # but the draft the gate held back was fine
    assert is_acceptable(_expect(), held, {}) is None  # nothing to judge it by
    assert is_acceptable(expect, _row(quality=None), {}) is None  # the model never ran
    assert is_acceptable(_expect(facts=["x"], handoff=True), held, {}) is False


# --- over a run ------------------------------------------------------------------------------------


def test_intent_metrics_match_scikit_learn() -> None:
    pairs: list[tuple[str, str | None]] = [
        ("a", "a"),
        ("a", "a"),
        ("a", "b"),
        ("b", "b"),
        ("b", "c"),
        ("c", "c"),
        ("c", None),
    ]
    got = intent_metrics(pairs)
    truth = [w for w, _ in pairs]
    predicted = [g or "(none)" for _, g in pairs]
    assert got.accuracy == round(4 / 7, 4)
    assert got.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-4)
    assert got.labels == ["(none)", "a", "b", "c"]
    assert got.matrix[got.labels.index("c")] == [1, 0, 0, 1]
    assert got.per_label["a"].precision == 1.0 and got.per_label["a"].recall == round(2 / 3, 4)
    assert intent_metrics([]).accuracy is None


def test_binary_metrics() -> None:
    counts = binary_metrics([(True, True), (True, False), (False, True), (False, True), (False, False)])
    assert (counts.tp, counts.fn, counts.fp, counts.tn) == (1, 1, 2, 1)
    assert counts.precision == round(1 / 3, 4) and counts.recall == 0.5
    assert binary_metrics([(False, False)]).precision is None


def test_calibration_error_by_hand() -> None:
    # Bin 0.1-0.2: scores 0.1, 0.1 (mean 0.1), one acceptable (0.5) -> gap 0.4 on 2 of 4.
    # Bin 0.9-1.0: scores 0.9, 1.0 (mean 0.95), both acceptable (1.0) -> gap 0.05 on 2 of 4.
    result = calibration([(0.1, True), (0.1, False), (0.9, True), (1.0, True)])
    assert result.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.05)
    assert [b.count for b in result.bins] == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert result.bins[9].mean_score == 0.95 and result.bins[9].accuracy == 1.0
    assert calibration([]).ece is None
    perfect = calibration([(0.75, True)] * 3 + [(0.75, False)])
    assert perfect.ece == 0.0


def test_percentiles_match_numpy() -> None:
    values = [0.3, 1.2, 0.7, 5.0, 0.9, 2.2, 0.1]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


def test_summary_from_rows() -> None:
    rows = [
        _row(
            case_id="ok",
            expected=_expect(intent="a", facts=["yes"], handoff=False),
            intent="a",
            answer="yes",
            candidate="yes",
            quality=0.9,
            checks={"intent": True, "facts": True, "handoff": True},
            acceptable=True,
            passed=True,
            turns_run=1,
            turn_s=[1.0],
            nodes=[("reason", 0.8), ("perceive", 0.01)],
            input_tokens=100,
            output_tokens=10,
            tags=["x"],
        ),
        _row(
            case_id="held",
            expected=_expect(intent="b", facts=["no"], handoff=False),
            intent="a",
            answer="passed to a colleague",
            candidate="maybe",
            quality=0.3,
            handoff=True,
            handoff_reason="low_quality",
            checks={"intent": False, "facts": False, "handoff": False},
            acceptable=False,
            turns_run=1,
            turn_s=[3.0],
            nodes=[("reason", 2.5)],
            input_tokens=50,
            output_tokens=30,
            tags=["x", "y"],
        ),
        _row(case_id="crashed", error="boom", checks={"ran": False}, tags=["y"]),
    ]
    summary = summarize(rows)
    m = summary["metrics"]
    assert m["pass_rate"] == round(1 / 3, 4)
    assert m["intent_accuracy"] == 0.5
    assert m["facts_answer"] == 0.5 and m["facts_candidate"] == 0.5
    assert m["handoff_precision"] == 0.0 and m["handoff_recall"] is None  # no handoff was expected
    assert m["acceptable_rate"] == 0.5
    assert m["errors"] == 1
    assert m["turn_p50_s"] == 2.0 and m["reason_p95_s"] == pytest.approx(2.415)
    assert m["tokens_in_per_turn"] == 75 and m["tokens_out_per_turn"] == 20
    assert m["tool_selection_accuracy"] is None  # no row has a tool check
    assert summary["handoff"]["by_reason"] == {"low_quality": 1}
    assert summary["by_tag"] == {"x": 0.5, "y": 0.0}
    assert summary["checks_failed"] == {"intent": 1, "facts": 1, "handoff": 1, "ran": 1}
    assert summary["calibration"]["n"] == 2
