"""What every request passes through, as plain ASGI middleware: a bearer token check with a
throttle on failed attempts, an upload size limit, a body timeout and a structured access log.

* **Token** (``voxelprompt serve --token``): every route needs ``Authorization: Bearer <token>``
  except the MONAI Label client's login routes (``/auth/``, ``/auth/token``; exact paths),
  ``/healthz``, the viewer's static page (which holds no data and asks for the token) and the
  routes of a protocol without authentication that guard themselves (``open_path``: ITK-SNAP's,
  answered to loopback clients only). The
  token is compared in constant time and never logged.
* **Throttle**: a client address with :data:`MAX_FAILURES` wrong credentials (401) within
  :data:`FAILURE_WINDOW_S` gets 429 with ``Retry-After`` for every request that carries
  credentials (a bearer token, or the login form) until the window has passed.
* **Upload limit**: a body over ``max_body_bytes`` is refused with 413, from its
  ``Content-Length`` before a byte is read, or while it streams when there is none (also when the
  application was parsing the body: its own 400 is replaced by the 413).
* **Body timeout**: a body that does not arrive within ``body_timeout_s`` (a slow drip, a client
  that stopped sending) is answered with 408 and its connection's request ends.
* **Access log**: one JSON line per request on the ``voxelprompt.server.access`` logger: time,
  client, method, path (no query string), status, milliseconds, bytes received.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ServerMiddleware", "PUBLIC_PATHS", "PUBLIC_PREFIXES", "MAX_FAILURES", "FAILURE_WINDOW_S"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Paths open without a token (exact).
PUBLIC_PATHS = ("/auth/", "/auth/token", "/healthz", "/")
#: Folders open without a token (the viewer's static files).
PUBLIC_PREFIXES = ("/viewer/",)
#: Failed authentications (401 answers) per client address within the window before 429.
MAX_FAILURES, FAILURE_WINDOW_S = 10, 60.0

access_log = logging.getLogger("voxelprompt.server.access")


class _TooLarge(Exception):
    pass


class _SlowBody(Exception):
    pass


class _Throttle:
    """Failed authentications by client address, in a sliding window."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures, self.window_s = max_failures, window_s
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:  # bounded: forget everyone rather than grow
                self._failures.clear()
            self._failures.setdefault(client, deque(maxlen=self.max_failures)).append(time.monotonic())

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again (0: now)."""
        with self._lock:
            times = self._failures.get(client)
            if times is None or len(times) < self.max_failures:
                return 0
            left = times[0] + self.window_s - time.monotonic()
            if left <= 0:
                self._failures.pop(client, None)
                return 0
            return max(1, int(left + 0.999))


class ServerMiddleware:
    """Token, upload limit and access log around an ASGI app.

    Args:
        app: the wrapped application.
        token: the bearer token every non-public route needs; None: no authentication.
        max_body_bytes: largest request body accepted.
        body_timeout_s: longest time a request body may take to arrive.
        open_path: paths that need no token because their routes admit clients themselves.
    """

    def __init__(
        self, app: Callable, token: str | None = None, max_body_bytes: int = 1 << 30, body_timeout_s: float = 300.0,
        open_path: Callable[[str], bool] | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self.open_path = open_path
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.throttle = _Throttle(MAX_FAILURES, FAILURE_WINDOW_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 0, "received": 0}
        client = (scope.get("client") or ("-",))[0]

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                if message["status"] == 401 and self._credentials(scope):  # a wrong token, not a missing one
                    self.throttle.failed(client)
            await send(message)

        try:
            wait = self.throttle.retry_after(client) if self._credentials(scope) else 0
            if wait:
                await _reply(send_logged, 429, f"too many failed authentications from {client}; retry in {wait} s",
                             {"retry-after": str(wait)})  # fmt: skip
            elif not self._allowed(scope):
                await _reply(send_logged, 401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                             {"www-authenticate": "Bearer"})  # fmt: skip
            elif _content_length(scope) > self.max_body_bytes:
                await _reply(send_logged, 413, self._too_large())
            else:
                await self._limited(scope, receive, send_logged, state)
        finally:
            access_log.info(json.dumps({
                "time": round(time.time(), 3),
                "client": client,
                "method": scope["method"],
                "path": scope["path"],
                "status": state["status"],
                "ms": round(1000 * (time.perf_counter() - started), 1),
                "bytes_in": state["received"],
            }))  # fmt: skip

    async def _limited(self, scope: Scope, receive: Receive, send: Send, state: dict) -> None:
        started = False
        refused: tuple[int, str] | None = None  # set when the body broke a limit
        deadline = time.monotonic() + self.body_timeout_s

        body_done = not _has_body(scope)

        async def counted() -> Message:
            nonlocal refused, body_done
            if refused is not None:
                return {"type": "http.disconnect"}
            if body_done:  # no body, or all of it: later calls wait for the disconnect, unbounded
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                refused = (408, f"request body not received within {self.body_timeout_s:g} s")
                raise _SlowBody from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    refused = (413, self._too_large())
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused is not None:
                # The application caught the limit's exception while parsing (e.g. a multipart
                # form answers 400): answer what the limit says instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reply(send, *refused)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except (_TooLarge, _SlowBody):
            if not started and refused is not None:
                await _reply(send, *refused)

    def _too_large(self) -> str:
        return f"request body over the server's upload limit of {self.max_body_bytes / 2**20:.0f} MiB"

    def _credentials(self, scope: Scope) -> bool:
        """Whether a request tries to authenticate (a bearer header, or the login form)."""
        return self.token is not None and (
            scope["path"] == "/auth/token" or any(name == b"authorization" for name, _ in scope.get("headers", ()))
        )

    def _allowed(self, scope: Scope) -> bool:
        if self.token is None or scope["method"] == "OPTIONS":
            return True
        path = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (self.open_path is not None and self.open_path(path)):
            return True
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())
        return False


def _has_body(scope: Scope) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope.get("headers", ()))


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
