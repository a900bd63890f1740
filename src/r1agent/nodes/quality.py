"""score_quality: one confidence in [0, 1] from signals that can each be checked by hand.

Signals (each in [0, 1], recorded in state so evals and humans can see why):
- ``intent``: the classifier's calibrated confidence.
- ``evidence``: how relevant the best source was (cosine similarity, rescaled), or whether a tool
  call succeeded. Small talk needs none and skips it.
- ``groundedness``: share of the answer's content words found in its sources, tool results or the
  customer's own words. An answer made of words from nowhere is the signature of a hallucination.
- ``fluency``: the model's own geometric-mean token probability over the completion.
- ``sanity``: a multiplier that sinks empty, truncated or looping answers whatever else says.

The score is ``sanity ×`` the weighted *geometric* mean of the others that are present, so one dead
signal (an answer with no support in its sources) sinks the score instead of being averaged away.
Fluency weighs less: small models are unsure of every token, right or wrong. Weights are fixed here
and the threshold is a per-run setting; fitting it from an eval run is the evals' job.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from langgraph.runtime import Runtime

from r1agent.context import Context, context_of
from r1agent.state import Quality, QualityUpdate, State

WEIGHTS = {"intent": 1.0, "evidence": 1.0, "groundedness": 1.5, "fluency": 0.5}
_FLOOR = 0.01  # log(0) guard: a zero signal counts as 0.01, which still sinks the score
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    """about above after again also because been before being below between both could does doing down
    during each from further have having here into itself just more most only other over same should
    some such than that their theirs them then there these they this those through under until very were
    what when where which while will with would your yours you're please thank thanks help""".split()
)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) >= 4 and w not in _STOP]


def repetition(text: str) -> float:
    """1 - distinct word trigrams / all trigrams: 0 for fresh text, near 1 for a loop."""
    words = text.lower().split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return 1.0 - len(set(grams)) / len(grams) if len(grams) >= 8 else 0.0


def signals_for(state: State) -> tuple[dict[str, float], float]:
    """The signals and the sanity multiplier for the current draft."""
    draft = state.get("draft", "")
    intent = state.get("intent")
    sources = state.get("sources") or []
    calls = state.get("tool_calls") or []
    small_talk = intent is not None and intent["label"] == "small_talk" and not sources and not calls
    signals: dict[str, float] = {}
    if intent is not None:
        signals["intent"] = intent["confidence"]
    if calls:
        signals["evidence"] = 1.0 if any(c["error"] is None for c in calls) else 0.0
    elif not small_talk:
        best = max((s["score"] for s in sources), default=0.0)
        signals["evidence"] = _clip((best - 0.15) / 0.45)
    words = content_words(draft)
    if words and not small_talk:
        pool = " ".join([s["text"] for s in sources] + [c["result"] or "" for c in calls] + [state.get("text", "")])
        known = set(content_words(pool))
        signals["groundedness"] = sum(w in known for w in words) / len(words)
    logprob = state.get("logprob")
    if logprob is not None:
        signals["fluency"] = _clip(math.exp(logprob))
    sanity = 1.0
    if not draft.strip():
        sanity = 0.0
    else:
        if repetition(draft) > 0.5:
            sanity *= 0.5
        if state.get("finished") is False:
            sanity *= 0.7  # cut off at the token budget, likely mid-sentence
    signals["sanity"] = sanity
    return {k: round(v, 4) for k, v in signals.items()}, sanity


def score_quality(state: State, runtime: Runtime[Context]) -> QualityUpdate:
    signals, sanity = signals_for(state)
    return QualityUpdate(
        quality=Quality(
            score=round(sanity * combine(signals), 4), signals=signals, threshold=context_of(runtime).quality_threshold
        )
    )


def combine(signals: dict[str, float]) -> float:
    weighted = [(WEIGHTS[k], max(v, _FLOOR)) for k, v in signals.items() if k in WEIGHTS]
    total = sum(w for w, _ in weighted)
    if not total:
        return 0.0
    return math.exp(sum(w * math.log(v) for w, v in weighted) / total)


def route_after_quality(state: State) -> Literal["answer", "open_ticket"]:
    quality = state.get("quality")
    if quality is None or quality["score"] < quality["threshold"]:
        return "open_ticket"
    return "answer"


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))
