"""The intent classifier's fit is cached: a warm start loads it, and any change to its inputs refits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from sklearn.linear_model import LogisticRegression

from r1agent.intents import IntentClassifier
from r1agent.intents.taxonomy import Taxonomy

EXAMPLES = tuple(
    (f"{word} {i}", label)
    for label, word in (("orders", "where is my parcel"), ("returns", "send it back"), ("greeting", "hello"))
    for i in range(6)
)


def fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = LogisticRegression.fit

    def counted(self: LogisticRegression, *args: object, **kwargs: object) -> LogisticRegression:
        calls.append(1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LogisticRegression, "fit", counted)
    return calls


def test_a_warm_start_loads_the_fit_and_predicts_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = DeterministicFakeEmbedding(size=32)
    first = IntentClassifier.fit(Taxonomy(EXAMPLES), embeddings, cache_dir=tmp_path)
    calls = fits(monkeypatch)
    again = IntentClassifier.fit(Taxonomy(EXAMPLES), embeddings, cache_dir=tmp_path)
    assert calls == []  # nothing was fitted
    assert again.temperature == first.temperature and again.labels == first.labels
    texts = [t for t, _ in EXAMPLES[::4]] + ["something else"]
    for a, b in zip(first.predict_many(texts), again.predict_many(texts), strict=True):
        assert a.label == b.label
        assert a.confidence == pytest.approx(b.confidence, abs=1e-9)
        np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-9)


def test_another_example_refits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = DeterministicFakeEmbedding(size=32)
    IntentClassifier.fit(Taxonomy(EXAMPLES), embeddings, cache_dir=tmp_path)
    calls = fits(monkeypatch)
    IntentClassifier.fit(Taxonomy((*EXAMPLES, ("hi there", "greeting"))), embeddings, cache_dir=tmp_path)
    assert calls  # a corrected or added example (feedback's overlay) must change the model
    calls.clear()
    IntentClassifier.fit(Taxonomy(EXAMPLES), embeddings, cache_dir=tmp_path, c=1.0)
    assert calls


def test_two_labels_work_and_agree_with_scikit_learn(tmp_path: Path) -> None:
    embeddings = DeterministicFakeEmbedding(size=32)
    examples = tuple((t, label) for t, label in EXAMPLES if label != "greeting")
    classifier = IntentClassifier.fit(Taxonomy(examples), embeddings, cache_dir=tmp_path)
    x = np.asarray(embeddings.embed_documents([t for t, _ in examples]), dtype=np.float32)
    reference = LogisticRegression(C=10.0, max_iter=2000).fit(x, [label for _, label in examples])
    # The calibrated score of the second label is the logistic model's sigmoid at the fitted temperature.
    expected = 1 / (1 + np.exp(-reference.decision_function(x) / classifier.temperature))
    predictions = classifier.predict_many([t for t, _ in examples])
    got = [p.scores[str(reference.classes_[1])] for p in predictions]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert [p.label for p in predictions] == list(reference.predict(x))
