"""Token files, bearer parsing, the per-role rules and who a run acts for: the logic under the server's auth.
The real server's user objects are exercised by tests/integration/test_server_auth.py; here a stand-in with
their shape (langgraph-api's ``ProxyUser``: ``identity`` as an attribute, other claims by item access only)."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph import START, StateGraph
from langgraph_sdk import Auth
from pydantic import BaseModel

from r1agent.context import Context
from r1agent.errors import ConfigurationError
from r1agent.nodes.acting import act
from r1agent.server import auth as server_auth
from r1agent.server.auth import (
    TokenSource,
    bearer_token,
    demo_tokens_path,
    is_resume_only,
    parse_tokens,
)
from r1agent.server.identity import AUTH_USER_KEY, Principal, customer_for_run, is_customer_run, principal_of
from r1agent.settings import Settings
from r1agent.state import Intent, State
from r1agent.tools import AgentTool

SECRET = "s3cret-token-value-42"
JAMES = Principal("james_li_5688", "customer")
SAM = Principal("sam", "agent")


def test_json_and_yaml_token_files_load() -> None:
    as_json = parse_tokens(json.dumps({SECRET: {"identity": "james_li_5688", "role": "customer"}}), source="t.json")
    as_yaml = parse_tokens(f"{SECRET}:\n  identity: sam\n  role: agent\n", source="t.yaml", yaml_first=True)
    assert as_json.lookup(SECRET) == JAMES
    assert as_yaml.lookup(SECRET) == SAM
    # A file without a known suffix is read as JSON, then as YAML.
    assert parse_tokens(f"{SECRET}: {{identity: sam, role: agent}}", source="tokens").lookup(SECRET) == SAM


def test_lookup_needs_the_exact_token() -> None:
    table = parse_tokens(json.dumps({SECRET: {"identity": "sam", "role": "agent"}}), source="t")
    for wrong in ("", SECRET[:-1], SECRET + "x", SECRET.upper(), " " + SECRET):
        assert table.lookup(wrong) is None
    assert len(table) == 1
    assert all(SECRET.encode() not in digest for digest, _ in table.entries)  # held as digests only


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({SECRET: {"identity": "sam", "role": "admin"}}, "token #1: role"),
        ({SECRET: {"identity": "sam"}}, "token #1: role: Field required"),
        ({SECRET: {"identity": "sam", "role": "agent", "extra": 1}}, "token #1: extra"),
        ({SECRET: {"identity": "", "role": "agent"}}, "token #1: identity"),
        ({SECRET: {"identity": "a b", "role": "agent"}}, "token #1: identity"),
        ({SECRET: "sam"}, "token #1"),
        ({"short-token": {"identity": "sam", "role": "agent"}}, "token #1 has 11 characters"),
        ({"has a space in it": {"identity": "sam", "role": "agent"}}, "token #1 must be printable ASCII"),
        ({}, "non-empty mapping"),
        ([SECRET], "non-empty mapping"),
    ],
)
def test_a_bad_file_is_a_clear_error_that_never_shows_a_token(document: Any, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_tokens(json.dumps(document), source="tokens.json")
    message = str(caught.value)
    assert expected in message
    assert SECRET not in message and "short-token" not in message and "has a space" not in message


def test_unparseable_file_names_the_line_not_the_content() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_tokens('{"s3cret-token-value-42": [unclosed', source="tokens.json")
    assert "not valid JSON or YAML" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({SECRET: {"identity": "sam", "role": "agent"}}))
    source = TokenSource(path)
    assert source.authenticate(f"Bearer {SECRET}") == SAM
    path.write_text(json.dumps({"another-token-0001": {"identity": "sam", "role": "agent"}}))
    os.utime(path, ns=(1, 1))  # a different stamp even within the file system's time resolution
    with pytest.raises(Auth.exceptions.HTTPException) as caught:
        source.authenticate(f"Bearer {SECRET}")  # revoked by editing the file
    assert caught.value.status_code == 401
    assert source.authenticate("Bearer another-token-0001") == SAM


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        TokenSource(tmp_path / "nope.json").table()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (f"Bearer {SECRET}", SECRET),
        (f"bearer {SECRET}", SECRET),
        (f"  Bearer   {SECRET}  ", SECRET),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        (f"Basic {SECRET}", None),
        (f"Bearer {SECRET} extra", None),
        ("Bearer " + "x" * 2000, None),
        ("Bearer tok\x00en-value-123", None),
    ],
)
def test_bearer_header_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_demo_tokens_are_retail_customers_and_one_agent() -> None:
    source = TokenSource(demo_tokens_path(), demo=True)
    assert source.authenticate("Bearer demo-agent-sam") == SAM
    assert source.authenticate("Bearer demo-customer-james") == JAMES
    demo = json.loads(demo_tokens_path().read_text())
    blob = (resources.files("r1agent") / "data" / "retail" / "users.json.gz").read_bytes()
    users = json.loads(gzip.decompress(blob))
    customers = [v["identity"] for v in demo.values() if v["role"] == "customer"]
    assert len(customers) >= 2 and all(c in users for c in customers)
    assert [v["identity"] for v in demo.values() if v["role"] == "agent"] == ["sam"]


def test_settings_choose_the_tokens_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.delenv("R1AGENT_AUTH_TOKENS", raising=False)
    assert TokenSource.from_settings(Settings()).demo is True
    monkeypatch.setenv("R1AGENT_AUTH_TOKENS", str(tmp_path / "t.yaml"))
    source = TokenSource.from_settings(Settings())
    assert source.path == tmp_path / "t.yaml" and source.demo is False


# -- who is who ----------------------------------------------------------------------------------


class ProxyUser:
    """langgraph-api's user proxy, in shape: identity as a property, the handler's extra claims by item access."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self._claims = claims

    @property
    def identity(self) -> str:
        return str(self._claims["identity"])

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.identity

    def __getitem__(self, key: str) -> Any:
        return self._claims[key]


