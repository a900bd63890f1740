"""The local model's micro-batcher on the bundled SmolLM2: concurrent requests decode as one padded batch
and each gets exactly what it would have got alone, with its own budget, its own figures and its own stop."""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage

from r1agent import Context, open_agent
from r1agent.deps import Deps
from r1agent.models.backend import Measurement
from r1agent.models.batching import BatchGenerator
from r1agent.models.chat import LocalChatModel, load_chat_model
from r1agent.nodes.reasoning import SYSTEM_PROMPT

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How long do I have to return an item?",
    "Do you sell mechanical keyboards?",
    "Can I cancel an order that has already shipped? I paid with a gift card and I am not sure what happens.",
    "Hi",
]


@pytest.fixture(scope="module")
def llm(cache_dir: Path) -> Iterator[LocalChatModel]:
    # A wide window: the test's threads must land in one batch even on a loaded CI machine. fp32 weights: a
    # batch equals each prompt alone exactly only there; with int4's bf16 activations, rounding noise of
    # a different batch shape can flip a near-tie (test_int4_real.py covers the batcher on int4).
    model = load_chat_model(
        None, cache_dir=cache_dir, device="cpu", max_new_tokens=32, batch_window_ms=300, weights="full"
    )
    yield model
    model.close()


def batcher(llm: LocalChatModel) -> BatchGenerator:
    assert llm.chat.generator is not None
    return llm.chat.generator


def prompt(llm: LocalChatModel, question: str) -> str:
    # The product's system prompt: every prompt shares it, so the batcher reuses its cached keys and values.
    return llm.render([SystemMessage(SYSTEM_PROMPT), HumanMessage(question)])


