"""perceive: the customer's turn becomes validated text plus a list of attachments."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from r1agent.context import Context
from r1agent.errors import InputError
from r1agent.nodes.perception import last_human, perceive, route_after_perceive, split_content, validate_text
from r1agent.state import State

RUNTIME = Runtime(context=Context())
PNG = base64.b64encode(b"\x89PNG" + b"\x00" * 296).decode()  # 300 bytes decoded


@pytest.mark.parametrize("text", ["", "   \n\t", "\x00\x00", " \x00 "])
def test_validate_text_rejects_empty(text: str) -> None:
    with pytest.raises(InputError, match="empty"):
        validate_text(text, max_chars=100)


def test_validate_text_strips_nul_bytes_and_whitespace() -> None:
    assert validate_text("  where is\x00 my order?\x00 \n", max_chars=100) == "where is my order?"


def test_validate_text_over_limit_names_the_limit() -> None:
    with pytest.raises(InputError) as exc:
        validate_text("x" * 1001, max_chars=1000)
    message = str(exc.value)
    assert "1,000" in message
    assert "1,001" in message
    assert "R1AGENT_MAX_TURN_CHARS" in message


def test_validate_text_limit_applies_after_stripping() -> None:
    assert validate_text("  " + "x" * 10 + "  ", max_chars=10) == "x" * 10


def test_split_content_string() -> None:
    assert split_content("hello") == ("hello", [])


def test_split_content_blocks() -> None:
    blocks: list[Any] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "base64": PNG, "mime_type": "image/png", "name": "photo.png"},
        "plain string block",
        {"type": "audio", "data": "AAAA", "mime_type": "audio/wav", "extras": {"filename": "voice.wav"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.jpg"}},
        {"type": "text", "text": ""},
        {"type": "file", "mimeType": "application/pdf", "base64": "QUJD"},
    ]
    text, attachments = split_content(blocks)
    assert text == "What is this?\nplain string block"
    assert attachments == [
        {"kind": "image", "mime_type": "image/png", "name": "photo.png", "size": 300},
        {"kind": "audio", "mime_type": "audio/wav", "name": "voice.wav", "size": 3},
        {"kind": "image", "mime_type": "application/octet-stream", "name": "attachment-5", "size": 0},
        {"kind": "file", "mime_type": "application/pdf", "name": "attachment-7", "size": 3},
    ]


def test_unknown_block_type_is_a_file() -> None:
    _, attachments = split_content([{"type": "video", "mime_type": "video/mp4"}])
    assert attachments[0]["kind"] == "file"


def test_last_human() -> None:
    first, second = HumanMessage(content="a"), HumanMessage(content="b")
    assert last_human([first, AIMessage(content="x"), second, AIMessage(content="y")]) is second
    assert last_human([AIMessage(content="x")]) is None


def _previous_turn(messages: list[Any]) -> State:
    return State(
        messages=messages,
        text="old question",
        draft="old draft",
        thinking="old thoughts",
        cited=[1],
        sources=[{"id": "1", "source": "s", "title": "t", "text": "x", "score": 0.9}],
        tool_calls=[{"name": "n", "args": {}, "result": "r", "error": None}],
        logprob=-0.5,
        finished=False,
        usage={"input_tokens": 10, "output_tokens": 20},
        quality={"score": 0.2, "signals": {}, "threshold": 0.5},
        handoff={"ticket_id": "abc", "reason": "low_quality", "status": "resolved"},
        errors=[{"stage": "perceive", "message": "old"}],
    )


def test_perceive_resets_per_turn_fields() -> None:
    state = _previous_turn(
        [HumanMessage(content="old question"), AIMessage(content="old"), HumanMessage(content="  new? ")]
    )
    update = perceive(state, RUNTIME, max_chars=100)
    assert update["text"] == "new?"
    assert update["attachments"] == []
    assert update["errors"] == []
    expected: list[tuple[str, Any]] = [
        ("intent", None),
        ("sources", []),
        ("tool_calls", []),
        ("draft", ""),
        ("thinking", ""),
        ("cited", []),
        ("logprob", None),
        ("finished", None),
        ("quality", None),
        ("handoff", None),
        ("usage", {"input_tokens": 0, "output_tokens": 0}),
    ]
    for key, empty in expected:
        assert update[key] == empty, key  # type: ignore[literal-required]
    assert "messages" not in update


def test_perceive_reports_unsupported_attachments_and_keeps_text() -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": "Is this scratch covered?"},
            {"type": "image", "base64": PNG, "mime_type": "image/png", "name": "scratch.png"},
        ]
    )
    update = perceive(State(messages=[message]), RUNTIME, max_chars=100)
    assert update["text"] == "Is this scratch covered?"
    assert [a["name"] for a in update["attachments"]] == ["scratch.png"]
    assert len(update["errors"]) == 1
    error = update["errors"][0]
    assert error["stage"] == "perceive"
    assert "scratch.png" in error["message"]
    assert "image/png" in error["message"]
    assert "not supported" in error["message"]
    assert route_after_perceive({**State(messages=[message]), **update}) == "detect_intent"


def test_attachment_only_turn_is_rejected() -> None:
    message = HumanMessage(content=[{"type": "audio", "data": "AAAA", "mime_type": "audio/wav"}])
    state = State(messages=[message])
    update = perceive(state, RUNTIME, max_chars=100)
    assert update["text"] == ""
    # Only the attachment is reported; an "empty message" error would add nothing.
    assert len(update["errors"]) == 1
    assert "audio" in update["errors"][0]["message"]
    assert route_after_perceive({**state, **update}) == "reject"


def test_empty_and_over_long_turns_are_rejected() -> None:
    empty = perceive(State(messages=[HumanMessage(content="  ")]), RUNTIME, max_chars=100)
    assert empty["text"] == ""
    assert "empty" in empty["errors"][0]["message"]

    long = perceive(State(messages=[HumanMessage(content="y" * 101)]), RUNTIME, max_chars=100)
    assert long["text"] == ""
    assert "100" in long["errors"][0]["message"]
    assert route_after_perceive(State(messages=[], **long)) == "reject"


def test_no_customer_message() -> None:
    update = perceive(State(messages=[AIMessage(content="hi")]), RUNTIME, max_chars=100)
    assert update["text"] == ""
    assert update["errors"] == [{"stage": "perceive", "message": "no customer message in the input"}]


def test_route_after_perceive() -> None:
    assert route_after_perceive(State(messages=[], text="hi")) == "detect_intent"
    assert route_after_perceive(State(messages=[], text="")) == "reject"
    assert route_after_perceive(State(messages=[])) == "reject"
