"""The semantic answer cache: a knowledge question asked again (in other words) is answered from the cache.

Entries live in a Qdrant collection next to the knowledge base (``<collection>_answers``, same client, same
embeddings), so the embedded store and a Qdrant server both work and entries survive restarts.

What makes a cached answer safe to reuse:

- **Only public knowledge turns** are cached: the graph stores an answer only when the turn used no tool
  (no customer's private data), had no attachment, opened its thread (no earlier turn the answer could
  depend on) and passed the quality gate. See ``r1agent.nodes.cache``.
- **Same context**: an entry is keyed by a *scope* (the model, the token budget, retrieval knobs and the
  turn's intent), and only matches a question with the same scope.
- **Same knowledge**: every change to the knowledge base gives it a new revision
  (:meth:`KnowledgeBase.revision`); entries written under another revision never match, and are purged on
  the next write.
- **Near-duplicate only**: cosine similarity of the questions' embeddings at least ``min_similarity``
  (0.95 by default: rewordings and typos, not a different question on the same topic), and younger than
  ``ttl_s``. The table is bounded (``max_entries``; the oldest go first).
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from qdrant_client import models

from r1agent.knowledge.store import KnowledgeBase
from r1agent.state import Source

_NAMESPACE = uuid.UUID("0b6a4c1e-7d1f-4f55-9a53-5d1c2f9b8a10")


@dataclass(frozen=True)
class CachedAnswer:
    """What a turn needs to answer again without the model: the draft and the signals that scored it."""

    question: str
    draft: str
    thinking: str
    sources: list[Source]
    cited: list[int]
    logprob: float | None
    finished: bool | None
    similarity: float = 1.0
    """How close the asking question was to the cached one (1.0 when written)."""


def normalise(question: str) -> str:
    """The cache's view of a question: case, width and spacing do not make a new entry."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


class AnswerCache:
    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        min_similarity: float = 0.95,
        ttl_s: float = 7 * 24 * 3600.0,
        max_entries: int = 10_000,
    ) -> None:
        if not 0.0 < min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in (0, 1], got {min_similarity}")
        self._kb = kb
        self.collection = f"{kb.collection}_answers"
        self.min_similarity = min_similarity
        self.ttl_s = ttl_s
        self.max_entries = max_entries

    def lookup(self, question: str, *, scope: str) -> CachedAnswer | None:
        text = normalise(question)
        client = self._kb.client
        if not text or not client.collection_exists(self.collection):
            return None
        hits = client.query_points(
            self.collection,
            query=self._kb.embed_query(text),
            query_filter=self._current(scope, fresh_after=time.time() - self.ttl_s),
            limit=1,
            with_payload=True,
            score_threshold=self.min_similarity,
        ).points
        if not hits:
            return None
        p: dict[str, Any] = hits[0].payload or {}
        return CachedAnswer(
            question=str(p["question"]),
            draft=str(p["draft"]),
            thinking=str(p.get("thinking", "")),
            sources=[
                Source(id=s["id"], source=s["source"], title=s["title"], text=s["text"], score=s["score"])
                for s in p.get("sources", [])
            ],
            cited=[int(i) for i in p.get("cited", [])],
            logprob=p.get("logprob"),
            finished=p.get("finished"),
            similarity=round(float(hits[0].score), 4),
        )

    def store(self, answer: CachedAnswer, *, scope: str) -> None:
        text = normalise(answer.question)
        if not text:
            return
        client = self._kb.client
        vector = self._kb.embed_query(text)
        if not client.collection_exists(self.collection):
            client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=len(vector), distance=models.Distance.COSINE),
            )
        payload = {
            "question": text,
            "draft": answer.draft,
            "thinking": answer.thinking,
            "sources": [dict(s) for s in answer.sources],
            "cited": answer.cited,
            "logprob": answer.logprob,
            "finished": answer.finished,
            "scope": scope,
            "kb_revision": self._kb.revision(),
            "created": time.time(),
        }
        point_id = str(uuid.uuid5(_NAMESPACE, f"{scope}\n{text}"))  # the same question overwrites its entry
        client.upsert(self.collection, points=[models.PointStruct(id=point_id, vector=vector, payload=payload)])
        self._prune()

    def count(self) -> int:
        client = self._kb.client
        return client.count(self.collection, exact=True).count if client.collection_exists(self.collection) else 0

    def clear(self) -> None:
        if self._kb.client.collection_exists(self.collection):
            self._kb.client.delete_collection(self.collection)

    def _current(self, scope: str, *, fresh_after: float) -> models.Filter:
        return models.Filter(
            must=[
                models.FieldCondition(key="scope", match=models.MatchValue(value=scope)),
                models.FieldCondition(key="kb_revision", match=models.MatchValue(value=self._kb.revision())),
                models.FieldCondition(key="created", range=models.Range(gt=fresh_after)),
            ]
        )

    def _prune(self) -> None:
        """Drop entries of an older knowledge base or past their time, then the oldest past ``max_entries``."""
        client = self._kb.client
        stale = models.Filter(
            should=[
                models.Filter(
                    must_not=[
                        models.FieldCondition(key="kb_revision", match=models.MatchValue(value=self._kb.revision()))
                    ]
                ),
                models.Filter(
                    must=[models.FieldCondition(key="created", range=models.Range(lt=time.time() - self.ttl_s))]
                ),
            ]
        )
        client.delete(self.collection, points_selector=models.FilterSelector(filter=stale))
        excess = self.count() - self.max_entries
        if excess <= 0:
            return
        ages: list[tuple[float, str]] = []
        offset = None
        while True:  # bounded by max_entries plus the few written since the last prune
            points, offset = client.scroll(self.collection, limit=512, offset=offset, with_payload=["created"])
            ages.extend((float((p.payload or {}).get("created", 0.0)), str(p.id)) for p in points)
            if offset is None:
                break
        oldest = [point_id for _, point_id in sorted(ages)[:excess]]
        client.delete(self.collection, points_selector=models.PointIdsList(points=list(oldest)))
