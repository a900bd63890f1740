"""Split an R1-style ``<think>…</think>`` trace from the answer.

Three shapes occur: both tags (most chat templates), only the closing tag (R1-Distill templates that
end the prompt with ``<think>\\n``, so the model never emits the opening tag), and no tags (SmolLM2 and
other non-reasoning models). Text inside traces is thinking, text outside is the answer. A trace that
never closes (the token budget ran out mid-thought) is all thinking and no answer: half a thought
shown as the answer would be worse than handing off.

One implementation serves every use: :class:`ThinkStreamSplitter` routes streamed pieces (the chat
model's own stream, see :class:`r1agent.models.chat.ThinkingChatHuggingFace`), and :func:`split_think`
runs it over a whole completion, so the streamed answer and the stored draft always agree.

A chat model that splits the trace itself returns it in ``additional_kwargs["reasoning_content"]`` (the
convention of ChatDeepSeek and ChatOllama, which LangChain's ``content_blocks`` turns into a standard
``{"type": "reasoning"}`` block) and only the answer as ``content``; :func:`reply_parts` reads either
shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

OPEN = "<think>"
CLOSE = "</think>"
REASONING_KEY = "reasoning_content"
"""Where a split reply keeps its trace: ``AIMessage.additional_kwargs[REASONING_KEY]``."""
Channel = Literal["thinking", "answer"]


@dataclass
class ThinkStreamSplitter:
    """Route streamed text pieces to ``thinking`` or ``answer`` as they arrive.

    Tags may be split across pieces, so a possible tag prefix at the end of a piece is held back
    until the next piece shows what it is. A tag that does not change the mode (``<think>`` while
    already thinking, a stray ``</think>`` in the answer) is dropped, never shown.
    """

    in_think: bool = False
    undecided: bool = False
    """The channel of the text before the first tag is not known yet: a reasoning model may write only
    the closing tag (its template opened the trace). That text is held back until the first tag decides
    (a closing tag: it was thinking) or the end does (no tag: it was the answer), so a trace is never
    streamed as answer text that cannot be taken back."""
    _pending: str = field(default="", repr=False)

    def feed(self, piece: str) -> Iterator[tuple[Channel, str]]:
        buf = self._pending + piece
        self._pending = ""
        while buf:
            at, tag = _first_tag(buf)
            if tag is not None:
                if self.undecided:
                    self.in_think, self.undecided = tag == CLOSE, False
                if at:
                    yield self._channel, buf[:at]
                buf = buf[at + len(tag) :]
                self.in_think = tag == OPEN
                continue
            if self.undecided:
                self._pending = buf
                return
            keep = max(_partial_suffix(buf, OPEN), _partial_suffix(buf, CLOSE))
            if len(buf) > keep:
                yield self._channel, buf[: len(buf) - keep]
            self._pending = buf[len(buf) - keep :]
            return

    def flush(self) -> Iterator[tuple[Channel, str]]:
        self.undecided = False  # no tag came: what was held back is the answer
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
    thinking, answer = route_think(text, starts_in_think=starts_in_think, undecided=not starts_in_think)
    return thinking.strip(), answer.strip()


def route_think(text: str, *, starts_in_think: bool, undecided: bool) -> tuple[str, str]:
    """``(thinking, answer)`` as a :class:`ThinkStreamSplitter` routes them, unstripped."""
    splitter = ThinkStreamSplitter(in_think=starts_in_think, undecided=undecided and not starts_in_think)
    parts: dict[Channel, list[str]] = {"thinking": [], "answer": []}
    for channel, piece in [*splitter.feed(text), *splitter.flush()]:
        parts[channel].append(piece)
    return "".join(parts["thinking"]), "".join(parts["answer"])


def join_think(thinking: str, answer: str, *, starts_in_think: bool) -> str:
    """The completion as the model wrote it, from its two channels (the inverse of :func:`route_think`).

    Exact for the shapes models produce (a trace, then the answer); a stray or repeated tag, which the
    split drops, is not restored. A trace followed by no answer is taken as unclosed.
    """
    if not thinking:
        return answer
    opened = "" if starts_in_think else OPEN
    return f"{opened}{thinking}{CLOSE}{answer}" if answer else f"{opened}{thinking}"


def reply_parts(message: BaseMessage, *, starts_in_think: bool) -> tuple[str, str, str]:
    """``(thinking, answer, completion)`` of a chat model's reply, the first two stripped.

    A reply whose trace was split off already (``REASONING_KEY`` set) is taken as it is; any other is
    split here. ``completion`` is the text as the model generated it (for teacher-forced measurements).
    """
    text = message.content if isinstance(message.content, str) else message.text
    reasoning = message.additional_kwargs.get(REASONING_KEY)
    if isinstance(reasoning, str):
        return reasoning.strip(), text.strip(), join_think(reasoning, text, starts_in_think=starts_in_think)
    thinking, answer = split_think(text, starts_in_think=starts_in_think)
    return thinking, answer, text


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
