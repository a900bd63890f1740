"""Decoder layers that run as one function each: transformers' operations, in its order, without its module tree.

A one-row decode step of the bundled model calls ~8,800 Python functions: for each of 30 layers, the layer,
its attention and MLP modules (each through ``nn.Module.__call__`` and the bf16 blocks' hooks), two norms,
seven projections, the attention interface. On this CPU that Python is a tenth of a one-row step, and it is
what two batches decoding at once wait on each other for (the GIL: docs/performance.md). :func:`install`
gives each packed Llama or Qwen2 layer a forward that makes the same torch calls on the same tensors, with
the projections bound once, so the numbers are the same bit for bit.

It is a second copy of a few lines of transformers' layer code, so it proves itself before it is kept: after
installing, :func:`install` decodes a short padded batch both ways through ``generate`` and keeps the lean
layers only if every logit is equal (a transformers release that changes its layers gets its own code back,
with a log line saying why). ``R1AGENT_LEAN_LAYERS=0`` keeps transformers' layers from the start.

Only for the int4 path (:func:`~r1agent.models.int4.pack_linears`): its projections are
:class:`~r1agent.models.int4.Int4Linear` and its attention and MLP compute in bf16 between an fp32 residual
stream, which the forward below does inline (the hooks of :func:`~r1agent.models.int4.compute_blocks_in_bf16`
are not called). Hooks that other code registers on the attention, MLP, norm or projection modules do not
run either; hooks on the decoder layer itself still do.
"""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from r1agent.models.int4 import Int4Linear, int4_product

log = logging.getLogger(__name__)

SUPPORTED = ("LlamaAttention", "Qwen2Attention")
"""Attention modules whose forward :func:`_forward` repeats (Qwen2's adds biases and a sliding window)."""

BF16 = torch.bfloat16


@dataclass(frozen=True)
class _Projection:
    """An :class:`Int4Linear`'s tensors, bound once: reading them through the module costs a lookup each."""

    packed: torch.Tensor
    scales_zeros: torch.Tensor
    dense: torch.Tensor
    bias: torch.Tensor | None
    in_features: int
    out_features: int

    @classmethod
    def of(cls, linear: Int4Linear) -> _Projection:
        return cls(
            linear.packed, linear.scales_zeros, linear.dense, linear.bias, linear.in_features, linear.out_features
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return int4_product(
            x, self.packed, self.scales_zeros, self.dense, self.bias, self.in_features, self.out_features
        )


@dataclass(frozen=True)
class _Parts:
    input_norm: Callable[[torch.Tensor], torch.Tensor]
    post_norm: Callable[[torch.Tensor], torch.Tensor]
    attention: Any  # transformers' attention module: its config, head size, scaling and layer index
    q: _Projection
    k: _Projection
    v: _Projection
    o: _Projection
    gate: _Projection
    up: _Projection
    down: _Projection
    act: Callable[[torch.Tensor], torch.Tensor]
    rotary: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    eager: Callable[..., tuple[torch.Tensor, Any]]
    """The architecture's own eager attention: the default of the attention function's lookup, as in its module."""
    extra: dict[str, Any]
    """What the attention module passes its attention function beyond the mask (Qwen2: its sliding window)."""


def _parts(layer: nn.Module) -> _Parts | None:
    """The pieces of a supported, packed decoder layer; None for anything else (which keeps its own forward)."""
    attn = getattr(layer, "self_attn", None)
    mlp = getattr(layer, "mlp", None)
    if attn is None or mlp is None or type(attn).__name__ not in SUPPORTED:
        return None
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    mlp_names = ("gate_proj", "up_proj", "down_proj")
    linears = [getattr(attn, n, None) for n in names] + [getattr(mlp, n, None) for n in mlp_names]
    if not all(isinstance(linear, Int4Linear) for linear in linears):
        return None
    if any(getattr(attn, n, None) is not None for n in ("q_norm", "k_norm")):  # Qwen3-style: another forward
        return None
    module = sys.modules[type(attn).__module__]
    rotary = getattr(module, "apply_rotary_pos_emb", None)
    eager = getattr(module, "eager_attention_forward", None)
    if rotary is None or eager is None:
        return None
    q, k, v, o, gate, up, down = (_Projection.of(linear) for linear in linears)  # type: ignore[arg-type]
    extra = {"sliding_window": attn.sliding_window} if hasattr(attn, "sliding_window") else {}
    norms = [getattr(layer, n, None) for n in ("input_layernorm", "post_attention_layernorm")]
    if not all(isinstance(norm, nn.Module) for norm in norms):
        return None
    return _Parts(
        norms[0].forward,  # type: ignore[union-attr]
        norms[1].forward,  # type: ignore[union-attr]
        attn,
        q,
        k,
        v,
        o,
        gate,
        up,
        down,
        mlp.act_fn,
        rotary,
        eager,
        extra,
    )


def _forward(
    layer: nn.Module,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    cache: Any = None,
    use_cache: bool | None = False,
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    past_key_values: Any = None,
    **kwargs: Any,
) -> torch.Tensor:
    # transformers' decoder layer, attention and MLP forwards in one; the bf16 casts are the block hooks'.
    p: _Parts = layer.__dict__["_lean_parts"]
    cache = cache if cache is not None else past_key_values
    attn = p.attention
    residual = hidden_states
    hidden = p.input_norm(hidden_states).to(BF16)
    assert position_embeddings is not None
    cos, sin = position_embeddings
    input_shape = hidden.shape[:-1]
    shape = (*input_shape, -1, attn.head_dim)
    query = p.q(hidden).view(shape).transpose(1, 2)
    key = p.k(hidden).view(shape).transpose(1, 2)
    value = p.v(hidden).view(shape).transpose(1, 2)
    query, key = p.rotary(query, key, cos.to(BF16), sin.to(BF16))
    # The attention module receives these two from the layer and passes them on with the rest.
    kwargs = {"position_ids": position_ids, "use_cache": use_cache, **kwargs}
    if cache is not None:
        key, value = cache.update(key, value, attn.layer_idx, kwargs=kwargs)
    # Looked up at each call, as the module does: a model can switch its attention implementation.
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attn.config._attn_implementation, p.eager)
    out, _ = interface(attn, query, key, value, attention_mask, dropout=0.0, scaling=attn.scaling, **p.extra, **kwargs)
    out = p.o(out.reshape(*input_shape, -1).contiguous()).float()
    hidden_states = residual + out
    residual = hidden_states
    hidden = p.post_norm(hidden_states).to(BF16)
    return residual + p.down(p.act(p.gate(hidden)) * p.up(hidden)).float()


