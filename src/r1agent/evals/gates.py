"""``--fail-under METRIC=VALUE``: a run fails when a metric is *worse* than its bar.

"Worse" follows the metric's direction (:data:`r1agent.evals.scorers.METRICS`): below the bar for
accuracies and rates, above it for costs (``ece``, latencies, tokens, errors). A metric the run did
not measure (no case states it) fails too: a gate that silently passes on nothing is no gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from r1agent.errors import InputError
from r1agent.evals.scorers import METRICS, direction

EXIT_BELOW_BAR = 6
"""Exit code of ``r1agent eval run`` when a ``--fail-under`` bar is not met (the run is still written)."""


@dataclass(frozen=True)
class Bar:
    metric: str
    value: float


def parse_bars(specs: Iterable[str]) -> list[Bar]:
    """``["intent_accuracy=0.8", "turn_p95_s=3"]`` -> bars; a clear InputError for anything else."""
    bars: list[Bar] = []
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--fail-under takes METRIC=VALUE, e.g. intent_accuracy=0.8; got {spec!r}")
        if direction(name) is None:
            raise InputError(f"unknown metric {name!r} in --fail-under; metrics: {', '.join(METRICS)}, <node>_p95_s")
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"--fail-under {name}: {raw.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"--fail-under {name}: the bar must be a finite number")
        bars.append(Bar(name, value))
    return bars


def failures(bars: Iterable[Bar], metrics: Mapping[str, float | int | None]) -> list[str]:
    """One message per bar the run does not meet, naming the metric, its value and the bar."""
    messages: list[str] = []
    for bar in bars:
        value = metrics.get(bar.metric)
        if value is None:
            messages.append(f"{bar.metric} was not measured in this run (no case states it); the bar is {bar.value:g}")
        elif direction(bar.metric) == "lower" and value > bar.value:
            messages.append(f"{bar.metric} is {value:g}, above the ceiling {bar.value:g}")
        elif direction(bar.metric) == "higher" and value < bar.value:
            messages.append(f"{bar.metric} is {value:g}, below the floor {bar.value:g}")
    return messages
