"""What feedback tunes without training: the suggested handoff threshold and the intent overlay."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from r1agent.errors import ConfigurationError, InputError
from r1agent.feedback.store import Feedback, IntentSuggestion
from r1agent.feedback.tuning import append_overlay, suggest_threshold, threshold_pairs, write_json
from r1agent.feedback.turns import TurnRecord
from r1agent.intents.taxonomy import load_taxonomy


def rated(score: float | None, rating: int, *, handed_off: bool = False) -> Feedback:
    record = TurnRecord(
        thread_id=f"t{score}-{rating}",
        turn=1,
        text="q",
        prompt=[],
        draft="d",
        reply="r",
        quality=score,
        ticket_id="tk" if handed_off else None,
    )
    return Feedback(f"f{score}", record.thread_id, 1, None, rating, None, record, 0.0, 0.0)


def test_the_lowest_threshold_that_keeps_bad_answers_out() -> None:
    feedback = [rated(0.31, 1), rated(0.52, 2), rated(0.45, 4), rated(0.6, 4), rated(0.8, 5)]
    fit = suggest_threshold(feedback)
    assert fit.threshold == 0.6  # above 0.52 (rated 2); 0.45 (rated 4) is the price
    assert (fit.precision, fit.coverage, fit.reached, fit.n) == (1.0, 0.4, True, 5)
    relaxed = suggest_threshold(feedback, target_precision=0.7)
    assert relaxed.threshold == 0.45  # 0.45, 0.52, 0.6, 0.8 answered: 3 of 4 acceptable


def test_handed_off_and_unscored_turns_do_not_count() -> None:
    feedback = [rated(0.2, 5, handed_off=True), rated(None, 1), rated(0.7, 2), rated(0.9, 5)]
    assert threshold_pairs(feedback) == [(0.7, False), (0.9, True)]
    assert suggest_threshold(feedback).threshold == 0.9
    with pytest.raises(InputError, match="no rated answers"):
        suggest_threshold([rated(0.2, 5, handed_off=True)])


def test_no_threshold_reaches_the_target() -> None:
    fit = suggest_threshold([rated(0.9, 1), rated(0.4, 5)])
    assert not fit.reached and fit.threshold > 0.9  # everything would go to a human, and it says so


def test_write_json_is_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "threshold.json"
    write_json(path, {"threshold": 0.6})
    write_json(path, {"threshold": 0.7})
    assert path.read_text() == '{\n  "threshold": 0.7\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["threshold.json"]


def suggestion(text: str, label: str) -> IntentSuggestion:
    return IntentSuggestion("s", "t", 1, None, text, "small_talk", label, "accepted", 0.0, 0.0)


def test_accepted_examples_join_the_taxonomy(tmp_path: Path) -> None:
    overlay = tmp_path / "intents.extra.csv"
    base = Counter(label for _, label in load_taxonomy().examples)
    assert load_taxonomy(overlay=overlay).examples == load_taxonomy().examples  # no file: unchanged
    append_overlay(overlay, suggestion('my charger, the "fast" one, is broken', "tech_support"))
    append_overlay(overlay, suggestion("close my account", "account"))
    with overlay.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["text", "label"] and rows.count(["text", "label"]) == 1
    merged = load_taxonomy(overlay=overlay)
    counts = Counter(label for _, label in merged.examples)
    assert counts["tech_support"] == base["tech_support"] + 1 and counts["account"] == base["account"] + 1
    assert merged.examples[-2:] == (
        ('my charger, the "fast" one, is broken', "tech_support"),
        ("close my account", "account"),
    )
    assert merged.descriptions == load_taxonomy().descriptions


def test_an_overlay_label_the_taxonomy_lacks_is_a_clear_error(tmp_path: Path) -> None:
    overlay = tmp_path / "intents.extra.csv"
    append_overlay(overlay, suggestion("refund my fees", "billing"))
    with pytest.raises(ConfigurationError, match="billing"):
        load_taxonomy(overlay=overlay)
