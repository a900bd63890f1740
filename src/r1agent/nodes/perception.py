"""perceive: normalise the customer's turn into text, attachments and what was perceived in them.

Attachments arrive as LangChain's standard content blocks (``{"type": "image"|"audio", "base64": ...,
"mime_type": ...}``). Each is checked and perceived on its own: a bad file becomes an error naming it,
and the rest of the turn is still answered. What the customer said in a voice note and the text found
in an image join the typed text, so intent detection, entities (an order id in a screenshot) and
retrieval see them.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.runtime import Runtime

from r1agent.context import Context
from r1agent.errors import InputError, R1AgentError
from r1agent.intents.entities import normalize_spoken
from r1agent.perception.types import AudioPerception, ImagePerception
from r1agent.state import Attachment, PerceiveUpdate, Perception, State, TurnError

_KINDS: dict[str, Literal["image", "audio", "file"]] = {
    "image": "image",
    "image_url": "image",
    "audio": "audio",
    "input_audio": "audio",
    "file": "file",
}
MAX_NAME_CHARS = 100
# A lone UTF-16 surrogate (a broken client, a JSON "\ud83d" escape) is no character: tokenizers raise on it
# and UTF-8 stores (SQLite tickets) refuse it. It becomes U+FFFD, the replacement character.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class ImagePerceiver(Protocol):
    def perceive(self, data: bytes, *, name: str, mime_type: str) -> ImagePerception: ...


class AudioPerceiver(Protocol):
    def perceive(self, data: bytes, *, name: str, mime_type: str) -> AudioPerception: ...


@dataclass(frozen=True)
class Block:
    """One attachment as it arrived: metadata for state, bytes only for perception."""

    attachment: Attachment
    data: bytes | None
    problem: str | None = None


def validate_text(text: str, *, max_chars: int) -> str:
    """The one check on a turn's text, shared by the CLI and the graph."""
    cleaned = _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", "")).strip()
    if not cleaned:
        raise InputError("the message is empty: type a question for the agent")
    if len(cleaned) > max_chars:
        raise InputError(
            f"the message is {len(cleaned):,} characters long; the limit is {max_chars:,} (R1AGENT_MAX_TURN_CHARS)"
        )
    return cleaned


def split_content(content: str | list[Any]) -> tuple[str, list[Attachment]]:
    """Text and attachment metadata from a message's content (a string or LangChain content blocks)."""
    text, blocks = read_blocks(content)
    return text, [b.attachment for b in blocks]


def read_blocks(content: str | list[Any]) -> tuple[str, list[Block]]:
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    blocks: list[Block] = []
    for i, block in enumerate(content):
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = str(block.get("type", ""))
        if kind == "text":
            texts.append(str(block.get("text", "")))
            continue
        blocks.append(_read_block(block, i))
    return "\n".join(t for t in texts if t), blocks


def _read_block(block: dict[str, Any], index: int) -> Block:
    raw = block.get("base64") or block.get("data") or (block.get("input_audio") or {}).get("data") or ""
    extras = block.get("extras") or {}
    meta = block.get("metadata") or {}
    name = safe_name(str(block.get("name") or extras.get("filename") or meta.get("filename") or ""), index)
    mime = str(block.get("mime_type") or block.get("mimeType") or "application/octet-stream")
    attachment = Attachment(kind=_KINDS.get(str(block.get("type")), "file"), mime_type=mime, name=name, size=0)
    if not raw:
        where = "by URL (not fetched: r1agent runs offline)" if block.get("url") else "without data"
        return Block(attachment, None, f"{name}: sent {where}; attach the file's bytes")
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
    except (binascii.Error, ValueError, TypeError):
        return Block(attachment, None, f"{name}: the attachment is not valid base64")
    attachment["size"] = len(data)
    return Block(attachment, data)


