"""benchmarks/r1_distill.py, the GPU benchmark of #7, runs end to end on a CPU with --tiny: a GPU session then
spends its few minutes measuring, not debugging. No speed is asserted (house rule: speed lives in benchmarks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_r1_distill_benchmark_measures_one_and_eight_at_once_with_its_peers() -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/r1_distill.py", "--tiny", "--new-tokens", "12", "--prompt-tokens", "140"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
    ).stdout
    assert "R1-Distill-Qwen-1.5B architecture (--tiny)" in out
    patterns = {
        "one": r"decode ([0-9.]+) tok/s",
        "eight": r"([0-9.]+) tok/s aggregate",
        "plain generate": r"one after another: ([0-9.]+) tok/s",
        "roofline": r"= ([0-9.]+) tok/s",
    }
    for name, pattern in patterns.items():
        found = re.search(pattern, out)
        assert found is not None and float(found.group(1)) > 0, (name, out)
    # The eight conversations reached the generator together: batches of eight ran.
    batches = re.search(r"batches (\{[^}]*\})", out)
    assert batches is not None and "8: " in batches.group(1), out
    assert "continuous batching (generate_batch)" in out  # measured, or said why not
