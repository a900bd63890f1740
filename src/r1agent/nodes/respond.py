"""answer / reject / refuse: the turn's last word to the customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from r1agent.context import Context, context_of
from r1agent.guardrails import REFUSAL, ContentFilter, customer_owned, mask_foreign_pii
from r1agent.nodes import intent
from r1agent.nodes.acting import tool_errors
from r1agent.nodes.intent import Route
from r1agent.server.identity import customer_for_run
from r1agent.state import MessagesUpdate, Source, State, TurnError
from r1agent.tools import AgentTool


class RefuseUpdate(TypedDict):
    messages: list[AnyMessage]
    errors: list[TurnError]


def citation_footer(sources: list[Source], cited: list[int]) -> str:
    """The sources behind the answer: those it cites, else the ones it was given."""
    picked = [sources[i - 1] for i in cited] if cited else sources[:2]
    seen: list[str] = []
    for s in picked:
        label = f"{_short(s['source'])} › {s['title']}" if s["title"] else _short(s["source"])
        if label not in seen:
            seen.append(label)
    return "Sources: " + "; ".join(seen) if seen else ""


def answer(
    state: State,
    runtime: Runtime[Context] | None = None,
    # LangGraph injects the run's config only under these exact annotations ("X | None" is skipped).
    config: Optional[RunnableConfig] = None,  # noqa: UP045
) -> MessagesUpdate:
    text = state.get("draft", "")
    unread = [f"{e['message']}." for e in state.get("errors") or [] if e["stage"] == "perceive"]
    notes = [f"Note: {e}" for e in [*unread, *tool_errors(state)] if e.rstrip(".") not in text]
    footer = citation_footer(state.get("sources") or [], state.get("cited") or [])
    tools = [c["name"] for c in state.get("tool_calls") or [] if c["result"] is not None]
    if tools:
        footer = (footer + "; " if footer else "Sources: ") + "; ".join(f"{name} tool" for name in tools)
    content = "\n\n".join(part for part in (text, *notes, footer) if part)
    # Personal data the customer may see: what they said (typed, spoken, in their own images), what their
    # tools returned (scoped to them by identity) and their id. Anything else (a planted document, a
    # model's invention, another customer's details) is masked.
    content = mask_foreign_pii(content, customer_owned(state, customer_for_run(config, context_of(runtime))))
    return MessagesUpdate(messages=[AIMessage(content=content, name="r1agent")])


def clarify(state: State) -> MessagesUpdate:
    """A required tool argument is missing: ask for it (the question was set by ``act``)."""
    return MessagesUpdate(messages=[AIMessage(content=state.get("draft", ""), name="r1agent")])


def reject(state: State) -> MessagesUpdate:
    problems = "; ".join(e["message"] for e in state.get("errors") or []) or "the message could not be read"
    return MessagesUpdate(messages=[AIMessage(content=f"Sorry, I could not read that: {problems}.", name="r1agent")])


def refuse(state: State, runtime: Runtime[Context], *, content_filter: ContentFilter) -> RefuseUpdate:
    """A turn the content filter blocks: a polite refusal, no model and no tool call. The rule is recorded
    in ``errors`` (stage ``guard``) for evals and telemetry; the customer is not told which rule, so the
    message does not teach how to word around it."""
    verdict = content_filter.check(
        state.get("text", ""), state.get("intent"), intent_threshold=context_of(runtime).intent_threshold
    )
    reason = verdict.reason if verdict else "refused by the content filter"
    return RefuseUpdate(
        messages=[AIMessage(content=REFUSAL, name="r1agent")],
        errors=[*(state.get("errors") or []), TurnError(stage="guard", message=reason)],
    )


def route_after_intent(
    state: State, runtime: Runtime[Context], *, tools: Sequence[AgentTool], content_filter: ContentFilter
) -> Literal[Route, "refuse"]:
    """The content filter first (a blocked turn reaches no tool, no model and no ticket), then the
    intent's own route."""
    ctx = context_of(runtime)
    if content_filter.check(state.get("text", ""), state.get("intent"), intent_threshold=ctx.intent_threshold):
        return "refuse"
    return intent.route_after_intent(state, runtime, tools=tools)


def _short(source: str) -> str:
    return source.rsplit("/", 1)[-1]
