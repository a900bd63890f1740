"""``r1agent eval intents``: train the real intent classifier on one labelled CSV, score it on another.

The classifier is the agent's own (:class:`r1agent.intents.IntentClassifier`: MiniLM embeddings, a
logistic regression, a temperature fitted on cross-validated logits), trained exactly as the agent
trains it on a taxonomy. Reported: accuracy, macro-F1, mean confidence, expected calibration error
(confidence against being right) and, given the out-of-scope label, its precision and recall.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from r1agent.errors import InputError, NotFoundError
from r1agent.evals.scorers import binary_metrics, calibration, intent_metrics
from r1agent.intents import IntentClassifier, Taxonomy

MAX_ROWS = 200_000
MAX_TEXT_CHARS = 2000
LABEL_COLUMNS = ("label", "category", "intent")
"""Accepted names of the label column, as for a CSV taxonomy (BANKING77 calls it ``category``)."""


def read_labelled_csv(path: Path) -> list[tuple[str, str]]:
    """(text, label) rows of a CSV with a ``text`` column and a label column; bad rows name their line."""
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    rows: list[tuple[str, str]] = []
    try:
        # utf-8-sig: spreadsheet "CSV UTF-8" exports start with a byte-order mark.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            label_col = next((c for c in LABEL_COLUMNS if c in fields), None)
            if "text" not in fields or label_col is None:
                raise InputError(f"{path}:1: needs a 'text' column and a label column ({', '.join(LABEL_COLUMNS)})")
            for row in reader:
                text, label = (row.get("text") or "").strip(), (row.get(label_col) or "").strip()
                if not text or not label:
                    raise InputError(f"{path}:{reader.line_num}: empty text or label")
                if len(text) > MAX_TEXT_CHARS:
                    raise InputError(f"{path}:{reader.line_num}: text over {MAX_TEXT_CHARS} characters")
                rows.append((text, label))
                if len(rows) > MAX_ROWS:
                    raise InputError(f"{path}: more than {MAX_ROWS:,} rows")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


@dataclass(frozen=True)
class IntentEval:
    train_rows: int
    test_rows: int
    labels: int
    accuracy: float | None
    macro_f1: float | None
    mean_confidence: float | None
    ece: float | None
    temperature: float
    fit_s: float
    predict_s: float
    oos_label: str | None
    oos_precision: float | None
    oos_recall: float | None
    unseen_test_labels: list[str]
    """Test labels the classifier never saw in training: every such row counts as an error."""
    calibration: dict[str, Any]
    per_label: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def metrics(self) -> dict[str, float | None]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "mean_confidence": self.mean_confidence,
            "ece": self.ece,
            "oos_precision": self.oos_precision,
            "oos_recall": self.oos_recall,
        }


def check_sets(train: list[tuple[str, str]], test: list[tuple[str, str]], *, oos_label: str | None) -> None:
    """What can be checked before the embedding model loads."""
    train_labels = {label for _, label in train}
    if len(train_labels) < 2:
        raise InputError(f"the training set needs at least two labels, found {len(train_labels)}")
    if oos_label is not None and oos_label not in train_labels | {label for _, label in test}:
        raise InputError(f"the out-of-scope label {oos_label!r} is in neither the training nor the test set")


def evaluate_intents(
    train: list[tuple[str, str]],
    test: list[tuple[str, str]],
    embeddings: Embeddings,
    *,
    oos_label: str | None = None,
    cache_dir: Path | None = None,
) -> IntentEval:
    check_sets(train, test, oos_label=oos_label)
    train_labels = {label for _, label in train}
    test_labels = {label for _, label in test}
    started = time.perf_counter()
    classifier = IntentClassifier.fit(Taxonomy(tuple(train)), embeddings, cache_dir=cache_dir)
    fitted = time.perf_counter()
    predictions = classifier.predict_many([text for text, _ in test])
    predicted = time.perf_counter()
    pairs = [(label, p.label) for (_, label), p in zip(test, predictions, strict=True)]
    scored = intent_metrics(pairs)
    calib = calibration([(p.confidence, p.label == label) for (_, label), p in zip(test, predictions, strict=True)])
    oos = binary_metrics((want == oos_label, got == oos_label) for want, got in pairs) if oos_label else None
    return IntentEval(
        train_rows=len(train),
        test_rows=len(test),
        labels=len(train_labels),
        accuracy=scored.accuracy,
        macro_f1=scored.macro_f1,
        mean_confidence=round(sum(p.confidence for p in predictions) / len(predictions), 4),
        ece=calib.ece,
        temperature=round(classifier.temperature, 4),
        fit_s=round(fitted - started, 2),
        predict_s=round(predicted - fitted, 2),
        oos_label=oos_label,
        oos_precision=oos.precision if oos else None,
        oos_recall=oos.recall if oos else None,
        unseen_test_labels=sorted(test_labels - train_labels),
        calibration={"ece": calib.ece, "n": calib.n, "bins": [asdict(b) for b in calib.bins]},
        per_label={k: asdict(v) for k, v in scored.per_label.items()},
    )


def render_intents_report(result: IntentEval, *, train: Path, test: Path) -> str:
    from r1agent.evals.report import RELIABILITY_PNG, fmt

    lines = [
        "# Intent classifier eval",
        "",
        f"Trained on `{train}` ({result.train_rows} rows, {result.labels} labels), tested on `{test}` "
        f"({result.test_rows} rows). Fit {result.fit_s} s (embedding the training texts included), "
        f"predict {result.predict_s} s; temperature {result.temperature}.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {fmt(value)} |" for name, value in result.metrics.items()),
    ]
    if result.unseen_test_labels:
        lines += ["", f"Test labels never seen in training: {', '.join(result.unseen_test_labels)}."]
    worst = sorted(result.per_label.items(), key=lambda kv: (kv[1]["f1"], kv[0]))[:10]
    lines += ["", "Lowest F1:", "", "| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']} | {v['recall']} | {v['f1']} | {v['support']} |" for k, v in worst]
    lines += ["", f"![reliability diagram]({RELIABILITY_PNG})", ""]
    return "\n".join(lines)
