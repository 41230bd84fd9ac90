"""A threaded HTTP file server on 127.0.0.1 for download tests: byte ranges, scripted failures
(drop the connection after N bytes, answer a status, ignore Range, stall) and a request log.

Used as a context manager; it binds an ephemeral loopback port and stops by itself on exit.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["RangeServer", "Request", "closed_port"]


@dataclass(frozen=True)
class Request:
    """One request the server saw: its path and its ``Range`` header (None without one)."""

    path: str
    range: str | None


@dataclass
class _Script:
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, list[int]] = field(default_factory=dict)  # path -> byte counts, one per request
    statuses: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses answered first
    redirects: dict[str, str] = field(default_factory=dict)  # path -> path it answers 302 with
    ignore_range: bool = False
    stall: threading.Event | None = None  # when set up, requests wait on it (timeouts)
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    script: _Script  # set on the per-server subclass

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        script = self.script
        with script.lock:
            script.log.append(Request(self.path, self.headers.get("Range")))
            status = script.statuses.get(self.path, []).pop(0) if script.statuses.get(self.path) else None
            drops = script.drop_after.get(self.path)
            drop = drops.pop(0) if drops else None
        if script.stall is not None:
            script.stall.wait(10)  # bounded: the test's timeout is far shorter
            return
        if status is not None:
            self.send_error(status)
            return
        if self.path in script.redirects:  # like Hugging Face's resolve/ URLs sending clients to a CDN
            self.send_response(302)
            self.send_header("Location", script.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = script.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not script.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        payload = body[start:] if drop is None else body[start : start + drop]
        self.wfile.write(payload)
        if drop is not None:  # cut the connection mid-body: the client sees a short read
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


class RangeServer:
    """``with RangeServer() as server:`` serves ``server.files`` at ``server.url``.

    Attributes:
        files: URL path (``/name/file``) -> bytes.
        drop_after: URL path -> list of byte counts; each request takes the next one and the server
            closes the connection after sending that many body bytes.
        statuses: URL path -> list of HTTP statuses answered (one per request) before serving.
        redirects: URL path -> the path a 302 answer sends the client to.
        ignore_range: answer 200 with the whole body even to a Range request.
        log: every request seen (:class:`Request`).
    """

    def __init__(self) -> None:
        self._script = _Script()
        handler = type("Handler", (_Handler,), {"script": self._script})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    files = property(lambda self: self._script.files)
    drop_after = property(lambda self: self._script.drop_after)
    statuses = property(lambda self: self._script.statuses)
    redirects = property(lambda self: self._script.redirects)
    log = property(lambda self: self._script.log)

    @property
    def ignore_range(self) -> bool:
        return self._script.ignore_range

    @ignore_range.setter
    def ignore_range(self, value: bool) -> None:
        self._script.ignore_range = value

    def stall(self) -> None:
        """From now on, hold every request without answering (until the server stops)."""
        self._script.stall = threading.Event()

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._script.stall is not None:
            self._script.stall.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
