"""The server's rate limit: token buckets on an injected clock, request classification, and the ASGI
middleware on a small Starlette app (the real server: tests/integration/test_server_ratelimit.py)."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from r1agent.server.ratelimit import (
    RateLimiter,
    RateLimitMiddleware,
    TokenBuckets,
    budget_for,
    retry_after_header,
)
from r1agent.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def buckets(clock: Clock, *, per_minute: float = 60, burst: int = 3, max_keys: int = 100) -> TokenBuckets:
    return TokenBuckets(per_minute=per_minute, burst=burst, max_keys=max_keys, clock=clock)


def test_a_burst_is_allowed_then_the_rate_applies_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    b = buckets(clock, per_minute=60, burst=3)  # one token a second
    assert [b.take("k").allowed for _ in range(3)] == [True, True, True]
    denied = b.take("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(1.0)
    clock.now += 0.25
    assert b.take("k").retry_after_s == pytest.approx(0.75)  # a denied request costs nothing
    clock.now += 0.75
    assert b.take("k").allowed
    assert not b.take("k").allowed


def test_refill_is_capped_at_the_burst_and_a_clock_stepping_back_refills_nothing() -> None:
    clock = Clock()
    b = buckets(clock, per_minute=60, burst=2)
    b.take("k")
    clock.now += 3600  # an hour idle: still only 2
    assert [b.take("k").allowed for _ in range(3)] == [True, True, False]
    clock.now -= 10
    assert not b.take("k").allowed


def test_callers_do_not_share_buckets() -> None:
    clock = Clock()
    b = buckets(clock, burst=1)
    assert b.take("a").allowed and not b.take("a").allowed
    assert b.take("b").allowed


def test_zero_per_minute_disables_and_keeps_no_state() -> None:
    b = buckets(Clock(), per_minute=0, burst=1)
    assert all(b.take("k").allowed for _ in range(1000))
    assert len(b) == 0 and not b.enabled


def test_idle_callers_are_dropped_and_the_table_never_exceeds_its_bound() -> None:
    clock = Clock()
    b = buckets(clock, per_minute=60, burst=5, max_keys=50)  # full again after 5 s idle
    for n in range(10_000):
        b.take(f"caller-{n}")
        assert len(b) <= 50
    assert len(b) == 50
    clock.now += 5.0
    b.take("late")
    assert len(b) == 1  # everyone idle for a full refill was dropped: they carried no state


def test_dropping_an_idle_caller_loses_nothing() -> None:
    clock = Clock()
    b = buckets(clock, per_minute=60, burst=2, max_keys=10)
    assert b.take("a").allowed and b.take("a").allowed and not b.take("a").allowed
    clock.now += 1.0  # one token back, not full: kept
    b.take("b")
    assert len(b) == 2
    assert b.take("a").allowed and not b.take("a").allowed


def test_a_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        TokenBuckets(per_minute=-1, burst=1, max_keys=1)
    with pytest.raises(ValueError, match="burst"):
        TokenBuckets(per_minute=1, burst=0, max_keys=1)


@pytest.mark.parametrize(
    ("method", "path", "budget"),
    [
        ("POST", "/threads/0b7c/runs", "work"),
        ("POST", "/threads/0b7c/runs/stream", "work"),
        ("POST", "/threads/0b7c/runs/wait/", "work"),
        ("POST", "/runs", "work"),
        ("POST", "/runs/wait", "work"),
        ("POST", "/runs/stream", "work"),
        ("POST", "/runs/batch", "work"),
        ("POST", "/runs/crons", "work"),
        ("POST", "/threads/0b7c/commands", "work"),
        ("POST", "/threads/0b7c/feedback", "work"),
        ("POST", "/mcp", "work"),
        ("POST", "/a2a/r1agent", "work"),
        ("GET", "/threads/0b7c/feedback", "reads"),
        ("GET", "/threads/0b7c/runs", "reads"),
        ("POST", "/threads/search", "reads"),
        ("POST", "/threads", "reads"),
        ("POST", "/threads/0b7c/history", "reads"),
        ("POST", "/threads/0b7c/runs/1a2b/cancel", "reads"),
        ("GET", "/threads/0b7c/runs/1a2b/join", "reads"),
        ("POST", "/assistants/search", "reads"),
    ],
)
def test_requests_that_start_work_draw_on_the_work_budget(method: str, path: str, budget: str) -> None:
    assert budget_for(method, path) == budget


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.0, 0.2, 1.0, 1.01, 9.5)] == ["1", "1", "1", "2", "10"]


def test_limits_come_from_settings() -> None:
    limiter = RateLimiter.from_settings(
        Settings(rate_limit_per_minute=6, rate_limit_burst=2, rate_limit_reads_per_minute=0, rate_limit_max_callers=7)
    )
    assert (limiter.work.per_minute, limiter.work.burst, limiter.work.max_keys) == (6, 2, 7)
    assert not limiter.reads.enabled
    assert limiter.describe("work") == "6 runs and feedback a minute per caller, in bursts of up to 2"


# --- the middleware on a real Starlette app; a stand-in sets scope["user"] as langgraph-api's auth does ---

USERS = {
    "james": {"identity": "james_li_5688", "role": "customer"},
    "ava": {"identity": "ava_moore_2033", "role": "customer"},
    "agent-james": {"identity": "james_li_5688", "role": "agent"},
}


class FakeAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = dict(scope.get("headers") or []).get(b"x-who")
        if who is not None:
            scope["user"] = USERS[who.decode()]
        await self.app(scope, receive, send)


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        try:
            text = await websocket.receive_text()
        except WebSocketDisconnect:
            return
        await websocket.send_text(text)


@pytest.fixture
def client() -> TestClient:
    clock = Clock()
    limiter = RateLimiter(
        work=TokenBuckets(per_minute=6, burst=2, max_keys=100, clock=clock),
        reads=TokenBuckets(per_minute=60, burst=3, max_keys=100, clock=clock),
    )
    app = Starlette(
        routes=[
            Route("/threads/{tid}/runs/wait", ok, methods=["POST"]),
            Route("/threads/search", ok, methods=["POST"]),
            Route("/ok", ok),
            WebSocketRoute("/threads/{tid}/stream/events", echo),
        ],
        middleware=[Middleware(FakeAuth), Middleware(RateLimitMiddleware, limiter=limiter)],
    )
    return TestClient(app)


def test_over_the_work_budget_is_429_with_retry_after_and_others_are_not_affected(client: TestClient) -> None:
    james = {"x-who": "james"}
    assert [client.post("/threads/t/runs/wait", headers=james).status_code for _ in range(2)] == [200, 200]
    refused = client.post("/threads/t/runs/wait", headers=james)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "10"  # 6 a minute: the next token in 10 s
    body = refused.json()
    assert body["retry_after"] == 10 and "6 runs and feedback a minute" in body["detail"]
    # Reads have their own budget, other customers their own buckets, an agent of the same name too.
    assert client.post("/threads/search", headers=james).status_code == 200
    assert client.post("/threads/t/runs/wait", headers={"x-who": "ava"}).status_code == 200
    assert client.post("/threads/t/runs/wait", headers={"x-who": "agent-james"}).status_code == 200


def test_reads_have_a_looser_budget_and_unauthenticated_requests_pass_to_auth(client: TestClient) -> None:
    ava = {"x-who": "ava"}
    assert [client.post("/threads/search", headers=ava).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert all(client.get("/ok").status_code == 200 for _ in range(20))  # no caller: not limited here


def test_every_websocket_frame_draws_on_the_work_budget(client: TestClient) -> None:
    with client.websocket_connect("/threads/t/stream/events", headers={"x-who": "james"}) as ws:  # 1st token
        ws.send_text("a")  # 2nd token
        assert ws.receive_text() == "a"
        ws.send_text("b")  # over budget: the server closes the socket, "try again later"
        with pytest.raises(WebSocketDisconnect) as ended:
            ws.receive_text()
        assert ended.value.code == 1013
    with (  # and a new socket is refused at once
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/threads/t/stream/events", headers={"x-who": "james"}) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1013


def test_the_429_body_is_json(client: TestClient) -> None:
    for _ in range(3):
        last = client.post("/threads/t/runs/wait", headers={"x-who": "james"})
    assert last.headers["content-type"] == "application/json"
    assert json.loads(last.content)["retry_after"] >= 1
