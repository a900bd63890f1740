"""Lean decoder layers (models/lean.py) on tiny real Llama and Qwen2 models, packed through the int4 kernel."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
import torch
from torch import nn

from r1agent.models import int4, lean
from r1agent.models.batching import BatchGenerator, _Request
from r1agent.models.int4 import pack_linears
from tests.tiny_llama import four_bit, tiny_llama, tiny_qwen2

pytestmark = pytest.mark.skipif(
    not (int4.kernel_available() and int4.cpu_has_bf16()),
    reason="lean layers run the int4 path, which packs only with torch's int4 CPU kernel and bf16 support",
)


def decode(model: Any, new: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of three prompts: the prefill (dense products) and decode steps (the int4 kernel)."""
    ids = torch.randint(2, 128, (3, 20), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[1, :7], mask[2, :2] = 0, 0
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            repetition_penalty=1.1,
            pad_token_id=0,
            return_dict_in_generate=True,
            output_logits=True,
        )
    return out.sequences, torch.stack(out.logits)


@pytest.mark.parametrize("build", [tiny_llama, tiny_qwen2], ids=["llama", "qwen2"])
def test_lean_layers_compute_the_same_logits_bit_for_bit(build: Any) -> None:
    stock = four_bit(build())
    packed = copy.deepcopy(stock)
    assert pack_linears(stock, "auto", lean=False).lean_layers == 0
    report = pack_linears(packed, "auto")
    assert report.lean_layers == 2 and lean.installed(packed) == 2
    assert all("forward" in layer.__dict__ for layer in packed.model.layers)
    got, want = decode(packed), decode(stock)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])  # every logit of every step, not just the chosen tokens


def test_installing_again_checks_against_transformers_layers_not_the_ones_installed() -> None:
    model = four_bit(tiny_llama())
    pack_linears(model, "auto", lean=False)
    want = decode(model)
    for layer in model.model.layers:  # a wrong forward already in place (not through install's check)
        layer.__dict__["forward"] = lambda hidden_states, *args, **kwargs: hidden_states * 2
    assert lean.install(model) == 2
    got = decode(model)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_the_batcher_decodes_the_same_through_lean_layers() -> None:
    """The batcher's own paths: its growing cache, a cached shared prefix, rows leaving the batch."""

    class Tokens:
        pad_token_id, eos_token_id = 0, 1

        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            return " ".join(map(str, ids))

    system = list(range(10, 50))
    prompts = [[*system, 60, 61, 62], [*system, 70], [*system[:36], 80, 81, 82, 83, 84]]
    budgets = [3, 12, 7]
    results = []

    def fresh() -> list[_Request]:
        pairs = zip(prompts, budgets, strict=True)
        return [_Request(prompt_ids=p, budget=b, stop_ids=frozenset({1})) for p, b in pairs]

    for use_lean in (False, True):
        model = four_bit(tiny_llama())
        assert pack_linears(model, "auto", lean=use_lean).lean_layers == (2 if use_lean else 0)
        gen = BatchGenerator(model, Tokens(), max_new_tokens=12, repetition_penalty=1.1)
        gen._run(fresh())
        batch = fresh()
        gen._run(batch)  # the second time with the shared prefix from the cache
        assert gen.prefix_tokens_reused > 0 and gen.rows_shed > 0
        results.append([(r.ids, r.logprobs) for r in batch])
    assert results[0] == results[1]


def test_layers_that_would_compute_otherwise_keep_transformers_forward(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What a transformers release that changes its layers looks like: the check sees it and nothing changes."""
    model = four_bit(tiny_llama())
    assert pack_linears(model, "auto", lean=False).used == "int4"
    want = decode(model)
    original = lean._forward

    def drifted(layer: nn.Module, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return original(layer, hidden_states, *args, **kwargs) * 1.0001

    monkeypatch.setattr(lean, "_forward", drifted)
    with caplog.at_level(logging.WARNING, logger="r1agent.models.lean"):
        assert lean.install(model) == 0
    assert "logits differ" in caplog.text
    assert lean.installed(model) == 0 and not any("forward" in layer.__dict__ for layer in model.model.layers)
    got = decode(model)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_a_forward_that_fails_is_not_kept(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    model = four_bit(tiny_llama())
    pack_linears(model, "auto", lean=False)

    def other_arguments(layer: nn.Module, hidden_states: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        raise TypeError("update() got an unexpected keyword argument 'kwargs'")

    monkeypatch.setattr(lean, "_forward", other_arguments)
    with caplog.at_level(logging.WARNING, logger="r1agent.models.lean"):
        assert lean.install(model) == 0
    assert "TypeError" in caplog.text and lean.installed(model) == 0


def test_only_packed_layers_of_known_architectures_run_lean() -> None:
    full = tiny_llama()  # fp32 projections: the lean forward calls the int4 kernel, so it does not apply
    assert all(lean._parts(layer) is None for layer in full.model.layers)
    assert lean.install(full) == 0 and lean.installed(full) == 0
    assert pack_linears(four_bit(tiny_llama()), "full").lean_layers == 0
    packed = four_bit(tiny_llama())
    pack_linears(packed, "auto", lean=False)
    assert all(lean._parts(layer) is not None for layer in packed.model.layers)
    # An architecture whose attention forward the lean one does not repeat keeps its own, unchecked.
    attention = type(packed.model.layers[0].self_attn)
    for layer in packed.model.layers:
        layer.self_attn.__class__ = type("OtherAttention", (attention,), {"__module__": attention.__module__})
    assert all(lean._parts(layer) is None for layer in packed.model.layers)
    assert lean.install(packed) == 0 and lean.installed(packed) == 0
