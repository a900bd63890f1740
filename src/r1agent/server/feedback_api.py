"""Feedback through the server: ``POST`` / ``GET /threads/{thread_id}/feedback`` (docs/feedback.md).

- A **customer** rates a turn of their own thread: ``{"rating": 1..5, "comment"?: str, "turn"?: n}``
  (default turn: the last). Rating a turn again replaces the rating. ``GET`` lists the thread's ratings.
- A **human agent** records a *correction*: on a turn that was handed off and that they answered
  (``command.resume``), ``{"rating": ..., "turn"?: n}`` rates the model's draft and stores the turn's
  snapshot with their reply, so ``r1agent feedback export`` writes the DPO pair (chosen = the human's
  reply, rejected = the draft) even where the exporter cannot read the server's checkpoints. When the
  customer already rated that turn, the customer's rating and comment are kept and only the snapshot is
  refreshed: nobody's rating is lost. Agents list every thread's feedback.

Who may see a thread is decided by the LangGraph API itself: the handler asks the server for the
thread (``GET /threads/{id}``) *in process*, over an ASGI transport into this very app, with the
caller's own ``Authorization`` header. That request passes the same auth middleware and Auth handler
(``threads.read``, filtered by ``metadata.owner``) as any client's, so another customer's thread is
the API's own 404, and no second scoping rule exists to drift. langgraph-api's loopback client
(``get_client(url=None)``) would *skip* auth, which is why it is not used. The turns are then read
from the server's checkpointer (langgraph-api's ``get_checkpointer``, the one its runs write): the
API's history shows only the graph's output fields, and a turn record needs the draft and token
usage too. The owner check is repeated on those checkpoints (:func:`r1agent.feedback.store.owned_turn`).

The route itself is authenticated by langgraph-api's auth middleware (the same Auth handler as the
API) and rate limited on the caller's work budget, like a run. SQLite writes run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from r1agent.errors import ConfigurationError, ConflictError, InputError, NotFoundError, R1AgentError
from r1agent.server.identity import Principal, principal_of
from r1agent.server.ratelimit import RateLimitMiddleware
from r1agent.settings import Settings

MAX_BODY_BYTES: Final = 16_384
"""A rating and a comment (at most ``feedback_max_comment_chars``) fit many times over."""
INTERNAL_BASE_URL: Final = "http://r1agent.internal"
OWNER: Final = "owner"

if TYPE_CHECKING:  # the feedback modules are imported on first use, not at server start
    from langgraph.checkpoint.base import CheckpointTuple

    from r1agent.feedback.store import Feedback
    from r1agent.feedback.turns import TurnRecord


class FeedbackBody(BaseModel):
    """What a client sends. Strict: ``"5"``, ``5.0`` or ``true`` are not ratings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rating: int = Field(ge=1, le=5)
    comment: str | None = None
    turn: int | None = Field(default=None, ge=1, le=1_000_000)


class ServerHistory:
    """:class:`r1agent.feedback.turns.TurnHistory` over checkpoints already read from the server."""

    def __init__(self, thread_id: str, tuples: Sequence[CheckpointTuple], owner: str | None, *, max_history: int):
        self._thread_id = thread_id
        self._tuples = list(tuples)
        self._owner = owner
        self._max_history = max_history

    def turns(self, thread_id: str) -> list[TurnRecord]:
        from r1agent.feedback.turns import turns_from_checkpoints

        if thread_id != self._thread_id:
            raise NotFoundError(f"unknown thread {thread_id!r}")
        # A thread created but never run has no checkpoints: pick_turn says "no turns yet".
        return turns_from_checkpoints(thread_id, self._tuples, max_history=self._max_history)

    def owner(self, thread_id: str) -> str | None:
        """The owner the checkpoints record (the auth stamps it on every customer run, LangGraph copies
        it into each checkpoint), else the thread's: the check on the data actually read."""
        if thread_id != self._thread_id:
            raise NotFoundError(f"unknown thread {thread_id!r}")
        for item in self._tuples:  # newest first
            owner = (item.metadata or {}).get(OWNER)
            if isinstance(owner, str) and owner:
                return owner
        return self._owner


@cache
def _settings() -> Settings:
    return Settings()


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _status_of(exc: R1AgentError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InputError):
        return 422
    return 503  # ConfigurationError and the like: the server's setup, not the request


