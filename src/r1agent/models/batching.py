"""Micro-batching for the local model: concurrent turns share one padded ``generate`` call.

A 135M model on a CPU is bound by reading its weights once per decoding step, so decoding eight
sequences in one step costs little more than decoding one: eight concurrent conversations decoded as
one left-padded batch give several times the aggregate tokens/s of eight ``generate`` calls racing for
the cores (``benchmarks/concurrency.py``). transformers' own continuous batching (``generate_batch``)
was measured too and is slower on a CPU (``benchmarks/decode.py --batch``), so this is plain
transformers ``generate`` over a batch, fed by a small gatherer:

- a request waits at most ``window_s`` for company (the window restarts at every arrival, up to four
  windows), then its batch starts; up to ``workers`` batches run at once, so a turn that arrives while
  a batch is decoding starts its own instead of queueing behind it;
- each row stops on its own: at end of sequence, at its own token budget, or when its reader goes
  away; the rows still decoding then go on without it (a new ``generate`` over their sequences and their
  share of the cache: a padded batch would compute the finished row at every step to the end), and the
  batch ends when every row has;
- text reaches each reader as it is decoded (a streaming demultiplexer), with the figures the quality
  score needs: prompt and output token counts, the mean log-probability of the chosen tokens under the
  model's raw distribution, and whether the model stopped by itself. The reasoning node then needs no
  second, teacher-forced pass over the prompt.

Greedy outputs are those of one ``generate`` per prompt: left padding is masked, and the equality is
asserted on the bundled model (``tests/integration/test_batching_real.py``).
"""

from __future__ import annotations

import atexit
import collections
import math
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import transformers
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.cache_utils import DynamicCache, DynamicLayer

FinishReason = Literal["stop", "length"]
WINDOWS_AT_MOST = 4
"""A batch waits for company at most this many windows, however steadily requests trickle in."""
IDLE_S = 10.0
"""A worker with nothing to do for this long leaves; the next request starts one again."""
PREFIX_MIN = 32
"""Tokens every prompt of a batch must share with a cached prefix for it to be used (shorter: not worth it)."""
PREFIXES_KEPT = 4
"""Prompt prefixes whose keys and values are kept (the grounded and the small-talk system prompts, a few more)."""
COMPACT_MIN_STEPS = 4
"""A batch sheds its finished rows when the rows left may still decode at least this many tokens (their budgets)."""


@dataclass(frozen=True)
class Generated:
    """What one request's generation measured."""

    input_tokens: int
    output_tokens: int
    """Tokens generated, end of sequence not counted."""
    mean_logprob: float | None
    """Mean log-probability of the generated tokens under the raw (unpenalised) model; None if none."""
    finish_reason: FinishReason
    """``stop``: the model ended the sequence; ``length``: the token budget ran out."""


@dataclass(frozen=True)
class _Prefix:
    """A prompt prefix's keys and values, per layer ``[1, heads, len(ids), dim]``, computed once."""

    ids: tuple[int, ...]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]


def _shared(a: tuple[int, ...] | list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class _End:
    """The queue's last item: the request's figures."""

    def __init__(self, generated: Generated) -> None:
        self.generated = generated


@dataclass
class _Request:
    prompt_ids: list[int]
    budget: int
    stop_ids: frozenset[int]
    out: queue.SimpleQueue[str | _End | BaseException] = field(default_factory=queue.SimpleQueue)
    abandoned: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    shown: int = 0
    done: bool = False

    def finish(self, reason: FinishReason) -> None:
        self.done = True
        finite = [p for p in self.logprobs if math.isfinite(p)]
        mean = sum(finite) / len(finite) if finite else None
        self.out.put(_End(Generated(len(self.prompt_ids), len(self.ids), mean, reason)))


class Stream:
    """One request's text pieces, in order; :attr:`generated` is set once they are exhausted."""

    def __init__(self, request: _Request) -> None:
        self._request = request
        self.generated: Generated | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            while True:
                item = self._request.out.get()
                if isinstance(item, _End):
                    self.generated = item.generated
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # The reader stopped early (a client went away): its row stops at the next step.
            self._request.abandoned.set()


class _Rows(StoppingCriteria):
    """Per-row bookkeeping, run by ``generate`` after each step with the new tokens as the last column.

    A stopping criterion rather than a streamer because ``generate`` asks it which rows are done: a row
    at its own budget, end of sequence or abandoned is done, and the batch ends when all are.
    """

    def __init__(
        self, requests: list[_Request], tokenizer: Any, logps: list[torch.Tensor | None], *, compact: bool = False
    ) -> None:
        self.requests = requests
        self.tokenizer = tokenizer
        self.logps = logps
        self.compact = compact
        self.compacting = False
        """Set when this criterion ended ``generate`` early for the batch to go on without its finished rows."""

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None, **kwargs: Any
    ) -> torch.BoolTensor:
        tokens = input_ids[:, -1].tolist()
        raw = self.logps[0]
        chosen = raw.gather(1, input_ids[:, -1:].to(raw.device)).squeeze(1).tolist() if raw is not None else None
        done = []
        for row, (request, token) in enumerate(zip(self.requests, tokens, strict=True)):
            if not request.done:
                self._advance(request, int(token), None if chosen is None else float(chosen[row]))
            done.append(request.done)
        # A row just finished: the ones left would carry it through every step to come. End this ``generate``
        # (every row "done") so the batcher goes on with the rest alone, if they may run long enough to pay.
        if (
            self.compact
            and any(done)
            and not all(done)
            and max(r.budget - len(r.ids) for r in self.requests if not r.done) >= COMPACT_MIN_STEPS
        ):
            self.compacting = True
            done = [True] * len(done)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]

    def _advance(self, request: _Request, token: int, logprob: float | None) -> None:
        if request.abandoned.is_set():
            request.finish("length")
            return
        if token in request.stop_ids:
            request.finish("stop")
            return
        request.ids.append(token)
        if logprob is not None:
            request.logprobs.append(logprob)
        text = self.tokenizer.decode(request.ids, skip_special_tokens=True)
        # A multi-byte character split across tokens decodes to U+FFFD until its last byte arrives.
        if not text.endswith("\ufffd") and len(text) > request.shown:
            request.out.put(text[request.shown :])
            request.shown = len(text)
        if len(request.ids) >= request.budget:
            request.finish("length")


