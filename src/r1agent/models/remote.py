"""The remote chat backend: an OpenAI-compatible inference server (vLLM, SGLang, TGI, ``transformers serve``).

Chosen by ``R1AGENT_LLM_URL`` (see docs/scale-out.md). The graph sees the shape the local backend gives
it: the answer in ``content``, the R1 trace in ``additional_kwargs["reasoning_content"]``, for
``invoke`` and for streaming. A server sends the trace one of two ways, and both are read:

- apart, in the message's ``reasoning_content`` (or ``reasoning``) field: vLLM and SGLang with a
  reasoning parser, ``transformers serve`` for Qwen-family models;
- inline, as ``<think>…</think>`` in ``content`` (vLLM without a parser, TGI): split here by the same
  :class:`~r1agent.models.think.ThinkStreamSplitter` the local backend uses.

The protocol is langchain-openai's (``pip install 'r1agent[remote]'``); this module adds the trace
handling, the token budget a run asks for, the server's usage and log-probabilities as the quality
score's measurements, and errors a user can act on instead of a client library's traceback.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import httpx
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import SecretStr

from r1agent.errors import ConfigurationError, R1AgentError
from r1agent.models.backend import MEASURED_KEY, Measurement
from r1agent.models.think import REASONING_KEY, Channel, ThinkStreamSplitter, route_think

REMOTE_EXTRA = "pip install 'r1agent[remote]'"
ThinkMode = Literal["auto", "none", "opened"]
SERVER_REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where servers put a trace they split off: vLLM before 0.10 and SGLang say ``reasoning_content``,
later vLLM ``reasoning``."""
MAX_ERROR_DETAIL = 200


class RemoteModelError(R1AgentError):
    """The model server failed a request (unreachable, too slow, an error status): retry later, or check it."""


def _display_url(url: str) -> str:
    """The URL without credentials (``http://user:key@host``) and query, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _server_error(exc: Exception, *, url: str, model: str, timeout_s: float) -> R1AgentError:
    """A client library's exception as an error a user can act on."""
    where = f"the model server at {_display_url(url)}"
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return RemoteModelError(f"{where} did not answer within {timeout_s:g} s (R1AGENT_LLM_TIMEOUT_S)")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return RemoteModelError(f"{where} is unreachable ({_root_cause(exc)}): start it or fix R1AGENT_LLM_URL")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ConfigurationError(f"{where} refused the request ({exc.status_code}): check R1AGENT_LLM_API_KEY")
    if isinstance(exc, openai.NotFoundError):
        return ConfigurationError(
            f"{where} has no model {model!r} (404): check R1AGENT_LLM_MODEL, and that R1AGENT_LLM_URL ends in /v1"
        )
    if isinstance(exc, openai.APIStatusError):
        return RemoteModelError(f"{where} failed the request (HTTP {exc.status_code}: {_server_says(exc)})")
    return RemoteModelError(f"{where} failed the reply: {_server_says(exc)}")


def _server_says(exc: Exception) -> str:
    """The server's own words for an error: vLLM/OpenAI ``{"message"}`` or ``{"error": {"message"}}``,
    FastAPI ``{"detail"}``; else the client's text. One line, cut short."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    found = next((body[k] for k in ("message", "detail") if isinstance(body, Mapping) and body.get(k)), None)
    text = str(found) if found is not None else str(getattr(exc, "message", None) or exc)
    return " ".join(text.split())[:MAX_ERROR_DETAIL]


def _root_cause(exc: BaseException) -> str:
    """The innermost cause in words ("[Errno 111] Connection refused"), not the wrappers' generic text."""
    seen: set[int] = set()
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(exc))
        exc = inner
    return " ".join(str(exc).split())[:MAX_ERROR_DETAIL] or type(exc).__name__


_SERVER_ERRORS: tuple[type[Exception], ...] = (openai.APIError, httpx.HTTPError)


def _mean_logprob(logprobs: list[float]) -> float | None:
    if not logprobs:
        return None
    value = sum(logprobs) / len(logprobs)
    return value if math.isfinite(value) else None


def _token_logprobs(generation_info: Mapping[str, Any] | None) -> list[float]:
    """The sampled tokens' log-probabilities from an OpenAI ``logprobs`` object (absent: none)."""
    found = (generation_info or {}).get("logprobs")
    content = found.get("content") if isinstance(found, Mapping) else None
    if not isinstance(content, list):
        return []
    return [
        float(t["logprob"]) for t in content if isinstance(t, Mapping) and isinstance(t.get("logprob"), int | float)
    ]


def _finished(finish_reason: object) -> bool | None:
    """``stop``: the model ended its reply; ``length``: the token budget did. Anything else: unknown."""
    return {"stop": True, "length": False}.get(finish_reason) if isinstance(finish_reason, str) else None


