"""The local backend on DeepSeek-R1-Distill-Qwen-1.5B's architecture: one conversation, and eight at once.

    PYTHONPATH=src python3 benchmarks/r1_distill.py              # on a GPU machine (bf16), the real shapes
    .venv/bin/python benchmarks/r1_distill.py --tiny             # the same run on a 2-layer model: a smoke test

No weights can be fetched here, but decoding speed does not depend on their values: the model is built from the
architecture's configuration (:data:`ARCHITECTURE`) with random weights, in bf16 on a GPU as ``load_chat_model``
loads a model there, and run through the generator the product decodes with (``models/batching.py``: one worker,
batches of up to 8, the GPU setting in docs/performance.md). Random weights may end a row early with an
end-of-sequence token (about one chance in 150,000 a token); every figure counts the tokens actually decoded.

- **one at a time**: each prompt alone through the batcher; time to first token and decode tokens/s, medians.
- **8 at once**: the eight prompts submitted together from eight threads; aggregate tokens/s, TTFT p50 / p95.
- **peers, same run**: the same eight prompts one after another through plain ``model.generate`` (what an app
  without a batcher gets), and through transformers' continuous batching (``generate_batch``) where it runs.
- **roofline**: a decode step reads every weight once (the embedding: one row), so a single stream's tokens/s is
  at most memory bandwidth / weight bytes; bandwidth is measured (a device copy), not assumed.

It needs only torch and transformers (the GPU machine has no LangChain), so the prompts are token ids and the
generator gets a stand-in tokenizer that spells ids as text: the real one's per-token decode costs about as
little, and the product's tokenizer file is not on that machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from r1agent.models.allocator import reuse_freed_memory
from r1agent.models.batching import BatchGenerator

ARCHITECTURE: dict[str, Any] = {
    # deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B's config.json: a Qwen2 decoder (Qwen2.5-Math-1.5B's shapes). What
    # sets the speed: width, depth, heads, MLP, vocabulary and the untied output head.
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 131072,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "hidden_act": "silu",
}
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4}
"""--tiny: a 2-layer model of the same vocabulary, which a CPU builds and runs in seconds."""
EOS = 151643  # the architecture's end-of-sequence id; padding uses it too, as R1's tokenizer does
CONVERSATIONS = 8


class IdTokenizer:
    """What the batcher asks of a tokenizer, over token ids written as text ("17 4 2001")."""

    pad_token_id = EOS
    eos_token_id = EOS

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def build(tiny: bool, device: str) -> Any:
    config = Qwen2Config(**{**ARCHITECTURE, **(TINY if tiny else {})}, bos_token_id=EOS, eos_token_id=EOS)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):  # initialised where it runs: 1.8B random values take seconds on a GPU
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def prompts(n: int, length: int, vocab: int) -> list[list[int]]:
    """``n`` prompts of ``length`` ids, the first 100 shared as a system prompt is (the batcher caches it)."""
    gen = torch.Generator().manual_seed(1)
    system = torch.randint(1000, vocab - 1000, (100,), generator=gen).tolist()
    return [system + torch.randint(1000, vocab - 1000, (length - 100,), generator=gen).tolist() for _ in range(n)]


@dataclass(frozen=True)
class Turn:
    ttft_s: float
    total_s: float
    tokens: int


def turn(batcher: BatchGenerator, ids: list[int], new: int, wait: Callable[[], None]) -> Turn:
    start = time.perf_counter()
    stream = batcher.stream(" ".join(map(str, ids)), max_new_tokens=new)
    first = None
    for _piece in stream:
        if first is None:
            wait()
            first = time.perf_counter() - start
    wait()
    total = time.perf_counter() - start
    assert stream.generated is not None
    return Turn(first if first is not None else total, total, stream.generated.output_tokens)


def bandwidth_gb_s(device: str) -> float:
    """Copy bandwidth (bytes read + written) of a 1 GB tensor on ``device``, median of 5."""
    src = torch.ones(256 * 1024 * 1024, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    times = []
    for _ in range(6):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times[1:]) / 1e9


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model of the same vocabulary (smoke run)")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    reuse_freed_memory()  # as build_deps does for r1agent's process (models/allocator.py)
    if device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))  # load_chat_model's default there
    model = build(args.tiny, device)
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    step_bytes = sum(p.numel() * p.element_size() for p in model.parameters()) - embedding.nbytes
    step_bytes += embedding[0].nbytes  # one row of the embedding a token
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(
        f"R1-Distill-Qwen-1.5B architecture{' (--tiny)' if args.tiny else ''}, random weights: {params / 1e9:.2f}B "
        f"parameters, {model.dtype}, on {name}; {args.prompt_tokens}-token prompts, {args.new_tokens} new tokens"
    )
    bw = bandwidth_gb_s(device)
    roofline = bw * 1e9 / step_bytes
    print(f"roofline: {bw:.0f} GB/s copy bandwidth / {step_bytes / 1e9:.2f} GB a token = {roofline:.0f} tok/s")

    def on_device() -> None:  # what a token's arrival means on a GPU: its kernels have run
        sync(device)

    batcher = BatchGenerator(
        model, IdTokenizer(), max_new_tokens=args.new_tokens, repetition_penalty=1.1, max_batch=8, workers=1
    )
    texts = prompts(CONVERSATIONS, args.prompt_tokens, ARCHITECTURE["vocab_size"])
    turn(batcher, texts[0], 8, on_device)  # warm-up: kernels chosen, the shared prefix cached

    # One at a time.
    singles = [turn(batcher, texts[i % CONVERSATIONS], args.new_tokens, on_device) for i in range(args.repeats)]
    ttft = statistics.median(t.ttft_s for t in singles)
    decode = statistics.median((t.tokens - 1) / (t.total_s - t.ttft_s) for t in singles if t.tokens > 1)
    one = statistics.median(t.tokens / t.total_s for t in singles)
    print(
        f"one at a time:  TTFT {ttft * 1000:.0f} ms, decode {decode:.1f} tok/s ({one:.1f} overall), "
        f"{decode * step_bytes / bw / 1e9:.0%} of the roofline"
    )

    # Eight at once, from eight threads, as the server's concurrent runs reach the generator.
    rounds = []
    for _ in range(args.repeats):
        gate = threading.Barrier(CONVERSATIONS)

        def submit(i: int, gate: threading.Barrier = gate) -> Turn:
            gate.wait()
            return turn(batcher, texts[i], args.new_tokens, on_device)

        start = time.perf_counter()
        with ThreadPoolExecutor(CONVERSATIONS) as pool:
            done = list(pool.map(submit, range(CONVERSATIONS)))
        rounds.append((sum(t.tokens for t in done) / (time.perf_counter() - start), [t.ttft_s for t in done]))
    many = statistics.median(r[0] for r in rounds)
    ttfts = [t for r in rounds for t in r[1]]
    p95 = statistics.quantiles(ttfts, n=20, method="inclusive")[-1]
    print(
        f"{CONVERSATIONS} at once:      {many:.1f} tok/s aggregate ({many / one:.2f}x one at a time); TTFT p50 "
        f"{statistics.median(ttfts) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; batches "
        f"{dict(sorted(batcher.batch_sizes.items()))}, finished rows shed {batcher.rows_shed}"
    )
    batcher.close()

    # Peers in the same run: plain generate one prompt after another, and transformers' continuous batching.
    start = time.perf_counter()
    tokens = 0
    with torch.inference_mode():
        for ids in texts:
            prompt = torch.tensor([ids], device=device)
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=args.new_tokens,
                do_sample=False,
                repetition_penalty=1.1,
                pad_token_id=EOS,
            )
            tokens += out.shape[1] - len(ids)
    sync(device)
    plain = tokens / (time.perf_counter() - start)
    print(f"peer, plain generate one after another: {plain:.1f} tok/s; the batcher's 8 at once: {many / plain:.2f}x")
    if device != "cuda":
        # Its paged cache sizes itself from the GPU's memory; decode.py --batch measures it on a CPU.
        print("peer, transformers' continuous batching (generate_batch): skipped on a CPU (see decode.py --batch)")
        return
    try:
        from transformers import GenerationConfig

        generation = GenerationConfig(max_new_tokens=args.new_tokens, do_sample=False, eos_token_id=-1)
        start = time.perf_counter()
        results = model.generate_batch(inputs=texts, generation_config=generation)
        sync(device)
        paged = sum(len(r.generated_tokens) for r in results.values()) / (time.perf_counter() - start)
        print(f"peer, transformers' continuous batching (generate_batch): {paged:.1f} tok/s; ratio {many / paged:.2f}x")
    except Exception as exc:  # noqa: BLE001 - a peer that cannot run here is reported, not fatal
        print(
            f"peer, transformers' continuous batching (generate_batch): did not run here ({type(exc).__name__}: {exc})"
        )


if __name__ == "__main__":
    main()