class GrowingLayer(DynamicLayer):
    """A KV-cache layer that appends a step in place instead of copying the whole cache.

    transformers' ``DynamicLayer`` concatenates every step: each new token copies all keys and values so far,
    which for four ~550-token prompts was 6 of a 46 ms decode step. This one keeps buffers with spare room
    and hands out views of their filled part (the attention reads strided keys as readily); a batch of four
    decoded 48 tokens in 3.50 s against 3.89 s, the same tokens. Whatever replaces ``keys`` from outside
    (``crop``, beam reordering: DynamicLayer's methods) is noticed and the buffers start again from it.
    """

    SPARE = 64
    """Room added when the buffers grow: a turn's whole answer fits after its prompt, at most a few regrowths."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._view: torch.Tensor | None = None
        self._length = 0
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self._view = None
        keys, values = self.keys, self.values
        assert keys is not None and values is not None
        if self._buffers is None or keys is not self._view:
            self._length = keys.shape[-2] if keys.numel() else 0
            self._buffers = (keys, values)
        key_buffer, value_buffer = self._buffers
        end = self._length + key_states.shape[-2]
        if key_buffer.numel() == 0 or end > key_buffer.shape[-2]:
            batch, heads, _, dim = key_states.shape
            capacity = end + max(self.SPARE, end // 4)
            key_buffer = key_states.new_empty(batch, heads, capacity, dim)
            value_buffer = value_states.new_empty(batch, heads, capacity, value_states.shape[-1])
            if self._length:
                key_buffer[:, :, : self._length].copy_(keys)
                value_buffer[:, :, : self._length].copy_(values)
            self._buffers = (key_buffer, value_buffer)
        key_buffer[:, :, self._length : end].copy_(key_states)
        value_buffer[:, :, self._length : end].copy_(value_states)
        self._length = end
        self.keys = self._view = key_buffer[:, :, :end]
        self.values = value_buffer[:, :, :end]
        return self.keys, self.values


# transformers renamed generate's ``past_key_values`` to ``cache`` during 5.x (the old name warns until 6.0). 5.24
# takes the new one; for older 5.x releases the old name is the one every one of them takes.
_VERSION = tuple(int(part) for part in transformers.__version__.split(".")[:2])
CACHE_KWARG = "cache" if _VERSION >= (5, 24) else "past_key_values"


def growing_cache(config: Any) -> DynamicCache | None:
    """A ``DynamicCache`` of :class:`GrowingLayer`, or None where the model needs other layers (sliding windows,
    linear attention...), which transformers' own cache then handles."""
    try:
        cache = DynamicCache(config=config)
    except (AttributeError, KeyError, ValueError, TypeError):  # a config transformers cannot map: its default
        return None
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache


