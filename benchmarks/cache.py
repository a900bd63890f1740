"""The semantic answer cache: a repeated knowledge question answered from the cache vs by the model.

    make bench            # or: .venv/bin/python benchmarks/cache.py --questions 6

Each question is asked once (a miss: retrieval + the model, then stored) and once reworded (a hit: no
retrieval, no model), each in a new thread on the real default stack (SQLite checkpoints, MiniLM, embedded
Qdrant, SmolLM2). Also measured: what the lookup costs a turn that misses (one embedding + one Qdrant
query), which every knowledge turn pays. Medians; the ratio is miss / hit.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver

from r1agent.context import Context
from r1agent.deps import build_deps
from r1agent.graphs import build_graph
from r1agent.settings import Settings

QUESTIONS = [
    "How long do I have to return an item?",
    "Can I exchange an item for a different size?",
    "Where does my refund go when I send items back?",
    "Do you sell mechanical keyboards?",
    "How do you check who I am before looking at my account?",
    "Can I cancel an order that has already shipped?",
    "What happens if I paid with a gift card and cancel?",
    "Do you have any bluetooth speakers?",
]


def reword(question: str) -> str:
    return question.lower().rstrip("?") + " ?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    questions = QUESTIONS[: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        deps = build_deps(Settings(data_dir=Path(tmp), max_new_tokens=args.max_new_tokens, answer_cache=True))
        assert deps.answer_cache is not None
        conn = sqlite3.connect(str(Path(tmp) / "threads.sqlite"), check_same_thread=False)
        graph = build_graph(deps, checkpointer=SqliteSaver(conn))
        ctx = Context(quality_threshold=0.0, max_new_tokens=args.max_new_tokens)  # every answer is stored

        def ask(text: str, thread: str) -> tuple[float, Any]:
            start = time.perf_counter()
            out = graph.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}, context=ctx)
            return time.perf_counter() - start, out

        ask("Hello, what can you do?", "warm-up")  # first-call allocations in every model
        misses, hits, lookups = [], [], []
        for i, q in enumerate(questions):
            start = time.perf_counter()
            deps.answer_cache.lookup(q + " (not asked yet)", scope="bench")  # a miss's lookup cost
            lookups.append(time.perf_counter() - start)
            seconds, out = ask(q, f"miss-{i}")
            assert not out.get("cached"), f"unexpected hit for {q!r}"
            misses.append(seconds)
            seconds, out = ask(reword(q), f"hit-{i}")
            assert out.get("cached"), f"no hit for the reworded {q!r}"
            hits.append(seconds)
        deps.close()
        conn.close()
    miss, hit = statistics.median(misses), statistics.median(hits)
    print(f"{len(questions)} knowledge questions, {args.max_new_tokens} new tokens max, medians:")
    print(f"  answered by the model (miss) {miss * 1000:8.0f} ms")
    print(f"  answered from the cache (hit) {hit * 1000:7.0f} ms   -> {miss / hit:.1f}x faster")
    print(f"  lookup cost on a miss         {statistics.median(lookups) * 1000:7.1f} ms (paid by every knowledge turn)")


if __name__ == "__main__":
    main()
