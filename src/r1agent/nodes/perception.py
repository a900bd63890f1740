"""perceive: normalise the customer's turn into text plus a list of attachments."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.runtime import Runtime

from r1agent.context import Context
from r1agent.errors import InputError
from r1agent.state import Attachment, PerceiveUpdate, State, TurnError

_KINDS: dict[str, Literal["image", "audio", "file"]] = {
    "image": "image",
    "image_url": "image",
    "audio": "audio",
    "input_audio": "audio",
    "file": "file",
}


def validate_text(text: str, *, max_chars: int) -> str:
    """The one check on a turn's text, shared by the CLI and the graph."""
    cleaned = text.replace("\x00", "").strip()
    if not cleaned:
        raise InputError("the message is empty: type a question for the agent")
    if len(cleaned) > max_chars:
        raise InputError(
            f"the message is {len(cleaned):,} characters long; the limit is {max_chars:,} (R1AGENT_MAX_TURN_CHARS)"
        )
    return cleaned


def split_content(content: str | list[Any]) -> tuple[str, list[Attachment]]:
    """Text and attachments from a message's content (a string or LangChain content blocks)."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    attachments: list[Attachment] = []
    for i, block in enumerate(content):
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = str(block.get("type", ""))
        if kind == "text":
            texts.append(str(block.get("text", "")))
            continue
        data = block.get("base64") or block.get("data") or ""
        attachments.append(
            Attachment(
                kind=_KINDS.get(kind, "file"),
                mime_type=str(block.get("mime_type") or block.get("mimeType") or "application/octet-stream"),
                name=str(block.get("name") or (block.get("extras") or {}).get("filename") or f"attachment-{i + 1}"),
                size=len(data) * 3 // 4 if isinstance(data, str) else 0,
            )
        )
    return "\n".join(t for t in texts if t), attachments


def last_human(messages: list[AnyMessage]) -> HumanMessage | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message
    return None


def perceive(state: State, runtime: Runtime[Context], *, max_chars: int) -> PerceiveUpdate:
    # Every per-turn field is reset here, so nothing from the previous turn leaks into this one.
    update = PerceiveUpdate(
        text="",
        attachments=[],
        errors=[],
        intent=None,
        sources=[],
        tool_calls=[],
        draft="",
        thinking="",
        cited=[],
        logprob=None,
        finished=None,
        quality=None,
        handoff=None,
        usage={"input_tokens": 0, "output_tokens": 0},
    )
    message = last_human(state["messages"])
    if message is None:
        update["errors"] = [TurnError(stage="perceive", message="no customer message in the input")]
        return update
    text, attachments = split_content(message.content)
    errors = [
        TurnError(
            stage="perceive",
            message=f"{a['kind']} attachment {a['name']!r} ({a['mime_type']}) is not supported yet and was not read",
        )
        for a in attachments
    ]
    try:
        update["text"] = validate_text(text, max_chars=max_chars)
    except InputError as exc:
        if text.strip() or not attachments:
            errors.append(TurnError(stage="perceive", message=str(exc)))
    update["attachments"] = attachments
    update["errors"] = errors
    return update


def route_after_perceive(state: State) -> Literal["detect_intent", "reject"]:
    return "detect_intent" if state.get("text") else "reject"