def _measured(logprobs: list[float], finish_reason: object) -> dict[str, Any]:
    """The quality figures the server sent, under :data:`MEASURED_KEY` (tokens are in ``usage_metadata``)."""
    return {MEASURED_KEY: {"mean_logprob": _mean_logprob(logprobs), "finished": _finished(finish_reason)}}


@dataclass
class _StreamRouter:
    """Turns a server's streamed chunks into chunks of the local backend's shape, and sums them up."""

    think: ThinkMode
    splitter: ThinkStreamSplitter = field(init=False)
    keyed: bool = field(init=False)
    server_splits: bool = False
    logprobs: list[float] = field(default_factory=list)
    finish_reason: object = None
    parts: dict[Channel, list[str]] = field(default_factory=lambda: {"thinking": [], "answer": []})
    """Everything yielded so far, by channel (kept as pieces: merging chunks per token costs ~0.1 ms each)."""
    usage: UsageMetadata | None = None

    def __post_init__(self) -> None:
        self.splitter = ThinkStreamSplitter(in_think=self.think == "opened", undecided=self.think == "auto")
        self.keyed = self.think == "none"  # a reasoning model's reply carries the key from its first chunk on

    def feed(self, raw: ChatGenerationChunk) -> Iterator[ChatGenerationChunk]:
        message = raw.message
        info = raw.generation_info
        self.logprobs.extend(_token_logprobs(info))
        if info and info.get("finish_reason"):
            self.finish_reason = info["finish_reason"]
        reasoning = message.additional_kwargs.pop(REASONING_KEY, None)
        routed: list[tuple[Channel, str]] = []
        if isinstance(reasoning, str) and reasoning:
            if not self.server_splits:
                # The server splits the trace itself: whatever comes as content is answer from now on.
                self.server_splits = True
                routed.extend(self.splitter.flush())
                self.splitter = ThinkStreamSplitter()
            routed.append(("thinking", reasoning))
        text = message.content if isinstance(message.content, str) else message.text
        routed.extend(self.splitter.feed(text))
        yield from self._emit(routed, raw)

    def flush(self) -> Iterator[ChatGenerationChunk]:
        yield from self._emit(list(self.splitter.flush()), None)
        # Last, on its own chunk: the figures are known only once the stream has ended.
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata=_measured(self.logprobs, self.finish_reason))
        )

    def _emit(
        self, routed: list[tuple[Channel, str]], raw: ChatGenerationChunk | None
    ) -> Iterator[ChatGenerationChunk]:
        pieces = [(channel, text) for channel, text in routed if text]
        usage = raw.message.usage_metadata if raw is not None and isinstance(raw.message, AIMessageChunk) else None
        metadata = dict(raw.message.response_metadata) if raw is not None else {}
        info = raw.generation_info if raw is not None else None
        if not pieces and (usage or (info and info.get("finish_reason"))):
            pieces = [("answer", "")]  # usage and finish reason travel on an empty chunk; held-back text does not
        for channel, text in pieces:
            extra = {REASONING_KEY: text} if channel == "thinking" else {}
            if not self.keyed:
                extra.setdefault(REASONING_KEY, "")
                self.keyed = True
            chunk = AIMessageChunk(
                content="" if channel == "thinking" else text,
                additional_kwargs=extra,
                usage_metadata=usage,
                response_metadata=metadata,
            )
            usage, metadata, first_info, info = None, {}, info, None  # the raw chunk's metadata goes out once
            self.parts[channel].append(text)
            self.usage = chunk.usage_metadata or self.usage
            yield ChatGenerationChunk(message=chunk, generation_info=first_info)


