"""Pure ASGI middleware: one log line per request, and a cap on request body size."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.db import Database
from ..metrics import observe_request

access_log = logging.getLogger("nova_settings.access")
log = logging.getLogger(__name__)

USER_STATE_KEY = "nova_user_name"


class AccessLogMiddleware:
    """``METHOD PATH STATUS DURATIONms USER``, and the request in /metrics. Never headers, query
    strings or bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        state = scope.setdefault("state", {})

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            elapsed_ms = elapsed * 1000.0
            # The route's template (bounded labels); paths that matched no route are one label.
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            observe_request(route, scope.get("method", "-"), status, elapsed)
            access_log.info(
                "%s %s %d %.1fms %s",
                scope.get("method", "-"),
                scope.get("path", "-"),
                status,
                elapsed_ms,
                state.get(USER_STATE_KEY) or "-",
            )


class DbScopeMiddleware:
    """Gives each request its own database connection scope and returns the connection (if
    the request took one) to the pool when the request is over."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.db.begin_scope()
        try:
            await self.app(scope, receive, send)
        finally:
            if not self.db.is_closed():
                try:
                    self.db.close()
                except Exception:  # a transaction left open: the pool rolls it back
                    log.exception("closing the request's database connection failed")
                    self.db.dispose()


class BodySizeLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with 413, judged by Content-Length and by the bytes
    actually received (chunked or lying clients). Bodies are buffered before the app runs, so a
    refused request never reaches a handler."""

    BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"request body too large: the limit is {self.limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(send)
                    return
        if scope.get("method") in self.BODYLESS:
            await self.app(scope, receive, send)
            return

        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                buffered.append(message)  # disconnect: let the app see it
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            buffered.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)
