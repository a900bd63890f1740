"""Bearer-token auth for the LangGraph server: ``langgraph.json`` → ``"auth": {"path": ...:auth}``.

Every request needs ``Authorization: Bearer <token>``; there is no anonymous access. Tokens come from
the file named by ``R1AGENT_AUTH_TOKENS`` (JSON or YAML: token → ``{identity, role}``), or from the
bundled demo file when that is unset (said once on stderr). The file is re-read when it changes, so a
token is revoked by editing it. Tokens are compared in constant time and never logged or echoed.

What each role may do (anything not listed is refused, 403; docs/server.md has the table):

- ``customer`` (identity = their customer id): create threads, which get ``metadata.owner``; read,
  search, update, delete and run (and stream) only threads they own: other threads are invisible (404,
  empty searches). They may not resume a handoff: the resume value is recorded as the human agent's
  reply, so a customer sending one would be speaking for the shop.
- ``agent`` (a human agent): read and search every thread (e.g. ``{"status": "interrupted"}``: the
  handoffs), and resume one with a run whose only payload is ``command.resume``. An agent does not start
  customer turns, create, change or delete threads.
- Both read and search assistants; nobody creates or changes assistants, crons or store items through
  the API (the graph is configured by ``langgraph.json``).

The graph reads the authenticated user from the run's config (:mod:`r1agent.server.identity`), so the
order tool and handoff tickets use the authenticated customer, never one named in a message or context.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from langgraph_sdk import Auth
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from r1agent.errors import ConfigurationError
from r1agent.server.identity import Principal, Role, principal_of
from r1agent.settings import Settings

DEMO_TOKENS = "demo_tokens.json"
MIN_TOKEN_CHARS = 12
MAX_TOKEN_CHARS = 512
MAX_TOKENS = 10_000
MAX_FILE_BYTES = 4_000_000
MAX_HEADER_CHARS = 1024
OWNER = "owner"
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]+")
"""Printable ASCII without spaces: what fits in an Authorization header unchanged."""


class Grant(BaseModel):
    """What one token stands for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role


@dataclass(frozen=True)
class TokenTable:
    """Known tokens, held as SHA-256 digests (a memory dump does not show them)."""

    entries: tuple[tuple[bytes, Principal], ...]

    def lookup(self, token: str) -> Principal | None:
        digest = _digest(token)
        found: Principal | None = None
        for known, principal in self.entries:
            # Every entry is compared, with compare_digest: the time taken says nothing about the token.
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self.entries)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def demo_tokens_path() -> Path:
    return Path(str(resources.files("r1agent") / "data" / DEMO_TOKENS))


def parse_tokens(text: str, *, source: str, yaml_first: bool = False) -> TokenTable:
    """Validate a tokens document. Errors name the entry by position, never by its token."""
    data = _load_document(text, source=source, yaml_first=yaml_first)
    if not isinstance(data, dict) or not data:
        raise ConfigurationError(f"{source}: expected a non-empty mapping of token -> {{identity, role}}")
    if len(data) > MAX_TOKENS:
        raise ConfigurationError(f"{source}: {len(data):,} tokens; the limit is {MAX_TOKENS:,}")
    entries: list[tuple[bytes, Principal]] = []
    for n, (token, value) in enumerate(data.items(), start=1):
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            raise ConfigurationError(f"{source}: token #{n} must be printable ASCII without spaces")
        if not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS:
            raise ConfigurationError(
                f"{source}: token #{n} has {len(token)} characters; use {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS}"
            )
        try:
            grant = Grant.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"{source}: token #{n}: {problems}") from None
        entries.append((_digest(token), Principal(identity=grant.identity, role=grant.role)))
    return TokenTable(entries=tuple(entries))


def _load_document(text: str, *, source: str, yaml_first: bool) -> Any:
    try:
        return yaml.safe_load(text) if yaml_first else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        if not yaml_first:
            try:  # a tokens file with an unknown suffix may well be YAML
                return yaml.safe_load(text)
            except yaml.YAMLError:
                pass
        # The parser's message may quote the offending line, which may hold a token: give its position only.
        where = getattr(exc, "lineno", None) or getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigurationError(f"{source}: not valid JSON or YAML (near line {where})") from None


