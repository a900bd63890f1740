"""LoRA DPO on the local chat model with TRL + PEFT: preference pairs in, a PEFT adapter folder out.

The pairs are ``dpo.jsonl`` from ``r1agent feedback export`` (or any file in TRL's preference format).
The adapter folder loads at start with ``R1AGENT_ADAPTER`` (:mod:`r1agent.models.adapter`). The base
model is the one the agent runs: ``R1AGENT_MODEL``, else the bundled SmolLM2 (converted once into the
cache). The reference policy is the base model itself (TRL disables the adapter for it), so no second
copy of the weights is held. On CPU it trains in float32; with CUDA in bf16 where supported. See
docs/feedback.md for a GPU run on an R1 distill.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from r1agent.errors import ConfigurationError, ConflictError, InputError, NotFoundError
from r1agent.models.adapter import TRAIN_EXTRA

EXTRA_MODULES = ("trl", "peft", "datasets")
DPO_FILE = "dpo.jsonl"
MANIFEST = "r1agent-train.json"
MAX_PAIRS = 200_000
MAX_LINE_CHARS = 1_000_000
ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class DpoOptions:
    steps: int = 100
    learning_rate: float = 5e-5
    rank: int = 8
    beta: float = 0.1
    """DPO's temperature: how far the policy may move from the reference."""
    batch_size: int = 2
    max_length: int = 1024
    """Prompt + answer tokens kept per example (truncated from the end beyond it)."""
    seed: int = 0
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less GPU memory for long R1 answers, ~30% slower."""

    def check(self) -> DpoOptions:
        if not 1 <= self.steps <= 1_000_000:
            raise InputError("--steps must be from 1 to 1,000,000")
        if not 0 < self.learning_rate < 1:
            raise InputError("--lr must be in (0, 1)")
        if not 1 <= self.rank <= 1024:
            raise InputError("--rank must be from 1 to 1024")
        if not self.beta > 0:
            raise InputError("--beta must be positive")
        if not 1 <= self.batch_size <= 4096:
            raise InputError("--batch-size must be from 1 to 4096")
        if not 16 <= self.max_length <= 1_000_000:
            raise InputError("--max-length must be from 16 to 1,000,000")
        return self


@dataclass(frozen=True)
class TrainReport:
    adapter: str
    base_model: str
    pairs: int
    steps: int
    device: str
    seconds: float
    losses: list[float]
    train_loss: float | None
    options: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_extra() -> None:
    """ConfigurationError naming the extra when TRL, PEFT or datasets are missing."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigurationError(f"training needs the 'train' extra: {TRAIN_EXTRA} (missing: {', '.join(missing)})")


def _messages_or_text(value: Any, what: str, where: str) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise InputError(f"{where}: '{what}' is a non-empty string or a list of {{role, content}} messages")


def _is_message(m: Any) -> bool:
    return isinstance(m, Mapping) and m.get("role") in ROLES and isinstance(m.get("content"), str)


def load_pairs(data: Path) -> list[dict[str, Any]]:
    """Preference pairs from ``data`` (a ``.jsonl`` file, or a folder holding ``dpo.jsonl``)."""
    path = data / DPO_FILE if data.is_dir() else data
    if not path.is_file():
        raise NotFoundError(f"no preference pairs at {path} (make them with: r1agent feedback export --out DIR)")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            if len(line) > MAX_LINE_CHARS:
                raise InputError(f"{where}: the line is longer than {MAX_LINE_CHARS:,} characters")
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{where}: not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise InputError(f"{where}: each line is a JSON object with prompt, chosen and rejected")
            pair = {k: _messages_or_text(row.get(k), k, where) for k in ("prompt", "chosen", "rejected")}
            if type(pair["prompt"]) is not type(pair["chosen"]) or type(pair["chosen"]) is not type(pair["rejected"]):
                raise InputError(f"{where}: prompt, chosen and rejected must all be text or all be messages")
            rows.append(pair)
            if len(rows) > MAX_PAIRS:
                raise InputError(f"{path}: more than {MAX_PAIRS:,} pairs; split the file")
    if not rows:
        raise InputError(f"{path} holds no preference pairs: rate or correct some answers first")
    return rows


def _prepare_out(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; --out names a folder for the adapter")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConflictError(f"{out} is not empty; choose another --out or pass --force to replace it")


def train_dpo(
    data: Path,
    out: Path,
    *,
    model_folder: Path | None,
    cache_dir: Path,
    options: DpoOptions | None = None,
    device: str = "auto",
    torch_threads: int | None = None,
    force: bool = False,
) -> TrainReport:
    """Train a LoRA adapter with DPO on the pairs at ``data`` and write it to ``out``."""
    options = (options or DpoOptions()).check()
    require_extra()
    pairs = load_pairs(data)
    _prepare_out(out, force=force)

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    from r1agent.models.chat import default_model_folder

    base = model_folder or default_model_folder(cache_dir)
    if not (base / "config.json").is_file():
        raise ConfigurationError(f"not a transformers model folder: {base}")
    if torch_threads:
        torch.set_num_threads(torch_threads)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    bf16 = cuda and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        base, local_files_only=True, dtype=torch.bfloat16 if bf16 else torch.float32
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    started = time.perf_counter()
    try:
        args = DPOConfig(
            output_dir=str(work / "trainer"),
            max_steps=options.steps,
            per_device_train_batch_size=options.batch_size,
            gradient_accumulation_steps=1,
            learning_rate=options.learning_rate,
            lr_scheduler_type="constant",
            beta=options.beta,
            max_length=options.max_length,
            seed=options.seed,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=not cuda,
            bf16=bf16,
            gradient_checkpointing=options.gradient_checkpointing,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        lora = LoraConfig(
            r=options.rank, lora_alpha=2 * options.rank, lora_dropout=0.0, task_type="CAUSAL_LM", bias="none"
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(pairs),
            processing_class=tokenizer,
            peft_config=lora,
        )
        # The Trainer prints each log line to stdout, which would corrupt `--json`; the losses are reported.
        trainer.remove_callback(PrinterCallback)
        result = trainer.train()
        adapter_dir = work / "adapter"
        trained: Any = trainer.model  # the PeftModel: saving it writes the adapter alone
        trained.save_pretrained(str(adapter_dir))
        losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
        report = TrainReport(
            adapter=str(out),
            base_model=str(base),
            pairs=len(pairs),
            steps=int(trainer.state.global_step),
            device="cuda" if cuda else "cpu",
            seconds=round(time.perf_counter() - started, 2),
            losses=[round(x, 5) for x in losses],
            train_loss=round(float(result.training_loss), 5) if result.training_loss is not None else None,
            options=asdict(options),
            versions={name: version(name) for name in ("trl", "peft", "transformers", "torch")},
        )
        (adapter_dir / MANIFEST).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)  # --force, checked above
        os.replace(adapter_dir, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
