"""The reward recipe: each term, the clipping, weights from settings, and what counts as completed."""

from __future__ import annotations

import pytest

from r1agent.errors import InputError
from r1agent.feedback.reward import (
    RewardWeights,
    check_rating,
    latency_penalty,
    record_reward,
    satisfaction,
    turn_reward,
)
from r1agent.feedback.turns import TurnRecord
from r1agent.settings import Settings

DEFAULT = RewardWeights()


def record(**changes: object) -> TurnRecord:
    base: dict[str, object] = {
        "thread_id": "t1",
        "turn": 1,
        "text": "Where is my order #W2611340?",
        "prompt": [{"role": "user", "content": "Where is my order #W2611340?"}],
        "draft": "It shipped yesterday.",
        "reply": "It shipped yesterday.\n\nSources: orders tool",
        "quality": 0.8,
        "tool_calls": 1,
        "latency_s": 1.0,
    }
    base.update(changes)
    return TurnRecord.from_dict(base)


@pytest.mark.parametrize(("rating", "expected"), [(1, -1.0), (2, -0.5), (3, 0.0), (4, 0.5), (5, 1.0)])
def test_satisfaction_maps_ratings_onto_minus_one_to_one(rating: int, expected: float) -> None:
    assert satisfaction(rating) == expected


@pytest.mark.parametrize("bad", [0, 6, -1, 4.5, True, "5", None])
def test_a_rating_is_a_whole_number_from_1_to_5(bad: object) -> None:
    with pytest.raises(InputError, match="1 to 5"):
        check_rating(bad)


@pytest.mark.parametrize(("latency", "expected"), [(0.2, 0.0), (3.0, 0.0), (4.5, 0.5), (6.0, 1.0), (90.0, 1.0)])
def test_latency_penalty_starts_past_the_budget_and_is_capped(latency: float, expected: float) -> None:
    assert latency_penalty(latency, 3.0) == pytest.approx(expected)


def test_the_default_recipe() -> None:
    # satisfaction 2 × 1 + completion 1.5 + accuracy 1 × 0.8, fast: 4.3
    good = turn_reward(rating=5, completed=True, quality=0.8, latency_s=1.0, weights=DEFAULT)
    assert good.total == pytest.approx(4.3)
    assert good.components == {"satisfaction": 2.0, "completion": 1.5, "accuracy": 0.8, "latency": 0.0}
    # -2 + 0 + 0.1 - 1 = -2.9, clipped to the floor of -2
    bad = turn_reward(rating=1, completed=False, quality=0.1, latency_s=10.0, weights=DEFAULT)
    assert bad.total == -2.0
    assert bad.components["latency"] == -1.0
    neutral = turn_reward(rating=3, completed=False, quality=0.0, latency_s=4.5, weights=DEFAULT)
    assert neutral.total == pytest.approx(-0.5)


def test_unknown_inputs_are_left_out_not_guessed() -> None:
    reward = turn_reward(rating=None, completed=True, quality=None, latency_s=None, weights=DEFAULT)
    assert reward.components == {"completion": 1.5}
    assert reward.total == 1.5


def test_the_ceiling_clips() -> None:
    weights = RewardWeights(satisfaction=10.0)
    assert turn_reward(rating=5, completed=True, quality=1.0, latency_s=0.0, weights=weights).total == 5.0


def test_weights_come_from_settings_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R1AGENT_REWARD_LATENCY_BUDGET_S", "5")
    monkeypatch.setenv("R1AGENT_REWARD_COMPLETION_WEIGHT", "0.5")
    weights = RewardWeights.from_settings(Settings(reward_satisfaction_weight=3.0))
    assert weights == RewardWeights(satisfaction=3.0, completion=0.5, latency_budget_s=5.0)
    assert RewardWeights.from_settings(Settings()) != DEFAULT  # the env still applies
    monkeypatch.delenv("R1AGENT_REWARD_LATENCY_BUDGET_S")
    monkeypatch.delenv("R1AGENT_REWARD_COMPLETION_WEIGHT")
    assert RewardWeights.from_settings(Settings()) == DEFAULT


def test_completion_needs_an_answer_without_handoff_and_working_tools() -> None:
    assert record().completed
    assert not record(ticket_id="abc", handoff_reason="low_quality").completed
    assert not record(tools_ok=False).completed
    assert not record(rejected=True).completed
    assert not record(reply="").completed


def test_record_reward_reads_the_turn() -> None:
    handed_off = record(ticket_id="abc", handoff_reason="low_quality", quality=0.3, latency_s=5.5)
    reward = record_reward(handed_off, 2, DEFAULT)
    # -1 (rating 2) + 0 (no completion) + 0.3 - 1 (2.5 s past a 3 s budget, capped)
    assert reward.components == {"satisfaction": -1.0, "completion": 0.0, "accuracy": 0.3, "latency": -0.8333}
    assert reward.total == pytest.approx(-1.5333)
