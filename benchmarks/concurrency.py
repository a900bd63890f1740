"""Concurrent conversations through the graph: aggregate tokens/s of N at once against one at a time.

    make bench            # or: .venv/bin/python benchmarks/concurrency.py --conversations 8

Every conversation is a real turn on the default stack (SQLite checkpoints, MiniLM, embedded Qdrant,
SmolLM2), streamed with ``stream_mode="messages"`` so the time to the first answer token is seen as a
customer sees it. The same turns run first one after another, then all at once from N threads (the way
the LangGraph server runs concurrent runs in one process), where the local model's micro-batcher
(models/batching.py) decodes the turns that reach it together as one batch. Prints the aggregate output
tokens/s of both, their ratio, and p50/p95 time to first token. The answer cache is off: every turn reaches the model.
Also the CPU time each phase used, as a share of its wall time and cores: how busy the cores were (batches that
wait on each other for the GIL leave them idle) and how much system time the waiting cost.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessageChunk, HumanMessage
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
    "Can I cancel an order that has already shipped?",
    "What happens if I paid with a gift card and cancel?",
    "Do you have any bluetooth speakers?",
    "How do you check who I am before looking at my account?",
]


def cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds this process has used, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        deps = build_deps(Settings(data_dir=Path(tmp), max_new_tokens=args.max_new_tokens, answer_cache=False))
        conn = sqlite3.connect(str(Path(tmp) / "threads.sqlite"), check_same_thread=False)
        graph = build_graph(deps, checkpointer=SqliteSaver(conn))
        ctx = Context(quality_threshold=0.0, max_new_tokens=args.max_new_tokens)

        def turn(i: int, label: str) -> tuple[float, float, int]:
            """(time to first answer token, whole turn, output tokens) of one conversation's turn."""
            config: Any = {"configurable": {"thread_id": f"{label}-{i}"}}
            start = time.perf_counter()
            first = None
            for chunk, _meta in graph.stream(
                {"messages": [HumanMessage(QUESTIONS[i % len(QUESTIONS)])]},
                config,
                context=ctx,
                stream_mode="messages",
            ):
                if first is None and isinstance(chunk, AIMessageChunk) and chunk.content:
                    first = time.perf_counter() - start
            total = time.perf_counter() - start
            usage = graph.get_state(config).values.get("usage") or {}
            return first if first is not None else total, total, int(usage.get("output_tokens", 0))

        turn(0, "warm-up")
        n = args.conversations
        start, cpu = time.perf_counter(), cpu_seconds()
        serial = [turn(i, "serial") for i in range(n)]
        serial_s = time.perf_counter() - start
        serial_cpu = [now - then for now, then in zip(cpu_seconds(), cpu, strict=True)]
        start, cpu = time.perf_counter(), cpu_seconds()
        with ThreadPoolExecutor(max_workers=n) as pool:
            parallel = list(pool.map(lambda i: turn(i, "parallel"), range(n)))
        parallel_s = time.perf_counter() - start
        parallel_cpu = [now - then for now, then in zip(cpu_seconds(), cpu, strict=True)]
        batcher = getattr(deps.llm.chat, "generator", None)
        sizes = dict(sorted(batcher.batch_sizes.items())) if batcher is not None else {}
        shed = batcher.rows_shed if batcher is not None else 0
        deps.close()
        conn.close()
    one = sum(t for _, _, t in serial) / serial_s
    many = sum(t for _, _, t in parallel) / parallel_s
    print(f"{n} conversations, one turn each, {args.max_new_tokens} new tokens max:")
    print(
        f"  one at a time: {one:6.1f} output tok/s aggregate; TTFT p50 "
        f"{statistics.median(f for f, _, _ in serial) * 1000:.0f} ms"
    )
    ttfts = [f for f, _, _ in parallel]
    print(
        f"  {n} at once:    {many:6.1f} output tok/s aggregate; TTFT p50 {statistics.median(ttfts) * 1000:.0f} ms, "
        f"p95 {percentile(ttfts, 0.95) * 1000:.0f} ms"
    )
    print(f"  ratio {many / one:.2f}x (target >= 4x)")
    cores = os.cpu_count() or 1
    for label, (user, system), wall in (
        ("one at a time", serial_cpu, serial_s),
        (f"{n} at once", parallel_cpu, parallel_s),
    ):
        print(
            f"  CPU, {label}: {(user + system) / wall:.0%} of one core ({cores} here), "
            f"{user:.1f} s user + {system:.1f} s system in {wall:.1f} s"
        )
    print(f"  batches run (size: count), warm-up and serial turns included: {sizes}; finished rows shed: {shed}")


if __name__ == "__main__":
    main()
