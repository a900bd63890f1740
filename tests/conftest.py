"""Shared fixtures. The real default stack (SmolLM2, MiniLM, Qdrant local, SQLite) is built once per
session in a temporary data dir; the converted model and example embeddings are cached across
sessions in ``.r1agent/test-cache`` (ignored by git) so a second run skips the GGUF conversion."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before any Hugging Face import: nothing may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from r1agent.deps import Deps, build_deps
from r1agent.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    path = Path(os.environ.get("R1AGENT_TEST_CACHE", REPO / ".r1agent" / "test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("r1agent-data")


@pytest.fixture(scope="session")
def settings(data_dir: Path, cache_dir: Path) -> Settings:
    # The answer cache off: the session shares one knowledge base, and a test asking a question another test
    # asked must still reach the model. The cache has its own tests (test_answer_cache*.py).
    return Settings(data_dir=data_dir, cache_dir=cache_dir, max_new_tokens=96, answer_cache=False)


@pytest.fixture(scope="session")
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for a second process (the CLI) that shares this session's stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("R1AGENT_")}
    env.update(
        R1AGENT_DATA_DIR=str(settings.data_dir),
        R1AGENT_CACHE_DIR=str(settings.cache_dir),
        R1AGENT_MAX_NEW_TOKENS=str(settings.max_new_tokens),
        R1AGENT_ANSWER_CACHE=str(settings.answer_cache).lower(),
    )
    return env


@pytest.fixture(scope="session")
def real_deps(settings: Settings) -> Iterator[Deps]:
    """The default stack, on real models. Slow to build (~15 s warm, ~45 s the first time)."""
    deps = build_deps(settings)
    yield deps
    deps.close()


@pytest.fixture(scope="session")
def r1agent_cli() -> list[str]:
    return [sys.executable, "-m", "r1agent"]


def run_cli(cli: list[str], env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the console script in a second process, as a user's script would."""
    return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
