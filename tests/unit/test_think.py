"""split_think and the streaming splitter must agree on where thinking ends and the answer starts."""

from __future__ import annotations

import random

import pytest

from r1agent.models.think import ThinkStreamSplitter, split_think


def test_both_tags() -> None:
    assert split_think("<think> check the policy </think> Returns take 30 days.") == (
        "check the policy",
        "Returns take 30 days.",
    )


def test_closing_tag_only() -> None:
    # R1-Distill templates end the prompt with "<think>\n", so the model only emits the closing tag.
    assert split_think("weigh the options\n</think>\n\nYes, it ships today.") == (
        "weigh the options",
        "Yes, it ships today.",
    )
    assert split_think("a</think>b", starts_in_think=True) == ("a", "b")


def test_no_tags_is_all_answer() -> None:
    assert split_think("  Hello there!  ") == ("", "Hello there!")


def test_unclosed_think_is_all_thinking() -> None:
    assert split_think("<think>I should look up the order and then") == ("I should look up the order and then", "")


def test_text_before_an_unclosed_think_is_the_answer() -> None:
    assert split_think("Sure. <think>more to say") == ("more to say", "Sure.")


def test_starts_in_think_without_closing_tag_is_unfinished_trace() -> None:
    assert split_think("still thinking about", starts_in_think=True) == ("still thinking about", "")


def test_starts_in_think_with_closing_tag() -> None:
    assert split_think("thought</think>answer", starts_in_think=True) == ("thought", "answer")


def test_multiple_traces_never_leak_into_the_answer() -> None:
    # Text between traces is answer text: the same rule streaming can follow without retracting output.
    thinking, answer = split_think("<think>first</think>mid<think>second</think> final answer")
    assert answer == "mid final answer"
    assert "first" in thinking
    assert "second" in thinking
    assert "<think>" not in thinking
    assert "</think>" not in thinking


def test_stray_open_tag_after_close_is_removed_from_answer() -> None:
    assert split_think("<think>t</think>answer<think>") == ("t", "answer")


def _stream(text: str, pieces: list[str], *, in_think: bool) -> tuple[str, str]:
    assert "".join(pieces) == text
    splitter = ThinkStreamSplitter(in_think=in_think)
    out = {"thinking": "", "answer": ""}
    for piece in pieces:
        for channel, chunk in splitter.feed(piece):
            out[channel] += chunk
    for channel, chunk in splitter.flush():
        out[channel] += chunk
    return out["thinking"].strip(), out["answer"].strip()


def _random_pieces(text: str, rng: random.Random) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        pieces.append(text[i : i + n])
        i += n
    return pieces


CASES = [
    ("<think>check stock</think>It is in stock.", False),
    ("check stock</think>It is in stock.", True),
    ("Plain answer with a < sign and </ no tag.", False),
    ("Plain answer, no trace.", False),
    ("an unfinished trace with no end", True),
    ("<think>the budget ran out mid", False),
    ("Sure. <think>more", False),
    ("answer ending with a partial tag </thi", False),
]


@pytest.mark.parametrize(("text", "in_think"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_stream_matches_split_think_for_random_pieces(text: str, in_think: bool, seed: int) -> None:
    pieces = _random_pieces(text, random.Random(seed))
    assert _stream(text, pieces, in_think=in_think) == split_think(text, starts_in_think=in_think)


@pytest.mark.parametrize(("text", "in_think"), CASES)
def test_stream_one_character_at_a_time(text: str, in_think: bool) -> None:
    assert _stream(text, list(text), in_think=in_think) == split_think(text, starts_in_think=in_think)


def test_closing_tag_split_across_pieces() -> None:
    splitter = ThinkStreamSplitter(in_think=True)
    first = list(splitter.feed("plan</thi"))
    # "</thi" could be the start of the closing tag, so it is held back rather than shown as thinking.
    assert first == [("thinking", "plan")]
    second = list(splitter.feed("nk>Done"))
    assert second == [("answer", "Done")]
    assert list(splitter.flush()) == []


def test_held_back_prefix_is_released_when_it_is_not_a_tag() -> None:
    splitter = ThinkStreamSplitter()
    assert list(splitter.feed("a <thi")) == [("answer", "a ")]
    assert list(splitter.feed("s and that")) == [("answer", "<this and that")]


def test_flush_releases_a_trailing_partial_tag() -> None:
    splitter = ThinkStreamSplitter()
    assert list(splitter.feed("x <th")) == [("answer", "x ")]
    assert list(splitter.flush()) == [("answer", "<th")]
    assert list(splitter.flush()) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_stream_matches_split_think_with_two_traces(seed: int) -> None:
    text = "<think>first</think>mid<think>second</think>final"
    pieces = _random_pieces(text, random.Random(seed))
    assert _stream(text, pieces, in_think=False) == split_think(text)
