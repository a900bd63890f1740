"""Intent classification over sentence embeddings.

A multinomial logistic regression on normalised MiniLM embeddings of the taxonomy's examples, with a
temperature fitted on cross-validated logits so that "0.8 confident" is right about 80% of the time
on the examples (calibration, not just ranking). Training takes well under a second once the example
embeddings are cached; embedding the examples is the slow part and is cached by content hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from r1agent.intents.taxonomy import Taxonomy

_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 200))


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    scores: dict[str, float]


class IntentClassifier:
    def __init__(self, model: LogisticRegression, temperature: float, embeddings: Embeddings) -> None:
        self._model = model
        self.temperature = temperature
        self._embeddings = embeddings
        self.labels: list[str] = [str(c) for c in model.classes_]

    @classmethod
    def fit(
        cls,
        taxonomy: Taxonomy,
        embeddings: Embeddings,
        *,
        cache_dir: Path | None = None,
        c: float = 10.0,
    ) -> IntentClassifier:
        texts = [text for text, _ in taxonomy.examples]
        labels = np.array([label for _, label in taxonomy.examples])
        x = _embed_cached(texts, embeddings, cache_dir)
        model = LogisticRegression(C=c, max_iter=2000)
        temperature = _fit_temperature(model, x, labels)
        model.fit(x, labels)
        return cls(model, temperature, embeddings)

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def predict_many(self, texts: list[str]) -> list[Prediction]:
        x = np.asarray(self._embeddings.embed_documents(texts), dtype=np.float32)
        probs = _softmax(self._logits(x) / self.temperature)
        out = []
        for row in probs:
            best = int(row.argmax())
            scores = {label: round(float(p), 4) for label, p in zip(self.labels, row, strict=True)}
            out.append(Prediction(self.labels[best], float(row[best]), scores))
        return out

    def _logits(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        return np.asarray(self._model.decision_function(x), dtype=np.float64)


def _fit_temperature(model: LogisticRegression, x: NDArray[np.float32], y: NDArray[np.str_]) -> float:
    """Temperature minimising the negative log-likelihood of out-of-fold predictions."""
    _, counts = np.unique(y, return_counts=True)
    folds = int(min(5, counts.min()))
    if folds < 2:
        return 1.0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    logits = cross_val_predict(model, x, y, cv=splitter, method="decision_function")
    classes = np.unique(y)
    truth = np.searchsorted(classes, y)
    best_t, best_nll = 1.0, np.inf
    for t in _TEMPERATURES:
        probs = _softmax(logits / t)
        nll = -np.mean(np.log(probs[np.arange(len(y)), truth] + 1e-12))
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _embed_cached(texts: list[str], embeddings: Embeddings, cache_dir: Path | None) -> NDArray[np.float32]:
    model_id = str(getattr(embeddings, "model_name", type(embeddings).__name__))
    digest = hashlib.sha256("\x1f".join([model_id, *texts]).encode()).hexdigest()[:24]
    path = cache_dir / "embeddings" / f"intents-{digest}.npy" if cache_dir else None
    if path is not None and path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return np.asarray(cached, dtype=np.float32)
    x = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, x)
        tmp.replace(path)
    return x
