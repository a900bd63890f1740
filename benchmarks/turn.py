"""A turn's anatomy on the default stack: per-node time, the share that is not the model, cold start, memory.

    make bench            # or: .venv/bin/python benchmarks/turn.py --turns 8

- **Overhead**: every turn runs the real graph (SQLite checkpointer in a temp dir, MiniLM intent and
  retrieval, Qdrant local, SmolLM2). The model's own time (generation + the teacher-forced scoring pass) is
  measured around those calls; everything else in the turn is overhead. Targets: <= 5 % of the turn and
  <= 50 ms p50.
- **Cold start**: `r1agent ask --json` in a fresh process, from process start to the answer printed, with the
  converted-weights cache warm (target <= 10 s); with --first-ever, also into an empty cache (GGUF conversion).
- **Memory**: that process's peak RSS (target <= 1.5 GB).
Medians over the measured turns; the first turn (warm-up) is reported apart.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
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
    "What is 15% of 80?",
    "Do you sell mechanical keyboards?",
    "Can I exchange an item for a different size?",
]


# Greeting x question gives every measured turn its own text: a repeated text would find its embedding
# remembered (models/embeddings.py MemoEmbeddings) and understate the overhead.
GREETINGS = [
    "Hi,",
    "Hello,",
    "Hey there,",
    "Good morning,",
    "Good evening,",
    "Excuse me,",
    "Quick one:",
    "Hiya,",
    "Yo,",
]


class ModelClock:
    """Wall time spent inside the model's calls (generation and scoring) during one turn."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def overhead(turns: int, max_new_tokens: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # The answer cache off: the questions repeat, and this measures the model's path (benchmarks/cache.py
        # measures the cache's).
        settings = Settings(data_dir=Path(tmp), max_new_tokens=max_new_tokens, answer_cache=False)
        deps = build_deps(settings)
        clock = ModelClock()
        # Instance attributes shadow the methods: only this benchmark's deps are timed.
        chat = deps.llm.chat
        object.__setattr__(chat, "invoke", clock.wrap(chat.invoke))
        object.__setattr__(deps.llm, "measure", clock.wrap(deps.llm.measure))
        import sqlite3

        conn = sqlite3.connect(str(Path(tmp) / "threads.sqlite"), check_same_thread=False)
        graph = build_graph(deps, checkpointer=SqliteSaver(conn))
        ctx = Context(quality_threshold=0.0, max_new_tokens=max_new_tokens)
        per_node: dict[str, list[float]] = defaultdict(list)
        rows: list[tuple[float, float]] = []
        for i in range(turns + 1):
            clock.seconds = 0.0
            config: Any = {"configurable": {"thread_id": f"bench-{i}"}}
            started: dict[str, float] = {}
            t0 = time.perf_counter()
            for part in graph.stream(
                {"messages": [HumanMessage(f"{GREETINGS[i % len(GREETINGS)]} {QUESTIONS[i % len(QUESTIONS)]}")]},
                config,
                context=ctx,
                stream_mode="tasks",
            ):
                now = time.perf_counter()
                name = part["name"]
                if "result" in part or "error" in part:
                    if i > 0 and name in started:
                        per_node[name].append(now - started[name])
                else:
                    started[name] = now
            total = time.perf_counter() - t0
            if i == 0:
                print(f"warm-up turn: {total:.2f} s")
                continue
            rows.append((total, clock.seconds))
        deps.close()
        conn.close()
    totals = [t for t, _ in rows]
    over = [t - m for t, m in rows]
    share = [(t - m) / t for t, m in rows]
    print(f"\nturn p50 {statistics.median(totals) * 1000:.0f} ms over {turns} turns ({max_new_tokens} new tokens max)")
    print(
        f"overhead (not the model) p50 {statistics.median(over) * 1000:.1f} ms = "
        f"{statistics.median(share) * 100:.1f} % of the turn (targets: <= 50 ms, <= 5 %)"
    )
    print("\nper node, p50 ms (reason includes the model):")
    for name, times in sorted(per_node.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {name:<14} {statistics.median(times) * 1000:8.1f}")


def cold_start(first_ever: bool, runs: int) -> None:
    """Median of ``runs`` cold starts of each kind (a VM's page cache makes single ones swing by seconds)."""
    cli = [sys.executable, "-m", "r1agent", "ask", "How long do I have to return an item?", "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env.update(R1AGENT_MAX_NEW_TOKENS="32", HF_HUB_OFFLINE="1", R1AGENT_ANSWER_CACHE="false")
    warm = os.environ.get("R1AGENT_CACHE_DIR", str(Settings().cache_dir))
    kinds = ["first-ever (empty cache, new data dir)"] if first_ever else []
    kinds += ["first start of a data dir (seeds the KB)", "restart on that data dir"]
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    peaks: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            for kind in kinds:
                first = kind.startswith("first-ever")
                env.update(
                    R1AGENT_CACHE_DIR=str(Path(tmp) / "cache") if first else warm,
                    R1AGENT_DATA_DIR=str(Path(tmp) / ("data-0" if first else "data-1")),
                )
                start = time.perf_counter()
                proc = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                _, status, usage = os.wait4(proc.pid, 0)
                took = time.perf_counter() - start
                out = proc.stdout.read() if proc.stdout else b""
                if os.waitstatus_to_exitcode(status) != 0 or b'"answer"' not in out:
                    print(f"cold start, {kind}: FAILED")
                    continue
                seconds[kind].append(took)
                peaks[kind].append(usage.ru_maxrss / 1024)  # Linux reports KiB
    for kind in kinds:
        if seconds[kind]:
            shown = ", ".join(f"{s:.1f}" for s in seconds[kind])
            print(
                f"cold start, {kind}: median {statistics.median(seconds[kind]):.1f} s to the answer ({shown}; "
                f"target <= 10 s, weights cache warm), peak RSS {max(peaks[kind]):.0f} MB (target <= 1536 MB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--first-ever", action="store_true", help="Also time a start into an empty cache.")
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    # Cold starts first: a child's peak RSS as the kernel reports it includes its parent's at fork time, and
    # this process is small only until overhead() loads the models.
    cold_start(args.first_ever, args.cold_runs)
    print()
    overhead(args.turns, args.max_new_tokens)
    this = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this benchmark process peaked at {this:.0f} MB)")


if __name__ == "__main__":
    main()
