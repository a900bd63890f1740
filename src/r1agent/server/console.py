"""The handoff console: a page where a human agent answers the customers r1agent handed over.

Served by the LangGraph server through ``langgraph.json``'s ``http.app`` (``make serve``, then open
``/console``). The page holds no data and needs no auth: everything it shows comes from the LangGraph
API, called from the browser with the agent's bearer token, so the server's auth decides what the agent
may list and resume. langgraph-api mounts custom routes *without* its auth middleware unless
``enable_custom_route_auth`` is set, which is what a public static page wants.

The page is plain HTML and one vanilla JS module (no build chain). Its responses carry a strict
Content-Security-Policy: scripts only from this origin, no inline script, no framing, API calls only to
this origin. Customer text is rendered with ``textContent`` only, so a message cannot become markup.

This module is imported by langgraph-api at start from its file path; it stays light (no torch) and
reads r1agent's constants lazily, when the graph module has long been loaded.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

POLL_SECONDS: Final = 10
"""How often the page refreshes the list by itself (it never replaces a reply being typed)."""
PAGE_SIZE: Final = 50
"""Handoffs fetched per request, oldest first: the ones waiting longest are the ones to answer."""
MAX_PAGES: Final = 10
"""Requests per refresh: up to 500 handoffs on screen; beyond that the page says more are waiting."""
MAX_MESSAGES: Final = 40
"""Conversation messages shown per handoff (the most recent ones)."""

# The only files the page serves: a fixed allow-list, so a request path never reaches the file system.
ASSETS: Final = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The page is tiny and changes with the package: never serve a stale one next to a new API.
    "Cache-Control": "no-store",
}


def _static(name: str) -> bytes:
    return resources.files("r1agent.server").joinpath("static", name).read_bytes()


async def console_page(request: Request) -> Response:
    """The handoff console page.
    ---
    summary: Handoff console (HTML page)
    description: The human agents' page. Public; it calls the LangGraph API with the agent's bearer token.
    tags: [Console]
    responses:
      "200":
        description: The page.
        content:
          text/html: {}
    """
    return Response(_static("console.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def console_asset(request: Request) -> Response:
    """The console's script and style sheet.
    ---
    summary: Handoff console asset
    tags: [Console]
    parameters:
      - name: name
        in: path
        required: true
        schema:
          type: string
    responses:
      "200":
        description: The file.
      "404":
        description: Not one of the console's files.
    """
    name = str(request.path_params["name"])
    media_type = ASSETS.get(name)
    if media_type is None:
        return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)
    return Response(_static(name), media_type=media_type, headers=SECURITY_HEADERS)


def console_settings() -> dict[str, object]:
    """What the page needs to know about the server it talks to."""
    # Lazy: by the time a request arrives the server has imported the graph; at import time it has not.
    from r1agent.graphs.support import GRAPH_NAME
    from r1agent.nodes.handoff import MAX_REPLY_CHARS

    return {
        "assistant_id": GRAPH_NAME,
        "max_reply_chars": MAX_REPLY_CHARS,
        "poll_seconds": POLL_SECONDS,
        "page_size": PAGE_SIZE,
        "max_pages": MAX_PAGES,
        "max_messages": MAX_MESSAGES,
    }


async def console_config(request: Request) -> Response:
    """The console's settings.
    ---
    summary: Handoff console settings
    description: The assistant the page resumes, the reply length limit and how often it refreshes.
    tags: [Console]
    responses:
      "200":
        description: Settings.
        content:
          application/json:
            schema:
              type: object
              required: [assistant_id, max_reply_chars, poll_seconds, page_size, max_pages, max_messages]
              properties:
                assistant_id: {type: string}
                max_reply_chars: {type: integer}
                poll_seconds: {type: integer}
                page_size: {type: integer}
                max_pages: {type: integer}
                max_messages: {type: integer}
    """
    return JSONResponse(console_settings(), headers=SECURITY_HEADERS)


ROUTES: Final[list[BaseRoute]] = [
    Route("/console", console_page, methods=["GET"]),
    Route("/console/config.json", console_config, methods=["GET"]),
    Route("/console/static/{name}", console_asset, methods=["GET"]),
]


class ConsoleApp(Starlette):
    """The console's Starlette app; ``routes`` lists only the console's own routes.

    langgraph-api (0.16.7) adds its API routes to this app and then builds the OpenAPI document from
    ``app.routes``, writing an *empty* operation for every route without a YAML docstring, which is
    every one of its own: ``/openapi.json`` would lose the whole LangGraph API. Reporting only our
    routes here keeps its documented operations and adds ours. Dispatch uses ``app.router.routes``
    (everything), so this changes what is documented, not what is served.
    """

    def __init__(self, routes: list[BaseRoute], middleware: list[Middleware] | None = None) -> None:
        super().__init__(routes=routes, middleware=middleware)
        self._own_routes = list(routes)

    @property
    def routes(self) -> list[BaseRoute]:
        return list(self._own_routes)


def _app() -> ConsoleApp:
    # Lazy imports keep this module's import light for the page's unit tests; both are small.
    from r1agent.server.feedback_api import ROUTES as FEEDBACK_ROUTES
    from r1agent.server.ratelimit import RateLimitMiddleware

    # langgraph-api applies this app's middleware to its own API routes. With ``"middleware_order":
    # "auth_first"`` (langgraph.json) it runs after the auth middleware, so the rate limit sees the
    # authenticated caller in ``scope["user"]``; on the public console routes it finds none and passes.
    return ConsoleApp([*ROUTES, *FEEDBACK_ROUTES], middleware=[Middleware(RateLimitMiddleware)])


app = _app()
"""The custom app ``langgraph.json`` mounts (``"http": {"app": ...}``): the console, the feedback
endpoint (:mod:`r1agent.server.feedback_api`) and the rate limit (:mod:`r1agent.server.ratelimit`)."""
