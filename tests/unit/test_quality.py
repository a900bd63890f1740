"""The quality gate's signals, how they combine, and the route they choose."""

from __future__ import annotations

import math
from typing import Any, cast

import pytest
from langgraph.runtime import Runtime

from r1agent.context import Context
from r1agent.nodes.quality import combine, content_words, repetition, route_after_quality, score_quality, signals_for
from r1agent.state import Intent, Source, State, ToolCall


def _intent(label: str = "order_status", confidence: float = 0.8) -> Intent:
    return Intent(label=label, confidence=confidence, entities={}, scores={}, wants_human=False)


def _source(text: str, score: float) -> Source:
    return Source(id="1", source="policy.md", title="Returns", text=text, score=score)


def _call(result: str | None, error: str | None = None) -> ToolCall:
    return ToolCall(name="order_status", args={}, result=result, error=error)


def _state(**fields: Any) -> State:
    return cast(State, {"messages": [], **fields})


def test_content_words() -> None:
    words = content_words("Please help: the Refund won't arrive before Friday's deadline, ok? it's 2024")
    assert words == ["refund", "won't", "arrive", "friday's", "deadline", "it's", "2024"]


def test_repetition() -> None:
    assert repetition("one two three four five six seven eight nine ten") == 0.0
    assert repetition(" ".join(["buy it now"] * 10)) > 0.8
    # Fewer than eight trigrams is too short to call a loop.
    assert repetition("again " * 9) == 0.0
    assert repetition("again " * 10) == pytest.approx(1 - 1 / 8)


def test_combine_is_a_weighted_geometric_mean() -> None:
    assert combine({"intent": 0.5, "evidence": 0.5}) == pytest.approx(0.5)
    expected = math.exp((1.0 * math.log(0.9) + 1.5 * math.log(0.4)) / 2.5)
    assert combine({"intent": 0.9, "groundedness": 0.4}) == pytest.approx(expected)


def test_a_zero_signal_sinks_the_score() -> None:
    grounded = combine({"intent": 0.9, "evidence": 0.9, "groundedness": 0.9})
    ungrounded = combine({"intent": 0.9, "evidence": 0.9, "groundedness": 0.0})
    assert grounded == pytest.approx(0.9)
    # An arithmetic mean would still give 0.54 here.
    assert ungrounded < 0.2


def test_combine_ignores_unweighted_keys_and_empty_input() -> None:
    assert combine({}) == 0.0
    assert combine({"sanity": 1.0}) == 0.0
    assert combine({"intent": 0.7, "sanity": 0.0}) == pytest.approx(0.7)


def test_small_talk_skips_evidence_and_groundedness() -> None:
    signals, sanity = signals_for(
        _state(intent=_intent("small_talk", 0.9), draft="Hello! Lovely weather for shopping today.")
    )
    assert signals == {"intent": 0.9, "sanity": 1.0}
    assert sanity == 1.0


def test_small_talk_with_sources_is_graded_like_any_answer() -> None:
    signals, _ = signals_for(
        _state(intent=_intent("small_talk"), draft="Returns take thirty days.", sources=[_source("x", 0.6)])
    )
    assert "evidence" in signals
    assert "groundedness" in signals


def test_tool_success_gives_full_evidence() -> None:
    state = _state(
        intent=_intent(),
        draft="Order shipped yesterday.",
        tool_calls=[_call(None, "missing order_id"), _call("Order #W2378156 shipped yesterday")],
    )
    signals, _ = signals_for(state)
    assert signals["evidence"] == 1.0
    assert signals["groundedness"] == 1.0


def test_only_failed_tools_give_no_evidence() -> None:
    state = _state(intent=_intent(), draft="Something", tool_calls=[_call(None, "ValueError: down")])
    signals, _ = signals_for(state)
    assert signals["evidence"] == 0.0


