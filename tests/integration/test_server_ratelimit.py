"""Per-caller rate limits on the real server (``langgraph dev`` with the bundled demo tokens), on a server
of its own with tight limits: 6 runs a minute in bursts of 2, 6 reads a minute in bursts of 5."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.langgraph_server import AVA_TOKEN, JAMES_TOKEN, Server, running_server

pytestmark = pytest.mark.slow

YUSUF_TOKEN = "demo-customer-yusuf"
LIMITS = {
    "R1AGENT_RATE_LIMIT_PER_MINUTE": "6",
    "R1AGENT_RATE_LIMIT_BURST": "2",
    "R1AGENT_RATE_LIMIT_READS_PER_MINUTE": "6",
    "R1AGENT_RATE_LIMIT_READS_BURST": "5",
}
RETURNS = {"messages": [{"role": "user", "content": "How long do I have to return an item?"}]}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("lg-limited")
    with running_server(data_dir=root / "data", state_dir=root / "state", cache_dir=cache_dir, env=LIMITS) as server:
        yield server


def _http(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=180)


def test_a_customer_over_the_run_limit_gets_429_with_retry_after_and_another_is_not_affected(
    limited: Server,
) -> None:
    with _http(limited, JAMES_TOKEN) as james, _http(limited, AVA_TOKEN) as ava:
        tid = james.post("/threads", json={}).json()["thread_id"]
        # Two requests that start work spend the burst, valid or not (an invalid run still costs a check).
        for _ in range(2):
            assert james.post(f"/threads/{tid}/runs/wait", json={}).status_code == 422
        refused = james.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "r1agent", "input": RETURNS})
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/json")
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 10  # one run every 10 s
        assert refused.json()["retry_after"] == wait
        assert "6 runs and feedback a minute per caller" in refused.json()["detail"]
        # Streams and feedback draw on the same budget; reads have their own.
        assert james.post(f"/threads/{tid}/runs/stream", json={"assistant_id": "r1agent"}).status_code == 429
        assert james.post(f"/threads/{tid}/feedback", json={"rating": 5}).status_code == 429
        assert james.get(f"/threads/{tid}").status_code == 200
        assert james.get(f"/threads/{tid}").json()["status"] == "idle"  # the refused run never started

        # Ava is not affected: her turn runs, through the real model.
        ava_tid = ava.post("/threads", json={}).json()["thread_id"]
        done = ava.post(f"/threads/{ava_tid}/runs/wait", json={"assistant_id": "r1agent", "input": RETURNS})
        assert done.status_code == 200, done.text
        assert done.json()["messages"][-1]["type"] == "ai"


def test_reads_have_their_own_budget_and_strangers_are_refused_by_auth_not_counted(limited: Server) -> None:
    with _http(limited, YUSUF_TOKEN) as yusuf, _http(limited, None) as stranger:
        for _ in range(20):  # no token: 401 every time, and no bucket is made for it
            assert stranger.post("/threads/search", json={}).status_code == 401
        codes = [yusuf.post("/threads/search", json={}).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        assert "reads a minute per caller" in yusuf.post("/threads/search", json={}).json()["detail"]


def test_the_sdk_sees_a_429_it_can_act_on(limited: Server) -> None:
    """A client built on langgraph_sdk gets its typed RateLimitError, carrying the Retry-After."""
    from langgraph_sdk.errors import RateLimitError

    async def scenario() -> RateLimitError:
        client = limited.client(YUSUF_TOKEN)  # Yusuf spent his reads above
        try:
            await client.threads.search()
        except RateLimitError as exc:
            return exc
        raise AssertionError("the search was not limited")

    error = asyncio.run(scenario())
    assert error.response.status_code == 429 and int(error.response.headers["retry-after"]) >= 1
    assert "retry in" in str(error)
