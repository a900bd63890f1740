"""The bundled SmolLM2 in 4-bit (models/int4.py): its Q4_1 weights pack back exactly, and decoding with them
follows the fp32 model token for token, but for bf16 rounding of the activations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage

from r1agent.models import int4, lean
from r1agent.models.chat import LocalChatModel, default_model_folder, load_chat_model
from r1agent.models.int4 import Int4Linear, pack_linears
from r1agent.nodes.reasoning import SYSTEM_PROMPT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not int4.kernel_available(), reason="this torch has no int4 CPU kernel"),
]

# Where the CPU has no bf16 support, auto never decodes in int4 (and the kernel has no fast path there).
needs_bf16 = pytest.mark.skipif(not int4.cpu_has_bf16(), reason="int4 decoding runs only on CPUs with bf16 support")

QUESTIONS = ["How long do I have to return an item?", "Do you sell mechanical keyboards?", "Where is my refund?"]


@pytest.fixture(scope="module")
def full(cache_dir: Path) -> Iterator[LocalChatModel]:
    llm = load_chat_model(None, cache_dir=cache_dir, device="cpu", weights="full")
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def packed(cache_dir: Path) -> Iterator[LocalChatModel]:
    llm = load_chat_model(None, cache_dir=cache_dir, device="cpu", weights="int4")
    yield llm
    llm.close()


def step_by_step(llm: LocalChatModel, prompt: list[int], path: list[int]) -> torch.Tensor:
    """Log-probs of each next token along ``path``, fed one token at a time as decoding does (1-row products)."""
    model = llm.model
    with torch.inference_mode():
        out = model(torch.tensor([prompt]), use_cache=True)
        rows = [out.logits[0, -1]]
        for token in path[:-1]:
            out = model(torch.tensor([[token]]), cache=out.past_key_values, use_cache=True)
            rows.append(out.logits[0, -1])
    return torch.log_softmax(torch.stack(rows).float(), dim=-1)


def test_the_bundled_weights_are_exactly_four_bit(packed: LocalChatModel) -> None:
    report = packed.weights
    assert report.used == "int4"
    assert report.layers == 30 * 7  # q, k, v, o, gate, up, down in each of 30 blocks
    assert report.max_error_steps <= int4.LOSSLESS_STEPS
    # The 8-bit tied head stays fp32, reordered for oneDNN where the blocks compute in bf16.
    head = packed.model.lm_head
    assert type(head) is (int4.PrepackedHead if report.prepacked_head else torch.nn.Linear)
    assert head.weight is packed.model.model.embed_tokens.weight and head.weight.dtype == torch.float32


def test_auto_chooses_int4_for_the_bundled_model_where_the_cpu_has_bf16(cache_dir: Path) -> None:
    llm = load_chat_model(None, cache_dir=cache_dir, device="cpu", weights="full")
    try:
        report = pack_linears(llm.model, "auto")
        if int4.cpu_has_bf16():
            assert report.used == "int4" and report.max_error_steps <= int4.LOSSLESS_STEPS
            assert any(isinstance(m, Int4Linear) for m in llm.model.modules())
        else:
            assert report.used == "full" and "bf16" in report.reason
    finally:
        llm.close()


@needs_bf16
def test_decoding_in_four_bit_follows_the_fp32_model(full: LocalChatModel, packed: LocalChatModel) -> None:
    agree = total = 0
    for question in QUESTIONS:
        prompt = full.tokenizer(
            full.render([SystemMessage(SYSTEM_PROMPT), HumanMessage(question)]), add_special_tokens=False
        )["input_ids"]
        with torch.inference_mode():
            out = full.model.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False, min_new_tokens=24)
        path = out[0, len(prompt) :].tolist()
        want = step_by_step(full, prompt, path)
        got = step_by_step(packed, prompt, path)
        agree += int((got.argmax(-1) == torch.tensor(path)).sum())
        total += len(path)
        # The log-prob of fp32's own choice, which the quality score is built on, barely moves.
        picked = torch.tensor(path).unsqueeze(1)
        assert (got.gather(1, picked) - want.gather(1, picked)).abs().mean() < 0.05
    # 71 of 72 on a Xeon with AVX-512 bf16 (69 before the blocks computed in bf16): near-ties flip under rounding.
    assert agree / total >= 0.9, f"{agree}/{total} greedy choices agree"


@needs_bf16
def test_the_screened_head_decodes_the_tokens_of_the_exact_fp32_head(packed: LocalChatModel) -> None:
    """Alone and as a padded batch, with the product's repetition penalty: the bf16 screen changes no token."""
    model, tokenizer = packed.model, packed.tokenizer
    screened = model.lm_head
    if not isinstance(screened, int4.PrepackedHead):
        pytest.skip("this torch's oneDNN cannot reorder a linear weight: the head is the plain fp32 one")
    assert screened.penalty == pytest.approx(1.1)  # load_chat_model's default, passed through
    exact = torch.nn.Linear(screened.in_features, screened.out_features, bias=False)
    exact.weight = screened.weight
    prompts = [packed.render([SystemMessage(SYSTEM_PROMPT), HumanMessage(q)]) for q in QUESTIONS]

    def greedy() -> list[list[int]]:
        rows = [tokenizer([p], add_special_tokens=False, return_tensors="pt") for p in prompts]
        side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generate's batches pad on the left
        try:
            batch = tokenizer(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
        finally:
            tokenizer.padding_side = side
        settings = {"max_new_tokens": 32, "do_sample": False, "repetition_penalty": 1.1}
        with torch.inference_mode():
            alone = [model.generate(**row, **settings)[0, row["input_ids"].shape[1] :].tolist() for row in rows]
            together = model.generate(**batch, **settings)[:, batch["input_ids"].shape[1] :].tolist()
        return alone + together

    rescreened = screened.rescreened
    with_screen = greedy()
    model.set_output_embeddings(exact)
    try:
        with_fp32 = greedy()
    finally:
        model.set_output_embeddings(screened)
    assert with_screen == with_fp32
    assert screened.rescreened - rescreened <= len(QUESTIONS) * 2 * 32 // 10  # the fallback stays rare


@needs_bf16
def test_the_bundled_model_runs_lean_layers_with_the_logits_of_transformers_layers(packed: LocalChatModel) -> None:
    """models/lean.py on the real 30 layers: a padded batch's greedy decoding, every logit of every step equal."""
    model, tokenizer = packed.model, packed.tokenizer
    assert packed.weights.lean_layers == 30 and lean.installed(model) == 30
    prompts = [packed.render([SystemMessage(SYSTEM_PROMPT), HumanMessage(q)]) for q in QUESTIONS]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        batch = tokenizer(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    assert int(batch["attention_mask"].min()) == 0  # the prompts differ in length: a real mask, not none

    def decode() -> tuple[torch.Tensor, torch.Tensor]:
        settings = {"max_new_tokens": 24, "do_sample": False, "repetition_penalty": 1.1}
        with torch.inference_mode():
            out = model.generate(**batch, **settings, return_dict_in_generate=True, output_logits=True)
        return out.sequences, torch.stack(out.logits)

    got = decode()
    lean.uninstall(model)
    try:
        want = decode()
    finally:
        assert lean.install(model) == 30
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@needs_bf16
def test_the_batcher_on_int4_reports_the_log_probs_of_what_it_decoded(packed: LocalChatModel) -> None:
    assert packed.chat.generator is not None
    streams = [packed.chat.generator.stream(packed.render([HumanMessage(q)]), max_new_tokens=16) for q in QUESTIONS]
    texts = ["".join(stream) for stream in streams]
    for text, stream in zip(texts, streams, strict=True):
        generated, request = stream.generated, stream._request
        assert generated is not None and generated.mean_logprob is not None and text.strip()
        logps = step_by_step(packed, request.prompt_ids, request.ids)
        picked = logps.gather(1, torch.tensor(request.ids).unsqueeze(1))
        # The same tokens fed one at a time, alone: close, not equal (a padded batch's rounding noise differs).
        assert generated.mean_logprob == pytest.approx(float(picked.mean()), abs=0.01), text


def test_the_first_start_converts_and_packs_in_a_child_process(tmp_path: Path) -> None:
    folder = default_model_folder(tmp_path, "int4")
    assert (folder / "config.json").is_file()
    packed = int4.cache_file(tmp_path, folder)
    assert packed.is_file()  # the child packed the layers it had in memory: this process need not
    llm = load_chat_model(None, cache_dir=tmp_path, device="cpu", weights="int4")
    try:
        assert llm.weights.used == "int4" and llm.weights.max_error_steps <= int4.LOSSLESS_STEPS
        assert sorted(p.name for p in packed.parent.iterdir()) == [packed.name]  # loaded, not packed again
    finally:
        llm.close()
