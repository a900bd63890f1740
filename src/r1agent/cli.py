"""``r1agent``: the command line, and the scripting contract (``--json`` output is stable).

Exit codes: 0 ok, 1 unexpected, 2 bad input, 3 not found, 4 wrong state (e.g. waiting for a human),
5 configuration.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape

from r1agent.errors import NotFoundError, R1AgentError
from r1agent.evals.cli import eval_app
from r1agent.feedback.cli import feedback_app
from r1agent.training.cli import train_app

T = TypeVar("T")
app = typer.Typer(no_args_is_help=True, add_completion=False, help="A local customer-service agent on LangGraph.")
kb_app = typer.Typer(no_args_is_help=True, help="Manage the knowledge base (Qdrant).")
tools_app = typer.Typer(no_args_is_help=True, help="Tools the agent can call (built-in and plugins).")
handoff_app = typer.Typer(no_args_is_help=True, help="The human side of handoffs.")
app.add_typer(kb_app, name="kb")
app.add_typer(handoff_app, name="handoff")
app.add_typer(tools_app, name="tools")
app.add_typer(eval_app, name="eval")
app.add_typer(feedback_app, name="feedback")
app.add_typer(train_app, name="train")
out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (a stable contract).")]


def _quiet_libraries() -> None:
    # Model loading prints progress bars and warnings that would corrupt --json output.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except R1AgentError as exc:
        # Escaped: messages name extras like 'r1agent[train]', which rich would read as markup.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _with_agent(fn: Callable[[Any], T]) -> T:
    from r1agent.app import open_agent

    _quiet_libraries()
    with open_agent() as agent:
        return fn(agent)


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="The customer's message (may be empty with --audio/--image).")] = "",
    thread: Annotated[str | None, typer.Option(help="Continue this thread (default: a new one).")] = None,
    customer: Annotated[str | None, typer.Option(help="The customer's id (scopes private data).")] = None,
    image: Annotated[list[Path] | None, typer.Option(help="An image (PNG, JPEG, WebP); repeatable.")] = None,
    audio: Annotated[
        list[Path] | None, typer.Option(help="A voice note (WAV, MP3, OGG, FLAC, M4A); repeatable.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer one customer turn (text, images, voice notes)."""
    from r1agent.nodes.perception import validate_text
    from r1agent.settings import Settings

    with _user_errors():
        files = [*(image or []), *(audio or [])]
        for path in files:
            if not path.is_file():
                raise NotFoundError(f"no such file: {path}")
        if not files:
            validate_text(text, max_chars=Settings().max_turn_chars)  # fail fast, before loading models
        result = _with_agent(lambda agent: agent.ask(text, thread_id=thread, customer_id=customer, attachments=files))
    if json_out:
        _print_json(result.to_dict())
        return
    out.print(result.answer, highlight=False)
    intent = result.intent or {}
    quality = result.quality or {}
    err.print(
        f"[dim]thread {result.thread_id} · intent {intent.get('label')} ({intent.get('confidence', 0):.2f})"
        f" · quality {quality.get('score', 0):.2f}"
        + (f" · handed off: ticket {result.handoff['ticket_id']}" if result.handoff else "")
        + "[/]",
        highlight=False,
    )


@app.command()
def chat(
    thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
    customer: Annotated[str | None, typer.Option(help="The customer's id.")] = None,
) -> None:
    """Chat in the terminal; tokens stream as they are generated, the think trace dimmed."""
    import uuid

    from langchain_core.messages import BaseMessage, HumanMessage
    from langchain_core.runnables import RunnableConfig

    from r1agent.app import open_agent
    from r1agent.context import Context
    from r1agent.models.think import REASONING_KEY

    _quiet_libraries()
    with _user_errors(), open_agent() as agent:
        thread_id = thread or uuid.uuid4().hex
        if thread:
            agent.check_thread(thread, customer)
        err.print(f"[dim]thread {thread_id} · model {agent.deps.llm.name} · empty line or Ctrl-D to quit[/]")
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                break
            if not text:
                break
            if (ticket := agent.pending_ticket(thread_id)) is not None:
                err.print(f"[yellow]waiting for a human agent (ticket {ticket})[/]")
                continue
            out.print("agent> ", end="")
            config: RunnableConfig = agent.run_config(thread_id, customer)
            stream = agent.graph.stream(
                {"messages": [HumanMessage(content=text)]},
                config,
                context=Context(customer_id=customer),
                stream_mode="messages",
            )
            for item in stream:
                chunk, meta = cast("tuple[BaseMessage, dict[str, Any]]", item)
                if meta.get("langgraph_node") != "reason" or not isinstance(chunk.content, str):
                    continue
                # The chat model streams the think trace apart from the answer (models/chat.py).
                thought = chunk.additional_kwargs.get(REASONING_KEY)
                if isinstance(thought, str) and thought:
                    out.print(thought, end="", style="dim italic", highlight=False)
                if chunk.content:
                    out.print(chunk.content, end="", highlight=False)
            out.print()
            result = agent.result(thread_id)
            if result.handoff:
                out.print(f"[yellow]{result.answer}[/]", highlight=False)
            elif result.sources:
                out.print(f"[dim]{result.answer.rsplit(chr(10), 1)[-1]}[/]", highlight=False)