class TokenSource:
    """The tokens file, re-read when its size or modification time changes."""

    def __init__(self, path: Path, *, demo: bool = False) -> None:
        self.path = path
        self.demo = demo
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._table = TokenTable(entries=())

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSource:
        if settings.auth_tokens is not None:
            return cls(settings.auth_tokens)
        return cls(demo_tokens_path(), demo=True)

    def table(self) -> TokenTable:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ConfigurationError(f"R1AGENT_AUTH_TOKENS: cannot read {self.path} ({exc.strerror})") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                if stat.st_size > MAX_FILE_BYTES:
                    raise ConfigurationError(f"{self.path}: larger than {MAX_FILE_BYTES:,} bytes")
                text = self.path.read_text(encoding="utf-8")
                yaml_first = self.path.suffix.lower() in {".yaml", ".yml"}
                self._table = parse_tokens(text, source=str(self.path), yaml_first=yaml_first)
                self._stamp = stamp
            return self._table

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header value; 401 for anything else."""
        token = bearer_token(authorization)
        principal = self.table().lookup(token) if token is not None else None
        if principal is None:
            raise Auth.exceptions.HTTPException(
                status_code=401,
                detail="a valid 'Authorization: Bearer <token>' header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal


def bearer_token(authorization: str | None) -> str | None:
    """The token of a ``Bearer`` header value, or None when there is no well-formed one."""
    if not authorization or len(authorization) > MAX_HEADER_CHARS:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not _TOKEN_SHAPE.fullmatch(token):
        return None
    return token


_SOURCE = TokenSource.from_settings(Settings())
_SOURCE.table()  # a missing or malformed file stops the server at start, not at the first request
if _SOURCE.demo:
    print(
        f"r1agent: R1AGENT_AUTH_TOKENS is unset, so the server accepts the bundled demo tokens "
        f"({len(_SOURCE.table())} of them, listed in docs/server.md). Set it before anyone else can reach the server.",
        file=sys.stderr,
        flush=True,
    )

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Mapping[str, Any]:
    # In a worker thread: the tokens file's freshness check must not block the server's event loop.
    principal = await asyncio.to_thread(_SOURCE.authenticate, authorization)
    # "role" is our claim: handlers and the graph (server/identity.py) read it from the user.
    return {
        "identity": principal.identity,
        "display_name": principal.identity,
        "role": principal.role,
        "permissions": [principal.role],
    }


def _forbidden(detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=403, detail=detail)


def _who(ctx: Auth.types.AuthContext) -> Principal:
    principal = principal_of(ctx.user)
    if principal is None:  # e.g. a LangSmith Studio user: not one of ours
        raise _forbidden("unknown caller")
    return principal


def _stamp_owner(value: Any, owner: str) -> None:
    """Set ``metadata.owner`` on what is being written, whatever the caller sent."""
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        value["metadata"] = metadata
    metadata[OWNER] = owner


def _own(principal: Principal) -> Auth.types.FilterType:
    return {OWNER: principal.identity}


@auth.on
async def deny_by_default(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Whatever no handler below allows (assistant changes, crons, the store) is refused."""
    return False


@auth.on.threads.create
async def create_thread(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsCreate) -> Auth.types.FilterType:
    who = _who(ctx)
    if who.role != "customer":
        raise _forbidden("human agents answer handoffs; they do not start conversations")
    _stamp_owner(value, who.identity)
    return _own(who)


@auth.on.threads.read
async def read_thread(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsRead) -> Auth.types.FilterType | None:
    who = _who(ctx)
    return None if who.role == "agent" else _own(who)


@auth.on.threads.search
async def search_threads(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsSearch) -> Auth.types.FilterType | None:
    who = _who(ctx)
    return None if who.role == "agent" else _own(who)


@auth.on.threads.update
async def update_thread(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsUpdate) -> Auth.types.FilterType:
    who = _who(ctx)
    if who.role != "customer":
        raise _forbidden("human agents reply with a run (command.resume); they do not edit threads")
    if value.get("metadata") is not None:
        _stamp_owner(value, who.identity)  # an owner cannot give a thread away, or take one
    return _own(who)


@auth.on.threads.delete
async def delete_thread(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsDelete) -> Auth.types.FilterType:
    who = _who(ctx)
    if who.role != "customer":
        raise _forbidden("human agents do not delete conversations")
    return _own(who)


@auth.on.threads.create_run
async def create_run(ctx: Auth.types.AuthContext, value: Auth.types.RunsCreate) -> Auth.types.FilterType | None:
    who = _who(ctx)
    command = (value.get("kwargs") or {}).get("command")
    if who.role == "agent":
        if value.get("thread_id") is None or not is_resume_only(command):
            raise _forbidden(
                "a human agent only resumes a handoff: a run on the customer's thread whose only payload "
                'is {"command": {"resume": "<reply>"}}'
            )
        return None
    if command:
        raise _forbidden("a handoff is resumed by a human agent, not by the customer")
    modes = (value.get("kwargs") or {}).get("stream_mode") or []
    if "events" in ([modes] if isinstance(modes, str) else modes):
        # Raw callback events would carry the model's tokens, which a customer's run keeps to itself
        # (nodes/reasoning.py): the draft before the quality gate and the PII mask, the think trace.
        raise _forbidden('stream_mode "events" is for operators; a customer streams "messages", "values" or "updates"')
    _stamp_owner(value, who.identity)
    return _own(who)


def is_resume_only(command: object) -> bool:
    """A command that only resumes (no ``goto``, no state ``update``), with a reply in it."""
    if not isinstance(command, dict) or set(command) - {"resume"}:
        return False
    resume = command.get("resume")
    return resume is not None and resume != "" and resume != {} and resume != []


@auth.on.assistants.read
async def read_assistant(ctx: Auth.types.AuthContext, value: Auth.types.AssistantsRead) -> None:
    _who(ctx)


@auth.on.assistants.search
async def search_assistants(ctx: Auth.types.AuthContext, value: Auth.types.AssistantsSearch) -> None:
    _who(ctx)
