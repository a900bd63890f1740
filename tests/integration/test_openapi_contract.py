"""Contract test: schemathesis fuzzes the running server from its own ``/openapi.json`` and finds no 5xx.

Scope: the console's routes and the thread/run endpoints the console uses, with the demo human agent's
bearer token, and the customer flow (create, search, read, run) with a demo customer's, on the session's
shared server. ``thread_id`` is pinned to a real thread (one waiting for a human for the agent, an idle
one for the customer) so the calls reach the server's logic instead of stopping at "404 no such
thread". Bounded: 10 examples per operation and mode, derandomized, and a 120 s budget.

Also checks the OpenAPI document itself: the LangGraph operations keep their definitions next to the
console's (langgraph-api 0.16.7 blanks them when a plain Starlette ``http.app`` is mounted; see
``r1agent.server.console.ConsoleApp``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

import pytest

from tests.integration.test_console_browser import bearer, demo_token
from tests.langgraph_server import Server

try:
    import hypothesis
    import schemathesis
    from schemathesis.checks import not_a_server_error
except ImportError:
    if os.environ.get("CI"):
        raise  # CI installs the dev extras: a missing fuzzer is a broken setup, not a skip
    pytest.skip("schemathesis is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.slow

# The console's routes and the core endpoints it calls (with the human agent's token).
OPERATIONS = {
    ("GET", "/console"),
    ("GET", "/console/config.json"),
    ("GET", "/console/static/{name}"),
    ("POST", "/threads"),
    ("POST", "/threads/search"),
    ("GET", "/threads/{thread_id}"),
    ("GET", "/threads/{thread_id}/state"),
    ("POST", "/threads/{thread_id}/runs/wait"),
}
# A customer's client uses these on its own idle thread: the agent's token can't start turns there.
CUSTOMER_OPERATIONS = {
    ("POST", "/threads"),
    ("POST", "/threads/search"),
    ("GET", "/threads/{thread_id}"),
    ("POST", "/threads/{thread_id}/runs/wait"),
}
# Negative data (schema violations) only for operations that take input; the console's GETs take none.
CASES = sorted(
    [
        *(
            ("agent", method, path, mode)
            for method, path in OPERATIONS
            for mode in (("positive",) if path.startswith("/console") else ("positive", "negative"))
        ),
        *(("customer", method, path, "positive") for method, path in CUSTOMER_OPERATIONS),
    ]
)
MAX_EXAMPLES = 10
SEED = 20241123
BUDGET_S = 120
_started: list[float] = []


@pytest.fixture(scope="module")
def server(lg_server: Server) -> str:
    return lg_server.url


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """The bundled demo tokens (the server's when R1AGENT_AUTH_TOKENS is unset), by role."""
    found = {role: demo_token(role) for role in ("agent", "customer")}
    assert all(found.values()), "the bundled demo tokens lack a human agent or a customer"
    return {role: str(token) for role, token in found.items()}


def _new_thread(server: str, token: str | None, text: str | None) -> str:
    from langgraph_sdk import get_client

    async def scenario() -> str:
        client = get_client(url=server, headers=bearer(token))
        thread = await client.threads.create()
        if text is not None:
            turn = {"messages": [{"role": "user", "content": text}]}
            await client.runs.wait(thread["thread_id"], "r1agent", input=turn)
        return str(thread["thread_id"])

    return asyncio.run(scenario())


@pytest.fixture(scope="module")
def threads(server: str, tokens: dict[str, str]) -> dict[str, str]:
    """Real thread ids per role: a customer's thread waiting for a human (what the console lists and
    resumes) for the agent, and an idle thread of the same customer for the customer."""
    return {
        "agent": _new_thread(server, tokens["customer"], "I want to talk to a human"),
        "customer": _new_thread(server, tokens["customer"], None),
    }


@pytest.fixture(scope="module")
def openapi(server: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server}/openapi.json", timeout=30) as response:
        document: dict[str, Any] = json.load(response)
    return document


@pytest.fixture(scope="module")
def api_schema(server: str) -> Any:
    config = schemathesis.Config.from_dict({"seed": SEED, "request-timeout": 60})
    _started.append(time.monotonic())
    return schemathesis.openapi.from_url(f"{server}/openapi.json", config=config)


def test_the_document_keeps_the_langgraph_operations_and_adds_the_console(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for method, path in OPERATIONS:
        operation = paths[path][method.lower()]
        assert operation.get("responses"), f"{method} {path} has no definition in /openapi.json"
    assert paths["/threads/{thread_id}"]["get"]["parameters"][0]["name"] == "thread_id"
    assert paths["/console"]["get"]["tags"] == ["Console"]
    blank = [(m, p) for p, ops in paths.items() for m, op in ops.items() if isinstance(op, dict) and not op]
    assert blank == []


# Fields r1agent never sends that crash langgraph-api's in-memory runtime (0.36.7) with a 500; they are
# left out of the fuzzing and pinned by the xfail tests below, which fail once upstream fixes them.
UPSTREAM_5XX_FIELDS = {
    "/threads/search": "values",  # is_jsonb_contained(None, ...) on a thread that has no state yet
    "/threads/{thread_id}/runs/wait": "after_seconds",  # timedelta overflow on a huge number
}


def _without_upstream_5xx(path: str) -> Any:
    def strip(case: Any) -> Any:
        if isinstance(case.body, dict):
            case.body.pop(UPSTREAM_5XX_FIELDS.get(path, ""), None)
        return case

    return strip


def _for_our_assistant(case: Any) -> Any:
    if isinstance(case.body, dict):
        case.body["assistant_id"] = "r1agent"
    return case


@pytest.mark.parametrize(("role", "method", "path", "mode"), CASES)
@pytest.mark.timeout(BUDGET_S)
def test_no_server_errors(
    api_schema: Any,
    tokens: dict[str, str],
    threads: dict[str, str],
    role: str,
    method: str,
    path: str,
    mode: str,
) -> None:
    # Strategies driven by hypothesis directly: schemathesis' own pytest plugin (LazySchema) reads a
    # private pytest attribute that pytest 9 removed.
    operation = api_schema[path][method]
    # Real values in the path (the role's thread, the console's script); everything else is generated.
    pinned = {k: v for k, v in {"thread_id": threads[role], "name": "console.js"}.items() if f"{{{k}}}" in path}
    strategy = operation.as_strategy(
        generation_mode=schemathesis.GenerationMode(mode), **({"path_parameters": pinned} if pinned else {})
    )
    strategy = strategy.map(_without_upstream_5xx(path))
    if path.endswith("/runs/wait") and mode == "positive":
        # Our assistant, so the run reaches auth and the graph (resume, new turn, odd command), not a 404.
        strategy = strategy.map(_for_our_assistant)
    headers = bearer(tokens[role])
    seen: list[int] = []

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def call(case: Any) -> None:
        assert time.monotonic() - _started[0] < BUDGET_S, f"the contract run exceeded its {BUDGET_S} s budget"
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        seen.append(response.status_code)

    call()
    assert seen, f"no request was made for {method} {path}"
    assert max(seen) < 500
    print(f"{role}: {method} {path} ({mode}): statuses {sorted(Counter(seen).items())}")


def _post(url: str, body: dict[str, Any], token: str | None) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **bearer(token)}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.xfail(strict=True, reason="langgraph-api in-memory runtime: a values filter meets a thread without state")
def test_upstream_search_by_values_is_not_a_server_error(
    server: str, tokens: dict[str, str], threads: dict[str, str]
) -> None:
    assert threads["customer"]  # a thread created without a run: its values are null
    assert _post(f"{server}/threads/search", {"values": {"intent": {"label": "x"}}}, tokens["agent"]) < 500


@pytest.mark.xfail(strict=True, reason="langgraph-api in-memory runtime: timedelta overflow on after_seconds")
def test_upstream_huge_after_seconds_is_not_a_server_error(
    server: str, tokens: dict[str, str], threads: dict[str, str]
) -> None:
    body = {"assistant_id": "r1agent", "after_seconds": 1e300, "input": {"messages": []}}
    assert _post(f"{server}/threads/{threads['customer']}/runs/wait", body, tokens["customer"]) < 500