@handoff_app.command("list")
def handoff_list(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved tickets.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Tickets waiting for a human (oldest first)."""
    from r1agent.settings import Settings
    from r1agent.tickets import SqliteTicketStore

    with _user_errors():
        store = SqliteTicketStore(Settings().tickets_path)
        tickets = store.list(None if all_ else "open")
    if json_out:
        _print_json([t.to_dict() for t in tickets])
        return
    if not tickets:
        out.print("no open handoffs")
    for t in tickets:
        out.print(f"[bold]{t.id}[/] {t.status} · {t.reason} · thread {t.thread_id} · intent {t.intent}")
        out.print(f"  [dim]{t.summary.splitlines()[-1] if t.summary else ''}[/]", highlight=False)


@handoff_app.command("resume")
def handoff_resume(
    ticket: Annotated[str, typer.Argument(help="The ticket id.")],
    reply: Annotated[str, typer.Option(help="The human agent's reply to the customer.")],
    json_out: JsonOpt = False,
) -> None:
    """Answer a handoff: the reply becomes the assistant's message and the thread resumes."""
    from r1agent.nodes.handoff import reply_text
    from r1agent.settings import Settings
    from r1agent.tickets import SqliteTicketStore

    with _user_errors():
        reply = reply_text(reply)
        SqliteTicketStore(Settings().tickets_path).get(ticket)  # unknown ticket: fail before loading models
        result = _with_agent(lambda agent: agent.resume(ticket, reply))
    if json_out:
        _print_json(result.to_dict())
    else:
        out.print(f"ticket {ticket} resolved; thread {result.thread_id} resumed")


@tools_app.command("list")
def tools_list(json_out: JsonOpt = False) -> None:
    """Installed tools, where each came from, and which turns it serves."""
    from r1agent.plugins import load_plugins
    from r1agent.settings import Settings

    with _user_errors():
        loaded = load_plugins(Settings())
    rows = [
        {
            "name": item.tool.name,
            "entry_point": item.entry_point,
            "distribution": item.distribution,
            "version": item.version,
            "description": item.tool.description,
            "intents": sorted(item.tool.intents),
            "triggers": list(item.tool.triggers),
            "arguments": item.tool.schema_fields(),
        }
        for item in loaded
    ]
    if json_out:
        _print_json(rows)
        return
    for row in rows:
        serves = ", ".join(row["intents"]) or "turns matching its triggers"
        out.print(f"[bold]{row['name']}[/] · {row['distribution']} {row['version']} ({row['entry_point']})")
        out.print(f"  {row['description']}", highlight=False)
        out.print(f"  [dim]serves: {serves} · arguments: {', '.join(row['arguments'])}[/]", highlight=False)


def _kb() -> Any:
    from r1agent.deps import open_knowledge_base
    from r1agent.models.embeddings import load_embeddings
    from r1agent.settings import Settings

    _quiet_libraries()
    settings = Settings()
    return open_knowledge_base(settings, load_embeddings(settings.embedding_model))


@kb_app.command("add")
def kb_add(
    paths: Annotated[list[Path], typer.Argument(help="Markdown or text files.")], json_out: JsonOpt = False
) -> None:
    """Ingest files; re-adding a file replaces its chunks."""
    from r1agent.knowledge import IngestReport

    with _user_errors():
        kb = _kb()
        try:
            reports: list[IngestReport] = [kb.add_file(p) for p in paths]
        finally:
            kb.close()
    if json_out:
        _print_json([{"source": r.source, "chunks": r.chunks} for r in reports])
        return
    for r in reports:
        out.print(f"{r.source}: {r.chunks} chunks", highlight=False)


@kb_app.command("list")
def kb_list(json_out: JsonOpt = False) -> None:
    """Sources in the knowledge base with their chunk counts."""
    with _user_errors():
        kb = _kb()
        try:
            sources = kb.sources()
        finally:
            kb.close()
    if json_out:
        _print_json([{"source": s, "chunks": n} for s, n in sources.items()])
        return
    for s, n in sources.items():
        out.print(f"{n:5d}  {s}", highlight=False)


@kb_app.command("remove")
def kb_remove(source: Annotated[str, typer.Argument(help="A source as `kb list` shows it.")]) -> None:
    """Remove one source's chunks."""
    with _user_errors():
        kb = _kb()
        try:
            kb.remove(source)
        finally:
            kb.close()


@kb_app.command("clear")
def kb_clear(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Delete every chunk (the demo data is re-seeded on next start unless R1AGENT_SEED_DEMO_KB=false)."""
    if not yes and not typer.confirm("Delete the whole knowledge base?"):
        raise typer.Exit(1)
    with _user_errors():
        kb = _kb()
        try:
            kb.clear()
        finally:
            kb.close()


def main() -> None:
    app()
