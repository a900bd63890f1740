"""Split an R1-style ``<think>…</think>`` trace from the answer.

Three shapes occur: both tags (most chat templates), only the closing tag (R1-Distill templates end
the prompt with ``<think>\\n`` so the model never emits the opening tag), and no tags (SmolLM2 and
other non-reasoning models). A trace that never closes (the token budget ran out mid-thought) is all
thinking and no answer: showing half a thought as the answer would be worse than handing off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"


def split_think(text: str, *, starts_in_think: bool = False) -> tuple[str, str]:
    """Return ``(thinking, answer)``, both stripped.

    ``starts_in_think`` is True when the prompt itself ended with ``<think>``: then text without
    any closing tag is an unfinished trace rather than an answer.
    """
    close = text.find(CLOSE)
    if close >= 0:
        head, answer = text[:close], text[close + len(CLOSE) :]
        open_at = head.find(OPEN)
        thinking = head[open_at + len(OPEN) :] if open_at >= 0 else head
        # A second trace after the first is still not the answer.
        while CLOSE in answer:
            extra, answer = answer.split(CLOSE, 1)
            thinking += "\n" + extra.replace(OPEN, "")
        return thinking.strip(), answer.replace(OPEN, "").strip()
    open_at = text.find(OPEN)
    if open_at >= 0:
        return text[open_at + len(OPEN) :].strip(), text[:open_at].strip()
    if starts_in_think:
        return text.strip(), ""
    return "", text.strip()


Channel = Literal["thinking", "answer"]


@dataclass
class ThinkStreamSplitter:
    """Route streamed text pieces to ``thinking`` or ``answer`` as they arrive.

    Tags may be split across pieces, so up to ``len(CLOSE) - 1`` characters are held back until it
    is clear they are not the start of a tag.
    """

    in_think: bool = False
    _pending: str = field(default="", repr=False)

    def feed(self, piece: str) -> Iterator[tuple[Channel, str]]:
        buf = self._pending + piece
        self._pending = ""
        while buf:
            tag = CLOSE if self.in_think else OPEN
            at = buf.find(tag)
            if at >= 0:
                if at:
                    yield self._channel, buf[:at]
                buf = buf[at + len(tag) :]
                self.in_think = not self.in_think
                continue
            keep = _partial_suffix(buf, tag)
            if len(buf) > keep:
                yield self._channel, buf[: len(buf) - keep]
            self._pending = buf[len(buf) - keep :]
            return

    def flush(self) -> Iterator[tuple[Channel, str]]:
        if self._pending:
            yield self._channel, self._pending
            self._pending = ""

    @property
    def _channel(self) -> Channel:
        return "thinking" if self.in_think else "answer"


def _partial_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if tag.startswith(buf[-n:]):
            return n
    return 0
