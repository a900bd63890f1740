"""Who a run acts for, as the LangGraph server authenticated it.

The server authenticates every request (:mod:`r1agent.server.auth`) and hands the user to each run it
starts as ``config["configurable"]["langgraph_auth_user"]`` (langgraph-api's key; the run's ``context``
cannot set it: the server overwrites it). Nodes call :func:`customer_for_run`: under the server, the
authenticated customer is the only customer a run may act for, whatever the message or the run's
``Context`` says, because a caller controls those. Embedded use (``Agent.ask``, ``build_graph``) has no
server user, and the ``Context`` is the trusted caller's word.

Pure functions on plain data, no server imports: the graph's nodes import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig

from r1agent.context import Context

AUTH_USER_KEY = "langgraph_auth_user"
Role = Literal["customer", "agent"]
ROLES: tuple[Role, ...] = ("customer", "agent")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a customer (identity = their customer id) or a human agent."""

    identity: str
    role: Role


def principal_of(user: object) -> Principal | None:
    """The principal behind a server user object (a dict, or langgraph-api's proxy of one); None when
    it carries no identity or no role r1agent knows."""
    identity, role = _claim(user, "identity"), _claim(user, "role")
    if isinstance(identity, str) and identity and role in ROLES:
        return Principal(identity=identity, role=cast(Role, role))
    return None


def customer_for_run(config: RunnableConfig | None, context: Context) -> str | None:
    """The customer whose data this run may read.

    Under the server: the authenticated customer; nobody for a human agent or an unknown user (the
    key is present, even as None, whenever the server started the run). Embedded: ``context.customer_id``.
    """
    configurable = (config or {}).get("configurable") or {}
    if AUTH_USER_KEY not in configurable:
        return context.customer_id
    principal = principal_of(configurable[AUTH_USER_KEY])
    return principal.identity if principal is not None and principal.role == "customer" else None


def is_customer_run(config: RunnableConfig | None) -> bool:
    """A run the LangGraph server started for an authenticated customer. The customer can read the thread's
    state and stream the run, so such a run keeps the model's raw output (think trace, tokens before the
    quality gate and the PII mask) out of both: see ``nodes/reasoning.py``."""
    configurable = (config or {}).get("configurable") or {}
    if AUTH_USER_KEY not in configurable:
        return False
    principal = principal_of(configurable[AUTH_USER_KEY])
    return principal is not None and principal.role == "customer"


def _claim(user: object, name: str) -> Any:
    if user is None:
        return None
    if isinstance(user, Mapping):
        return user.get(name)
    try:
        # langgraph-api's ProxyUser exposes the handler's extra fields (our "role") by item access only.
        return user[name]  # type: ignore[index]
    except (KeyError, TypeError, AttributeError, NotImplementedError):
        return getattr(user, name, None)
