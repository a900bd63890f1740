"""Start the LangGraph dev server for r1agent, bound to 127.0.0.1 and fully offline.

The default port (2024) may be taken by another server: then this says so and picks a free port
rather than failing or drifting silently. An explicit ``--port`` that is taken is an error.

The server runs on ``langgraph.json`` with two adjustments, written to the state folder as
``.langgraph_api/r1agent.langgraph.json``: its paths are made absolute, so the server may keep its
state elsewhere than the repository (``--state-dir``: each server there has its own threads, as tests
and parallel servers need), and without ``R1AGENT_POSTGRES_URL`` the checkpointer hook is left out, so
the server keeps its own default checkpointer.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

DEFAULT_PORT = 2024
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}
EFFECTIVE_CONFIG = Path(".langgraph_api") / "r1agent.langgraph.json"
"""Next to the dev server's own state files, which ``langgraph dev`` keeps in ``.langgraph_api/``."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def effective_config(root: Path, *, postgres: bool) -> dict[str, Any]:
    """``langgraph.json`` with absolute paths, and without the checkpointer hook unless Postgres is set."""
    config: dict[str, Any] = _absolute(json.loads((root / "langgraph.json").read_text(encoding="utf-8")), root)
    if isinstance(config.get("env"), str):
        config["env"] = os.path.normpath(root / config["env"])
    config["dependencies"] = [os.path.normpath(root / dep) for dep in config.get("dependencies", [])]
    if not postgres:
        config.pop("checkpointer", None)
    return config


def _absolute(node: Any, root: Path) -> Any:
    """Every ``./x`` or ``../x`` path (``./src/a.py:attr`` too) made absolute against ``root``."""
    if isinstance(node, str) and node.startswith(("./", "../")):
        return os.path.normpath(root / node)
    if isinstance(node, dict):
        return {key: _absolute(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [_absolute(value, root) for value in node]
    return node


def carry_settings(root: Path, env: MutableMapping[str, str]) -> None:
    """Keep the repository's settings when the server runs in another folder: R1AGENT_* values from
    ``root/.env`` (the environment wins, as in pydantic-settings) and relative paths made absolute."""
    from dotenv import dotenv_values

    from r1agent.settings import Settings

    dotenv = root / ".env"
    if dotenv.is_file():
        for key, value in dotenv_values(dotenv).items():
            if key.upper().startswith("R1AGENT_") and value is not None:
                env.setdefault(key, value)
    for name, field in Settings.model_fields.items():
        key = f"R1AGENT_{name.upper()}"
        if "Path" in str(field.annotation) and env.get(key) and not Path(env[key]).is_absolute():
            env[key] = os.path.normpath(root / env[key])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--reload", action="store_true", help="Restart on code changes (slower: reloads models).")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="Where the dev server keeps its threads and runs (.langgraph_api/). Default: the repository.",
    )
    args = parser.parse_args()
    if args.port is not None:
        if not port_is_free(args.port):
            print(f"error: port {args.port} on 127.0.0.1 is in use; choose another with PORT=...", file=sys.stderr)
            return 2
        port = args.port
    elif port_is_free(DEFAULT_PORT):
        port = DEFAULT_PORT
    else:
        port = free_port()
        print(f"note: port {DEFAULT_PORT} is in use; serving on {port} instead", file=sys.stderr)
    root = Path(__file__).resolve().parent.parent
    state = (args.state_dir or root).resolve()
    if args.reload and state != root:
        print("error: --reload watches the working folder, so it needs the default --state-dir", file=sys.stderr)
        return 2
    os.chdir(root)  # .env and relative settings are read from the repository, as `make serve` always did
    if state != root:
        carry_settings(root, os.environ)
    from r1agent.settings import Settings

    config = effective_config(root, postgres=Settings().postgres_url is not None)
    (state / EFFECTIVE_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    (state / EFFECTIVE_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.environ.update(OFFLINE_ENV)
    command = [
        str(Path(sys.executable).with_name("langgraph")),
        "dev",
        "--config",
        str(state / EFFECTIVE_CONFIG),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        # Models load synchronously in the graph factory; that is a one-off at start, not a hot path.
        "--allow-blocking",
    ]
    if not args.reload:
        command.append("--no-reload")
    where = "" if state == root else f", state in {state}"
    print(f"r1agent: LangGraph API on http://127.0.0.1:{port} (graph 'r1agent'{where})", file=sys.stderr, flush=True)
    os.chdir(state)  # langgraph dev keeps its threads and runs in ./.langgraph_api
    os.execv(command[0], command)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    raise SystemExit(main())
