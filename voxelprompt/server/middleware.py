"""What every request passes through, as plain ASGI middleware: a bearer token check, an upload
size limit and a structured access log.

* **Token** (``voxelprompt serve --token``): every route needs ``Authorization: Bearer <token>``
  except the MONAI Label client's login routes (``/auth/``, ``/auth/token``), ``/healthz`` and
  the viewer's static page (which holds no data and asks for the token). The token is compared
  in constant time and never logged.
* **Upload limit**: a body over ``max_body_bytes`` is refused with 413, from its
  ``Content-Length`` before a byte is read, or while it streams when there is none.
* **Access log**: one JSON line per request on the ``voxelprompt.server.access`` logger: time,
  client, method, path (no query string), status, milliseconds, bytes received.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ServerMiddleware", "PUBLIC_PATHS"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Paths open without a token (prefixes ending in "/" match a folder).
PUBLIC_PATHS = ("/auth/", "/auth/token", "/healthz", "/", "/viewer/")

access_log = logging.getLogger("voxelprompt.server.access")


class _TooLarge(Exception):
    pass


class ServerMiddleware:
    """Token, upload limit and access log around an ASGI app.

    Args:
        app: the wrapped application.
        token: the bearer token every non-public route needs; None: no authentication.
        max_body_bytes: largest request body accepted.
    """

    def __init__(self, app: Callable, token: str | None = None, max_body_bytes: int = 1 << 30) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 0, "received": 0}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            await send(message)

        try:
            if not self._allowed(scope):
                await _reply(send_logged, 401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                             {"www-authenticate": "Bearer"})  # fmt: skip
            elif _content_length(scope) > self.max_body_bytes:
                await _reply(send_logged, 413, self._too_large())
            else:
                await self._limited(scope, receive, send_logged, state)
        finally:
            access_log.info(json.dumps({
                "time": round(time.time(), 3),
                "client": (scope.get("client") or ("-",))[0],
                "method": scope["method"],
                "path": scope["path"],
                "status": state["status"],
                "ms": round(1000 * (time.perf_counter() - started), 1),
                "bytes_in": state["received"],
            }))  # fmt: skip

    async def _limited(self, scope: Scope, receive: Receive, send: Send, state: dict) -> None:
        started = False

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _reply(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"request body over the server's upload limit of {self.max_body_bytes / 2**20:.0f} MiB"

    def _allowed(self, scope: Scope) -> bool:
        if self.token is None or scope["method"] == "OPTIONS":
            return True
        path = scope["path"]
        if any(path == p or (p.endswith("/") and p != "/" and path.startswith(p)) for p in PUBLIC_PATHS):
            return True
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())
        return False


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
