"""``r1agent train ...``: fine-tune the local chat model from feedback (needs ``r1agent[train]``).

Imports stay inside the commands: ``r1agent --help`` must not wait for torch or TRL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

train_app = typer.Typer(
    no_args_is_help=True, help="Train from feedback: LoRA DPO (needs the 'train' extra: TRL, PEFT)."
)


@train_app.command("dpo")
def dpo(
    data: Annotated[Path, typer.Option(help="A folder holding dpo.jsonl (from `feedback export`), or the file.")],
    out: Annotated[Path, typer.Option(help="Folder for the adapter; load it with R1AGENT_ADAPTER=OUT.")],
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 100,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 5e-5,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    beta: Annotated[float, typer.Option(help="DPO beta: how far from the base model the policy may move.")] = 0.1,
    batch_size: Annotated[int, typer.Option(help="Pairs per step.")] = 2,
    max_length: Annotated[int, typer.Option(help="Tokens kept per example (prompt + answer).")] = 1024,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient-checkpointing", help="Less GPU memory (7B models, long answers), slower.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (a stable contract).")] = False,
) -> None:
    """LoRA DPO with TRL + PEFT on the agent's chat model (R1AGENT_MODEL, else the bundled SmolLM2)."""
    from r1agent.cli import _print_json, _quiet_libraries, _user_errors, err
    from r1agent.cli import out as stdout
    from r1agent.settings import Settings
    from r1agent.training.dpo import DpoOptions, require_extra, train_dpo

    with _user_errors():
        options = DpoOptions(
            steps=steps,
            learning_rate=lr,
            rank=rank,
            beta=beta,
            batch_size=batch_size,
            max_length=max_length,
            seed=seed,
            gradient_checkpointing=gradient_checkpointing,
        ).check()
        require_extra()  # before any model is loaded
        _quiet_libraries()
        settings = Settings()
        if not json_out:
            err.print(f"[dim]training a LoRA adapter ({options.steps} steps) …[/]")
        report = train_dpo(
            data,
            out,
            model_folder=settings.model,
            cache_dir=settings.cache_dir,
            options=options,
            device=settings.device,
            torch_threads=settings.torch_threads,
            force=force,
        )
    if json_out:
        _print_json(report.to_dict())
        return
    last = f"{report.losses[-1]:.4f}" if report.losses else "n/a"
    stdout.print(
        f"adapter written to {report.adapter} ({report.pairs} pairs, {report.steps} steps, {report.seconds:.0f} s, "
        f"final loss {last}); use it with R1AGENT_ADAPTER={report.adapter}",
        highlight=False,
    )
