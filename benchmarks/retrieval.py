"""Retrieval latency: embedded Qdrant (local mode) against brute-force numpy on the same vectors.

    make bench            # or: .venv/bin/python benchmarks/retrieval.py --sizes 1000 10000 100000

Search latency depends on the number and size of vectors, not on what they mean, so the collections are
filled with seeded random unit vectors of MiniLM's width (384); the queries are real MiniLM embeddings of
customer questions, and the end-to-end line (query embedding + search, as ``KnowledgeBase.search`` does) uses
the real model. Medians and p95 over --queries searches after a warm-up; the ratio is Qdrant / numpy.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import numpy as np
from qdrant_client import QdrantClient, models

from r1agent.models.embeddings import load_embeddings

DIM = 384
QUESTIONS = [
    "How long do I have to return an item?",
    "Can I exchange a laptop for a different colour?",
    "Where is my order?",
    "Do you ship to Canada?",
    "How do I cancel an order that is still pending?",
    "What payment methods do you accept?",
    "My water bottle arrived broken",
    "Is the mechanical keyboard available with linear switches?",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def fill(client: QdrantClient, name: str, vectors: np.ndarray) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    batch = 2048
    for start in range(0, len(vectors), batch):
        chunk = vectors[start : start + batch]
        client.upsert(
            name,
            points=models.Batch(
                ids=[str(uuid.UUID(int=start + i + 1)) for i in range(len(chunk))],
                vectors=chunk.tolist(),
                payloads=[{"text": f"chunk {start + i}"} for i in range(len(chunk))],
            ),
            wait=True,
        )


def time_calls(call: object, queries: list[np.ndarray], runs: int) -> list[float]:
    assert callable(call)
    call(queries[0])  # warm-up
    times = []
    for i in range(runs):
        start = time.perf_counter()
        call(queries[i % len(queries)])
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()

    embeddings = load_embeddings(None)
    queries = [np.asarray(v, dtype=np.float32) for v in embeddings.embed_documents(QUESTIONS)]
    rng = np.random.default_rng(0)
    print(f"{'chunks':>8} {'qdrant p50':>11} {'p95':>7} {'numpy p50':>10} {'p95':>7} {'ratio':>6}  (ms)")
    for size in args.sizes:
        vectors = rng.standard_normal((size, DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        client = QdrantClient(location=":memory:")
        fill(client, "bench", vectors)

        def qdrant(q: np.ndarray, client: QdrantClient = client) -> object:
            return client.query_points("bench", query=q.tolist(), limit=args.k, with_payload=True).points

        def brute(q: np.ndarray, matrix: np.ndarray = vectors) -> object:
            scores = matrix @ (q / np.linalg.norm(q))
            top = np.argpartition(-scores, args.k)[: args.k]
            return top[np.argsort(-scores[top])]

        # Same answers first: a fast wrong search would be no result.
        for q in queries:
            got = [uuid.UUID(str(p.id)).int - 1 for p in qdrant(q)]  # type: ignore[attr-defined]
            assert got == list(brute(q)), f"qdrant and numpy disagree at {size} chunks"  # type: ignore[call-overload]
        tq = time_calls(qdrant, queries, args.queries)
        tn = time_calls(brute, queries, args.queries)
        ratio = statistics.median(tq) / statistics.median(tn)
        print(
            f"{size:>8} {statistics.median(tq):>11.2f} {percentile(tq, 95):>7.2f} "
            f"{statistics.median(tn):>10.2f} {percentile(tn, 95):>7.2f} {ratio:>6.1f}x"
        )
        if size == 10000:
            end_to_end = []
            for i in range(args.queries):
                start = time.perf_counter()
                q = np.asarray(embeddings.embed_query(QUESTIONS[i % len(QUESTIONS)]), dtype=np.float32)
                qdrant(q)
                end_to_end.append((time.perf_counter() - start) * 1000)
            print(
                f"{'':>8} embed + search at 10k: p50 {statistics.median(end_to_end):.2f} ms, "
                f"p95 {percentile(end_to_end, 95):.2f} ms (target p50 <= 25 ms)"
            )
        client.close()


if __name__ == "__main__":
    main()