def safe_name(raw: str, index: int) -> str:
    """An attachment's name as messages show it: the last part of a path, printable characters only (no
    bidi overrides or zero-width tricks), at most 100 characters. The name is the sender's text: it is
    never opened as a path, and it must not flood or disguise the answer that names a bad file."""
    base = re.split(r"[\\/]", raw)[-1]
    clean = "".join(ch for ch in base if ch.isprintable() and unicodedata.category(ch) != "Cf").strip()
    return clean[:MAX_NAME_CHARS] or f"attachment-{index + 1}"


def last_human(messages: list[AnyMessage]) -> HumanMessage | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message
    return None


def perceive(
    state: State,
    runtime: Runtime[Context],
    *,
    max_chars: int,
    max_attachments: int = 8,
    images: ImagePerceiver | None = None,
    audio: AudioPerceiver | None = None,
) -> PerceiveUpdate:
    # Every per-turn field is reset here, so nothing from the previous turn leaks into this one.
    update = PerceiveUpdate(
        text="", attachments=[], perception=Perception(images=[], audio=[]), errors=[], intent=None, sources=[],
        tool_calls=[], draft="", thinking="", cited=[], logprob=None, finished=None, quality=None, handoff=None,
        cached=None,
        usage={"input_tokens": 0, "output_tokens": 0},
    )  # fmt: skip
    message = last_human(state["messages"])
    if message is None:
        update["errors"] = [TurnError(stage="perceive", message="no customer message in the input")]
        return update
    if _has_surrogates(message.content):
        # Replaced in the thread too (same message id): history replays and tickets must not carry it.
        message = message.model_copy(update={"content": _scrub(message.content)})
        update["messages"] = [message]
    typed, blocks = read_blocks(message.content)
    errors: list[TurnError] = []
    if len(blocks) > max_attachments:
        errors.append(
            TurnError(
                stage="perceive",
                message=f"{len(blocks)} attachments; the limit is {max_attachments} a turn, "
                f"so the last {len(blocks) - max_attachments} were not read",
            )
        )
    perceived = Perception(images=[], audio=[])
    heard: list[str] = []
    seen: list[str] = []
    for block in blocks[:max_attachments]:
        try:
            if block.problem is not None or block.data is None:
                raise InputError(block.problem or f"{block.attachment['name']}: no data")
            kind, name, mime = block.attachment["kind"], block.attachment["name"], block.attachment["mime_type"]
            if kind == "image" and images is not None:
                image = images.perceive(block.data, name=name, mime_type=mime)
                perceived["images"].append(image)
                if image["text"].strip():
                    seen.append(image["text"].strip())
            elif kind == "audio" and audio is not None:
                voice = audio.perceive(block.data, name=name, mime_type=mime)
                perceived["audio"].append(voice)
                if voice["transcript"].strip():
                    heard.append(normalize_spoken(voice["transcript"].strip()))
            else:
                raise InputError(f"{name}: {kind} attachments ({mime}) are not supported")
        except R1AgentError as exc:  # a bad file (or a missing OCR engine) must not lose the turn
            errors.append(TurnError(stage="perceive", message=str(exc)))
    combined = "\n".join(part for part in (typed.strip(), *heard, *seen) if part)
    try:
        update["text"] = validate_text(combined, max_chars=max_chars)
    except InputError as exc:
        if combined.strip() or not blocks:
            errors.append(TurnError(stage="perceive", message=str(exc)))
    update["attachments"] = [b.attachment for b in blocks]
    update["perception"] = perceived
    update["errors"] = errors
    return update


def _has_surrogates(content: str | list[Any]) -> bool:
    parts = [content] if isinstance(content, str) else [b if isinstance(b, str) else b.get("text") for b in content]
    return any(isinstance(p, str) and _LONE_SURROGATE.search(p) for p in parts)


def _scrub(content: str | list[Any]) -> str | list[Any]:
    if isinstance(content, str):
        return _LONE_SURROGATE.sub("\ufffd", content)
    return [
        _scrub(b) if isinstance(b, str) else ({**b, "text": _scrub(b["text"])} if isinstance(b.get("text"), str) else b)
        for b in content
    ]


def route_after_perceive(state: State) -> Literal["detect_intent", "reject"]:
    return "detect_intent" if state.get("text") else "reject"
