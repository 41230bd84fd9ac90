"""One compute lock for the whole server, with a bounded queue in front of it.

Model work (a forward pass, a sliding-window run) takes all CPU cores or the GPU, so requests take
turns. Up to ``max_waiting`` requests wait for their turn, each at most ``wait_s`` seconds; a
request beyond that is refused at once with :class:`Busy`, which the web layer answers with
HTTP 503 and a ``Retry-After`` header (the behaviour of nnInteractive's server when its sessions
are full), never with a 500 and never by piling up threads. Background work (sessions pre-encoding their
windows, :mod:`voxelprompt.inference.preencode`) takes the lock only while no request waits or
runs and gives it back as soon as one arrives. One admission rule holds whoever holds the lock:
at most ``max_waiting`` requests wait (at least one while background work holds it, so that
background work never makes a request be refused); background work cannot widen the queue.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Busy", "ComputeGate", "GateStats"]


class Busy(RuntimeError):
    """The server cannot take this request now; retry after ``retry_after_s`` seconds."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass
class GateStats:
    """Counters for ``/healthz``: requests run, refused as busy, now waiting, now running."""

    served: int = 0
    refused: int = 0
    waiting: int = 0
    running: bool = False


class ComputeGate:
    """A lock with a bounded, time-limited queue.

    Args:
        max_waiting: requests that may wait while one runs (0: refuse whenever busy).
        wait_s: longest wait for the lock before a waiting request is refused.
        retry_after_s: the ``Retry-After`` a refused request is given.

    Raises:
        ValueError: a negative ``max_waiting`` or a non-positive ``wait_s``.
    """

    def __init__(self, max_waiting: int = 8, wait_s: float = 300.0, retry_after_s: int = 5) -> None:
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {max_waiting}")
        if not wait_s > 0:
            raise ValueError(f"wait_s must be > 0, got {wait_s}")
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.stats = GateStats()
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self._background = False  # the lock is held by background work, which yields to requests
        self._closed = False

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the compute lock for the ``with`` block.

        Raises:
            Busy: the queue is full, the wait ran out, or the server is shutting down.
        """
        if self._closed:
            raise Busy("server shutting down", self.retry_after_s)
        if self._lock.acquire(blocking=False):
            yield from self._run()
            return
        with self._count:
            # The same bound whoever holds the lock; background work only lets the first request wait.
            if self.stats.waiting >= max(self.max_waiting, 1 if self._background else 0):
                self.stats.refused += 1
                raise Busy(f"server busy: {self.stats.waiting} requests already waiting", self.retry_after_s)
            self.stats.waiting += 1
        try:
            got = self._lock.acquire(timeout=self.wait_s)
        finally:
            with self._count:
                self.stats.waiting -= 1
        if got and self._closed:
            self._lock.release()
            got = False
        if not got:
            with self._count:
                self.stats.refused += 1
            raise Busy(f"server busy: no turn within {self.wait_s:g} s", self.retry_after_s)
        yield from self._run()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Refuse every later turn (:class:`Busy`) and wait up to ``timeout_s`` for the running one
        to end (server shutdown); returns whether it ended. Waiting requests are refused."""
        self._closed = True
        got = self._lock.acquire(timeout=timeout_s)
        if got:
            self._lock.release()
        return got

    def busy(self) -> bool:
        """Whether a request waits or runs (background work then gives way)."""
        return self.stats.waiting > 0 or self.stats.running

    @contextlib.contextmanager
    def background_turn(self) -> Iterator[bool]:
        """Hold the lock for one background step if no request waits or runs (yields True), else
        yield False at once (see :class:`voxelprompt.inference.preencode.Turns`)."""
        if self._closed or self.busy() or not self._lock.acquire(blocking=False):
            yield False
            return
        self._background = True
        try:
            yield True
        finally:
            self._background = False
            self._lock.release()

    def _run(self) -> Iterator[None]:
        self.stats.running = True
        try:
            yield
        finally:
            self.stats.running = False
            self.stats.served += 1
            self._lock.release()
