"""What the reasoning node needs from a chat model, whichever backend serves it.

Kept free of torch and transformers: the remote backend and the graph's nodes import it without
loading a local model's stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage


class ChatBackend(Protocol):
    """What the reasoning node needs from a model."""

    @property
    def name(self) -> str: ...

    @property
    def chat(self) -> BaseChatModel: ...

    @property
    def opens_think(self) -> bool:
        """The chat template ends the prompt inside ``<think>`` (R1-Distill): output starts as a trace."""
        ...

    def measure(self, messages: list[BaseMessage], completion: str) -> Measurement:
        """Token counts and the completion's mean log-probability (None if unknown)."""
        ...


@dataclass(frozen=True)
class Measurement:
    input_tokens: int
    output_tokens: int
    """Generated tokens (end of sequence not counted); a scoring pass re-tokenises the text, equal up to
    tokenisation round-trips."""
    mean_logprob: float | None
    finished: bool | None
    """End-of-sequence was the model's top choice after the completion: under greedy decoding, the
    model stopped by itself rather than at the token budget. None when unknown."""

    @classmethod
    def reported(cls, reply: BaseMessage) -> Measurement | None:
        """The figures a backend sent with its reply (:data:`MEASURED_KEY`); None when it sent none."""
        measured = reply.response_metadata.get(MEASURED_KEY)
        if not isinstance(measured, dict):
            return None
        usage = getattr(reply, "usage_metadata", None) or {}  # a server may not count tokens: 0 then
        logprob = measured.get("mean_logprob")
        return cls(
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            float(logprob) if isinstance(logprob, int | float) else None,
            measured.get("finished") if isinstance(measured.get("finished"), bool) else None,
        )


MEASURED_KEY = "r1agent_measured"
"""``response_metadata`` key of a reply's quality figures ({mean_logprob, finished}), next to its
``usage_metadata``: a backend that knows them from generating saves the reasoning node a scoring pass."""
