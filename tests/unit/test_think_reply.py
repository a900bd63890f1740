"""The reply shapes around the think split: a stream that cannot know its channel yet holds text back, a
split reply (``reasoning_content``) and a raw one read the same, and the two channels rejoin into the text
the model wrote."""

from __future__ import annotations

import random

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk

from r1agent.models.think import (
    REASONING_KEY,
    ThinkStreamSplitter,
    join_think,
    reply_parts,
    route_think,
    split_think,
)

R1 = "<think>\nThe customer wants a status.\n</think>\n\nYour order has shipped."


def _stream(text: str, pieces: list[str], *, in_think: bool, undecided: bool) -> tuple[str, str]:
    splitter = ThinkStreamSplitter(in_think=in_think, undecided=undecided)
    out = {"thinking": "", "answer": ""}
    for piece in pieces:
        for channel, chunk in splitter.feed(piece):
            out[channel] += chunk
    for channel, chunk in splitter.flush():
        out[channel] += chunk
    return out["thinking"], out["answer"]


def test_undecided_text_is_held_until_a_closing_tag_shows_it_was_a_trace() -> None:
    splitter = ThinkStreamSplitter(undecided=True)
    assert list(splitter.feed("weigh the ")) == []  # could be either: nothing is shown yet
    assert list(splitter.feed("options</think>\n\nYes")) == [("thinking", "weigh the options"), ("answer", "\n\nYes")]
    assert list(splitter.feed(", today.")) == [("answer", ", today.")]  # decided: streams freely now


def test_undecided_text_before_an_opening_tag_is_answer() -> None:
    splitter = ThinkStreamSplitter(undecided=True)
    assert list(splitter.feed("Sure. ")) == []
    assert list(splitter.feed("<think>more")) == [("answer", "Sure. "), ("thinking", "more")]


def test_undecided_text_without_any_tag_is_the_answer_at_the_end() -> None:
    splitter = ThinkStreamSplitter(undecided=True)
    assert list(splitter.feed("Plain answer, ")) == []
    assert list(splitter.feed("no trace.")) == []
    assert list(splitter.flush()) == [("answer", "Plain answer, no trace.")]


CASES = [
    R1,
    "weigh the options\n</think>\n\nYes, it ships today.",
    "Plain answer with a < sign and </ no tag.",
    "Sure. <think>more to say",
    "<think>the budget ran out mid",
    "<think>first</think>mid<think>second</think> final",
]


@pytest.mark.parametrize("text", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_undecided_stream_routes_like_split_think(text: str, seed: int) -> None:
    rng, pieces, i = random.Random(seed), [], 0
    while i < len(text):
        n = rng.randint(1, 5)
        pieces.append(text[i : i + n])
        i += n
    thinking, answer = _stream(text, pieces, in_think=False, undecided=True)
    assert (thinking.strip(), answer.strip()) == split_think(text)
    assert "<think>" not in answer and "</think>" not in answer


@pytest.mark.parametrize(
    ("text", "starts_in_think"),
    [
        (R1, False),
        ("The customer wants a status.\n</think>\n\nYour order has shipped.", True),
        ("Hello there!\n", False),
        ("<think>the budget ran out mid", False),
        ("a trace that never ends", True),
    ],
)
def test_the_channels_rejoin_into_what_the_model_wrote(text: str, starts_in_think: bool) -> None:
    thinking, answer = route_think(text, starts_in_think=starts_in_think, undecided=True)
    assert join_think(thinking, answer, starts_in_think=starts_in_think) == text


def test_a_split_reply_and_a_raw_one_read_the_same() -> None:
    raw = AIMessage(content=R1)
    split = AIMessage(
        content="\n\nYour order has shipped.", additional_kwargs={REASONING_KEY: "\nThe customer wants a status.\n"}
    )
    expected = ("The customer wants a status.", "Your order has shipped.")
    assert reply_parts(raw, starts_in_think=False) == (*expected, R1)
    assert reply_parts(split, starts_in_think=False) == (*expected, R1)


def test_a_split_reply_with_an_empty_trace_is_all_answer_even_when_the_prompt_opened_one() -> None:
    # The key says "already split": the answer is never re-read as an unclosed trace.
    reply = AIMessage(content="Yes.", additional_kwargs={REASONING_KEY: ""})
    assert reply_parts(reply, starts_in_think=True) == ("", "Yes.", "Yes.")


def test_streamed_chunks_merge_into_the_split_reply() -> None:
    # How LangChain merges chunks: the trace and the answer accumulate in their own fields.
    chunks = [
        AIMessageChunk(content="", additional_kwargs={REASONING_KEY: ""}),
        AIMessageChunk(content="", additional_kwargs={REASONING_KEY: "\nThe customer "}),
        AIMessageChunk(content="", additional_kwargs={REASONING_KEY: "wants a status.\n"}),
        AIMessageChunk(content="\n\nYour order "),
        AIMessageChunk(content="has shipped."),
    ]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.content == "\n\nYour order has shipped."
    assert merged.content_blocks[0] == {"type": "reasoning", "reasoning": "\nThe customer wants a status.\n"}
    assert reply_parts(merged, starts_in_think=False) == (
        "The customer wants a status.",
        "Your order has shipped.",
        R1,
    )
