"""Settings come from R1AGENT_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from r1agent.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No .env from the working directory and no R1AGENT_* from the developer's shell.
    monkeypatch.chdir(tmp_path)
    for name in [
        "R1AGENT_MAX_TURN_CHARS",
        "R1AGENT_QDRANT_URL",
        "R1AGENT_QDRANT_API_KEY",
        "R1AGENT_DATA_DIR",
        "R1AGENT_MAX_HISTORY_MESSAGES",
        "R1AGENT_DEVICE",
        "MAX_TURN_CHARS",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = Settings()
    assert settings.max_turn_chars == 8000
    assert settings.qdrant_url is None
    assert settings.data_dir == tmp_path / "xdg" / "r1agent"
    assert settings.tickets_path == tmp_path / "xdg" / "r1agent" / "tickets.sqlite"


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("R1AGENT_MAX_TURN_CHARS", "123")
    monkeypatch.setenv("R1AGENT_QDRANT_URL", "http://qdrant.internal:6333")
    monkeypatch.setenv("R1AGENT_QDRANT_API_KEY", "s3cret")
    monkeypatch.setenv("R1AGENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("r1agent_max_history_messages", "3")  # names are case-insensitive
    settings = Settings()
    assert settings.max_turn_chars == 123
    assert settings.qdrant_url == "http://qdrant.internal:6333"
    assert settings.qdrant_api_key is not None
    assert settings.qdrant_api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.max_history_messages == 3
    assert settings.checkpoint_path == tmp_path / "data" / "threads.sqlite"
    assert settings.qdrant_path == tmp_path / "data" / "qdrant"


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_TURN_CHARS", "5")
    assert Settings().max_turn_chars == 8000


def test_dotenv_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("R1AGENT_MAX_TURN_CHARS=77\nUNRELATED=1\n", encoding="utf-8")
    assert Settings().max_turn_chars == 77


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("R1AGENT_MAX_TURN_CHARS=77\n", encoding="utf-8")
    monkeypatch.setenv("R1AGENT_MAX_TURN_CHARS", "88")
    assert Settings().max_turn_chars == 88


@pytest.mark.parametrize(("name", "value"), [("R1AGENT_MAX_TURN_CHARS", "lots"), ("R1AGENT_DEVICE", "tpu")])
def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
