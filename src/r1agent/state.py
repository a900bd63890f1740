"""The graph's state and the typed partial updates each node returns.

``messages`` accumulates across turns (``add_messages``); every other field describes the *current*
turn and is reset by ``perceive`` at the start of each one, so a checkpoint always shows what the last
turn saw and decided.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from r1agent.perception.types import AudioPerception, ImagePerception

HandoffReason = Literal["requested", "out_of_scope", "low_quality"]


class Attachment(TypedDict):
    kind: Literal["image", "audio", "file"]
    mime_type: str
    name: str
    size: int
    """Bytes of the decoded payload (0 when unknown)."""


class Perception(TypedDict):
    images: list[ImagePerception]
    audio: list[AudioPerception]


class TurnError(TypedDict):
    stage: str
    message: str


class Intent(TypedDict):
    label: str
    confidence: float
    entities: dict[str, list[str]]
    scores: dict[str, float]
    """Calibrated probability per label, for evals and debugging."""
    wants_human: bool


class Source(TypedDict):
    id: str
    source: str
    title: str
    text: str
    score: float


class ToolCall(TypedDict):
    name: str
    args: dict[str, Any]
    result: str | None
    error: str | None
    """In the tool's own plain words; shown to the customer."""
    missing: list[str]
    """Required arguments not found in the turn: the agent asked for them instead of calling."""
    answer: NotRequired[str]
    """The tool's own customer-ready answer (see ``AgentTool.direct_answer``): the model is skipped."""


class Quality(TypedDict):
    score: float
    signals: dict[str, float]
    threshold: float


class Handoff(TypedDict):
    ticket_id: str
    reason: HandoffReason
    status: Literal["open", "resolved"]


class Usage(TypedDict):
    input_tokens: int
    output_tokens: int


class InputState(TypedDict):
    """What a caller sends: LangChain messages, the last one the customer's turn."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState):
    text: NotRequired[str]
    attachments: NotRequired[list[Attachment]]
    perception: NotRequired[Perception]
    errors: NotRequired[list[TurnError]]
    intent: NotRequired[Intent | None]
    sources: NotRequired[list[Source]]
    tool_calls: NotRequired[list[ToolCall]]
    draft: NotRequired[str]
    """The model's answer before the quality gate; the customer only sees it if it passes."""
    thinking: NotRequired[str]
    """The R1 ``<think>`` trace: kept for humans and evals, never sent as the answer."""
    cited: NotRequired[list[int]]
    """1-based indexes into ``sources`` that the answer cites."""
    logprob: NotRequired[float | None]
    """Mean per-token log-probability of the raw completion, when the backend can tell."""
    finished: NotRequired[bool | None]
    """The model ended its answer itself (False: cut off at the token budget; None: unknown)."""
    usage: NotRequired[Usage]
    quality: NotRequired[Quality | None]
    handoff: NotRequired[Handoff | None]
    cached: NotRequired[bool | None]
    """The answer came from the semantic answer cache (None: the turn never looked)."""


class OutputState(TypedDict, total=False):
    """What a run returns: the thread's messages and what the last turn saw and decided."""

    messages: list[AnyMessage]
    perception: Perception
    intent: Intent | None
    sources: list[Source]
    tool_calls: list[ToolCall]
    thinking: str
    quality: Quality | None
    handoff: Handoff | None
    errors: list[TurnError]
    cached: bool | None


# Partial updates, one per node: mypy checks a node only writes what it owns.
class PerceiveUpdate(TypedDict, total=False):
    text: str
    attachments: list[Attachment]
    perception: Perception
    errors: list[TurnError]
    intent: Intent | None
    sources: list[Source]
    tool_calls: list[ToolCall]
    draft: str
    thinking: str
    cited: list[int]
    logprob: float | None
    finished: bool | None
    usage: Usage
    quality: Quality | None
    handoff: Handoff | None
    messages: list[AnyMessage]
    cached: bool | None


class IntentUpdate(TypedDict):
    intent: Intent


class RetrieveUpdate(TypedDict):
    sources: list[Source]


class RecallUpdate(TypedDict, total=False):
    cached: bool
    draft: str
    thinking: str
    sources: list[Source]
    cited: list[int]
    logprob: float | None
    finished: bool | None
    usage: Usage


class ActUpdate(TypedDict, total=False):
    tool_calls: list[ToolCall]
    draft: str


class ReasonUpdate(TypedDict):
    draft: str
    thinking: str
    cited: list[int]
    logprob: float | None
    finished: bool | None
    usage: Usage


class QualityUpdate(TypedDict):
    quality: Quality


class MessagesUpdate(TypedDict, total=False):
    messages: list[AnyMessage]
    handoff: Handoff | None
