"""`r1agent eval intents` on a small stratified split of BANKING77 (real MiniLM, real classifier), in a
second process as a user runs it. Skipped without ../shared (fails in CI, which must have it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED, run_cli

BANKING77 = SHARED / "data" / "banking77" / "train.csv"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not BANKING77.is_file():
        reason = f"{BANKING77} is missing (the shared reference data)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must have it")
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("banking77")
    # 12 labels x 40 rows, 25% held out: the split script the docs use for the full data set.
    script = REPO / "scripts" / "split_labelled_csv.py"
    args = [str(BANKING77), "--out", str(out), "--labels", "12", "--per-label", "40", "--test-size", "0.25"]
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, timeout=60)
    return out


def test_the_split_is_stratified_and_disjoint(split: Path) -> None:
    train = (split / "train.csv").read_text(encoding="utf-8").splitlines()[1:]
    test = (split / "test.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(train) == 12 * 30 and len(test) == 12 * 10
    assert not set(train) & set(test)


def test_eval_intents_on_banking77(r1agent_cli: list[str], cli_env: dict[str, str], split: Path) -> None:
    # One BANKING77 label plays "out of scope": its precision and recall are reported on their own.
    oos = (split / "test.csv").read_text(encoding="utf-8").splitlines()[1].rsplit(",", 1)[1]
    out = split / "report"
    done = run_cli(
        r1agent_cli,
        cli_env,
        "eval",
        "intents",
        "--train",
        str(split / "train.csv"),
        "--test",
        str(split / "test.csv"),
        "--oos-label",
        oos,
        "--out",
        str(out),
        "--json",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["train_rows"], result["test_rows"], result["labels"]) == (360, 120, 12)
    # Measured: accuracy 0.992, macro-F1 0.992, ECE 0.007, out-of-scope precision and recall 1.0 on this
    # split. The floors leave room for another torch/BLAS build, and still catch a broken classifier.
    assert result["accuracy"] >= 0.93, result
    assert result["macro_f1"] >= 0.93, result
    assert result["ece"] <= 0.1, result
    assert abs(result["mean_confidence"] - result["accuracy"]) <= 0.1  # calibrated, not just accurate
    assert result["oos_label"] == oos
    assert result["oos_precision"] >= 0.8 and result["oos_recall"] >= 0.8, result
    assert result["unseen_test_labels"] == []
    assert json.loads((out / "intents.json").read_text(encoding="utf-8"))["accuracy"] == result["accuracy"]
    assert (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert "| accuracy |" in (out / "report.md").read_text(encoding="utf-8")


def test_eval_intents_bad_files(r1agent_cli: list[str], cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,greet\n,greet\n", encoding="utf-8")
    done = run_cli(r1agent_cli, cli_env, "eval", "intents", "--train", str(bad), "--test", str(bad))
    assert done.returncode == 2
    assert "bad.csv:3:emptytextorlabel" in "".join(done.stderr.split())  # rich wraps anywhere
    good = tmp_path / "good.csv"
    good.write_text("text,category\nhello,greet\nbye,leave\n", encoding="utf-8")
    args = ("eval", "intents", "--train", str(good), "--test", str(good), "--oos-label", "x")
    done = run_cli(r1agent_cli, cli_env, *args)
    assert done.returncode == 2 and "theout-of-scopelabel'x'isinneither" in "".join(done.stderr.split())
    done = run_cli(r1agent_cli, cli_env, "eval", "intents", "--train", str(tmp_path / "no.csv"), "--test", str(bad))
    assert done.returncode == 3 and "nosuchfile" in "".join(done.stderr.split())
    assert "Traceback" not in done.stderr
