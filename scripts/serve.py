"""Start the LangGraph dev server for r1agent, bound to 127.0.0.1 and fully offline.

The default port (2024) may be taken by another server: then this says so and picks a free port
rather than failing or drifting silently. An explicit ``--port`` that is taken is an error.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--reload", action="store_true", help="Restart on code changes (slower: reloads models).")
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
    os.environ.update(OFFLINE_ENV)
    root = Path(__file__).resolve().parent.parent
    command = [
        str(Path(sys.executable).with_name("langgraph")),
        "dev",
        "--config",
        str(root / "langgraph.json"),
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
    print(f"r1agent: LangGraph API on http://127.0.0.1:{port} (graph 'r1agent')", file=sys.stderr, flush=True)
    os.chdir(root)
    os.execv(command[0], command)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    raise SystemExit(main())
