"""Interactive sessions of the model-family interface, one per (model, image), shared by all clients.

The first prompt on an image pre-processes it and encodes what the model needs; later prompts on
the same image reuse that work (:meth:`voxelprompt.inference.protocol.Segmenter.open_session`), so
a click costs only its click-dependent part. Sessions are keyed by the image's content hash as well
as its id (a re-upload under the same name starts afresh), capped in number (the least recently
used goes first), expire after an idle time, and each keeps its caches under a memory budget.
A session that pre-encodes (:class:`Preencoding`, a protocol any family's session may implement;
VISTA3D's with grid click windows does) starts doing so in the background as soon as it is opened,
giving way to every request (``turns``: the server's compute gate); a session leaving the pool is
closed (:class:`Closable`), which stops that thread. Each session is charged to the
server's memory budget before it opens (its cache budget plus twice its image's float32 bytes for
the pre-processed copy); when the budget is full, the least recently used sessions are closed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ContextManager, Protocol, runtime_checkable

from voxelprompt.inference.preencode import Turns
from voxelprompt.server.budget import MemoryBudget
from voxelprompt.inference.protocol import Segmenter, Session
from voxelprompt.types import Prompts, Volume

__all__ = ["Closable", "Preencoding", "SessionPool", "PooledSession"]


@runtime_checkable
class Closable(Protocol):
    """A session that holds something to release when it leaves the pool (threads, caches)."""

    def close(self) -> None:
        """Release what the session holds; it is not used again."""


@runtime_checkable
class Preencoding(Protocol):
    """A session that can encode its image in the background before the clicks come.

    ``can_preencode`` says whether this session's settings allow it; ``start_preencoding(turns)``
    starts the background work, granted by ``turns`` (the compute gate); ``foreground(prompts)``
    is held around a request, so the background work gives way (and finishes what it needs).
    """

    @property
    def can_preencode(self) -> bool: ...

    def start_preencoding(self, turns: Sequence[Turns] = ()) -> Any: ...

    def foreground(self, prompts: Prompts | None = None) -> ContextManager[None]: ...


@dataclass
class PooledSession:
    """A session with what the pool tracks: its key, when it was last used, how often."""

    key: tuple[str, str, str]
    session: Session
    created: float
    last_used: float
    prompts: int = 0


class SessionPool:
    """At most ``max_sessions`` sessions, each dropped after ``idle_s`` seconds without a prompt.

    Args:
        max_sessions: sessions kept (>= 1); a new one beyond that closes the least recently used.
        idle_s: idle time after which a session is closed.
        memory_budget_mb: cache budget of each session (the server's session memory is bounded
            by ``max_sessions * memory_budget_mb`` plus each session's pre-processed volume).
        preencode: start background pre-encoding in every new session that can
            (``start_preencoding``); it stays within ``memory_budget_mb``.
        turns: what background work must be granted besides the session's own requests (the
            server's :class:`~voxelprompt.server.compute.ComputeGate`).
        budget: the server's memory budget (None: only the limits above).

    Raises:
        ValueError: a non-positive limit.
    """

    def __init__(
        self,
        max_sessions: int = 4,
        idle_s: float = 900.0,
        memory_budget_mb: float = 2048.0,
        preencode: bool = True,
        turns: Sequence[Turns] = (),
        budget: MemoryBudget | None = None,
    ) -> None:
        if max_sessions < 1 or not idle_s > 0 or not memory_budget_mb > 0:
            raise ValueError(
                f"session limits must be positive, got max_sessions={max_sessions}, idle_s={idle_s}, "
                f"memory_budget_mb={memory_budget_mb}"
            )
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self.memory_budget_mb = memory_budget_mb
        self.preencode = preencode
        self.turns = tuple(turns)
        self.budget = budget
        self._lock = threading.Lock()
        self._sessions: OrderedDict[tuple[str, str, str], PooledSession] = OrderedDict()
        if budget is not None:
            budget.add_reclaimer(self._reclaim)

    def get(
        self,
        model_key: str,
        segmenter: Segmenter,
        image_id: str,
        image_sha256: str,
        volume: Callable[[], Volume],
        options: Mapping[str, Any] | None = None,
    ) -> tuple[Session, bool]:
        """The session of this model on this image, opened (``volume()`` read) when there is none.

        Call it holding the compute lock: opening a session runs the model's pre-processing.
        ``options`` are the family's ``open_session`` keywords for viewers
        (:attr:`voxelprompt.families.ModelFamily.viewer_session`).

        Returns:
            The session, and whether it was reused (False: opened by this call).

        Raises:
            OverBudget, TooLargeError: the server's memory budget has no room for the session.
        """
        key = (model_key, image_id, image_sha256)
        self.expire()
        now = time.time()
        with self._lock:
            pooled = self._sessions.get(key)
            if pooled is not None:
                self._sessions.move_to_end(key)
                pooled.last_used = now
                pooled.prompts += 1
                return pooled.session, True
        image = volume()
        if self.budget is not None:
            estimate = 2 * image.array.size * 4 + int(self.memory_budget_mb * 2**20)
            self.budget.set(("session", key), estimate, f"an interactive session on {image_id!r}")
        try:
            session = segmenter.open_session(image, memory_budget_mb=self.memory_budget_mb, **dict(options or {}))
        except BaseException:
            self._release([key])
            raise
        if self.preencode and isinstance(session, Preencoding) and session.can_preencode:
            session.start_preencoding(self.turns)
        with self._lock:
            self._sessions[key] = PooledSession(key, session, now, now, 1)
            dropped = []
            while len(self._sessions) > self.max_sessions:
                dropped.append(self._sessions.popitem(last=False)[1])
        self._close(dropped)
        return session, False

    def peek(self, model_key: str, image_id: str, image_sha256: str) -> Session | None:
        """The open session of this model on this image, or None (nothing is opened or counted)."""
        with self._lock:
            pooled = self._sessions.get((model_key, image_id, image_sha256))
            return None if pooled is None else pooled.session

    @contextlib.contextmanager
    def announce(self, model_key: str, image_id: str, image_sha256: str, prompts: Prompts | None) -> Iterator[None]:
        """Hold around a request that waits for its turn: the open session of this model on this
        image (if it pre-encodes) gives way now and finishes a window ``prompts`` need."""
        known = self.peek(model_key, image_id, image_sha256)
        with known.foreground(prompts) if isinstance(known, Preencoding) else contextlib.nullcontext():
            yield

    def drop_image(self, image_id: str) -> int:
        """Close every session on ``image_id``; returns how many."""
        return self._drop(lambda key: key[1] == image_id)

    def drop_model(self, model_key: str) -> int:
        """Close every session of the model ``model_key`` (its weights changed); returns how many."""
        return self._drop(lambda key: key[0] == model_key)

    def _drop(self, which) -> int:
        with self._lock:
            keys = [k for k in self._sessions if which(k)]
            dropped = [self._sessions.pop(k) for k in keys]
        self._close(dropped)
        return len(keys)

    def expire(self) -> int:
        """Close sessions idle for longer than ``idle_s``; returns how many."""
        limit = time.time() - self.idle_s
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.last_used < limit]
            dropped = [self._sessions.pop(k) for k in keys]
        self._close(dropped)
        return len(keys)

    def close(self) -> None:
        """Close every session (server shutdown)."""
        with self._lock:
            dropped = list(self._sessions.values())
            self._sessions.clear()
        self._close(dropped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _reclaim(self, needed: int, keep: object) -> None:
        """The memory budget's reclaimer: close sessions, least recently used first."""
        dropped = []
        with self._lock:
            for key in list(self._sessions):
                if needed <= 0:
                    break
                if ("session", key) != keep and self.budget is not None:
                    needed -= self.budget.charged(("session", key))
                    dropped.append(self._sessions.pop(key))
        self._close(dropped)

    def _close(self, sessions: Sequence[PooledSession]) -> None:
        """Close sessions that left the pool (stops their background pre-encoding) and release
        their memory charges."""
        for pooled in sessions:
            if isinstance(pooled.session, Closable):
                pooled.session.close()
        self._release([pooled.key for pooled in sessions])

    def _release(self, keys: Sequence[tuple[str, str, str]]) -> None:
        if self.budget is not None:
            for key in keys:
                self.budget.release(("session", key))