def _server_user(principal: Principal) -> Any:
    return ProxyUser({"identity": principal.identity, "role": principal.role, "permissions": [principal.role]})


def test_principal_from_the_servers_user_objects() -> None:
    assert principal_of(_server_user(JAMES)) == JAMES
    assert principal_of({"identity": "sam", "role": "agent"}) == SAM  # as stored with a queued run
    assert principal_of({"identity": "sam", "role": "admin"}) is None
    assert principal_of({"identity": "", "role": "agent"}) is None
    assert principal_of(ProxyUser({"identity": "someone"})) is None  # no role: not one of ours
    assert principal_of(None) is None


def test_the_run_acts_for_the_authenticated_customer_only() -> None:
    claimed = Context(customer_id="ava_moore_2033")
    assert customer_for_run({"configurable": {AUTH_USER_KEY: _server_user(JAMES)}}, claimed) == "james_li_5688"
    assert customer_for_run({"configurable": {AUTH_USER_KEY: _server_user(SAM)}}, claimed) is None
    assert customer_for_run({"configurable": {AUTH_USER_KEY: None}}, claimed) is None  # server, no user
    # Embedded use: no server user, the caller's context stands.
    assert customer_for_run({"configurable": {"thread_id": "t"}}, claimed) == "ava_moore_2033"
    assert customer_for_run(None, Context()) is None


@pytest.mark.parametrize(
    ("command", "ok"),
    [
        ({"resume": "Hi, Sam here"}, True),
        ({"resume": {"reply": "Hi"}}, True),
        ({"resume": [{"type": "response", "args": "Hi"}]}, True),
        ({"resume": ""}, False),
        ({"resume": None}, False),
        ({"resume": "x", "goto": "answer"}, False),
        ({"resume": "x", "update": {"draft": "y"}}, False),
        ({"goto": "answer"}, False),
        (None, False),
        ("resume", False),
    ],
)
def test_resume_only_commands(command: object, ok: bool) -> None:
    assert is_resume_only(command) is ok


# -- the handlers, as the server calls them ------------------------------------------------------


def _call(handler: Any, principal: Principal, resource: Any, action: Any, value: dict[str, Any]) -> Any:
    ctx = Auth.types.AuthContext(
        user=_server_user(principal), permissions=[principal.role], resource=resource, action=action
    )
    return asyncio.run(handler(ctx=ctx, value=value))


def test_a_customers_new_thread_is_stamped_with_its_owner() -> None:
    value: dict[str, Any] = {"metadata": {"owner": "ava_moore_2033", "topic": "returns"}}
    assert _call(server_auth.create_thread, JAMES, "threads", "create", value) == {"owner": "james_li_5688"}
    assert value["metadata"] == {"owner": "james_li_5688", "topic": "returns"}
    bare: dict[str, Any] = {}
    _call(server_auth.create_thread, JAMES, "threads", "create", bare)
    assert bare["metadata"] == {"owner": "james_li_5688"}


def test_reads_and_searches_are_filtered_for_customers_and_open_to_agents() -> None:
    for handler, action in ((server_auth.read_thread, "read"), (server_auth.search_threads, "search")):
        assert _call(handler, JAMES, "threads", action, {}) == {"owner": "james_li_5688"}
        assert _call(handler, SAM, "threads", action, {}) is None


def _status(handler: Any, principal: Principal, action: str, value: dict[str, Any]) -> int:
    with pytest.raises(Auth.exceptions.HTTPException) as caught:
        _call(handler, principal, "threads", action, value)
    return caught.value.status_code


