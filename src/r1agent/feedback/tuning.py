"""What feedback tunes without training: the handoff threshold, and the intent examples.

Threshold: a rated answer is acceptable when rated 3 or more. The fit (the evals' own
:func:`~r1agent.evals.threshold.fit_threshold`) by default takes the lowest threshold whose answered
turns reach precision 1.0, i.e. the lowest that would have kept every answer rated 2 or less away from
the customer. Only turns the agent answered itself count: a handed-off turn's rating judges the human's
reply, not the score that sent it to them.

Intents: an accepted correction is appended to ``data_dir/intents.extra.csv`` (``text,label``), which
the taxonomy loader merges into the taxonomy (:func:`r1agent.intents.taxonomy.load_taxonomy`) at the
next start.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r1agent.errors import InputError
from r1agent.evals.threshold import ThresholdFit, fit_threshold
from r1agent.feedback.store import Feedback, IntentSuggestion

ACCEPTABLE_RATING = 3


def threshold_pairs(feedback: Sequence[Feedback]) -> list[tuple[float, bool]]:
    """(quality score, acceptable) for every rated turn the agent answered itself."""
    return [
        (f.record.quality, f.rating >= ACCEPTABLE_RATING)
        for f in feedback
        if f.record.quality is not None and not f.record.handed_off and not f.record.rejected
    ]


def suggest_threshold(
    feedback: Sequence[Feedback], *, target_precision: float | None = 1.0, min_answered: int = 1
) -> ThresholdFit:
    pairs = threshold_pairs(feedback)
    if not pairs:
        raise InputError("no rated answers with a quality score yet: rate some answered turns first")
    return fit_threshold(pairs, target_precision=target_precision, min_answered=min_answered)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def threshold_report(fit: ThresholdFit, *, current: float | None) -> dict[str, Any]:
    report = fit.to_dict()
    report.update(current_threshold=current, created_at=time.time(), source="feedback")
    return report


def append_overlay(path: Path, suggestion: IntentSuggestion) -> None:
    """Add the accepted example to the overlay CSV (created with its header on first use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["text", "label"])
        writer.writerow([suggestion.text, suggestion.label])
