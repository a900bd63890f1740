"""``r1agent feedback ...``: rate answers, export training data, tune the threshold, review intent fixes.

``r1agent feedback THREAD --rating N`` is short for ``r1agent feedback rate THREAD --rating N``. None
of these commands loads a model: they read the threads' checkpoints, the tickets and the feedback
store. Imports stay inside the commands: ``r1agent --help`` must not wait for torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from r1agent.feedback.reward import RewardWeights
    from r1agent.feedback.store import Feedback, FeedbackStore
    from r1agent.feedback.turns import CheckpointHistory
    from r1agent.settings import Settings
    from r1agent.tickets import SqliteTicketStore

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (a stable contract).")]
TurnOpt = Annotated[int | None, typer.Option(help="Which turn (1 = the first); default: the last.")]


class _RateByDefault(TyperGroup):
    """``feedback THREAD ...`` runs ``feedback rate THREAD ...``: thread ids never name a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["rate", *args]
        return super().parse_args(ctx, args)


feedback_app = typer.Typer(
    cls=_RateByDefault,
    no_args_is_help=True,
    help="Feedback on answers: `r1agent feedback THREAD --rating 1..5`, export for training, tuning.",
)


def _print_json(obj: Any) -> None:
    from r1agent.cli import _print_json as print_json

    print_json(obj)


@contextmanager
def _errors() -> Iterator[None]:
    from r1agent.cli import _user_errors

    with _user_errors():
        yield


@contextmanager
def _stores(settings: Settings) -> Iterator[tuple[FeedbackStore, CheckpointHistory, SqliteTicketStore]]:
    from r1agent.deps import open_checkpointer
    from r1agent.feedback.store import FeedbackStore
    from r1agent.feedback.turns import CheckpointHistory
    from r1agent.tickets import SqliteTicketStore

    tickets = SqliteTicketStore(settings.tickets_path)
    try:
        with FeedbackStore(settings.feedback_path) as store, open_checkpointer(settings) as checkpointer:
            yield store, CheckpointHistory(checkpointer, tickets, max_history=settings.max_history_messages), tickets
    finally:
        tickets.close()


def describe(feedback: Feedback, weights: RewardWeights) -> dict[str, Any]:
    """A rating as ``--json`` prints it: the turn's outcome and reward, not its whole prompt."""
    from r1agent.feedback.reward import record_reward

    r = feedback.record
    return {
        "id": feedback.id,
        "thread_id": feedback.thread_id,
        "turn": feedback.turn,
        "rating": feedback.rating,
        "comment": feedback.comment,
        "customer_id": feedback.customer_id,
        "created_at": feedback.created_at,
        "updated_at": feedback.updated_at,
        "intent": r.intent,
        "quality": r.quality,
        "handed_off": r.handed_off,
        "completed": r.completed,
        "latency_s": r.latency_s,
        "reward": record_reward(r, feedback.rating, weights).to_dict(),
    }


