"""Split an R1-style ``<think>…</think>`` trace from the answer.

Three shapes occur: both tags (most chat templates), only the closing tag (R1-Distill templates that
end the prompt with ``<think>\\n``, so the model never emits the opening tag), and no tags (SmolLM2 and
other non-reasoning models). Text inside traces is thinking, text outside is the answer. A trace that
never closes (the token budget ran out mid-thought) is all thinking and no answer: half a thought
shown as the answer would be worse than handing off.

One implementation serves both uses: :class:`ThinkStreamSplitter` routes streamed pieces, and
:func:`split_think` runs it over a whole completion, so the streamed answer and the stored draft
always agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"
Channel = Literal["thinking", "answer"]


@dataclass
class ThinkStreamSplitter:
    """Route streamed text pieces to ``thinking`` or ``answer`` as they arrive.

    Tags may be split across pieces, so a possible tag prefix at the end of a piece is held back
    until the next piece shows what it is. A tag that does not change the mode (``<think>`` while
    already thinking, a stray ``</think>`` in the answer) is dropped, never shown.
    """

    in_think: bool = False
    _pending: str = field(default="", repr=False)

    def feed(self, piece: str) -> Iterator[tuple[Channel, str]]:
        buf = self._pending + piece
        self._pending = ""
        while buf:
            at, tag = _first_tag(buf)
            if tag is not None:
                if at:
                    yield self._channel, buf[:at]
                buf = buf[at + len(tag) :]
                self.in_think = tag == OPEN
                continue
            keep = max(_partial_suffix(buf, OPEN), _partial_suffix(buf, CLOSE))
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


def split_think(text: str, *, starts_in_think: bool = False) -> tuple[str, str]:
    """Return ``(thinking, answer)``, both stripped.

    ``starts_in_think``: the prompt itself opened the trace. A closing tag before any opening tag
    means the same thing, whatever the caller believed.
    """
    close, open_ = text.find(CLOSE), text.find(OPEN)
    implied = close >= 0 and (open_ < 0 or close < open_)
    splitter = ThinkStreamSplitter(in_think=starts_in_think or implied)
    parts: dict[Channel, list[str]] = {"thinking": [], "answer": []}
    for channel, piece in [*splitter.feed(text), *splitter.flush()]:
        parts[channel].append(piece)
    return "".join(parts["thinking"]).strip(), "".join(parts["answer"]).strip()


def _first_tag(buf: str) -> tuple[int, str | None]:
    hits = [(at, tag) for tag in (OPEN, CLOSE) if (at := buf.find(tag)) >= 0]
    if not hits:
        return -1, None
    at, tag = min(hits)
    return at, tag


def _partial_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if tag.startswith(buf[-n:]):
            return n
    return 0
