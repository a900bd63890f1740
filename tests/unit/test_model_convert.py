"""The bundled model's one-time conversion runs in a child process; its failure reaches the user as a clear error."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from r1agent.errors import ConfigurationError
from r1agent.models import chat


def test_a_failed_conversion_says_what_the_child_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(args: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert args[1:3] == ["-m", "r1agent.models.convert"]
        return subprocess.CompletedProcess(args, 1, "", "Traceback ...\nOSError: No space left on device")

    monkeypatch.setattr(chat.subprocess, "run", failing)
    with pytest.raises(ConfigurationError, match="No space left on device") as raised:
        chat.default_model_folder(tmp_path)
    assert "could not convert the bundled model" in str(raised.value)
    assert not (tmp_path / "models").exists()  # nothing half-made for the next start to trust
