"""Scorers: pure functions from expectations and what the agent did to numbers. No models, no I/O.

Per case, :func:`check_case` gives named pass/fail checks (only those the case asks for) and
:func:`is_acceptable` decides whether the answer the model drafted was good enough to send:

    acceptable  ⇔  the model drafted an answer on the last turn (there is a quality score),
                   the case states facts to judge it by, a human was not expected to take over,
                   the intent, the tool and its arguments are right (where the case states them),
                   the *candidate* answer (the draft with its notes and sources footer, as the
                   customer would get it had the gate passed) contains every fact and no
                   forbidden string.

It is undefined (None) otherwise, and such cases stay out of calibration and threshold fitting:
without facts there is nothing to judge an answer by.

Over a run, :func:`summarize` gives the metrics (``METRICS`` says which way is better for each).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from r1agent.evals.dataset import Case, Expect
from r1agent.evals.results import CaseResult, SourceRecord, ToolCallRecord
from r1agent.nodes.respond import citation_footer
from r1agent.state import Source

Direction = Literal["higher", "lower"]
NO_INTENT = "(none)"
FOOTER = "Sources: "
_INLINE_CITATION = re.compile(r"\[(\d{1,3})\]")

METRICS: dict[str, Direction] = {
    "pass_rate": "higher",
    "intent_accuracy": "higher",
    "intent_macro_f1": "higher",
    "tool_selection_accuracy": "higher",
    "tool_args_accuracy": "higher",
    "facts_answer": "higher",
    "facts_candidate": "higher",
    "no_leak": "higher",
    "citation_validity": "higher",
    "handoff_precision": "higher",
    "handoff_recall": "higher",
    "refusal_accuracy": "higher",
    "acceptable_rate": "higher",
    "ece": "lower",
    "errors": "lower",
    "turn_p50_s": "lower",
    "turn_p95_s": "lower",
    "tokens_in_per_turn": "lower",
    "tokens_out_per_turn": "lower",
}
"""Every metric in ``summary.json``'s ``metrics`` and which way is better. Per-node latencies
(``<node>_p50_s``, ``<node>_p95_s``) are added per run; lower is better for those too."""


def direction(metric: str) -> Direction | None:
    if metric in METRICS:
        return METRICS[metric]
    return "lower" if metric.endswith("_s") else None


# --- text checks -----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Case-folded, whitespace collapsed: how facts are matched."""
    return " ".join(text.casefold().split())


def contains_all(text: str, facts: Iterable[str]) -> bool:
    haystack = normalise(text)
    return all(normalise(fact) in haystack for fact in facts)


def contains_none(text: str, forbidden: Iterable[str]) -> bool:
    haystack = normalise(text)
    return not any(normalise(item) in haystack for item in forbidden)


