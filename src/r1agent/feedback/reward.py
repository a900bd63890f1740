"""A scalar reward per turn, from what the customer said and what the turn did. Pure functions.

    reward = clip( satisfaction × w_s        the rating mapped to [-1, 1]: 1 → -1, 3 → 0, 5 → +1
                 + completion   × w_c        1 when answered without a handoff and every tool call worked
                 + accuracy     × w_a        the quality score, in [0, 1]
                 - latency      × w_l,       0 up to the budget, rising linearly to 1 at twice the budget
                 reward_min, reward_max )

Defaults (``R1AGENT_REWARD_*``): w_s = 2, w_c = 1.5, w_a = 1, w_l = 1 with a 3 s budget, clipped to
[-2, 5]. A term whose input is unknown (no rating yet, no quality score, no recorded latency) counts 0,
and ``components`` says which terms were present, so a consumer can tell "neutral" from "unknown".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from r1agent.errors import InputError
from r1agent.feedback.turns import TurnRecord
from r1agent.settings import Settings

MIN_RATING, MAX_RATING = 1, 5


@dataclass(frozen=True)
class RewardWeights:
    satisfaction: float = 2.0
    completion: float = 1.5
    accuracy: float = 1.0
    latency: float = 1.0
    latency_budget_s: float = 3.0
    minimum: float = -2.0
    maximum: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RewardWeights:
        return cls(
            satisfaction=settings.reward_satisfaction_weight,
            completion=settings.reward_completion_weight,
            accuracy=settings.reward_accuracy_weight,
            latency=settings.reward_latency_weight,
            latency_budget_s=settings.reward_latency_budget_s,
            minimum=settings.reward_min,
            maximum=settings.reward_max,
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Reward:
    total: float
    components: dict[str, float]
    """Each present term after weighting (negative for the latency penalty)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_rating(rating: object) -> int:
    """A rating is an integer from 1 to 5 (not a bool, not 4.5)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not MIN_RATING <= rating <= MAX_RATING:
        raise InputError(f"a rating is a whole number from {MIN_RATING} to {MAX_RATING}, not {rating!r}")
    return rating


def satisfaction(rating: int) -> float:
    """The rating mapped linearly onto [-1, 1]."""
    check_rating(rating)
    return (rating - 3) / 2


def latency_penalty(latency_s: float, budget_s: float) -> float:
    """0 within the budget, then linear up to 1 at twice the budget, and no more."""
    if budget_s <= 0:
        raise InputError("the latency budget must be positive")
    return min(1.0, max(0.0, (latency_s - budget_s) / budget_s))


def turn_reward(
    *,
    rating: int | None,
    completed: bool,
    quality: float | None,
    latency_s: float | None,
    weights: RewardWeights,
) -> Reward:
    components: dict[str, float] = {}
    if rating is not None:
        components["satisfaction"] = weights.satisfaction * satisfaction(rating)
    components["completion"] = weights.completion * (1.0 if completed else 0.0)
    if quality is not None:
        components["accuracy"] = weights.accuracy * min(1.0, max(0.0, quality))
    if latency_s is not None:
        components["latency"] = -weights.latency * latency_penalty(latency_s, weights.latency_budget_s)
    total = min(weights.maximum, max(weights.minimum, sum(components.values())))
    return Reward(total=round(total, 4), components={k: round(v, 4) for k, v in components.items()})


def record_reward(record: TurnRecord, rating: int | None, weights: RewardWeights) -> Reward:
    """The reward of a recorded turn."""
    return turn_reward(
        rating=rating,
        completed=record.completed,
        quality=record.quality,
        latency_s=record.latency_s,
        weights=weights,
    )
