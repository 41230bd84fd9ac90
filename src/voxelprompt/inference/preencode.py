"""Background pre-encoding: a session encodes its windows while nobody asks anything of the model.

A :class:`Preencoder` thread walks a session's windows in a given order (nearest the body's centre
first), one window per turn, and always gives way to real requests: it takes a turn only while no
request waits or runs, and a window it is encoding is abandoned at the next layer boundary when a
request arrives (unless that request needs this very window: then it finishes it, and the request
finds it cached instead of encoding it twice). It stops when every window is cached, when the next
one would not fit the session's memory budget (speculative windows never evict clicked ones), or
when the session closes (:meth:`Preencoder.stop` returns once the thread has ended).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Protocol

import torch

__all__ = ["Preempted", "Preencoder", "Turns", "LockTurns"]

logger = logging.getLogger(__name__)


class Preempted(Exception):
    """Raised inside a background forward pass to abandon it for a real request."""


class Turns(Protocol):
    """Who runs the model: requests first, background work only in the gaps."""

    def busy(self) -> bool:
        """Whether a request waits for or holds the model now."""

    def background_turn(self) -> contextlib.AbstractContextManager[bool]:
        """Hold the model for one background step if it is free now (yields True), else yield False."""


class LockTurns:
    """:class:`Turns` over a lock that requests take (a segmenter's), with a count of requests
    that have announced themselves (:meth:`request`) before taking it."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._count = 0
        self._count_lock = threading.Lock()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Mark a request as waiting or running for the ``with`` block."""
        with self._count_lock:
            self._count += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._count -= 1

    def busy(self) -> bool:
        return self._count > 0

    @contextlib.contextmanager
    def background_turn(self) -> Iterator[bool]:
        if self.busy() or not self.lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            self.lock.release()


class Preencoder:
    """A daemon thread that encodes ``keys`` in order (see the module docstring).

    Args:
        keys: windows in the order to encode them.
        encode: encodes and caches one window; called holding every turn of ``turns``.
        cached: whether a window is cached already (skipped).
        fits: whether one more window fits the memory budget (False stops the thread).
        modules: the modules whose forward passes may be abandoned (checked before each one).
        turns: the turns to take for each window; all must be granted at once (for instance the
            session's own requests, and a server's compute gate).
        wanted: the windows that waiting requests need (a window in it is finished, not abandoned).
        poll_s: how often a waiting thread looks again for a free turn.
    """

    def __init__(
        self,
        keys: Sequence[Hashable],
        encode: Callable[[Hashable], None],
        cached: Callable[[Hashable], bool],
        fits: Callable[[], bool],
        modules: Sequence[torch.nn.Module],
        turns: Sequence[Turns],
        wanted: Callable[[], frozenset],
        poll_s: float = 0.02,
    ) -> None:
        self.keys = list(keys)
        self.encode = encode
        self.cached = cached
        self.fits = fits
        self.modules = list(modules)
        self.turns = list(turns)
        self.wanted = wanted
        self.poll_s = poll_s
        self.encoded: list[Hashable] = []  # in the order they were encoded
        self.preempted = 0
        self.stopped_by: str | None = None  # "done", "budget", "closed" or "error"
        self._current: Hashable | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voxelprompt-preencode", daemon=True)

    def start(self) -> Preencoder:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread: an encoding in progress is abandoned at its next layer; returns once
        the thread has ended (or after ``timeout`` seconds)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to finish by itself (tests, benchmarks)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            for key in self.keys:
                if not self._encode_one(key):
                    return
            self.stopped_by = "done"
        except Exception:  # a failure here must never take a request down with it
            logger.exception("pre-encoding stopped by an error")
            self.stopped_by = "error"

    def _encode_one(self, key: Hashable) -> bool:
        """Encode ``key`` when the model is free; False when the thread must end."""
        while True:
            if self._stop.is_set():
                self.stopped_by = "closed"
                return False
            if self.cached(key):
                return True
            if not self.fits():
                self.stopped_by = "budget"
                return False
            with contextlib.ExitStack() as stack:
                if all(stack.enter_context(t.background_turn()) for t in self.turns):
                    if self.cached(key):  # a request may have encoded it while we waited
                        return True
                    try:
                        self._current = key
                        with _abandonable(self.modules, self._should_abandon):
                            self.encode(key)
                        self.encoded.append(key)
                        return True
                    except Preempted:
                        self.preempted += 1
                    finally:
                        self._current = None
            self._stop.wait(self.poll_s)

    def _should_abandon(self) -> bool:
        if self._stop.is_set():
            return True
        return any(t.busy() for t in self.turns) and self._current not in self.wanted()


@contextlib.contextmanager
def _abandonable(modules: Sequence[torch.nn.Module], abandon: Callable[[], bool]) -> Iterator[None]:
    """Forward pre-hooks on every submodule of ``modules`` that raise :class:`Preempted` when
    ``abandon()``; installed only while the background thread holds the model, so no other caller
    ever runs through them."""

    def check(module, args):
        if abandon():
            raise Preempted

    handles = [m.register_forward_pre_hook(check) for root in modules for m in root.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