@pytest.mark.parametrize(("score", "evidence"), [(0.0, 0.0), (0.15, 0.0), (0.375, 0.5), (0.6, 1.0), (0.9, 1.0)])
def test_evidence_rescales_the_best_source(score: float, evidence: float) -> None:
    state = _state(intent=_intent(), draft="anything", sources=[_source("a", 0.1), _source("b", score)])
    signals, _ = signals_for(state)
    assert signals["evidence"] == pytest.approx(evidence)


def test_no_sources_and_no_calls_is_zero_evidence() -> None:
    signals, _ = signals_for(_state(intent=_intent("product_inquiry"), draft="Yes."))
    assert signals["evidence"] == 0.0


def test_groundedness_counts_words_from_sources_and_the_customer() -> None:
    state = _state(
        intent=_intent(),
        text="Can I return the blender?",
        draft="Blender returns within thirty days; unicorns excluded.",
        sources=[_source("Items may be returned within thirty days.", 0.5)],
    )
    signals, _ = signals_for(state)
    # blender (customer), within, thirty, days are known; returns, unicorns, excluded are not
    # ("returns" is neither "return" nor "returned": there is no stemming).
    assert signals["groundedness"] == pytest.approx(round(4 / 7, 4))


def test_fluency_from_logprob() -> None:
    signals, _ = signals_for(_state(intent=_intent(), draft="ok", logprob=math.log(0.25)))
    assert signals["fluency"] == 0.25


@pytest.mark.parametrize("draft", ["", "   \n"])
def test_empty_draft_has_zero_sanity(draft: str) -> None:
    state = _state(intent=_intent(), draft=draft, tool_calls=[_call("fine")])
    signals, sanity = signals_for(state)
    assert sanity == 0.0
    assert signals["sanity"] == 0.0


def test_truncated_output_multiplies_sanity_by_07() -> None:
    state = _state(intent=_intent(), draft="Your order", finished=False)
    assert signals_for(state)[1] == pytest.approx(0.7)
    # True (the model stopped itself) and None (the backend cannot tell) are not penalised.
    for finished in (True, None):
        state["finished"] = finished
        assert signals_for(state)[1] == 1.0


def test_looping_and_truncated_output() -> None:
    state = _state(intent=_intent(), draft=" ".join(["buy it now"] * 10), finished=False)
    _, sanity = signals_for(state)
    assert sanity == pytest.approx(0.35)


def test_score_quality() -> None:
    state = _state(
        intent=_intent(confidence=0.9),
        text="where is my order",
        draft="Your order shipped.",
        tool_calls=[_call("order shipped")],
        finished=False,
    )
    quality = score_quality(state, Runtime(context=Context(quality_threshold=0.6)))["quality"]
    assert quality["threshold"] == 0.6
    assert quality["signals"] == {"intent": 0.9, "evidence": 1.0, "groundedness": 1.0, "sanity": 0.7}
    assert quality["score"] == pytest.approx(round(0.7 * combine(quality["signals"]), 4))
    assert quality["score"] == pytest.approx(0.7 * 0.9 ** (1 / 3.5), abs=1e-4)

    state["finished"] = True
    relaxed = score_quality(state, Runtime(context=Context()))["quality"]
    assert relaxed["signals"]["sanity"] == 1.0
    assert relaxed["threshold"] == 0.5


def test_empty_draft_scores_zero() -> None:
    state = _state(intent=_intent(confidence=1.0), draft="", tool_calls=[_call("fine")])
    assert score_quality(state, Runtime(context=Context()))["quality"]["score"] == 0.0


def test_route_after_quality() -> None:
    assert route_after_quality(_state()) == "open_ticket"
    assert route_after_quality(_state(quality=None)) == "open_ticket"
    assert route_after_quality(_state(quality={"score": 0.49, "signals": {}, "threshold": 0.5})) == "open_ticket"
    assert route_after_quality(_state(quality={"score": 0.5, "signals": {}, "threshold": 0.5})) == "answer"
    assert route_after_quality(_state(quality={"score": 0.9, "signals": {}, "threshold": 0.5})) == "answer"
