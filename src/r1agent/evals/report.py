"""A run folder's human side: ``report.md`` and PNG plots (confusion matrix, reliability diagram,
latency). matplotlib is imported here only, with the Agg backend (no display, no GUI toolkit)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r1agent.evals.results import SUMMARY_FILE, CaseResult
from r1agent.evals.scorers import direction

CONFUSION_PNG = "confusion.png"
RELIABILITY_PNG = "reliability.png"
LATENCY_PNG = "latency.png"
REPORT_MD = "report.md"
MAX_FAILED_LISTED = 60


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    path = run_dir / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return lines


def render_report(summary: dict[str, Any], results: Sequence[CaseResult]) -> str:
    meta = summary.get("run", {})
    lines = [
        f"# Eval run: {meta.get('suite', '?')}",
        "",
        f"{summary['cases']} cases · model `{meta.get('model', '?')}` · started {meta.get('started_at', '?')} · "
        f"{fmt(meta.get('duration_s'))} s · context `{json.dumps(meta.get('context', {}))}`",
        "",
        "Definitions (acceptable, checks, calibration): docs/evals.md.",
        "",
        "## Metrics",
        "",
        *_table(
            ["metric", "value", "better"],
            [(name, value, direction(name) or "") for name, value in summary["metrics"].items()],
        ),
    ]
    intent = summary["intent"]
    if intent["labels"]:
        labels = intent["labels"]
        lines += ["", "## Intents", "", "Rows: expected label; columns: predicted.", ""]
        matrix = [[lab, *row] for lab, row in zip(labels, intent["matrix"], strict=True)]
        lines += _table(["expected \\ predicted", *labels], matrix)
        per_label = [(k, s["precision"], s["recall"], s["f1"], s["support"]) for k, s in intent["per_label"].items()]
        lines += ["", *_table(["label", "precision", "recall", "f1", "support"], per_label)]
        lines += ["", f"![confusion matrix]({CONFUSION_PNG})"]
    handoff = summary["handoff"]
    lines += [
        "",
        "## Handoffs",
        "",
        f"Handed off: {handoff['handed_off']} (by reason: {json.dumps(handoff['by_reason'])}). Against the cases "
        f"that state a handoff expectation: TP {handoff['tp']}, FP {handoff['fp']}, FN {handoff['fn']}, "
        f"TN {handoff['tn']}; precision {fmt(handoff['precision'])}, recall {fmt(handoff['recall'])}.",
    ]
    calib = summary["calibration"]
    lines += [
        "",
        "## Calibration of the quality score",
        "",
        f"{calib['n']} judged answers; ECE {fmt(calib['ece'])}.",
        "",
        *_table(
            ["bin", "count", "mean score", "acceptable"],
            [(f"{b['low']:.1f}–{b['high']:.1f}", b["count"], b["mean_score"], b["accuracy"]) for b in calib["bins"]],
        ),
        "",
        f"![reliability diagram]({RELIABILITY_PNG})",
    ]
    fit = summary.get("threshold")
    if fit:
        lines += [
            "",
            f"Fitted quality threshold ({fit['objective']}): **{fit['threshold']}** — precision "
            f"{fmt(fit['precision'])}, coverage {fmt(fit['coverage'])}, gate accuracy {fmt(fit['gate_accuracy'])}.",
        ]
    latency = summary["latency"]
    lines += ["", "## Latency (seconds)", ""]
    rows = [("turn", *_stats(latency["turn"]))] + [(k, *_stats(v)) for k, v in latency["nodes"].items()]
    lines += _table(["what", "n", "p50", "p95", "mean", "max"], rows)
    tokens = summary["tokens"]
    lines += [
        "",
        f"Tokens: {tokens['input']} in, {tokens['output']} out over {tokens['turns']} turns.",
        "",
        f"![latency]({LATENCY_PNG})",
        "",
        "## Pass rate by tag",
        "",
        *_table(["tag", "pass rate"], list(summary["by_tag"].items())),
    ]
    failed = [r for r in results if not r.passed]
    lines += ["", f"## Failed cases ({len(failed)})", ""]
    rows = [
        (
            r.case_id,
            r.error or ", ".join(k for k, ok in r.checks.items() if not ok),
            f"{r.intent} / {r.expected.intent}" if r.expected.intent else r.intent,
            ", ".join(c.name for c in r.tool_calls),
            r.handoff_reason or "",
            r.trace_id,
        )
        for r in failed[:MAX_FAILED_LISTED]
    ]
    lines += _table(["case", "failed", "intent (got / expected)", "tools", "handoff", "trace"], rows)
    if len(failed) > MAX_FAILED_LISTED:
        lines += ["", f"… and {len(failed) - MAX_FAILED_LISTED} more: see results.jsonl."]
    return "\n".join(lines) + "\n"


def _stats(stats: dict[str, Any]) -> tuple[Any, ...]:
    return stats["n"], stats["p50_s"], stats["p95_s"], stats["mean_s"], stats["max_s"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, works on a server
    import matplotlib.pyplot as plt

    return plt


def write_plots(run_dir: Path, summary: dict[str, Any], results: Sequence[CaseResult]) -> list[Path]:
    turns = [t for r in results for t in r.turn_s]
    return [
        plot_confusion(run_dir / CONFUSION_PNG, summary["intent"]["labels"], summary["intent"]["matrix"]),
        plot_reliability(run_dir / RELIABILITY_PNG, summary["calibration"], xlabel="quality score"),
        plot_latency(run_dir / LATENCY_PNG, turns, summary["latency"]["nodes"]),
    ]


def plot_confusion(path: Path, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Path:
    plt = _pyplot()
    side = max(len(labels), 2)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * side, 1.0 + 0.65 * side))
    if labels:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("expected")
    else:
        ax.text(0.5, 0.5, "no case states an intent", ha="center", va="center")
    ax.set_title("Intent confusion matrix")
    fig.tight_layout()
    return _save(fig, path)


def plot_reliability(path: Path, calib: dict[str, Any], *, xlabel: str, ylabel: str = "acceptable") -> Path:
    """Bars: the share of good outcomes per score bin; dots: the bin's mean score; the diagonal is
    perfect calibration. The number over a bar is how many fell in it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    bins = [b for b in calib["bins"] if b["count"]]
    width = calib["bins"][0]["high"] - calib["bins"][0]["low"] if calib["bins"] else 0.1
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    if bins:
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        ax.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, alpha=0.7, label=f"share {ylabel}")
        ax.scatter([b["mean_score"] for b in bins], [b["accuracy"] for b in bins], color="black", s=12, zorder=3)
        for x, b in zip(centres, bins, strict=True):
            ax.text(x, min(1.0, b["accuracy"]) + 0.02, str(b["count"]), ha="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "nothing to judge", ha="center", va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"Reliability diagram (ECE {fmt(calib['ece'])}, n={calib['n']})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def plot_latency(path: Path, turns: Sequence[float], nodes: dict[str, dict[str, Any]]) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    if turns:
        left.hist(turns, bins=min(30, max(5, len(turns) // 5)), color="tab:blue", alpha=0.8)
    left.set_xlabel("seconds")
    left.set_ylabel("turns")
    left.set_title("Turn latency")
    names = list(nodes)
    right.barh(names, [nodes[n]["p95_s"] or 0 for n in names], color="tab:orange", alpha=0.6, label="p95")
    right.barh(names, [nodes[n]["p50_s"] or 0 for n in names], color="tab:blue", alpha=0.9, label="p50")
    right.set_xlabel("seconds")
    right.set_title("Per node")
    right.legend()
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run_dir: Path, summary: dict[str, Any], results: Sequence[CaseResult]) -> Path:
    write_summary(run_dir, summary)
    write_plots(run_dir, summary, results)
    path = run_dir / REPORT_MD
    path.write_text(render_report(summary, results), encoding="utf-8")
    return path