def alone(llm: LocalChatModel, question: str, max_new_tokens: int) -> list[int]:
    """Greedy ids from one plain ``generate`` call, no batching involved (the pipeline's way)."""
    ids = llm.tokenizer(prompt(llm, question), add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = llm.model.generate(
            **ids, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=1.1, pad_token_id=0
        )
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    eos = llm.tokenizer.eos_token_id
    return new[: new.index(eos)] if eos in new else new


def together(llm: LocalChatModel, budgets: list[int]) -> list[tuple[str, Any]]:
    """All questions submitted at once from their own threads, as concurrent graph turns do."""
    gen = batcher(llm)
    start = threading.Barrier(len(QUESTIONS))

    def one(i: int) -> tuple[str, Any]:
        start.wait()
        stream = gen.stream(prompt(llm, QUESTIONS[i]), max_new_tokens=budgets[i])
        return "".join(stream), stream

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        return list(pool.map(one, range(len(QUESTIONS))))


def test_a_batch_decodes_what_each_prompt_decodes_alone(llm: LocalChatModel) -> None:
    before = sum(batcher(llm).batch_sizes.values())
    reused = batcher(llm).prefix_tokens_reused
    shed = batcher(llm).rows_shed
    budgets = [32, 20, 32, 8]
    results = together(llm, budgets)
    runs = sum(batcher(llm).batch_sizes.values()) - before
    assert runs < len(QUESTIONS), f"no batching happened: {batcher(llm).batch_sizes}"
    # The short rows left the batch when they ended, and the rows left went on to the same tokens.
    assert batcher(llm).rows_shed > shed
    # The shared system prompt came from the prefix cache, and the answers are still each prompt's alone.
    assert batcher(llm).prefix_tokens_reused - reused >= len(QUESTIONS) * 32
    for (text, stream), question, budget in zip(results, QUESTIONS, budgets, strict=True):
        expected = alone(llm, question, budget)
        assert stream._request.ids == expected, question
        assert text == llm.tokenizer.decode(expected, skip_special_tokens=True)
        generated = stream.generated
        assert generated is not None and generated.output_tokens == len(expected) <= budget
        assert generated.finish_reason == ("length" if len(expected) == budget else "stop")


def test_reported_logprob_is_the_models_own_on_the_tokens_it_chose(llm: LocalChatModel) -> None:
    stream = batcher(llm).stream(prompt(llm, QUESTIONS[0]), max_new_tokens=16)
    "".join(stream)
    request = stream._request
    ids = torch.tensor([request.prompt_ids + request.ids])
    with torch.inference_mode():
        logits = llm.model(ids).logits[0].float()
    n = len(request.prompt_ids)
    teacher = torch.log_softmax(logits[n - 1 : -1], dim=-1).gather(1, ids[0, n:].unsqueeze(1)).mean().item()
    assert stream.generated is not None and stream.generated.mean_logprob is not None
    assert stream.generated.mean_logprob == pytest.approx(teacher, abs=1e-4)
    assert stream.generated.input_tokens == n


def test_the_chat_model_reports_its_figures_with_the_reply(llm: LocalChatModel) -> None:
    messages = [HumanMessage(QUESTIONS[1])]
    reply = llm.chat.invoke(messages, pipeline_kwargs={"max_new_tokens": 12})
    measured = Measurement.reported(reply)
    assert measured is not None and measured.output_tokens <= 12 and measured.input_tokens > 0
    assert measured.mean_logprob is not None and measured.mean_logprob < 0
    streamed = list(llm.chat.stream(messages, pipeline_kwargs={"max_new_tokens": 12}))
    assert "".join(str(c.content) for c in streamed) == reply.content  # the stream is the reply
    whole = functools.reduce(operator.add, streamed)
    assert whole.usage_metadata is not None and whole.usage_metadata["output_tokens"] == measured.output_tokens


def test_a_reader_that_goes_away_stops_its_row_not_the_batch(llm: LocalChatModel) -> None:
    gen = batcher(llm)
    quitter = gen.stream(prompt(llm, QUESTIONS[0]), max_new_tokens=32)
    stayer = gen.stream(prompt(llm, QUESTIONS[1]), max_new_tokens=20)
    pieces = iter(quitter)
    next(pieces)
    pieces.close()  # type: ignore[attr-defined]  # a client disconnecting mid-answer
    assert quitter._request.abandoned.is_set()
    assert len(alone(llm, QUESTIONS[0], 32)) == 32  # left alone, it would have used its whole budget
    "".join(stayer)
    assert stayer._request.ids == alone(llm, QUESTIONS[1], 20)
    assert len(quitter._request.ids) < 32


def test_a_failing_batch_reaches_its_readers_and_the_worker_survives(
    llm: LocalChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = batcher(llm)
    real = gen.model

    class Broken:
        device = real.device

        def register_forward_hook(self, hook: Any) -> Any:
            return real.register_forward_hook(hook)

        def generate(self, **_: Any) -> None:
            raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(gen, "model", Broken())
    with pytest.raises(RuntimeError, match="out of memory"):
        "".join(gen.stream(prompt(llm, QUESTIONS[3]), max_new_tokens=4))
    monkeypatch.setattr(gen, "model", real)
    assert "".join(gen.stream(prompt(llm, QUESTIONS[3]), max_new_tokens=4))


def test_concurrent_graph_turns_answer_as_if_alone(real_deps: Deps) -> None:
    gen = getattr(real_deps.llm.chat, "generator", None)
    assert isinstance(gen, BatchGenerator)
    ctx = Context(quality_threshold=0.0, max_new_tokens=16)
    questions = QUESTIONS[:3]
    with open_agent(deps=real_deps) as agent:
        serial = [agent.ask(q, context=ctx).answer for q in questions]
        before = dict(gen.batch_sizes)
        with ThreadPoolExecutor(len(questions)) as pool:
            parallel = list(pool.map(lambda q: agent.ask(q, context=ctx).answer, questions))
    assert parallel == serial
    grew = {size: n - before.get(size, 0) for size, n in gen.batch_sizes.items() if n > before.get(size, 0)}
    assert grew, "the concurrent turns generated nothing"
