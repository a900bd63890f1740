"""Intent classification over sentence embeddings.

A multinomial logistic regression on normalised MiniLM embeddings of the taxonomy's examples, with a
temperature fitted on cross-validated logits so that "0.8 confident" is right about 80% of the time
on the examples (calibration, not just ranking). Training takes well under a second once the example
embeddings are cached; embedding the examples is the slow part and is cached by content hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

from r1agent.intents.taxonomy import Taxonomy
from r1agent.models.embeddings import embed_documents_cached, embedding_digest

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 200))


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    scores: dict[str, float]


class IntentClassifier:
    def __init__(
        self,
        weights: NDArray[np.float64],
        bias: NDArray[np.float64],
        labels: list[str],
        temperature: float,
        embeddings: Embeddings,
    ) -> None:
        """A fitted linear model: ``weights`` (labels x dims) and ``bias`` (labels); see :meth:`fit`.
        Prediction is plain numpy, so a warm start never imports scikit-learn (~1.5 s)."""
        if weights.shape[0] != len(labels) or bias.shape != (len(labels),) or len(labels) < 2:
            raise ValueError("an intent model needs one weight row and one bias per label, and 2 labels or more")
        self._weights = weights
        self._bias = bias
        self.temperature = temperature
        self._embeddings = embeddings
        self.labels = labels

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
        # The fit (a 5-fold calibration plus the final model, ~3 s) is cached next to the example embeddings,
        # keyed by everything it depends on: most of a warm start was spent redoing it.
        key = embedding_digest(embeddings, [f"C={c}", *texts, "\x1e", *labels.tolist()])
        path = cache_dir / "embeddings" / f"intent-model-{key}.npz" if cache_dir else None
        if path is not None and path.is_file():
            with np.load(path) as saved:
                classes = [str(label) for label in saved["classes"]]
                return cls(saved["coef"], saved["intercept"], classes, float(saved["temperature"]), embeddings)
        from sklearn.linear_model import LogisticRegression  # only when fitting: see __init__

        x = embed_documents_cached(embeddings, texts, cache_dir, kind="intents")
        model = LogisticRegression(C=c, max_iter=2000)
        temperature = _fit_temperature(model, x, labels)
        model.fit(x, labels)
        coef = np.asarray(model.coef_, dtype=np.float64)
        intercept = np.asarray(model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:  # two labels: sklearn keeps one row (the second label's); softmax([0, z]) = sigmoid(z)
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros_like(intercept), intercept])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, coef=coef, intercept=intercept, classes=model.classes_, temperature=temperature)
            tmp.replace(path)  # atomic: a concurrent process reads the old file or the new one
        return cls(coef, intercept, [str(label) for label in model.classes_], temperature, embeddings)

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
        # LogisticRegression.decision_function, one column per label (see fit for two labels).
        return np.asarray(x @ self._weights.T + self._bias, dtype=np.float64)


def _fit_temperature(model: LogisticRegression, x: NDArray[np.float32], y: NDArray[np.str_]) -> float:
    """Temperature minimising the negative log-likelihood of out-of-fold predictions."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    _, counts = np.unique(y, return_counts=True)
    folds = int(min(5, counts.min()))
    if folds < 2:
        return 1.0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    logits = cross_val_predict(model, x, y, cv=splitter, method="decision_function")
    if logits.ndim == 1:  # two labels: one score, for the second; the first's is 0
        logits = np.column_stack([np.zeros_like(logits), logits])
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