class BatchGenerator:
    """Runs every generation of one local model, batching the ones that arrive together."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int,
        repetition_penalty: float = 1.0,
        max_batch: int = 4,
        window_s: float = 0.02,
        workers: int = 2,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        self.max_batch = max(1, max_batch)
        self.window_s = max(0.0, window_s)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = frozenset(stop_token_ids(tokenizer, model))
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        """How many batches of each size ran: what the benchmarks and tests read to see batching happen."""
        self.workers = max(1, workers)
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._gather = threading.Lock()
        self._prefixes: collections.OrderedDict[tuple[int, ...], _Prefix] = collections.OrderedDict()
        self._last_prompt: list[int] = []
        self._prefix_lock = threading.Lock()
        self.prefix_tokens_reused = 0
        """Prompt tokens not prefilled because a cached prefix held them: what the tests read."""
        self.rows_shed = 0
        """Finished rows dropped from a batch while its other rows went on decoding: what the tests read."""
        self._lock = threading.Lock()  # guards the worker set, so no request is left without a worker
        self._threads: set[threading.Thread] = set()
        self._closed = False
        _LIVE.add(self)

    def stream(
        self, prompt: str, *, max_new_tokens: int | None = None, stop_ids: frozenset[int] = frozenset()
    ) -> Stream:
        """Queue ``prompt`` (already rendered with the chat template); iterate the result for its text."""
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        budget = self.max_new_tokens if max_new_tokens is None else max(1, min(max_new_tokens, self.max_new_tokens))
        request = _Request(prompt_ids=list(ids), budget=budget, stop_ids=self.eos_ids | stop_ids)
        with self._lock:
            if self._closed:
                raise RuntimeError("the local model's generator is closed")
            self._queue.put(request)
            # Workers start on demand and leave when idle: an idle generator holds no thread (and a dropped
            # one is not kept alive by its threads).
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name="r1agent-generate", daemon=True)
                self._threads.add(thread)
                thread.start()
        return Stream(request)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the workers once they finish what they decode (waiting up to ``timeout_s`` for them)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            for _ in threads:
                self._queue.put(None)
        # Joined, not abandoned: a thread that ran torch still alive at interpreter exit aborts the process.
        for thread in threads:
            thread.join(timeout_s)

    def _work(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._run(batch)
                except BaseException as exc:  # noqa: BLE001 - every reader must hear of it, then the worker goes on
                    for request in batch:
                        if not request.done:
                            request.done = True
                            request.out.put(exc)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _next_batch(self) -> list[_Request] | None:
        # One worker gathers at a time, so a burst becomes one batch, not one per worker.
        with self._gather:
            while True:
                try:
                    first = self._queue.get(timeout=IDLE_S)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():  # under the lock: no request can arrive unseen meanwhile
                            self._threads.discard(threading.current_thread())
                            return None
            if first is None:
                return None
            batch = [first]
            give_up = time.monotonic() + WINDOWS_AT_MOST * self.window_s
            while len(batch) < self.max_batch:
                wait = min(self.window_s, give_up - time.monotonic())
                if wait <= 0:
                    break
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # a shutdown signal for some worker: leave it for the next get
                    break
                batch.append(item)
            return batch

    def _run(self, batch: list[_Request]) -> None:
        self.batch_sizes[len(batch)] += 1
        cache = growing_cache(getattr(self.model, "config", None))
        prefix, shared = self._prefix_for(batch) if cache is not None else (None, 0)
        width = max(len(r.prompt_ids) for r in batch) - shared
        # [shared prefix | padding | the rest]: the prefix's keys and values come from the cache, and every row's
        # next token is in the last column. Positions count only unmasked tokens, so padding in the middle
        # changes nothing for a row: it reads as if it were alone. Only leading padding is exempt from the
        # repetition penalty, so padding in the middle repeats the prefix's last token, which the penalty
        # already counts: a padding token would be penalised as if the row had said it.
        ids, mask = [], []
        for r in batch:
            pad = width - (len(r.prompt_ids) - shared)
            filler = r.prompt_ids[shared - 1] if shared else self.pad_id
            ids.append(r.prompt_ids[:shared] + [filler] * pad + r.prompt_ids[shared:])
            mask.append([1] * shared + [0] * pad + [1] * (len(r.prompt_ids) - shared))
        if prefix is not None and cache is not None:
            for layer, keys, values in zip(cache.layers, prefix.keys, prefix.values, strict=True):
                assert isinstance(layer, GrowingLayer)  # growing_cache makes no other kind
                layer.update(
                    keys[:, :, :shared].expand(len(batch), -1, -1, -1),
                    values[:, :, :shared].expand(len(batch), -1, -1, -1),
                )
            self.prefix_tokens_reused += shared * len(batch)
        device = self.model.device
        logps: list[torch.Tensor | None] = [None]
        me = threading.get_ident()

        def keep_logps(_module: Any, _args: Any, output: Any) -> None:
            # The raw distribution the chosen token came from (the penalty is a decoding device, not the model).
            if threading.get_ident() == me:
                logps[0] = torch.log_softmax(output.logits[:, -1].float(), dim=-1)

        hook = self.model.register_forward_hook(keep_logps)
        rows = list(batch)  # the requests still decoding, in the order of the batch's rows
        input_ids = torch.tensor(ids, device=device)
        attention = torch.tensor(mask, device=device)
        try:
            with torch.inference_mode():
                while True:
                    # Only the batcher's own cache can be carried from one generate to the next.
                    criterion = _Rows(rows, self.tokenizer, logps, compact=cache is not None and len(rows) > 1)
                    out = self.model.generate(
                        input_ids=input_ids,
                        attention_mask=attention,
                        **({CACHE_KWARG: cache} if cache is not None else {}),
                        max_new_tokens=max(r.budget - len(r.ids) for r in rows),
                        do_sample=False,
                        repetition_penalty=self.repetition_penalty,
                        pad_token_id=self.pad_id,
                        stopping_criteria=StoppingCriteriaList([criterion]),
                    )
                    live = [row for row, r in enumerate(rows) if not r.done]
                    if not criterion.compacting or not live or cache is None:
                        break
                    input_ids, attention = self._shed(out, attention, live, cache)
                    rows = [rows[row] for row in live]
                    self.rows_shed += len(criterion.requests) - len(rows)
        finally:
            hook.remove()
        for request in batch:
            if not request.done:  # generate stopped on its own criteria (the model's max length)
                request.finish("length")

    @staticmethod
    def _shed(
        out: torch.Tensor, attention: torch.Tensor, live: list[int], cache: DynamicCache
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``live`` rows of a stopped batch, ready to go on: their tokens so far, mask and cached keys and values.

        A padded batch computes every row at every step, so a row that has finished still costs its share of each
        step until the longest answer ends (four ~550-token rows: 53 ms a step against 30 for one). The rows
        left go on in a new ``generate`` over their whole sequences: the cache holds all but the last token,
        which the next step feeds as any step does, so the tokens are the same and nothing is computed twice.
        """
        keep = torch.tensor(live, device=out.device)
        generated = out.shape[1] - attention.shape[1]  # every token a live row decoded is its own, no padding
        attention = torch.cat([attention[keep], attention.new_ones(len(live), generated)], dim=1)
        cache.batch_select_indices(keep)  # GrowingLayer notices its keys were replaced and regrows from them
        return out[keep], attention

    def _prefix_for(self, batch: list[_Request]) -> tuple[_Prefix | None, int]:
        """A cached prefix that every prompt in ``batch`` starts with, and how many of its tokens they share.

        Every turn's prompt opens with the same system prompt (~100 tokens of ~530), and prefilling it again
        for every turn is wasted work: its keys and values are computed once, when prompts are seen to share at
        least :data:`PREFIX_MIN` tokens (those of one batch, or a lone turn's and the one before it), and any
        later batch reuses as much of a cached prefix as all its prompts share. Each row keeps at least one
        token of its own to prefill.
        """
        prompts = [r.prompt_ids for r in batch]
        cap = min(len(p) for p in prompts) - 1
        with self._prefix_lock:
            best, shared = None, 0
            for cached in self._prefixes.values():
                n = min([cap, *(_shared(cached.ids, p) for p in prompts)])
                if n > shared:
                    best, shared = cached, n
            if best is not None and shared >= PREFIX_MIN:
                self._prefixes.move_to_end(best.ids)
                return best, shared
            # What this batch's prompts share, or a lone prompt with the one before it.
            seen = prompts if len(prompts) > 1 else [*prompts, self._last_prompt]
            self._last_prompt = prompts[0]
            shared = min([cap, *(_shared(seen[0], p) for p in seen[1:])])
        if shared < PREFIX_MIN:
            return None, 0
        ids = tuple(prompts[0][:shared])
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.model.device), use_cache=True, logits_to_keep=1)
        layers = getattr(out, CACHE_KWARG).layers  # the output's field has the argument's name
        prefix = _Prefix(ids, [layer.keys for layer in layers], [layer.values for layer in layers])
        with self._prefix_lock:
            self._prefixes[ids] = prefix
            while len(self._prefixes) > PREFIXES_KEPT:
                self._prefixes.popitem(last=False)
        return prefix, shared


def stop_token_ids(tokenizer: Any, model: Any) -> set[int]:
    """The token ids that end a sequence: the tokenizer's and the generation config's."""
    ids: set[int] = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(int(i) for i in source)
    return ids


_LIVE: weakref.WeakSet[BatchGenerator] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # A worker thread that ran torch and is still alive when the interpreter finalises aborts the process
    # ("terminate called without an active exception"): let them finish first.
    for generator in list(_LIVE):
        generator.close(timeout_s=5.0)
