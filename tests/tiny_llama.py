"""Tiny, randomly initialised Llama and Qwen2 models for tests of logic that needs a real transformers model (its
caches, its attention, its generate), where the bundled SmolLM2 would only add seconds."""

from __future__ import annotations

from typing import Any

SHAPE = {
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}


def tiny_llama(**overrides: Any) -> Any:
    """2 layers, hidden 64, grouped-query attention (4 heads, 2 KV heads), tied 128-word embedding; seeded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**SHAPE, **overrides})).eval()


def tiny_qwen2(**overrides: Any) -> Any:
    """The same shape as Qwen2 (R1-Distill-Qwen's architecture: q/k/v biases); seeded."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(**{**SHAPE, **overrides})).eval()


def four_bit(model: Any) -> Any:
    """``model`` (in place) with its decoder layers' linear weights rounded to exact 4-bit values, as the bundled
    model's Q4_1 weights are, so int4 packing takes them."""
    import torch
    from torch import nn

    from r1agent.models import int4

    with torch.no_grad():
        for module in model.model.layers.modules():
            if type(module) is nn.Linear:
                codes, step, low, _ = int4.quantize(module.weight)
                rows, cols = module.weight.shape
                groups = codes.reshape(rows, cols // int4.GROUP, int4.GROUP).float()
                module.weight.copy_((groups * step[..., None] + low[..., None]).reshape(rows, cols))
    return model