def args_match(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Every expected argument is present with the same value (strings: case-insensitively)."""
    for name, want in expected.items():
        if name not in actual:
            return False
        got = actual[name]
        if isinstance(want, str) and isinstance(got, str):
            if normalise(want) != normalise(got):
                return False
        elif want != got:
            return False
    return True


def footer_labels(answer: str) -> list[str] | None:
    """The labels of the answer's sources footer (``respond.answer``'s last paragraph), or None."""
    last = answer.rstrip().rsplit("\n\n", 1)[-1]
    if not last.startswith(FOOTER):
        return None
    return [label.strip() for label in last[len(FOOTER) :].split("; ") if label.strip()]


def source_label(source: SourceRecord) -> str:
    """The footer label ``respond`` writes for this retrieved source (its own helper, so they agree)."""
    as_state = cast(Source, {"id": "", "source": source.source, "title": source.title, "text": "", "score": 0.0})
    return citation_footer([as_state], [1]).removeprefix(FOOTER)


def citations_valid(answer: str, sources: Sequence[SourceRecord], tool_calls: Sequence[ToolCallRecord]) -> bool | None:
    """Every source the answer cites was retrieved (or is a tool that returned a result), and every
    inline ``[n]`` names one of the retrieved sources. None when the answer cites nothing."""
    labels = footer_labels(answer)
    body = answer.rstrip().rsplit("\n\n", 1)[0] if labels is not None else answer
    markers = [int(m.group(1)) for m in _INLINE_CITATION.finditer(body)]
    if labels is None and not markers:
        return None
    allowed = {source_label(s) for s in sources} | {f"{c.name} tool" for c in tool_calls if c.result is not None}
    return all(label in allowed for label in labels or []) and all(1 <= n <= len(sources) for n in markers)


# --- one case --------------------------------------------------------------------------------------


def check_case(expect: Expect, result: CaseResult) -> dict[str, bool]:
    """Named checks for what the case states; a case that did not run fails a ``ran`` check."""
    checks: dict[str, bool] = {}
    if result.error is not None:
        checks["ran"] = False
        return checks
    if expect.intent is not None:
        checks["intent"] = result.intent == expect.intent
    first = result.tool_calls[0] if result.tool_calls else None
    if expect.tool is None:
        checks["tool"] = first is None
    else:
        checks["tool"] = first is not None and first.name == expect.tool.name
        if checks["tool"] and first is not None and expect.tool.args:
            checks["tool_args"] = args_match(expect.tool.args, first.args)
    if expect.refusal is not None:
        checks["refusal"] = refused(expect, result)
    if expect.facts:
        checks["facts"] = contains_all(result.answer, expect.facts)
    if expect.forbidden:
        checks["no_leak"] = contains_none(result.answer, expect.forbidden) and contains_none(
            result.draft, expect.forbidden
        )
    if expect.handoff is not None:
        ok = result.handoff == expect.handoff
        if ok and expect.handoff and expect.handoff_reason is not None:
            ok = result.handoff_reason == expect.handoff_reason
        checks["handoff"] = ok
    valid = citations_valid(result.answer, result.sources, result.tool_calls)
    if valid is not None:
        checks["citations"] = valid
    return checks


def refused(expect: Expect, result: CaseResult) -> bool:
    """``clarify``: a call waits for missing arguments, nothing ran and no human was needed.
    ``decline``: the expected tool ran and refused, with the expected words."""
    if expect.refusal == "clarify":
        calls = result.tool_calls
        asked = any(c.missing for c in calls) and all(c.result is None and c.error is None for c in calls)
        return asked and not result.handoff
    if expect.refusal == "decline" and expect.tool is not None:
        call = next((c for c in result.tool_calls if c.name == expect.tool.name), None)
        if call is None or call.error is None or call.result is not None:
            return False
        return expect.tool.error is None or normalise(expect.tool.error) in normalise(call.error)
    return False


def is_acceptable(expect: Expect, result: CaseResult, checks: dict[str, bool]) -> bool | None:
    """See the module docstring: None when there is no drafted answer or nothing to judge it by."""
    if result.error is not None or result.quality is None or result.candidate is None or not expect.facts:
        return None
    if expect.handoff is True:
        return False
    if not all(checks.get(name, True) for name in ("intent", "tool", "tool_args")):
        return False
    return contains_all(result.candidate, expect.facts) and contains_none(result.candidate, expect.forbidden)


def score(case: Case, result: CaseResult) -> CaseResult:
    """``result`` with its expectations, checks, acceptability and verdict filled in."""
    checks = check_case(case.expect, result)
    return result.model_copy(
        update={
            "expected": case.expect,
            "tags": list(case.tags),
            "checks": checks,
            "acceptable": is_acceptable(case.expect, result, checks),
            "passed": result.error is None and all(checks.values()),
        }
    )


# --- over a run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class IntentMetrics:
    accuracy: float | None
    macro_f1: float | None
    labels: list[str]
    matrix: list[list[int]]
    """``matrix[i][j]``: cases whose expected label is ``labels[i]`` and predicted ``labels[j]``."""
    per_label: dict[str, LabelScores]
    n: int


def intent_metrics(pairs: Sequence[tuple[str, str | None]]) -> IntentMetrics:
    """Accuracy, macro-F1 and the confusion matrix from (expected, predicted) labels. Macro-F1
    averages over every label seen as expected or predicted (scikit-learn's default)."""
    named = [(want, got or NO_INTENT) for want, got in pairs]
    labels = sorted({label for pair in named for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for want, got in named:
        matrix[index[want]][index[got]] += 1
    per_label: dict[str, LabelScores] = {}
    for label, i in index.items():
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = LabelScores(round(precision, 4), round(recall, 4), round(f1, 4), support)
    n = len(named)
    accuracy = sum(want == got for want, got in named) / n if n else None
    macro = sum(s.f1 for s in per_label.values()) / len(per_label) if per_label else None
    return IntentMetrics(_round(accuracy), _round(macro), labels, matrix, per_label, n)


@dataclass(frozen=True)
class BinaryMetrics:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float | None:
        return _round(self.tp / (self.tp + self.fp)) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return _round(self.tp / (self.tp + self.fn)) if self.tp + self.fn else None


def binary_metrics(pairs: Iterable[tuple[bool, bool]]) -> BinaryMetrics:
    """Counts from (expected, actual) pairs, e.g. (a handoff was expected, the agent handed off)."""
    counts = Counter(pairs)
    return BinaryMetrics(
        tp=counts[(True, True)], fp=counts[(False, True)], fn=counts[(True, False)], tn=counts[(False, False)]
    )


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_score: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Calibration:
    ece: float | None
    """Expected calibration error: sum over bins of (bin share) x |accuracy - mean score|."""
    bins: list[CalibrationBin]
    n: int


def calibration(pairs: Sequence[tuple[float, bool]], n_bins: int = 10) -> Calibration:
    """Equal-width bins over [0, 1] of (score, outcome) pairs; a score of 1.0 falls in the last bin."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for value, ok in pairs:
        clipped = min(1.0, max(0.0, value))
        grouped[min(int(clipped * n_bins), n_bins - 1)].append((clipped, ok))
    bins: list[CalibrationBin] = []
    gap = 0.0
    for i, members in enumerate(grouped):
        low, high = i / n_bins, (i + 1) / n_bins
        if not members:
            bins.append(CalibrationBin(round(low, 4), round(high, 4), 0, None, None))
            continue
        mean = sum(v for v, _ in members) / len(members)
        accuracy = sum(ok for _, ok in members) / len(members)
        gap += len(members) * abs(accuracy - mean)
        bins.append(CalibrationBin(round(low, 4), round(high, 4), len(members), round(mean, 4), round(accuracy, 4)))
    n = len(pairs)
    return Calibration(_round(gap / n) if n else None, bins, n)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50_s": _round(percentile(values, 50)),
        "p95_s": _round(percentile(values, 95)),
        "mean_s": _round(sum(values) / len(values)) if values else None,
        "max_s": _round(max(values)) if values else None,
    }


def share(flags: Iterable[bool]) -> float | None:
    items = list(flags)
    return _round(sum(items) / len(items)) if items else None


def summarize(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Every metric of a run, from its scored rows alone. ``metrics`` is flat (name -> number or None,
    None meaning "no case measures it"); the other keys hold the detail behind them."""
    ran = [r for r in results if r.error is None]
    intents = intent_metrics([(r.expected.intent, r.intent) for r in ran if r.expected.intent is not None])
    handoffs = binary_metrics((r.expected.handoff, r.handoff) for r in ran if r.expected.handoff is not None)
    judged = [(r.quality, r.acceptable) for r in ran if r.quality is not None and r.acceptable is not None]
    calib = calibration([(q, ok) for q, ok in judged])
    turns = [t for r in ran for t in r.turn_s]
    per_node: dict[str, list[float]] = {}
    for r in ran:
        for node, seconds in r.nodes:
            per_node.setdefault(node, []).append(seconds)
    n_turns = sum(r.turns_run for r in ran)
    tokens_in = sum(r.input_tokens for r in results)
    tokens_out = sum(r.output_tokens for r in results)
    metrics: dict[str, float | int | None] = {
        "pass_rate": share(r.passed for r in results),
        "intent_accuracy": intents.accuracy,
        "intent_macro_f1": intents.macro_f1,
        "tool_selection_accuracy": share(r.checks["tool"] for r in ran if "tool" in r.checks),
        "tool_args_accuracy": share(r.checks["tool_args"] for r in ran if "tool_args" in r.checks),
        "facts_answer": share(r.checks["facts"] for r in ran if "facts" in r.checks),
        "facts_candidate": share(
            contains_all(r.candidate, r.expected.facts) for r in ran if r.expected.facts and r.candidate is not None
        ),
        "no_leak": share(r.checks["no_leak"] for r in ran if "no_leak" in r.checks),
        "citation_validity": share(r.checks["citations"] for r in ran if "citations" in r.checks),
        "handoff_precision": handoffs.precision,
        "handoff_recall": handoffs.recall,
        "refusal_accuracy": share(r.checks["refusal"] for r in ran if "refusal" in r.checks),
        "acceptable_rate": share(ok for _, ok in judged),
        "ece": calib.ece,
        "errors": len(results) - len(ran),
        "turn_p50_s": _round(percentile(turns, 50)),
        "turn_p95_s": _round(percentile(turns, 95)),
        "tokens_in_per_turn": _round(tokens_in / n_turns) if n_turns else None,
        "tokens_out_per_turn": _round(tokens_out / n_turns) if n_turns else None,
    }
    for node, values in sorted(per_node.items()):
        metrics[f"{node}_p50_s"] = _round(percentile(values, 50))
        metrics[f"{node}_p95_s"] = _round(percentile(values, 95))
    tags = sorted({t for r in results for t in r.tags})
    return {
        "cases": len(results),
        "metrics": metrics,
        "intent": {
            "labels": intents.labels,
            "matrix": intents.matrix,
            "per_label": {k: asdict(v) for k, v in intents.per_label.items()},
            "n": intents.n,
        },
        "handoff": {
            **asdict(handoffs),
            "precision": handoffs.precision,
            "recall": handoffs.recall,
            "handed_off": sum(r.handoff for r in ran),
            "by_reason": dict(Counter(r.handoff_reason for r in ran if r.handoff)),
        },
        "calibration": {"ece": calib.ece, "n": calib.n, "bins": [asdict(b) for b in calib.bins]},
        "latency": {"turn": latency_stats(turns), "nodes": {k: latency_stats(v) for k, v in sorted(per_node.items())}},
        "tokens": {"input": tokens_in, "output": tokens_out, "turns": n_turns},
        "by_tag": {tag: share(r.passed for r in results if tag in r.tags) for tag in tags},
        "checks_failed": dict(Counter(name for r in results for name, ok in r.checks.items() if not ok)),
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
