"""Training data from feedback: which pairs and rows are made, and that TRL reads the files as written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from r1agent.errors import InputError
from r1agent.feedback.export import (
    DPO_FILE,
    GRPO_FILE,
    MANIFEST_FILE,
    MAX_PAIRS_PER_PROMPT,
    Rated,
    correction_pairs,
    export,
    gather,
    grpo_rows,
    rating_pairs,
)
from r1agent.feedback.reward import RewardWeights, record_reward
from r1agent.feedback.store import Feedback
from r1agent.feedback.turns import TurnRecord
from r1agent.tickets import Ticket

SYSTEM = {"role": "system", "content": "You are the shop's assistant."}
WEIGHTS = RewardWeights()


def rec(thread: str, n: int = 1, question: str = "What is your return policy?", **changes: object) -> TurnRecord:
    data: dict[str, object] = {
        "thread_id": thread,
        "turn": n,
        "text": question,
        "prompt": [SYSTEM, {"role": "user", "content": f"<sources>…</sources>\n\nCustomer question: {question}"}],
        "draft": f"draft of {thread}",
        "reply": f"draft of {thread}",
        "quality": 0.7,
        "latency_s": 1.2,
    }
    data.update(changes)
    return TurnRecord.from_dict(data)


def test_corrections_pair_the_humans_reply_against_the_draft() -> None:
    corrected = rec("a", ticket_id="tk1", handoff_reason="low_quality", human_reply="Returns are free for 30 days.")
    rows = correction_pairs([corrected, rec("b"), rec("c", ticket_id="tk2", human_reply="Hi", draft="")])
    assert rows == [
        {
            "prompt": corrected.prompt,
            "chosen": [{"role": "assistant", "content": "Returns are free for 30 days."}],
            "rejected": [{"role": "assistant", "content": "draft of a"}],
            "source": "correction",
            "thread_id": "a",
            "turn": 1,
        }
    ]
    same = rec("d", ticket_id="tk3", human_reply="draft of d")
    assert correction_pairs([same]) == []  # the human sent the draft as it was: no preference


def test_ratings_pair_answers_to_the_same_prompt() -> None:
    rated = [
        Rated(rec("a"), 5),
        Rated(rec("b"), 2),
        Rated(rec("c"), 2),  # ties with b: no pair between them
        Rated(rec("d", question="Do you ship abroad?"), 1),  # another prompt: paired with nothing
        Rated(rec("e"), None),  # unrated
    ]
    rows = rating_pairs(rated)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        ("draft of a", "draft of b"),
        ("draft of a", "draft of c"),
    ]
    assert all(r["chosen_rating"] == 5 and r["rejected_rating"] == 2 and r["source"] == "rating" for r in rows)
    assert all(r["prompt"] == rec("x").prompt for r in rows)


def test_a_popular_prompt_gives_a_bounded_number_of_pairs() -> None:
    rated = [Rated(rec(f"t{i}"), 1 + i % 5) for i in range(40)]
    assert len(rating_pairs(rated)) == MAX_PAIRS_PER_PROMPT


def test_grpo_rows_carry_the_reward() -> None:
    handed = rec("b", ticket_id="tk", human_reply="Human text", quality=0.2, latency_s=4.5)
    rows = grpo_rows([Rated(rec("a"), 5), Rated(handed, None), Rated(rec("c", draft=""), 3)], WEIGHTS)
    assert [r["thread_id"] for r in rows] == ["a", "b"]  # nothing drafted: nothing to score
    assert rows[0]["reward"] == record_reward(rec("a"), 5, WEIGHTS).total == pytest.approx(2 + 1.5 + 0.7)
    assert rows[1]["reward"] == pytest.approx(0.2 - 0.5)
    assert rows[1]["components"] == {"completion": 0.0, "accuracy": 0.2, "latency": -0.5}
    assert (rows[1]["rating"], rows[1]["corrected"]) == (None, True)
    assert rows[0]["completion"] == [{"role": "assistant", "content": "draft of a"}]


class Turns:
    def __init__(self, records: dict[str, list[TurnRecord]]) -> None:
        self.records = records

    def turns(self, thread_id: str) -> list[TurnRecord]:
        from r1agent.errors import NotFoundError

        if thread_id not in self.records:
            raise NotFoundError(thread_id)
        return self.records[thread_id]

    def owner(self, thread_id: str) -> str | None:
        return None


def ticket(tid: str, thread: str, status: str = "resolved", reply: str | None = "Human reply") -> Ticket:
    return Ticket(
        id=tid,
        thread_id=thread,
        customer_id=None,
        reason="low_quality",
        summary="",
        draft="draft",
        intent=None,
        confidence=None,
        status=status,  # type: ignore[arg-type]
        created_at=0.0,
        reply=reply,
    )


def feedback(record: TurnRecord, rating: int) -> Feedback:
    return Feedback(
        id=f"f-{record.thread_id}",
        thread_id=record.thread_id,
        turn=record.turn,
        customer_id=None,
        rating=rating,
        comment=None,
        record=record,
        created_at=0.0,
        updated_at=0.0,
    )


def test_gather_joins_ratings_and_corrections() -> None:
    rated_early = rec("a", ticket_id="tk-a")  # rated while the ticket was still open
    later = rec("a", ticket_id="tk-a", human_reply="Human reply")
    corrected_only = rec("b", ticket_id="tk-b", human_reply="Human reply")
    history = Turns({"a": [later], "b": [corrected_only]})
    tickets = [ticket("tk-a", "a"), ticket("tk-b", "b"), ticket("tk-c", "gone"), ticket("tk-d", "b", "open", None)]
    items = gather([feedback(rated_early, 2), feedback(rec("c"), 4)], tickets, history)
    assert [(i.record.thread_id, i.rating, i.record.human_reply) for i in items] == [
        ("a", 2, "Human reply"),
        ("b", None, "Human reply"),
        ("c", 4, None),
    ]


@pytest.fixture(scope="module")
def trl_reads() -> Any:
    """datasets and TRL (the `train` extra, part of `dev`): CI must have them."""
    try:
        from datasets import load_dataset
        from trl import data_utils
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc.name} must be installed in CI (pip install -e '.[dev]')")
        pytest.skip(f"{exc.name} is not installed: pip install 'r1agent[train]'")
    return load_dataset, data_utils


@pytest.fixture(scope="module")
def chatml_tokenizer() -> PreTrainedTokenizerFast:
    """A real (word-level) tokenizer with a ChatML template, built here: no model folder needed."""
    words = "You are the shop's assistant . sources … Customer question : What is your return policy ?"
    vocab = {w: i for i, w in enumerate(["[UNK]", "<|im_start|>", "<|im_end|>", *dict.fromkeys(words.split())])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", eos_token="<|im_end|>", pad_token="[UNK]")
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def test_export_writes_files_trl_reads(
    tmp_path: Path, chatml_tokenizer: PreTrainedTokenizerFast, trl_reads: Any
) -> None:
    load_dataset, data_utils = trl_reads
    corrected = rec("a", ticket_id="tk", human_reply="Returns are free within 30 days.")
    rated = [Rated(corrected, 1), Rated(rec("b"), 5), Rated(rec("c"), 2)]
    report = export(tmp_path / "out", rated, fmt="both", weights=WEIGHTS)
    assert (report.dpo_pairs, report.grpo_rows, report.corrections, report.rated_turns) == (4, 3, 1, 3)
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert manifest["reward_weights"]["satisfaction"] == 2.0 and "conversation text" in manifest["contains"]

    cache = str(tmp_path / "hf-cache")
    pairs = load_dataset("json", data_files=str(tmp_path / "out" / DPO_FILE), split="train", cache_dir=cache)
    assert {"prompt", "chosen", "rejected"} <= set(pairs.column_names)
    assert pairs.num_rows == 4  # the correction, then b > c > a by rating
    first = pairs[0]
    assert data_utils.is_conversational(first)
    assert first["chosen"] == [{"role": "assistant", "content": "Returns are free within 30 days."}]
    # What DPOTrainer does to a conversational row before tokenising it.
    text = data_utils.apply_chat_template({k: first[k] for k in ("prompt", "chosen", "rejected")}, chatml_tokenizer)
    assert text["prompt"].endswith("Customer question: What is your return policy?<|im_end|>\n<|im_start|>assistant\n")
    assert text["chosen"] == "Returns are free within 30 days.<|im_end|>\n"
    assert text["rejected"] == "draft of a<|im_end|>\n"
    prompt_ids = chatml_tokenizer(text["prompt"])["input_ids"]
    full_ids = chatml_tokenizer(text["prompt"] + text["chosen"])["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids  # the completion starts right after the prompt

    rows = load_dataset("json", data_files=str(tmp_path / "out" / GRPO_FILE), split="train", cache_dir=cache)
    assert {"prompt", "completion", "reward"} <= set(rows.column_names)
    assert data_utils.is_conversational(rows[0])
    assert sorted(rows["reward"]) == sorted(record_reward(r.record, r.rating, WEIGHTS).total for r in rated)


def test_export_formats_and_bad_output(tmp_path: Path) -> None:
    only = export(tmp_path / "dpo-only", [Rated(rec("a", human_reply="Fixed."), None)], fmt="dpo", weights=WEIGHTS)
    assert set(only.files) == {"dpo"} and not (tmp_path / "dpo-only" / GRPO_FILE).exists()
    empty = export(tmp_path / "empty", [], fmt="grpo", weights=WEIGHTS)
    assert empty.grpo_rows == 0 and (tmp_path / "empty" / GRPO_FILE).read_text() == ""
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="names a folder"):
        export(tmp_path / "file", [], fmt="both", weights=WEIGHTS)
    with pytest.raises(InputError, match="dpo, grpo or both"):
        export(tmp_path / "x", [], fmt="sft", weights=WEIGHTS)  # type: ignore[arg-type]
