"""Training data from feedback, as JSON Lines that TRL reads as they are.

``dpo.jsonl``: preference pairs in TRL's conversational preference format (DPOTrainer, also ORPO/KTO
after conversion): ``prompt`` is the message list the model was given (system prompt, history, the
question with its sources and tool results), ``chosen`` and ``rejected`` one assistant message each.
Pairs come from:

- corrections: a handed-off turn whose ticket a human answered; chosen = the human's reply, rejected =
  the model's draft (when it drafted one and the two differ);
- ratings: two rated turns with the very same prompt (same question, sources and history) and
  different ratings; chosen = the better-rated draft, rejected = the worse-rated one.

``grpo.jsonl``: one row per rated or corrected turn: ``prompt`` (messages), the ``completion`` the
model drafted, its ``reward`` (:mod:`r1agent.feedback.reward`) and the reward's components. TRL's
GRPOTrainer passes extra columns to reward functions, so a reward model can be fitted on them, or the
rows used for offline (reward-weighted) training.

Each row also names its ``thread_id`` and ``turn`` (drop them before training: TRL ignores or rejects
unknown columns depending on the trainer). The files hold conversation text, retrieved documents and
tool results (order details): exporting is an operator's action, and the folder is as private as the
threads. ``manifest.json`` records the counts and the reward weights used.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from r1agent.errors import InputError, NotFoundError
from r1agent.feedback.reward import RewardWeights, record_reward
from r1agent.feedback.store import Feedback
from r1agent.feedback.turns import TurnHistory, TurnRecord
from r1agent.tickets import Ticket

ExportFormat = Literal["dpo", "grpo", "both"]
DPO_FILE = "dpo.jsonl"
GRPO_FILE = "grpo.jsonl"
MANIFEST_FILE = "manifest.json"
MAX_PAIRS_PER_PROMPT = 8
"""Ratings of one prompt give at most this many pairs: a popular question cannot swamp the set."""


@dataclass(frozen=True)
class Rated:
    """A turn and what is known about its quality: the customer's rating, the human's correction."""

    record: TurnRecord
    rating: int | None


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _prompt_key(record: TurnRecord) -> str:
    return json.dumps(record.prompt, ensure_ascii=False, sort_keys=True)


def correction_pairs(records: Iterable[TurnRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        chosen, rejected = (r.human_reply or "").strip(), r.draft.strip()
        if chosen and rejected and chosen != rejected:
            rows.append(
                {
                    "prompt": r.prompt,
                    "chosen": _assistant(chosen),
                    "rejected": _assistant(rejected),
                    "source": "correction",
                    "thread_id": r.thread_id,
                    "turn": r.turn,
                }
            )
    return rows


def rating_pairs(rated: Iterable[Rated]) -> list[dict[str, Any]]:
    groups: dict[str, list[Rated]] = {}
    for item in rated:
        if item.rating is not None and item.record.draft.strip():
            groups.setdefault(_prompt_key(item.record), []).append(item)
    rows: list[dict[str, Any]] = []
    for items in groups.values():
        ranked = sorted(items, key=lambda i: -(i.rating or 0))
        pairs = [
            (a, b)
            for a, b in itertools.combinations(ranked, 2)
            if (a.rating or 0) > (b.rating or 0) and a.record.draft.strip() != b.record.draft.strip()
        ]
        for better, worse in pairs[:MAX_PAIRS_PER_PROMPT]:
            rows.append(
                {
                    "prompt": better.record.prompt,
                    "chosen": _assistant(better.record.draft.strip()),
                    "rejected": _assistant(worse.record.draft.strip()),
                    "source": "rating",
                    "thread_id": better.record.thread_id,
                    "turn": better.record.turn,
                    "chosen_rating": better.rating,
                    "rejected_rating": worse.rating,
                }
            )
    return rows


def grpo_rows(rated: Iterable[Rated], weights: RewardWeights) -> list[dict[str, Any]]:
    rows = []
    for item in rated:
        r = item.record
        if not r.draft.strip():
            continue
        reward = record_reward(r, item.rating, weights)
        rows.append(
            {
                "prompt": r.prompt,
                "completion": _assistant(r.draft.strip()),
                "reward": reward.total,
                "components": reward.components,
                "rating": item.rating,
                "corrected": bool(r.human_reply),
                "thread_id": r.thread_id,
                "turn": r.turn,
            }
        )
    return rows


def gather(feedback: Sequence[Feedback], tickets: Sequence[Ticket], history: TurnHistory) -> list[Rated]:
    """Every rated turn (its snapshot, with a later human reply filled in) and every corrected turn."""
    rated: dict[tuple[str, int], Rated] = {(f.thread_id, f.turn): Rated(f.record, f.rating) for f in feedback}
    cache: dict[str, list[TurnRecord]] = {}
    for ticket in tickets:
        if ticket.status != "resolved" or not ticket.reply:
            continue
        if ticket.thread_id not in cache:
            try:
                cache[ticket.thread_id] = history.turns(ticket.thread_id)
            except NotFoundError:  # the thread was deleted: its tickets cannot be tied to a prompt
                cache[ticket.thread_id] = []
        for record in cache[ticket.thread_id]:
            if record.ticket_id != ticket.id:
                continue
            key = (record.thread_id, record.turn)
            rating = rated[key].rating if key in rated else None
            rated[key] = Rated(record if record.human_reply else _with_reply(record, ticket.reply), rating)
    for key, item in list(rated.items()):
        if item.record.ticket_id is not None and item.record.human_reply is None:
            # Rated before the human answered: the snapshot has no reply, the thread may have it now.
            fresh = next((r for r in cache.get(key[0], []) if r.turn == key[1]), None)
            if fresh is not None and fresh.human_reply:
                rated[key] = Rated(fresh, item.rating)
    return sorted(rated.values(), key=lambda i: (i.record.thread_id, i.record.turn))


def _with_reply(record: TurnRecord, reply: str) -> TurnRecord:
    return TurnRecord.from_dict({**record.to_dict(), "human_reply": reply})


@dataclass(frozen=True)
class ExportReport:
    out: str
    files: dict[str, str]
    dpo_pairs: int
    grpo_rows: int
    corrections: int
    rated_turns: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def export(out: Path, rated: Sequence[Rated], *, fmt: ExportFormat, weights: RewardWeights) -> ExportReport:
    if fmt not in ("dpo", "grpo", "both"):
        raise InputError(f"--format is dpo, grpo or both, not {fmt!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; --out names a folder")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    pairs: list[dict[str, Any]] = []
    grpo: list[dict[str, Any]] = []
    if fmt in ("dpo", "both"):
        pairs = correction_pairs(r.record for r in rated) + rating_pairs(rated)
        write_jsonl(out / DPO_FILE, pairs)
        files["dpo"] = str(out / DPO_FILE)
    if fmt in ("grpo", "both"):
        grpo = grpo_rows(rated, weights)
        write_jsonl(out / GRPO_FILE, grpo)
        files["grpo"] = str(out / GRPO_FILE)
    report = ExportReport(
        out=str(out),
        files=files,
        dpo_pairs=len(pairs),
        grpo_rows=len(grpo),
        corrections=sum(1 for r in rated if r.record.human_reply),
        rated_turns=sum(1 for r in rated if r.rating is not None),
    )
    manifest = {
        **report.to_dict(),
        "format": fmt,
        "reward_weights": weights.to_dict(),
        "created_at": time.time(),
        "contains": "conversation text, retrieved documents and tool results: keep it as private as the threads",
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return report
