"""Fit the quality gate's threshold from a run's (quality score, acceptable) pairs.

The graph hands a turn to a human when ``quality.score < Context.quality_threshold``; so a threshold
``t`` *answers* the turns scoring ``>= t``. For each candidate ``t`` (every score seen, and one just
above the highest, which hands everything off):

- ``precision``: the share of answered turns that were acceptable (what customers get is good);
- ``coverage``: the share of turns answered without a human;
- ``gate_accuracy``: the share of turns the gate routes right (acceptable answered, the rest handed off).

With ``target_precision`` the fit takes the lowest threshold whose precision reaches it with at least
``min_answered`` answered turns (the most coverage at that precision); without, the threshold with the
best gate accuracy (on ties the higher one: when in doubt, a human). When no threshold reaches the
target, the fit hands everything off and says so (``reached`` is False).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from r1agent.errors import InputError


@dataclass(frozen=True)
class Point:
    threshold: float
    answered: int
    precision: float | None
    coverage: float
    gate_accuracy: float


@dataclass(frozen=True)
class ThresholdFit:
    threshold: float
    precision: float | None
    coverage: float
    gate_accuracy: float
    n: int
    n_acceptable: int
    target_precision: float | None
    reached: bool
    objective: str
    curve: list[Point]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def curve(pairs: Sequence[tuple[float, bool]]) -> list[Point]:
    scores = sorted({round(s, 4) for s, _ in pairs})
    above_all = round(scores[-1] + 0.0001, 4) if scores else 1.0
    n = len(pairs)
    points: list[Point] = []
    for t in [*scores, above_all]:
        answered = [ok for s, ok in pairs if s >= t]
        good = sum(answered)
        bad_held = sum(1 for s, ok in pairs if s < t and not ok)
        points.append(
            Point(
                threshold=t,
                answered=len(answered),
                precision=round(good / len(answered), 4) if answered else None,
                coverage=round(len(answered) / n, 4) if n else 0.0,
                gate_accuracy=round((good + bad_held) / n, 4) if n else 0.0,
            )
        )
    return points


def fit_threshold(
    pairs: Sequence[tuple[float, bool]], *, target_precision: float | None = None, min_answered: int = 5
) -> ThresholdFit:
    if not pairs:
        raise InputError(
            "no (quality score, acceptable) pairs in this run: acceptability needs cases with facts "
            "on which the model drafted an answer"
        )
    if target_precision is not None and not 0.0 < target_precision <= 1.0:
        raise InputError("--target-precision must be in (0, 1]")
    points = curve(pairs)
    handoff_all = points[-1]
    reached = True
    if target_precision is not None:
        objective = f"lowest threshold with precision >= {target_precision:g} over >= {min_answered} answered turns"
        good = [
            p
            for p in points
            if p.precision is not None and p.precision >= target_precision and p.answered >= min_answered
        ]
        best = good[0] if good else handoff_all
        reached = bool(good)
    else:
        objective = "best gate accuracy (ties: the higher threshold)"
        best = max(points, key=lambda p: (p.gate_accuracy, p.threshold))
    return ThresholdFit(
        threshold=best.threshold,
        precision=best.precision,
        coverage=best.coverage,
        gate_accuracy=best.gate_accuracy,
        n=len(pairs),
        n_acceptable=sum(ok for _, ok in pairs),
        target_precision=target_precision,
        reached=reached,
        objective=objective,
        curve=points,
    )