def _layers(model: nn.Module) -> list[nn.Module]:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    return list(layers) if isinstance(layers, nn.ModuleList) else []


def uninstall(model: nn.Module) -> None:
    """Give every layer transformers' own forward back."""
    for layer in _layers(model):
        layer.__dict__.pop("forward", None)
        layer.__dict__.pop("_lean_parts", None)


def installed(model: nn.Module) -> int:
    return sum("_lean_parts" in layer.__dict__ for layer in _layers(model))


def _probe(model: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of two short prompts, two greedy steps: the prefill (16 rows: the dense products), a decode
    step (2 rows: the int4 kernel) through the cache, and an explicit attention mask."""
    vocab = int(model.config.vocab_size)
    ids = torch.randint(1, vocab, (2, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding, as the batcher lays rows out
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=2,
            min_new_tokens=2,
            do_sample=False,
            repetition_penalty=1.0,
            pad_token_id=0,
            return_dict_in_generate=True,
            output_logits=True,
        )
    return out.sequences, torch.stack(out.logits)


def install(model: Any) -> int:
    """Give each packed, supported decoder layer the lean forward if it computes exactly what the stock one does.

    Returns how many layers run lean (0: none supported, or the check failed and transformers' layers run).
    """
    uninstall(model)  # the reference is transformers' own layers, also when lean ones were installed before
    layers = [(layer, parts) for layer in _layers(model) if (parts := _parts(layer)) is not None]
    if not layers:
        return 0
    try:
        want = _probe(model)
    except Exception as exc:  # noqa: BLE001 - the model cannot generate here: nothing to compare against
        log.info("lean layers: not installed (the stock model's check failed: %s)", exc)
        return 0
    for layer, parts in layers:
        layer.__dict__["_lean_parts"] = parts
        layer.__dict__["forward"] = types.MethodType(_forward, layer)
    try:
        got = _probe(model)
        same = all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        why = "its logits differ from transformers' layers"
    except Exception as exc:  # noqa: BLE001 - a transformers release whose layers take other arguments
        same, why = False, f"{type(exc).__name__}: {exc}"
    if not same:
        uninstall(model)
        log.warning("lean layers: transformers' own layers kept (%s)", why)
        return 0
    return len(layers)