def test_agents_only_resume_and_customers_never_do() -> None:
    resume = {"thread_id": "t1", "metadata": {}, "kwargs": {"command": {"resume": "Hi"}, "input": None}}
    turn = {"thread_id": "t1", "metadata": {}, "kwargs": {"command": None, "input": {"messages": []}}}
    assert _call(server_auth.create_run, SAM, "threads", "create_run", resume) is None
    assert _status(server_auth.create_run, SAM, "create_run", turn) == 403
    assert _status(server_auth.create_run, SAM, "create_run", {**resume, "thread_id": None}) == 403
    assert _status(server_auth.create_run, JAMES, "create_run", resume) == 403
    assert _call(server_auth.create_run, JAMES, "threads", "create_run", turn) == {"owner": "james_li_5688"}
    assert turn["metadata"] == {"owner": "james_li_5688"}


def test_agents_neither_create_change_nor_delete_threads() -> None:
    assert _status(server_auth.create_thread, SAM, "create", {}) == 403
    assert _status(server_auth.update_thread, SAM, "update", {"metadata": {}}) == 403
    assert _status(server_auth.delete_thread, SAM, "delete", {}) == 403
    value: dict[str, Any] = {"metadata": {"owner": "ava_moore_2033"}}
    assert _call(server_auth.update_thread, JAMES, "threads", "update", value) == {"owner": "james_li_5688"}
    assert value["metadata"]["owner"] == "james_li_5688"


def test_everything_else_is_refused_and_unknown_users_are_turned_away() -> None:
    assert asyncio.run(server_auth.deny_by_default(ctx=None, value={})) is False  # type: ignore[arg-type]
    stranger = ProxyUser({"identity": "someone"})
    ctx = Auth.types.AuthContext(user=stranger, permissions=[], resource="threads", action="read")  # type: ignore[arg-type]
    with pytest.raises(Auth.exceptions.HTTPException) as caught:
        asyncio.run(server_auth.read_thread(ctx=ctx, value={}))
    assert caught.value.status_code == 403


# -- the graph hands the server's user to the nodes ----------------------------------------------


class _Args(BaseModel):
    order_id: str
    customer_id: str


class _WhoAsks(AgentTool):
    name: str = "who_asks"
    description: str = "Says whose data it would read."
    args_schema: type[BaseModel] = _Args
    intents: frozenset[str] = frozenset({"order_status"})

    def _run(self, order_id: str, customer_id: str) -> str:
        return customer_id


@pytest.mark.parametrize(
    ("configurable", "expected"),
    [
        ({AUTH_USER_KEY: {"identity": "james_li_5688", "role": "customer"}}, "james_li_5688"),
        ({AUTH_USER_KEY: {"identity": "sam", "role": "agent"}}, None),
        ({}, "ava_moore_2033"),  # embedded: the context stands
    ],
)
def test_langgraph_injects_the_run_config_into_act(configurable: dict[str, Any], expected: str | None) -> None:
    # A real LangGraph graph around the real node: LangGraph passes `config` only to parameters annotated
    # in a few exact ways, and without it the node would trust the context's customer id.
    graph = StateGraph(State, context_schema=Context)
    graph.add_node("act", functools.partial(act, tools=[_WhoAsks()]))
    graph.add_edge(START, "act")
    intent = Intent(
        label="order_status", confidence=0.9, entities={"order_id": ["#W4817420"]}, scores={}, wants_human=False
    )
    out = graph.compile().invoke(
        {"messages": [], "text": "where is #W4817420", "intent": intent},
        {"configurable": configurable},
        context=Context(customer_id="ava_moore_2033"),
    )
    (call,) = out["tool_calls"]
    if expected is None:
        assert call["missing"] == ["customer_id"] and call["result"] is None  # an agent's run reads nobody's data
    else:
        assert call["result"] == expected


@pytest.mark.parametrize("modes", ["events", ["values", "events"]])
def test_a_customer_may_not_stream_raw_events(modes: object) -> None:
    turn = {"thread_id": "t1", "metadata": {}, "kwargs": {"input": {"messages": []}, "stream_mode": modes}}
    assert _status(server_auth.create_run, JAMES, "create_run", turn) == 403
    allowed = {**turn, "kwargs": {"input": {"messages": []}, "stream_mode": ["messages-tuple", "values"]}}
    assert _call(server_auth.create_run, JAMES, "threads", "create_run", allowed) == {"owner": "james_li_5688"}


def test_only_a_server_customers_run_is_private() -> None:
    assert is_customer_run({"configurable": {AUTH_USER_KEY: _server_user(JAMES)}})
    assert not is_customer_run({"configurable": {AUTH_USER_KEY: _server_user(SAM)}})
    assert not is_customer_run({"configurable": {"thread_id": "t"}})  # embedded: the caller is trusted
    assert not is_customer_run(None)