class ThinkingChatOpenAI(BaseChatOpenAI):
    """An OpenAI-compatible chat model whose replies keep the R1 trace out of ``content``.

    Like :class:`r1agent.models.chat.ThinkingChatHuggingFace`: ``content`` is the answer alone, the
    trace is in ``additional_kwargs["reasoning_content"]`` (present, maybe empty, unless ``think`` is
    ``none``), for ``invoke`` and ``stream`` alike. A run's ``pipeline_kwargs={"max_new_tokens": n}``
    (what the reasoning node passes to either backend) becomes the request's ``max_tokens``.
    """

    think: ThinkMode = "auto"

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        budget = (kwargs.pop("pipeline_kwargs", None) or {}).get("max_new_tokens")
        if isinstance(budget, int) and budget > 0:
            kwargs["max_tokens"] = min(budget, self.max_tokens) if self.max_tokens else budget
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        return payload

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: dict[str, Any] | None
    ) -> ChatGenerationChunk | None:
        converted: ChatGenerationChunk | None = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        choices = chunk.get("choices") or []
        delta = choices[0].get("delta") if choices and isinstance(choices[0], Mapping) else None
        reasoning = _server_reasoning(delta)
        if converted is not None and reasoning:
            converted.message.additional_kwargs[REASONING_KEY] = reasoning
        return converted

    def _create_chat_result(self, response: Any, generation_info: dict[str, Any] | None = None) -> ChatResult:
        result: ChatResult = super()._create_chat_result(response, generation_info)
        body = response if isinstance(response, dict) else response.model_dump()
        choices = body.get("choices") or []
        generations: list[ChatGeneration] = []
        for i, generation in enumerate(result.generations):
            sent = choices[i].get("message") if i < len(choices) else None
            generations.append(self._split(generation, _server_reasoning(sent)))
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def _split(self, generation: ChatGeneration, server_reasoning: str | None) -> ChatGeneration:
        message = generation.message
        text = message.content if isinstance(message.content, str) else message.text
        if server_reasoning is not None:
            stray, answer = route_think(text, starts_in_think=False, undecided=False)
            thinking = server_reasoning + stray
        else:
            thinking, answer = route_think(text, starts_in_think=self.think == "opened", undecided=self.think == "auto")
        extra = {REASONING_KEY: thinking} if self.think != "none" or thinking else {}
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        info = generation.generation_info or {}
        reply = AIMessage(
            content=answer,
            # Without the client's empty fields (``refusal: None``): the keys a streamed reply has.
            additional_kwargs={**{k: v for k, v in message.additional_kwargs.items() if v is not None}, **extra},
            response_metadata={
                **message.response_metadata,
                **_measured(_token_logprobs(info), info.get("finish_reason")),
            },
            usage_metadata=usage,
            id=message.id,
        )
        return ChatGeneration(message=reply, generation_info=generation.generation_info)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            result: ChatResult = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except _SERVER_ERRORS as exc:
            self._raise(exc)
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            result: ChatResult = await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except _SERVER_ERRORS as exc:
            self._raise(exc)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        router = _StreamRouter(self.think)
        # No run_manager below: the client would report the server's raw pieces, trace and tags
        # included, as tokens. LangChain reports each chunk yielded here instead.
        try:
            for raw in super()._stream(messages, stop=stop, run_manager=None, **kwargs):
                yield from router.feed(raw)
        except _SERVER_ERRORS as exc:
            self._raise(exc)
        yield from router.flush()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        router = _StreamRouter(self.think)
        try:
            async for raw in super()._astream(messages, stop=stop, run_manager=None, **kwargs):
                for chunk in router.feed(raw):
                    yield chunk
        except _SERVER_ERRORS as exc:
            self._raise(exc)
        for chunk in router.flush():
            yield chunk

    def _raise(self, exc: Exception) -> NoReturn:
        timeout = self.request_timeout if isinstance(self.request_timeout, int | float) else math.nan
        raise _server_error(exc, url=self.openai_api_base or "", model=self.model_name, timeout_s=timeout) from exc


def _server_reasoning(sent: object) -> str | None:
    """The trace a server split off itself, from a message or a streamed delta (None: it did not)."""
    if not isinstance(sent, Mapping):
        return None
    for name in SERVER_REASONING_FIELDS:
        if isinstance(value := sent.get(name), str):
            return value
    return None


@dataclass
class RemoteChatModel:
    """A model on an OpenAI-compatible server, as the reasoning node's :class:`~r1agent.models.backend.ChatBackend`."""

    name: str
    chat: ThinkingChatOpenAI
    opens_think: bool = False

    def measure(self, messages: list[BaseMessage], completion: str) -> Measurement:
        """Unknown figures: the server's come with each reply (``Measurement.reported``), and a reply that
        came without them cannot be scored here (the weights are on the server)."""
        return Measurement(0, 0, None, None)


def load_remote_chat_model(
    url: str,
    model: str | None,
    *,
    api_key: SecretStr | None = None,
    timeout_s: float = 120.0,
    max_retries: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 256,
    think: ThinkMode = "auto",
) -> RemoteChatModel:
    """A chat model on the server at ``url`` (``…/v1``); nothing is sent until the first turn."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"R1AGENT_LLM_URL is not an http(s) URL: {_display_url(url)!r}")
    if not model:
        raise ConfigurationError("R1AGENT_LLM_URL needs R1AGENT_LLM_MODEL: the model's name on that server")
    chat = ThinkingChatOpenAI(
        model=model,
        base_url=url.rstrip("/"),
        # The client insists on a key; a server started without one ignores it. Never the OPENAI_API_KEY
        # of the environment: that belongs to another service.
        api_key=api_key or SecretStr("none"),
        timeout=timeout_s,
        max_retries=max_retries,
        temperature=temperature,
        max_tokens=max_new_tokens,
        logprobs=True,  # the quality score's fluency signal; servers that cannot ignore it
        stream_usage=True,  # vLLM reports a stream's usage only when asked
        think=think,
    )
    chat.metadata = {"ls_provider": "openai-compatible", "ls_model_name": model}  # how traces name the model
    return RemoteChatModel(name=model, chat=chat, opens_think=think == "opened")
