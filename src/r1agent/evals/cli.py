"""``r1agent eval ...``: offline evaluation runs, their comparison, and fitting the quality threshold.

Exit codes as for the rest of the CLI (2 bad input, 3 not found, 4 the run folder exists, 5
configuration), plus 6: a ``--fail-under`` bar was not met (the run folder is written all the same).

Imports stay inside the commands: ``r1agent --help`` must not wait for torch or matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from r1agent.evals.dataset import Suite

eval_app = typer.Typer(
    no_args_is_help=True, help="Offline evals: run a suite, compare runs, fit the quality threshold."
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (a stable contract).")]
RUNS_DIR = Path("runs")


def _stamp() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def prepare_run_dir(out: Path | None, name: str) -> Path:
    """``out`` or ``runs/<UTC timestamp>-<name>``; never over an earlier run's results."""
    from r1agent.errors import ConflictError
    from r1agent.evals.results import RESULTS_FILE

    run_dir = out or RUNS_DIR / f"{_stamp()}-{name}"
    if (run_dir / RESULTS_FILE).exists():
        raise ConflictError(f"{run_dir} already holds a run; choose another --out or remove it")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


@eval_app.command("run")
def run(
    suite: Annotated[
        Path | None, typer.Argument(help="A suite file (.jsonl or .yaml). Default: the shipped retail suite.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="The run folder (default: runs/<timestamp>-<suite>).")] = None,
    limit: Annotated[int | None, typer.Option(help="Run only the first N cases (after --tag).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only cases with this tag; repeatable (any of them).")] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(help="Token budget per answer (Context.max_new_tokens; R1AGENT_MAX_NEW_TOKENS caps it)."),
    ] = None,
    quality_threshold: Annotated[
        float | None, typer.Option(help="Hand off answers scoring below this (Context.quality_threshold).")
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(help="METRIC=VALUE: exit 6 when the metric is worse than VALUE (see docs/evals.md); repeatable."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a suite through the real agent and write results.jsonl, summary.json, report.md and plots."""
    from r1agent.cli import _quiet_libraries, _user_errors, err
    from r1agent.context import Context
    from r1agent.errors import InputError
    from r1agent.evals.dataset import load_suite
    from r1agent.evals.gates import EXIT_BELOW_BAR, failures, parse_bars
    from r1agent.settings import Settings

    with _user_errors():
        # Everything a user can get wrong is checked before the models load.
        selected = load_suite(suite).select(tags=tag, limit=limit)
        bars = parse_bars(fail_under or [])
        if max_new_tokens is not None and max_new_tokens < 1:
            raise InputError("--max-new-tokens must be at least 1")
        if quality_threshold is not None and not 0.0 <= quality_threshold <= 1.0:
            raise InputError("--quality-threshold must be between 0 and 1")
        default_threshold = Context().quality_threshold
        context = Context(
            max_new_tokens=max_new_tokens,
            quality_threshold=default_threshold if quality_threshold is None else quality_threshold,
        )
        settings = Settings()
        run_dir = prepare_run_dir(out, selected.name)
        _quiet_libraries()
        summary, _ = _run_with_progress(selected, settings, context, run_dir, show=not json_out and err.is_terminal)
    failed = failures(bars, summary["metrics"])
    if json_out:
        from r1agent.cli import _print_json

        _print_json({"run_dir": str(run_dir), "failed_bars": failed, **summary})
    else:
        _print_metrics(summary, run_dir)
    for message in failed:
        err.print(f"[bold red]fail-under:[/] {message}", highlight=False)
    if failed:
        raise typer.Exit(EXIT_BELOW_BAR)


def _run_with_progress(
    suite: Suite, settings: Any, context: Any, run_dir: Path, *, show: bool
) -> tuple[dict[str, Any], Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from r1agent.cli import err
    from r1agent.evals.runner import run_suite

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=not show, transient=False) as progress:
        task = progress.add_task(f"{suite.name}: loading models", total=len(suite.cases))
        passed = 0

        def advance(row: Any) -> None:
            nonlocal passed
            passed += bool(row.passed)
            progress.update(task, advance=1, description=f"{suite.name}: {passed} passed")

        return run_suite(suite, settings=settings, context=context, run_dir=run_dir, on_result=advance)


def _print_metrics(summary: dict[str, Any], run_dir: Path) -> None:
    from rich.table import Table

    from r1agent.cli import out
    from r1agent.evals.report import fmt
    from r1agent.evals.scorers import direction

    table = Table(title=f"{summary['run']['suite']}: {summary['cases']} cases", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("better")
    for name, value in summary["metrics"].items():
        table.add_row(name, fmt(value), direction(name) or "")
    out.print(table)
    out.print(f"run folder: {run_dir} (report.md, summary.json, results.jsonl, plots)", highlight=False)


@eval_app.command("diff")
def diff(
    run_a: Annotated[Path, typer.Argument(help="The earlier run folder.")],
    run_b: Annotated[Path, typer.Argument(help="The later run folder.")],
    json_out: JsonOpt = False,
) -> None:
    """Per-metric deltas and the cases that improved or regressed from RUN_A to RUN_B."""
    from r1agent.cli import _print_json, _user_errors, out
    from r1agent.evals.diff import diff_runs
    from r1agent.evals.report import fmt
    from r1agent.evals.results import read_results, read_summary

    with _user_errors():
        result = diff_runs(read_summary(run_a), read_results(run_a), read_summary(run_b), read_results(run_b))
    if json_out:
        _print_json(result.to_dict())
        return
    from rich.table import Table

    styles = {"better": "green", "worse": "red"}
    table = Table(title=f"{run_a} → {run_b}", title_justify="left")
    for column in ("metric", "A", "B", "delta", ""):
        table.add_column(column, justify="right" if column in {"A", "B", "delta"} else "left")
    for m in result.metrics:
        style = styles.get(m.verdict)
        delta = f"{m.delta:+.4g}" if m.delta is not None else "–"
        table.add_row(m.metric, fmt(m.a), fmt(m.b), delta, f"[{style}]{m.verdict}[/]" if style else m.verdict)
    out.print(table)
    for title, changes, style in (("improved", result.improved, "green"), ("regressed", result.regressed, "red")):
        out.print(f"[{style}]{title}: {len(changes)}[/]")
        for c in changes:
            why = ", ".join(f"{k} {_flag(a)}→{_flag(b)}" for k, (a, b) in c.checks.items())
            out.print(f"  {c.case_id}  [dim]{why}[/]", highlight=False)
    out.print(f"unchanged: {result.unchanged}")
    if result.only_in_a or result.only_in_b:
        out.print(f"[yellow]only in A: {len(result.only_in_a)} · only in B: {len(result.only_in_b)}[/]")


def _flag(value: bool | None) -> str:
    return "–" if value is None else ("pass" if value else "fail")


@eval_app.command("fit-threshold")
def fit_threshold_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `r1agent eval run`.")],
    target_precision: Annotated[
        float | None, typer.Option(help="Lowest threshold whose answered turns are at least this often acceptable.")
    ] = None,
    min_answered: Annotated[int, typer.Option(help="With --target-precision: answered turns needed.")] = 5,
    json_out: JsonOpt = False,
) -> None:
    """Fit the quality threshold for handoff from a run; writes threshold.json in the run folder."""
    import json

    from r1agent.cli import _print_json, _user_errors, err, out
    from r1agent.errors import InputError
    from r1agent.evals.results import read_results
    from r1agent.evals.threshold import fit_threshold

    with _user_errors():
        if min_answered < 1:
            raise InputError("--min-answered must be at least 1")
        rows = read_results(run_dir)
        pairs = [(r.quality, r.acceptable) for r in rows if r.quality is not None and r.acceptable is not None]
        fit = fit_threshold(pairs, target_precision=target_precision, min_answered=min_answered)
        path = run_dir / "threshold.json"
        path.write_text(json.dumps(fit.to_dict(), indent=2) + "\n", encoding="utf-8")
    t = fit.threshold
    if json_out:
        _print_json({"path": str(path), **fit.to_dict()})
    else:
        out.print(
            f"quality threshold {t} ({fit.objective}): precision {fit.precision}, coverage {fit.coverage}, "
            f"gate accuracy {fit.gate_accuracy} over {fit.n} judged answers ({fit.n_acceptable} acceptable)",
            highlight=False,
        )
        out.print(f"written to {path}", highlight=False)
        out.print(
            f"apply it per run: Context(quality_threshold={t}) in Python, "
            f'context={{"quality_threshold": {t}}} in a LangGraph server run; '
            f"check it: r1agent eval run --quality-threshold {t}",
            highlight=False,
        )
    if not fit.reached:
        err.print(
            f"[yellow]no threshold reaches precision {target_precision} with {min_answered}+ answered turns: "
            f"{t} hands every turn to a human[/]",
            highlight=False,
        )


@eval_app.command("intents")
def intents(
    train: Annotated[Path, typer.Option(help="Training CSV: text and label (or category) columns.")],
    test: Annotated[Path, typer.Option(help="Test CSV, same columns; never tune on it.")],
    oos_label: Annotated[str | None, typer.Option(help="The out-of-scope label: report its precision/recall.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: runs/<timestamp>-intents).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train the real intent classifier on TRAIN and score it on TEST (no chat model is loaded)."""
    import json

    from r1agent.cli import _print_json, _quiet_libraries, _user_errors, out
    from r1agent.evals.intents_eval import check_sets, evaluate_intents, read_labelled_csv, render_intents_report
    from r1agent.evals.report import RELIABILITY_PNG, plot_reliability
    from r1agent.models.embeddings import load_embeddings
    from r1agent.settings import Settings

    with _user_errors():
        train_rows, test_rows = read_labelled_csv(train), read_labelled_csv(test)
        check_sets(train_rows, test_rows, oos_label=oos_label)
        run_dir = out_dir or RUNS_DIR / f"{_stamp()}-intents"
        run_dir.mkdir(parents=True, exist_ok=True)
        _quiet_libraries()
        settings = Settings()
        result = evaluate_intents(
            train_rows,
            test_rows,
            load_embeddings(settings.embedding_model),
            oos_label=oos_label,
            cache_dir=settings.cache_dir,
        )
        (run_dir / "intents.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        plot_reliability(run_dir / RELIABILITY_PNG, result.calibration, xlabel="confidence", ylabel="correct")
        (run_dir / "report.md").write_text(render_intents_report(result, train=train, test=test), encoding="utf-8")
    if json_out:
        _print_json({"run_dir": str(run_dir), **result.to_dict()})
        return
    metrics = " · ".join(f"{k} {v}" for k, v in result.metrics.items() if v is not None)
    out.print(f"{result.test_rows} test rows, {result.labels} labels: {metrics}", highlight=False)
    out.print(f"fit {result.fit_s} s, predict {result.predict_s} s; report: {run_dir / 'report.md'}", highlight=False)


@eval_app.command("schema")
def schema() -> None:
    """Print the JSON schema of one eval case (a JSONL line, or an item of a YAML list)."""
    from r1agent.cli import _print_json
    from r1agent.evals.dataset import case_schema

    _print_json(case_schema())
