"""A tiny, randomly initialised Llama for tests of logic that needs a real transformers model (its caches,
its attention, its generate), where the bundled SmolLM2 would only add seconds."""

from __future__ import annotations

from typing import Any


def tiny_llama(**overrides: Any) -> Any:
    """2 layers, hidden 64, grouped-query attention (4 heads, 2 KV heads), tied 128-word embedding; seeded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        **{
            "vocab_size": 128,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "tie_word_embeddings": True,
            **overrides,
        }
    )
    return LlamaForCausalLM(config).eval()
