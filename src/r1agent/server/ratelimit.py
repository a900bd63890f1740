"""Per-caller rate limits on the LangGraph server: a token bucket per authenticated identity.

Two budgets per caller (customers and human agents alike, keyed by role and identity):

- **work**: requests that start a run or write feedback (``POST .../runs``, ``.../runs/stream``,
  ``.../runs/wait``, ``/runs/batch``, ``.../commands``, MCP and A2A calls, ``.../feedback``), and
  every frame a client sends on a run-starting WebSocket. A run costs a model turn: this budget is tight.
- **reads**: every other authenticated request (thread reads, searches, history, run status). Reads
  cost little, but the console polls and a script can loop: a loose budget, not none.

Over a budget the request is answered **429** with ``{"detail": ..., "retry_after": s}`` and a
``Retry-After`` header, before it reaches the API. The caller is who the server's Auth handler says
(``scope["user"]``, set by langgraph-api's auth middleware): the middleware runs after it
(``"middleware_order": "auth_first"`` in ``langgraph.json``), so no token is parsed here, an
unauthenticated request is refused (401) before it can touch the bucket table, and the table holds
at most one entry per known identity and budget. It is bounded anyway (``rate_limit_max_callers``):
callers idle long enough to have a full bucket again are dropped first, as they carry no state.

:class:`TokenBuckets` is pure (an injected clock) and unit-tested; :class:`RateLimitMiddleware` is a
plain ASGI middleware, so streaming responses pass through untouched.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from r1agent.server.identity import Principal, principal_of
from r1agent.settings import Settings

Budget = Literal["work", "reads"]
WEBSOCKET_TRY_AGAIN_LATER: Final = 1013
"""WebSocket close code for "try again later" (RFC 6455 registry)."""

# Route paths (after any mount prefix) of the requests that start work. Matched on POST only.
_WORK_PATHS: Final = re.compile(
    r"^(?:"
    r"(?:/threads/[^/]+)?/runs(?:/stream|/wait|/batch|/crons(?:/.*)?)?"
    r"|/threads/[^/]+/commands"
    r"|/threads/[^/]+/feedback"
    r"|/mcp(?:/.*)?"
    r"|/a2a(?:/.*)?"
    r")/?$"
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float
    """Seconds until one request is allowed again; 0 when allowed."""


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled at ``per_minute`` a minute; a request takes one.

    Thread-safe (a lock around a dict), although the server calls it from its event loop only.
    Memory is bounded by ``max_keys``: entries are kept in least-recently-used order, and one unused
    for ``burst / rate`` seconds is full again, i.e. the same as no entry, so those are dropped from
    the old end on every call. Only when more than ``max_keys`` callers are all active at once is a
    non-full entry dropped (the least recently used): that caller starts again with a full bucket.
    """

    def __init__(
        self, *, per_minute: float, burst: int, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute < 0 or burst < 1 or max_keys < 1:
            raise ValueError("per_minute >= 0, burst >= 1 and max_keys >= 1 are required")
        self.per_minute = per_minute
        self.burst = burst
        self.max_keys = max_keys
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> Decision:
        """Take one token from ``key``'s bucket, if it has one."""
        if not self.enabled:
            return Decision(allowed=True, retry_after_s=0.0)
        with self._lock:
            now = self._clock()
            self._drop_idle(now)
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.popitem(last=False)
                bucket = _Bucket(tokens=float(self.burst), stamp=now)
            else:
                elapsed = max(0.0, now - bucket.stamp)  # a clock that steps back refills nothing
                bucket = _Bucket(tokens=min(float(self.burst), bucket.tokens + elapsed * self._rate), stamp=now)
            self._buckets[key] = bucket  # (re)inserted at the most recently used end
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Decision(allowed=True, retry_after_s=0.0)
            return Decision(allowed=False, retry_after_s=(1.0 - bucket.tokens) / self._rate)

    def _drop_idle(self, now: float) -> None:
        full_after = self.burst / self._rate
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.stamp < full_after:
                return  # LRU order is stamp order: every later entry was used more recently
            del self._buckets[key]


class RateLimiter:
    """The server's two budgets per caller."""

    def __init__(self, work: TokenBuckets, reads: TokenBuckets) -> None:
        self.work = work
        self.reads = reads

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
        cap = settings.rate_limit_max_callers
        return cls(
            work=TokenBuckets(
                per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst, max_keys=cap, clock=clock
            ),
            reads=TokenBuckets(
                per_minute=settings.rate_limit_reads_per_minute,
                burst=settings.rate_limit_reads_burst,
                max_keys=cap,
                clock=clock,
            ),
        )

    def take(self, budget: Budget, principal: Principal) -> Decision:
        # The role is part of the key: an agent and a customer may share a name, never a bucket.
        buckets = self.work if budget == "work" else self.reads
        return buckets.take(f"{principal.role}:{principal.identity}")

    def describe(self, budget: Budget) -> str:
        buckets = self.work if budget == "work" else self.reads
        what = "runs and feedback" if budget == "work" else "reads"
        return f"{_number(buckets.per_minute)} {what} a minute per caller, in bursts of up to {buckets.burst}"


def budget_for(method: str, path: str, *, websocket: bool = False) -> Budget:
    """Which budget a request draws on, from its method and route path."""
    if websocket:
        return "work"  # the streaming WebSocket starts runs with its frames
    return "work" if method.upper() == "POST" and _WORK_PATHS.match(path) else "reads"


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up, at least 1: a client that waits that long is let in."""
    return str(max(1, math.ceil(seconds - 1e-9)))


Headers = list[tuple[bytes, bytes]]


def too_many_requests(limiter: RateLimiter, budget: Budget, decision: Decision) -> tuple[bytes, Headers]:
    """The 429 body and headers."""
    wait = retry_after_header(decision.retry_after_s)
    body = json.dumps(
        {
            "detail": f"too many requests: the limit is {limiter.describe(budget)}; retry in {wait} s",
            "retry_after": int(wait),
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", wait.encode()),
    ]
    return body, headers


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] or "/" if root and path.startswith(root) else path


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_LIMITER: RateLimiter | None = None
_LIMITER_LOCK = threading.Lock()


def server_limiter() -> RateLimiter:
    """The process's limiter, from the server's settings (one, however the modules are loaded)."""
    global _LIMITER
    with _LIMITER_LOCK:
        if _LIMITER is None:
            _LIMITER = RateLimiter.from_settings(Settings())
        return _LIMITER


class RateLimitMiddleware:
    """ASGI middleware: 429 for an authenticated caller over budget; anything else passes untouched.

    Requests without an r1agent caller in ``scope["user"]`` (health checks, the console's public
    page, anything before authentication) pass: authentication, not this, refuses strangers.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self._limiter = limiter

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter if self._limiter is not None else server_limiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        principal = principal_of(scope.get("user")) if kind in ("http", "websocket") else None
        if principal is None:
            await self.app(scope, receive, send)
            return
        limiter = self.limiter
        websocket = kind == "websocket"
        budget = budget_for(str(scope.get("method", "GET")), _route_path(scope), websocket=websocket)
        decision = limiter.take(budget, principal)
        if not decision.allowed:
            if websocket:
                await send({"type": "websocket.close", "code": WEBSOCKET_TRY_AGAIN_LATER, "reason": "rate limited"})
                return
            body, headers = too_many_requests(limiter, budget, decision)
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if websocket:
            receive = _metered(receive, send, limiter, principal)
        await self.app(scope, receive, send)


def _metered(receive: Receive, send: Send, limiter: RateLimiter, principal: Principal) -> Receive:
    """Every frame the client sends on a WebSocket draws on its work budget. Over it, the socket is
    closed with 1013 (try again later) and the app is told the client left, so it stops cleanly."""

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "websocket.receive" and not limiter.take("work", principal).allowed:
            await send({"type": "websocket.close", "code": WEBSOCKET_TRY_AGAIN_LATER, "reason": "rate limited"})
            return {"type": "websocket.disconnect", "code": WEBSOCKET_TRY_AGAIN_LATER}
        return message

    return wrapped
