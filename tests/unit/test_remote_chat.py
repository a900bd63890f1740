"""The remote backend's logic: the reply shapes servers send, the request it makes, and its errors.

A small HTTP server on 127.0.0.1 replays replies in the shapes vLLM documents (a ``reasoning_content`` or
``reasoning`` field, log-probabilities, usage in a last stream chunk) and the failures a client meets.
The real server (``transformers serve``) is in tests/integration/test_remote_backend.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import operator
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from pydantic import SecretStr

if importlib.util.find_spec("langchain_openai") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI installs the remote extra (langchain-openai): make install")
    pytest.skip("the remote extra is not installed: pip install -e '.[remote]'", allow_module_level=True)

from r1agent.deps import load_llm
from r1agent.errors import ConfigurationError
from r1agent.models.backend import Measurement
from r1agent.models.remote import RemoteChatModel, RemoteModelError, load_remote_chat_model
from r1agent.models.think import REASONING_KEY, reply_parts
from r1agent.settings import Settings

PROMPT: list[BaseMessage] = [SystemMessage("Be brief."), HumanMessage("Can I return shoes?")]
USAGE = {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}
LOGPROBS = {"content": [{"token": t, "logprob": lp, "bytes": None, "top_logprobs": []} for t, lp in [("a", -0.5)] * 4]}


@dataclass
class Canned:
    """What the server answers next: a JSON body, SSE events, or an error status; ``delay_s`` first."""

    status: int = 200
    body: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0


@dataclass
class Replayer:
    url: str
    replies: list[Canned] = field(default_factory=list)
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Replayer]:
    state = Replayer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            reply = state.replies.pop(0)
            time.sleep(reply.delay_s)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                self._send(reply)

        def _send(self, reply: Canned) -> None:
            if reply.events:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for event in reply.events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                return
            data = json.dumps(reply.body or {}).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _model(server: Replayer, **kwargs: Any) -> RemoteChatModel:
    options: dict[str, Any] = {"max_retries": 0, "timeout_s": 5.0, "max_new_tokens": 64, **kwargs}
    return load_remote_chat_model(server.url, "r1-distill", **options)


def _completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "r1-distill",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, "logprobs": LOGPROBS}
        ],
        "usage": USAGE,
    }


def _delta(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": LOGPROBS if finish else None}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "r1-distill", "choices": [choice]}


def _usage_event() -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "r1-distill",
        "choices": [],
        "usage": USAGE,
    }


def _stream(llm: RemoteChatModel) -> tuple[list[AIMessageChunk], AIMessageChunk]:
    chunks = [c for c in llm.chat.stream(PROMPT, pipeline_kwargs={"max_new_tokens": 32})]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return chunks, total


def test_a_trace_the_server_split_off_stays_apart_with_the_servers_measurements(server: Replayer) -> None:
    server.replies.append(Canned(body=_completion({"content": "Yes, within 30 days.", "reasoning_content": "Policy."})))
    llm = _model(server)
    reply = llm.chat.invoke(PROMPT, pipeline_kwargs={"max_new_tokens": 32})
    assert reply.content == "Yes, within 30 days."
    assert reply.additional_kwargs == {REASONING_KEY: "Policy."}  # the local backend's keys, nothing else
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] == 21
    measured = Measurement.reported(reply)
    assert measured is not None
    assert (measured.input_tokens, measured.output_tokens, measured.finished) == (21, 4, True)
    assert measured.mean_logprob == pytest.approx(-0.5)


def test_the_request_asks_for_the_runs_budget_usage_and_logprobs(server: Replayer) -> None:
    server.replies.append(Canned(body=_completion({"content": "ok"})))
    server.replies.append(Canned(events=[_delta({"content": "ok"}, "stop"), _usage_event()]))
    llm = _model(server, api_key=SecretStr("sk-test"))
    llm.chat.invoke(PROMPT, pipeline_kwargs={"max_new_tokens": 32})
    list(llm.chat.stream(PROMPT, pipeline_kwargs={"max_new_tokens": 500}))
    (headers, sent), (_, streamed) = server.requests
    assert headers["authorization"] == "Bearer sk-test"
    assert sent["model"] == "r1-distill" and sent["max_tokens"] == 32 and sent["logprobs"] is True
    assert "pipeline_kwargs" not in sent and sent["temperature"] == 0.0
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert streamed["max_tokens"] == 64  # a run never gets more than R1AGENT_MAX_NEW_TOKENS
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}


def test_a_streamed_server_split_trace_never_reaches_the_answer_chunks(server: Replayer) -> None:
    events = [
        _delta({"role": "assistant", "content": ""}),
        _delta({"reasoning": "The policy "}),  # vLLM >= 0.10 names the field `reasoning`
        _delta({"reasoning": "says 30 days."}),
        _delta({"content": "Yes, "}),
        _delta({"content": "within 30 days."}, "stop"),
        _usage_event(),
    ]
    server.replies.append(Canned(events=events))
    llm = _model(server)
    chunks, total = _stream(llm)
    answers = [str(c.content) for c in chunks if c.content]
    assert answers == ["Yes, ", "within 30 days."]  # streamed as they came, not held back
    assert total.additional_kwargs[REASONING_KEY] == "The policy says 30 days."
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 4
    _, _, completion = reply_parts(total, starts_in_think=False)
    assert completion == "<think>The policy says 30 days.</think>Yes, within 30 days."
    measured = Measurement.reported(total)
    assert measured is not None
    assert (measured.output_tokens, measured.finished, measured.mean_logprob) == (4, True, pytest.approx(-0.5))


@pytest.mark.parametrize(
    ("pieces", "think"),
    [
        (["<thi", "nk>The policy ", "says 30 days.</th", "ink>\n\nYes, ", "within 30 days."], "auto"),
        (["The policy ", "says 30 days.</", "think>\n\nYes, ", "within 30 days."], "auto"),  # template opened it
        (["The policy ", "says 30 days.</", "think>\n\nYes, ", "within 30 days."], "opened"),
    ],
)
def test_an_inline_trace_is_split_in_the_stream_and_in_a_whole_reply(
    server: Replayer, pieces: list[str], think: str
) -> None:
    events = [_delta({"content": p}) for p in pieces] + [_delta({}, "length"), _usage_event()]
    server.replies.append(Canned(events=events))
    server.replies.append(Canned(body=_completion({"content": "".join(pieces)}, finish="length")))
    llm = _model(server, think=think)
    chunks, total = _stream(llm)
    for chunk in chunks:
        assert "think>" not in str(chunk.content) and "policy" not in str(chunk.content)
    assert str(total.content).strip() == "Yes, within 30 days."
    assert total.additional_kwargs[REASONING_KEY] == "The policy says 30 days."
    whole = llm.chat.invoke(PROMPT)
    assert (whole.content, whole.additional_kwargs[REASONING_KEY]) == (total.content, "The policy says 30 days.")
    for reply in (whole, total):
        measured = Measurement.reported(reply)
        assert measured is not None and measured.finished is False  # the budget ended it


def test_a_model_that_never_thinks_streams_at_once_and_carries_no_trace_key(server: Replayer) -> None:
    server.replies.append(Canned(events=[_delta({"content": "Hello"}), _delta({"content": " there."}, "stop")]))
    chunks, total = _stream(_model(server, think="none"))
    assert [c.content for c in chunks if c.content] == ["Hello", " there."]
    assert REASONING_KEY not in total.additional_kwargs


def test_a_reply_without_figures_has_unknown_measurements(server: Replayer) -> None:
    measured = _model(server).measure(PROMPT, "something else")
    assert (measured.input_tokens, measured.output_tokens, measured.mean_logprob, measured.finished) == (
        0,
        0,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (500, RemoteModelError, "failed the request (HTTP 500: CUDA out of memory)"),
        (503, RemoteModelError, "failed the request (HTTP 503"),
        (401, ConfigurationError, "refused the request (401): check R1AGENT_LLM_API_KEY"),
        (404, ConfigurationError, "has no model 'r1-distill' (404): check R1AGENT_LLM_MODEL"),
    ],
)
def test_an_error_status_is_a_clear_error(server: Replayer, status: int, error: type[Exception], words: str) -> None:
    body = {"object": "error", "message": "CUDA out of memory", "type": "Error", "code": status}
    server.replies.append(Canned(status=status, body=body))
    with pytest.raises(error) as caught:
        _model(server).chat.invoke(PROMPT)
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"the model server at {server.url} ")


def test_a_server_that_is_too_slow_times_out_with_a_clear_error(server: Replayer) -> None:
    server.replies.append(Canned(body=_completion({"content": "late"}), delay_s=2.0))
    started = time.monotonic()
    with pytest.raises(RemoteModelError, match=r"did not answer within 0.5 s \(R1AGENT_LLM_TIMEOUT_S\)"):
        _model(server, timeout_s=0.5).chat.invoke(PROMPT)
    assert time.monotonic() - started < 2.0


def test_an_error_in_the_middle_of_a_stream_is_a_clear_error(server: Replayer) -> None:
    server.replies.append(Canned(events=[_delta({"content": "Yes"}), {"error": {"message": "engine died"}}]))
    with pytest.raises(RemoteModelError, match="failed the reply: engine died"):
        _stream(_model(server))


def test_nothing_listening_is_unreachable(server: Replayer) -> None:
    llm = load_remote_chat_model("http://127.0.0.1:9/v1", "m", max_retries=0, timeout_s=5.0)
    with pytest.raises(RemoteModelError, match=r"^the model server at http://127.0.0.1:9/v1 is unreachable \(.+\)"):
        llm.chat.invoke(PROMPT)


def test_credentials_in_the_url_never_reach_a_message() -> None:
    llm = load_remote_chat_model("http://user:s3cret@127.0.0.1:9/v1?key=s3cret", "m", max_retries=0)
    with pytest.raises(RemoteModelError) as caught:
        llm.chat.invoke(PROMPT)
    assert "s3cret" not in str(caught.value) and "http://127.0.0.1:9/v1" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "model", "words"),
    [
        ("127.0.0.1:8000/v1", "m", "not an http(s) URL"),
        ("ftp://host/v1", "m", "not an http(s) URL"),
        ("http://127.0.0.1:8000/v1", None, "needs R1AGENT_LLM_MODEL"),
    ],
)
def test_unusable_settings_are_a_configuration_error(url: str, model: str | None, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_remote_chat_model(url, model)


def test_settings_choose_the_backend_and_refuse_an_adapter_for_a_remote_model(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, llm_url="http://127.0.0.1:9/v1", llm_model="r1", llm_think="opened", max_new_tokens=77
    )
    llm = load_llm(settings)
    assert isinstance(llm, RemoteChatModel) and llm.opens_think and llm.chat.max_tokens == 77
    with pytest.raises(ConfigurationError, match="R1AGENT_ADAPTER"):
        load_llm(settings.model_copy(update={"adapter": tmp_path}))


def test_the_async_paths_split_the_same_way(server: Replayer) -> None:
    events = [_delta({"reasoning_content": "Policy."}), _delta({"content": "Yes."}, "stop"), _usage_event()]
    server.replies.append(Canned(events=events))
    server.replies.append(Canned(body=_completion({"content": "<think>Policy.</think>Yes."})))
    llm = _model(server)

    async def run() -> tuple[list[AIMessageChunk], BaseMessage]:
        chunks = [c async for c in llm.chat.astream(PROMPT)]
        return chunks, await llm.chat.ainvoke(PROMPT)

    chunks, whole = asyncio.run(run())
    assert [c.content for c in chunks if c.content] == ["Yes."]
    assert "".join(c.additional_kwargs.get(REASONING_KEY, "") for c in chunks) == "Policy."
    assert (whole.content, whole.additional_kwargs[REASONING_KEY]) == ("Yes.", "Policy.")
    for reply in (whole, functools.reduce(operator.add, chunks)):
        measured = Measurement.reported(reply)
        assert measured is not None and measured.output_tokens == 4