@feedback_app.command("rate")
def rate(
    thread: Annotated[str, typer.Argument(help="The thread id (as `ask --json` prints it).")],
    rating: Annotated[int, typer.Option(help="1 (bad) to 5 (great).")],
    comment: Annotated[str | None, typer.Option(help="What was good or wrong.")] = None,
    turn: TurnOpt = None,
    customer: Annotated[
        str | None, typer.Option(help="Act for this customer: a thread of anyone else is 'unknown'.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Rate an answer (by default the thread's last turn); rating it again replaces the rating."""
    from r1agent.feedback.reward import RewardWeights
    from r1agent.feedback.store import record_feedback
    from r1agent.settings import Settings

    with _errors():
        settings = Settings()
        with _stores(settings) as (store, history, _):
            fb = record_feedback(
                store,
                history,
                thread,
                customer,
                rating,
                comment=comment,
                turn=turn,
                max_comment_chars=settings.feedback_max_comment_chars,
            )
        row = describe(fb, RewardWeights.from_settings(settings))
    if json_out:
        _print_json(row)
        return
    typer.echo(f"rated turn {fb.turn} of thread {fb.thread_id}: {fb.rating}/5 · reward {row['reward']['total']:+.2f}")


@feedback_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Folder for dpo.jsonl, grpo.jsonl and manifest.json.")],
    format_: Annotated[str, typer.Option("--format", help="dpo, grpo or both.")] = "both",
    json_out: JsonOpt = False,
) -> None:
    """Write training data from ratings and human corrections (it contains conversation text)."""
    from r1agent.errors import InputError
    from r1agent.feedback.export import export as write_export
    from r1agent.feedback.export import gather
    from r1agent.feedback.reward import RewardWeights
    from r1agent.settings import Settings

    with _errors():
        if format_ not in ("dpo", "grpo", "both"):
            raise InputError(f"--format is dpo, grpo or both, not {format_!r}")
        settings = Settings()
        with _stores(settings) as (store, history, tickets):
            rated = gather(store.ratings(), tickets.list("resolved"), history)
        report = write_export(out, rated, fmt=format_, weights=RewardWeights.from_settings(settings))  # type: ignore[arg-type]
    if json_out:
        _print_json(report.to_dict())
        return
    typer.echo(
        f"{report.dpo_pairs} preference pairs, {report.grpo_rows} reward rows "
        f"({report.rated_turns} rated turns, {report.corrections} corrections) in {report.out}"
    )


@feedback_app.command("tune-threshold")
def tune_threshold(
    out: Annotated[Path | None, typer.Option(help="Where to write the fit (default DATA_DIR/threshold.json).")] = None,
    target_precision: Annotated[
        float, typer.Option(help="Share of answered turns that must be rated 3 or more (1.0: none rated <= 2).")
    ] = 1.0,
    min_answered: Annotated[int, typer.Option(help="Answered turns the threshold must keep.")] = 1,
    json_out: JsonOpt = False,
) -> None:
    """Suggest the handoff quality threshold from rated answers."""
    from r1agent.context import Context
    from r1agent.feedback.store import FeedbackStore
    from r1agent.feedback.tuning import suggest_threshold, threshold_report, write_json
    from r1agent.settings import Settings

    with _errors():
        settings = Settings()
        with FeedbackStore(settings.feedback_path) as store:
            fit = suggest_threshold(store.ratings(), target_precision=target_precision, min_answered=min_answered)
        report = threshold_report(fit, current=Context().quality_threshold)
        path = out or settings.data_dir / "threshold.json"
        write_json(path, report)
    if json_out:
        _print_json({**report, "file": str(path)})
        return
    precision = "n/a" if fit.precision is None else f"{fit.precision:.2f}"
    typer.echo(
        f"suggested quality_threshold {fit.threshold:.4f} (now {report['current_threshold']}): "
        f"precision {precision}, coverage {fit.coverage:.2f} over {fit.n} rated answers"
        + ("" if fit.reached else " — target not reached: every turn would go to a human")
    )
    typer.echo(f"written to {path}")


@feedback_app.command("intent")
def intent(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    label: Annotated[str, typer.Option(help="The intent the turn should have had.")],
    turn: TurnOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Queue a corrected intent for review; accepted ones become labelled examples."""
    from r1agent.feedback.store import check_label, owned_turn
    from r1agent.intents.taxonomy import load_taxonomy
    from r1agent.settings import Settings

    with _errors():
        settings = Settings()
        label = check_label(label, load_taxonomy(settings.taxonomy).labels)
        with _stores(settings) as (store, history, _):
            record, owner = owned_turn(history, thread, None, turn)
            suggestion = store.suggest_intent(record, customer_id=owner, label=label)
    if json_out:
        _print_json(suggestion.to_dict())
        return
    typer.echo(f"queued {suggestion.id}: {suggestion.predicted} → {suggestion.label} (r1agent feedback review)")


@feedback_app.command("review")
def review(
    accept: Annotated[str | None, typer.Option(help="Accept this suggestion id.")] = None,
    reject: Annotated[str | None, typer.Option(help="Reject this suggestion id.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List pending intent corrections, or accept / reject one (accepted: DATA_DIR/intents.extra.csv)."""
    from r1agent.errors import InputError
    from r1agent.feedback.store import FeedbackStore
    from r1agent.feedback.tuning import append_overlay
    from r1agent.settings import Settings

    with _errors():
        if accept and reject:
            raise InputError("--accept or --reject, not both")
        settings = Settings()
        with FeedbackStore(settings.feedback_path) as store:
            if accept or reject:
                suggestion = store.review(accept or reject or "", "accepted" if accept else "rejected")
                if suggestion.status == "accepted":
                    append_overlay(settings.intents_overlay_path, suggestion)
                result: Any = {**suggestion.to_dict(), "overlay": str(settings.intents_overlay_path)}
            else:
                result = [s.to_dict() for s in store.suggestions("pending")]
    if json_out:
        _print_json(result)
        return
    if isinstance(result, dict):
        typer.echo(f"{result['id']} {result['status']}: {result['text']!r} → {result['label']}")
        return
    if not result:
        typer.echo("no intent corrections waiting for review")
    for s in result:
        typer.echo(f"{s['id']}  {s['predicted']} → {s['label']}  {s['text'][:80]!r}")
