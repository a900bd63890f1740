"""answer / reject: the turn's last word to the customer."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from r1agent.nodes.acting import tool_errors
from r1agent.state import MessagesUpdate, Source, State


def citation_footer(sources: list[Source], cited: list[int]) -> str:
    """The sources behind the answer: those it cites, else the ones it was given."""
    picked = [sources[i - 1] for i in cited] if cited else sources[:2]
    seen: list[str] = []
    for s in picked:
        label = f"{_short(s['source'])} › {s['title']}" if s["title"] else _short(s["source"])
        if label not in seen:
            seen.append(label)
    return "Sources: " + "; ".join(seen) if seen else ""


def answer(state: State) -> MessagesUpdate:
    text = state.get("draft", "")
    unread = [f"{e['message']}." for e in state.get("errors") or [] if e["stage"] == "perceive"]
    notes = [f"Note: {e}" for e in [*unread, *tool_errors(state)] if e.rstrip(".") not in text]
    footer = citation_footer(state.get("sources") or [], state.get("cited") or [])
    tools = [c["name"] for c in state.get("tool_calls") or [] if c["result"] is not None]
    if tools:
        footer = (footer + "; " if footer else "Sources: ") + "; ".join(f"{name} tool" for name in tools)
    content = "\n\n".join(part for part in (text, *notes, footer) if part)
    return MessagesUpdate(messages=[AIMessage(content=content, name="r1agent")])


def clarify(state: State) -> MessagesUpdate:
    """A required tool argument is missing: ask for it (the question was set by ``act``)."""
    return MessagesUpdate(messages=[AIMessage(content=state.get("draft", ""), name="r1agent")])


def reject(state: State) -> MessagesUpdate:
    problems = "; ".join(e["message"] for e in state.get("errors") or []) or "the message could not be read"
    return MessagesUpdate(messages=[AIMessage(content=f"Sorry, I could not read that: {problems}.", name="r1agent")])


def _short(source: str) -> str:
    return source.rsplit("/", 1)[-1]
