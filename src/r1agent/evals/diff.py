"""``r1agent eval diff RUN_A RUN_B``: what changed from run A to run B, per metric and per case.

A case *improved* when it failed in A and passes in B, and *regressed* when it passed in A and fails
in B; for each, the checks whose outcome changed say why. Cases in one run only are listed apart
(a suite was edited, or ``--limit``/``--tag`` differed), never counted as changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from r1agent.evals.results import CaseResult
from r1agent.evals.scorers import direction

Verdict = Literal["better", "worse", "same", "n/a"]


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    verdict: Verdict


@dataclass(frozen=True)
class CaseChange:
    case_id: str
    checks: dict[str, tuple[bool | None, bool | None]]
    """Checks whose outcome differs: name -> (in A, in B); None where the run did not check it."""


@dataclass
class RunDiff:
    metrics: list[MetricDelta]
    improved: list[CaseChange] = field(default_factory=list)
    regressed: list[CaseChange] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    unchanged: int = 0

    def to_dict(self) -> dict[str, Any]:
        def change(c: CaseChange) -> dict[str, Any]:
            return {"case_id": c.case_id, "checks": {k: {"a": a, "b": b} for k, (a, b) in c.checks.items()}}

        return {
            "metrics": [m.__dict__ for m in self.metrics],
            "improved": [change(c) for c in self.improved],
            "regressed": [change(c) for c in self.regressed],
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
            "unchanged": self.unchanged,
        }


def metric_deltas(a: Mapping[str, Any], b: Mapping[str, Any], *, tolerance: float = 1e-9) -> list[MetricDelta]:
    """Every metric of either run, A's order first; ``verdict`` follows the metric's direction."""
    names = list(a) + [name for name in b if name not in a]
    deltas: list[MetricDelta] = []
    for name in names:
        va, vb = _number(a.get(name)), _number(b.get(name))
        if va is None or vb is None:
            deltas.append(MetricDelta(name, va, vb, None, "n/a"))
            continue
        delta = round(vb - va, 6)
        way = direction(name)
        verdict: Verdict
        if abs(delta) <= tolerance or way is None:
            verdict = "same" if abs(delta) <= tolerance else "n/a"
        else:
            verdict = "better" if (delta > 0) == (way == "higher") else "worse"
        deltas.append(MetricDelta(name, va, vb, delta, verdict))
    return deltas


def case_changes(a: Sequence[CaseResult], b: Sequence[CaseResult]) -> RunDiff:
    by_a = {r.case_id: r for r in a}
    by_b = {r.case_id: r for r in b}
    diff = RunDiff(metrics=[])
    diff.only_in_a = [cid for cid in by_a if cid not in by_b]
    diff.only_in_b = [cid for cid in by_b if cid not in by_a]
    for cid, ra in by_a.items():
        rb = by_b.get(cid)
        if rb is None:
            continue
        if ra.passed == rb.passed:
            diff.unchanged += 1
            continue
        names = list(ra.checks) + [n for n in rb.checks if n not in ra.checks]
        changed = {n: (ra.checks.get(n), rb.checks.get(n)) for n in names if ra.checks.get(n) != rb.checks.get(n)}
        (diff.improved if rb.passed else diff.regressed).append(CaseChange(cid, changed))
    return diff


def diff_runs(
    summary_a: Mapping[str, Any],
    results_a: Sequence[CaseResult],
    summary_b: Mapping[str, Any],
    results_b: Sequence[CaseResult],
) -> RunDiff:
    diff = case_changes(results_a, results_b)
    diff.metrics = metric_deltas(summary_a.get("metrics") or {}, summary_b.get("metrics") or {})
    return diff


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
