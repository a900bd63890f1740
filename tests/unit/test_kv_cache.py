"""The batcher's KV cache (models/batching.py): appending in place gives exactly what concatenation gives, and a
prompt prefix shared by every turn is prefilled once and reused."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, MistralConfig
from transformers.cache_utils import DynamicLayer

from r1agent.models.batching import (
    CACHE_KWARG,
    PREFIXES_KEPT,
    BatchGenerator,
    GrowingLayer,
    _Request,
    growing_cache,
)
from tests.tiny_llama import tiny_llama


def steps(layer: DynamicLayer, lengths: list[int], seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        k, v = torch.randn(2, 3, n, 8, generator=gen), torch.randn(2, 3, n, 8, generator=gen)
        keys, values = layer.update(k, v)
        out.append((keys.clone(), values.clone()))
    return out


def test_appending_in_place_equals_concatenation_and_reuses_the_buffer() -> None:
    lengths = [40, 1, 1, 1, 30, *[1] * 40]  # a prefill, steps, a second chunk, steps past the spare room
    grown, concatenated = GrowingLayer(), DynamicLayer()
    for (gk, gv), (ck, cv) in zip(steps(grown, lengths), steps(concatenated, lengths), strict=True):
        assert torch.equal(gk, ck) and torch.equal(gv, cv)
    assert grown.get_seq_length() == sum(lengths)
    before = grown.keys.data_ptr()
    grown.update(torch.zeros(2, 3, 1, 8), torch.zeros(2, 3, 1, 8))
    assert grown.keys.data_ptr() == before  # a step wrote into the buffer: no copy of the cache so far


def test_a_crop_from_outside_is_noticed() -> None:
    grown, concatenated = GrowingLayer(), DynamicLayer()
    steps(grown, [20, 1, 1])
    steps(concatenated, [20, 1, 1])
    grown.crop(-5)
    concatenated.crop(-5)
    for (gk, gv), (ck, cv) in zip(steps(grown, [1, 1], seed=1), steps(concatenated, [1, 1], seed=1), strict=True):
        assert torch.equal(gk, ck) and torch.equal(gv, cv)


def test_growing_cache_only_for_models_whose_layers_are_all_plain() -> None:
    llama = LlamaConfig(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, intermediate_size=128)
    cache = growing_cache(llama)
    assert cache is not None and len(cache.layers) == 3
    assert all(type(layer) is GrowingLayer for layer in cache.layers)
    windowed = MistralConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, sliding_window=16)
    assert growing_cache(windowed) is None  # sliding-window layers keep transformers' own cache


def test_generate_with_the_growing_cache_decodes_the_same_tokens() -> None:
    model = tiny_llama()
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # left padding, as the batcher pads
    kwargs = {"attention_mask": mask, "max_new_tokens": 90, "do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        want = model.generate(ids, **kwargs)
        got = model.generate(ids, **{CACHE_KWARG: growing_cache(model.config)}, **kwargs)
    assert torch.equal(got, want)


# --- the prefix cache ---------------------------------------------------------------------------------------


class Tokens:
    """Just what the batcher asks of a tokenizer (ids are the text here)."""

    pad_token_id = 0
    eos_token_id = 1

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def tiny_generator() -> BatchGenerator:
    return BatchGenerator(tiny_llama(), Tokens(), max_new_tokens=12, repetition_penalty=1.1)


def requests(*prompts: list[int]) -> list[_Request]:
    return [_Request(prompt_ids=p, budget=12, stop_ids=frozenset({1})) for p in prompts]


SYSTEM = list(range(10, 50))  # 40 tokens every prompt opens with


def test_a_shared_prefix_is_found_cached_and_reused_as_far_as_prompts_share_it() -> None:
    gen = tiny_generator()
    assert gen._prefix_for(requests([*SYSTEM, 60, 61])) == (None, 0)  # nothing to compare with yet
    prefix, shared = gen._prefix_for(requests([*SYSTEM, 70, 71, 72]))  # shares 40 with the prompt before
    assert prefix is not None and shared == 40 and prefix.keys[0].shape[-2] == 40
    # Later prompts use as much of it as all of them share, and keep one token of their own to prefill.
    assert gen._prefix_for(requests([*SYSTEM[:35], 90, 91], [*SYSTEM, 80]))[1] == 35
    assert gen._prefix_for(requests([*SYSTEM, 5]))[1] == 40
    assert gen._prefix_for(requests(SYSTEM))[1] == 39
    assert gen._prefix_for(requests(SYSTEM[:20] + [99] * 30))[0] is None  # under PREFIX_MIN shared: not worth it


def test_the_prefix_cache_keeps_a_bounded_number_of_prefixes() -> None:
    gen = tiny_generator()
    for start in range(PREFIXES_KEPT + 3):
        base = [start + 2] * 40
        gen._prefix_for(requests([*base, 60], [*base, 61]))
    assert len(gen._prefixes) == PREFIXES_KEPT


def test_a_batch_decodes_the_same_with_the_prefix_from_the_cache() -> None:
    prompts = [[*SYSTEM, 60, 61, 62], [*SYSTEM, 70], [*SYSTEM[:36], 80, 81, 82, 83, 84]]
    plain = tiny_generator()
    plain._prefix_for = lambda batch: (None, 0)  # type: ignore[method-assign]
    want = requests(*prompts)
    plain._run(want)
    cached = tiny_generator()
    cached._run(requests(*prompts))  # finds and caches the shared prefix
    got = requests(*prompts)
    cached._run(got)
    assert cached.prefix_tokens_reused >= 2 * 3 * 36
    assert [r.ids for r in got] == [r.ids for r in want] and all(r.ids for r in got)


# --- rows leave a batch when they finish ----------------------------------------------------------------------


def test_finished_rows_leave_the_batch_and_the_rest_decode_as_if_alone() -> None:
    prompts = [[*SYSTEM, 60, 61, 62], [*SYSTEM, 70], [*SYSTEM[:36], 80, 81, 82, 83, 84]]
    budgets = [3, 12, 7]

    def fresh() -> list[_Request]:
        pairs = zip(prompts, budgets, strict=True)
        return [_Request(prompt_ids=p, budget=b, stop_ids=frozenset({1})) for p, b in pairs]

    alone = fresh()
    for request in alone:
        tiny_generator()._run([request])
    gen = tiny_generator()
    together = fresh()
    gen._run(together)
    # The 3-token row left at step 3 (9 steps of budget still ahead), the 7-token row at step 7 (5 ahead).
    assert gen.rows_shed == 2
    assert [r.ids for r in together] == [r.ids for r in alone]
    assert [len(r.ids) for r in together] == budgets
    for got, want in zip(together, alone, strict=True):
        assert got.logprobs == pytest.approx(want.logprobs, abs=1e-4)  # the raw distribution each token came from


def test_rows_stay_when_the_rest_would_end_too_soon_to_pay_for_the_move() -> None:
    gen = tiny_generator()
    batch = [_Request(prompt_ids=[*SYSTEM, 60 + i], budget=b, stop_ids=frozenset({1})) for i, b in enumerate([9, 12])]
    gen._run(batch)  # when the 9-token row ends, the other has 3 tokens of budget left: under COMPACT_MIN_STEPS
    assert gen.rows_shed == 0 and [len(r.ids) for r in batch] == [9, 12]
