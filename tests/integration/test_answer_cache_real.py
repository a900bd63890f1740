"""The semantic answer cache on the real stack: MiniLM embeddings, embedded Qdrant, SmolLM2, SQLite threads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from r1agent import Agent, Context, open_agent
from r1agent.deps import Deps
from r1agent.knowledge.cache import AnswerCache

pytestmark = pytest.mark.slow

# The 135M model rarely clears the default gate (the cache path is tested here); short answers keep it quick.
OPEN_GATE = Context(quality_threshold=0.0, max_new_tokens=16)
QUESTION = "How many days do I have to return an item?"


@pytest.fixture(scope="module")
def cache(real_deps: Deps) -> Iterator[AnswerCache]:
    cache = AnswerCache(real_deps.kb, max_entries=50)
    cache.clear()
    yield cache
    cache.clear()


@pytest.fixture(scope="module")
def agent(real_deps: Deps, cache: AnswerCache) -> Iterator[Agent]:
    with open_agent(deps=dataclasses.replace(real_deps, answer_cache=cache)) as agent:
        yield agent


def test_a_reworded_question_is_answered_from_the_cache(agent: Agent, cache: AnswerCache) -> None:
    first = agent.ask(QUESTION, context=OPEN_GATE)
    assert not first.cached and first.handoff is None
    assert first.usage is not None and first.usage["output_tokens"] > 0
    assert cache.count() == 1

    again = agent.ask("how many days do i have to return an item", context=OPEN_GATE)  # a new thread
    assert again.cached
    assert again.usage == {"input_tokens": 0, "output_tokens": 0}  # no model call
    assert again.answer == first.answer  # sources footer included
    assert again.quality is not None and first.quality is not None
    # Scored again from the same signals; only the intent confidence of the reworded question differs.
    assert again.quality["score"] == pytest.approx(first.quality["score"], abs=0.02)

    # The run's own gate still applies to a cached answer.
    strict = agent.ask(QUESTION, context=dataclasses.replace(OPEN_GATE, quality_threshold=1.01))
    assert strict.cached and strict.interrupted and strict.handoff is not None


def test_a_different_question_a_follow_up_and_a_tool_turn_are_not_served_from_it(
    agent: Agent, cache: AnswerCache
) -> None:
    agent.ask(QUESTION, context=OPEN_GATE)
    other = agent.ask("Do you sell mechanical keyboards?", context=OPEN_GATE)
    assert not other.cached

    opener = agent.ask("Hello there", context=OPEN_GATE)
    follow_up = agent.ask(QUESTION, thread_id=opener.thread_id, context=OPEN_GATE)
    assert not follow_up.cached  # an earlier turn may change what the question means

    entries = cache.count()
    sums = agent.ask("What is 15% of 80?", context=OPEN_GATE)
    assert not sums.cached and sums.tool_calls
    assert cache.count() == entries  # tool turns are never stored


def test_changing_the_knowledge_base_invalidates_the_cache(agent: Agent, real_deps: Deps) -> None:
    agent.ask(QUESTION, context=OPEN_GATE)
    assert agent.ask(QUESTION, context=OPEN_GATE).cached
    real_deps.kb.add_text("# Gift wrapping\nGift wrapping costs $5 per item.", source="test/gift-wrap.md")
    try:
        assert not agent.ask(QUESTION, context=OPEN_GATE).cached
    finally:
        real_deps.kb.remove("test/gift-wrap.md")
