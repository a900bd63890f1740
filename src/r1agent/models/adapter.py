"""Load a PEFT adapter (``R1AGENT_ADAPTER``, e.g. a LoRA from ``r1agent train dpo``) onto the chat model.

The adapter is *merged* into the weights: the model keeps its architecture and speed, nothing else in
the stack (generation, scoring, streaming) needs to know, and the generator is pointed at the merged
model so answers and quality scores come from the same weights.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from r1agent.errors import ConfigurationError
from r1agent.models.chat import LocalChatModel

ADAPTER_CONFIG = "adapter_config.json"
TRAIN_EXTRA = "pip install 'r1agent[train]'"


def adapter_base(adapter: Path) -> str | None:
    """The base model the adapter was trained on, as its config names it."""
    try:
        config = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return base if isinstance(base, str) else None


def apply_adapter(llm: LocalChatModel, adapter: Path | None) -> LocalChatModel:
    """``llm`` with the adapter merged in (``llm`` itself when ``adapter`` is None)."""
    if adapter is None:
        return llm
    if not (adapter / ADAPTER_CONFIG).is_file():
        raise ConfigurationError(f"R1AGENT_ADAPTER is not a PEFT adapter folder (no {ADAPTER_CONFIG}): {adapter}")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ConfigurationError(f"R1AGENT_ADAPTER needs PEFT: {TRAIN_EXTRA}") from exc
    try:
        wrapped: Any = PeftModel.from_pretrained(llm.model, str(adapter), is_trainable=False)
        merged: Any = wrapped.merge_and_unload()
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        # A shape mismatch or unknown module names: an adapter trained on another base model.
        raise ConfigurationError(
            f"R1AGENT_ADAPTER {adapter} does not fit the chat model {llm.name} "
            f"(trained on {adapter_base(adapter) or 'an unknown model'}): {exc}"
        ) from exc
    merged.eval()
    # The generator captured the model object when it was built: point it at the merged one.
    if llm.chat.generator is not None:
        llm.chat.generator.model = merged
    return replace(llm, model=merged, name=f"{llm.name}+{adapter.name}")