def _thread_id(request: Request) -> str:
    raw = str(request.path_params["thread_id"])
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InputError("thread_id must be a UUID (as POST /threads returned it)") from None


async def _body(request: Request) -> FeedbackBody:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    raw = b""
    async for chunk in request.stream():  # bounded even without (or with a false) Content-Length
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _TooLarge
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _BadJson from None
    if not isinstance(data, dict):
        raise InputError('the body is a JSON object: {"rating": 1..5, "comment": "...", "turn": n}')
    try:
        return FeedbackBody.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise InputError(problems) from None


class _TooLarge(Exception):
    pass


class _BadJson(Exception):
    pass


async def _visible_thread(request: Request, thread_id: str) -> dict[str, Any]:
    """The thread as the API shows it to this caller (their token, the API's auth); 404 otherwise."""
    transport = httpx.ASGITransport(app=request.app)  # root_path "": the auth middleware applies
    headers = {"authorization": request.headers.get("authorization", "")}
    async with httpx.AsyncClient(transport=transport, base_url=INTERNAL_BASE_URL, headers=headers) as api:
        response = await api.get(f"/threads/{thread_id}")
    if response.status_code == 404:
        raise NotFoundError(f"unknown thread {thread_id!r}")
    if response.status_code != 200:  # e.g. 429: the caller's reads are spent
        raise _Upstream(response.status_code, _detail(response), response.headers.get("retry-after"))
    thread: dict[str, Any] = response.json()
    return thread


class _Upstream(Exception):
    def __init__(self, status: int, detail: str, retry_after: str | None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = {"Retry-After": retry_after} if retry_after else None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.reason_phrase)
    except (ValueError, AttributeError):
        return response.reason_phrase


async def _checkpoints(thread_id: str) -> list[CheckpointTuple]:
    """The thread's checkpoints, newest first, from the checkpointer the server's runs write to."""
    from r1agent.feedback.turns import MAX_CHECKPOINTS

    try:
        from langgraph_api._checkpointer import get_checkpointer  # type: ignore[import-untyped]
    except ImportError as exc:  # a langgraph-api that moved it: say so rather than fail obscurely
        raise ConfigurationError(f"this langgraph-api has no checkpointer accessor ({exc})") from None
    checkpointer: Any = await get_checkpointer()
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    return [item async for item in checkpointer.alist(config, limit=MAX_CHECKPOINTS)]


def _view(feedback: Feedback, settings: Settings) -> dict[str, Any]:
    from r1agent.feedback.cli import describe
    from r1agent.feedback.reward import RewardWeights

    return {**describe(feedback, RewardWeights.from_settings(settings)), "corrected": bool(feedback.record.human_reply)}


def _store(principal: Principal, history: ServerHistory, thread_id: str, body: FeedbackBody) -> dict[str, Any]:
    """Validate and write (in a worker thread: SQLite and the turn records are blocking work)."""
    from r1agent.feedback.reward import check_rating
    from r1agent.feedback.store import FeedbackStore, check_comment, owned_turn, record_feedback

    settings = _settings()
    limit = settings.feedback_max_comment_chars
    check_rating(body.rating)
    check_comment(body.comment, max_chars=limit)
    with FeedbackStore(settings.feedback_path) as store:
        if principal.role == "customer":
            feedback = record_feedback(
                store,
                history,
                thread_id,
                principal.identity,
                body.rating,
                comment=body.comment,
                turn=body.turn,
                max_comment_chars=limit,
            )
            return _view(feedback, settings)
        record, owner = owned_turn(history, thread_id, None, body.turn)
        if not record.handed_off:
            raise ConflictError(
                f"turn {record.turn} was answered by the agent, not handed off: customers rate answers; "
                "a human agent records corrections of handed-off turns"
            )
        if not record.human_reply:
            raise ConflictError(
                f"turn {record.turn} still waits for a human: answer it first "
                '(POST /threads/{thread_id}/runs/wait with {"command": {"resume": "<reply>"}})'
            )
        existing = next((f for f in store.ratings(thread_id=thread_id) if f.turn == record.turn), None)
        rating, comment = (existing.rating, existing.comment) if existing else (body.rating, body.comment)
        feedback = store.rate(record, customer_id=owner, rating=rating, comment=comment, max_comment_chars=limit)
        return {**_view(feedback, settings), "kept_customer_rating": existing is not None}


def _list(principal: Principal, thread_id: str) -> list[dict[str, Any]]:
    from r1agent.feedback.store import FeedbackStore

    settings = _settings()
    with FeedbackStore(settings.feedback_path) as store:
        rows = store.ratings(thread_id=thread_id)
    if principal.role == "customer":  # the API showed the thread is theirs; the rows must say so too
        rows = [f for f in rows if f.customer_id == principal.identity]
    return [_view(f, settings) for f in rows]


async def feedback_endpoint(request: Request) -> Response:
    """Rate a turn of a thread, or list the thread's feedback.
    ---
    summary: Thread feedback
    description: >-
      POST rates a turn (default the last) of the caller's own thread from 1 to 5; a human agent's POST
      records the correction of a handed-off turn they answered. GET lists the thread's feedback.
      Bearer auth as for the rest of the API; a thread the caller may not see is 404.
    tags: [Feedback]
    parameters:
      - name: thread_id
        in: path
        required: true
        schema: {type: string, format: uuid}
    requestBody:
      required: false
      content:
        application/json:
          schema:
            type: object
            additionalProperties: false
            required: [rating]
            properties:
              rating: {type: integer, minimum: 1, maximum: 5}
              comment: {type: [string, "null"]}
              turn: {type: [integer, "null"], minimum: 1}
    responses:
      "200": {description: The stored feedback (POST) or the thread's feedback (GET).}
      "400": {description: The body is not JSON.}
      "401": {description: No valid bearer token.}
      "404": {description: No such thread, not the caller's, or no such turn.}
      "409": {description: A human agent's correction of a turn that was not handed off or not answered yet.}
      "413": {description: The body is larger than 16 KB.}
      "422": {description: An invalid rating, comment, turn or thread id.}
      "429": {description: Over the caller's rate limit (see Retry-After).}
    """
    principal = principal_of(request.scope.get("user"))
    if principal is None:  # the auth middleware let a non-r1agent user through (e.g. Studio's)
        return _error(403, "unknown caller")
    try:
        thread_id = _thread_id(request)
        body = await _body(request) if request.method == "POST" else None
        thread = await _visible_thread(request, thread_id)
        if body is None:
            return JSONResponse(await asyncio.to_thread(_list, principal, thread_id))
        metadata = thread.get("metadata") or {}
        owner = metadata.get(OWNER) if isinstance(metadata.get(OWNER), str) else None
        history = ServerHistory(
            thread_id, await _checkpoints(thread_id), owner, max_history=_settings().max_history_messages
        )
        return JSONResponse(await asyncio.to_thread(_store, principal, history, thread_id, body))
    except _TooLarge:
        return _error(413, f"the body is larger than {MAX_BODY_BYTES:,} bytes")
    except _BadJson:
        return _error(400, "the body is not valid JSON")
    except _Upstream as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)
    except R1AgentError as exc:
        return _error(_status_of(exc), str(exc))


class _Authenticated:
    """langgraph-api's own auth middleware around one route, built at its first request.

    Custom routes are served without auth unless ``enable_custom_route_auth`` is set for all of them,
    and the console's page must stay public; so the feedback route wraps itself in the very
    middleware (and Auth handler) the API routes use: no second way of reading tokens.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._wrapped: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._wrapped is None:
            # Loaded by the server before any request; untyped upstream.
            from langgraph_api.auth.middleware import auth_middleware  # type: ignore[import-untyped]

            self._wrapped = auth_middleware.cls(self._app, *auth_middleware.args, **auth_middleware.kwargs)
        await self._wrapped(scope, receive, send)


def _feedback_route() -> Route:
    route = Route("/threads/{thread_id}/feedback", feedback_endpoint, methods=["GET", "POST"])
    # Auth first, then the caller's rate limit, then the handler: the API routes' order. Wrapping
    # ``route.app`` keeps ``route.endpoint`` (and its docstring) for the OpenAPI document.
    route.app = _Authenticated(RateLimitMiddleware(route.app))
    return route


ROUTES: Final[list[BaseRoute]] = [_feedback_route()]
