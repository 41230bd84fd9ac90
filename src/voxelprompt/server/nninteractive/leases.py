"""Leases: one per connected nnInteractive client, each an interactive session of one model.

A client claims a lease (``/claim``) and sends its token in ``X-Lease-Token`` with every later
request. At most ``max_leases`` exist at once (a further claim: :class:`~voxelprompt.server.compute.Busy`,
HTTP 503 with ``Retry-After``). A lease is reaped after ``idle_s`` without a user action
(image, target buffer, interactions, undo, reset) or ``liveness_s`` without any request at all
(heartbeats count only for liveness); a reaped, released or unknown token is :class:`LeaseGone`
(HTTP 410). Reaping is lazy: every request sweeps expired leases first, so a full server frees
a dead client's slot on the next claim. What a lease holds (image, target buffer, previous mask,
undo history) is charged to the server's memory budget; undo steps are the first to go when it is
full (oldest first).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxelprompt.server.budget import MemoryBudget
from voxelprompt.server.compute import Busy
from voxelprompt.server.nninteractive.interactions import ObjectPrompts
from voxelprompt.types import Volume

__all__ = ["Lease", "LeaseGone", "LeaseManager", "Step"]

#: Undo steps kept per lease (each holds the changed region of the buffer before it).
MAX_UNDO = 32


class LeaseGone(LookupError):
    """The lease token is missing, unknown, released or reaped (HTTP 410)."""


@dataclass
class Step:
    """What undo restores: the object's prompts before an action, and the buffer region it changed.

    Args:
        prompts: the object's prompts before the action.
        bbox: ``[[lo, hi), ...]`` per axis of the changed region, or None (nothing changed).
        before: the target buffer inside ``bbox`` before the action.
    """

    prompts: ObjectPrompts
    bbox: list[list[int]] | None = None
    before: np.ndarray | None = None


@dataclass
class Lease:
    """One client's state. Its ``lock`` serialises that client's requests.

    Args:
        token: the ``X-Lease-Token``.
        model: name of the model this lease was claimed on.
        volume: the image (client array axes, affine from the image properties).
        image_key: the lease's key in the server's session pool.
        target: the server's copy of the client's target buffer ((X, Y, Z), the client's dtype).
        prompts: the current object's prompts; ``pending``: added without a prediction since.
        history: undo steps, oldest first.
    """

    token: str
    model: str
    created: float
    last_active: float
    last_seen: float
    volume: Volume | None = None
    image_key: str = ""
    image_sha256: str = ""
    target: np.ndarray | None = None
    prompts: ObjectPrompts = field(default_factory=ObjectPrompts)
    pending: bool = False
    do_autozoom: bool = False
    history: list[Step] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def push(self, step: Step) -> None:
        self.history.append(step)
        del self.history[:-MAX_UNDO]

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the lease keeps (image, target buffer, previous mask, undo steps)."""
        arrays = [None if self.volume is None else self.volume.array, self.target, self.prompts.previous]
        arrays += [a for step in self.history for a in (step.before, step.prompts.previous)]
        return sum({id(a): a.nbytes for a in arrays if a is not None}.values())


class LeaseManager:
    """At most ``max_leases`` leases with idle and liveness timeouts.

    Args:
        max_leases: leases at once (>= 1).
        idle_s: seconds without a user action before a lease is reaped.
        liveness_s: seconds without any request before a lease is reaped.
        on_reap: called with each lease that goes (release or expiry), e.g. to close its session.
        budget: the server's memory budget (None: none).
        protocol: how messages name the clients' sessions (another protocol's adapter reuses leases).

    Raises:
        ValueError: a non-positive limit.
    """

    def __init__(
        self, max_leases: int = 2, idle_s: float = 600.0, liveness_s: float = 60.0,
        on_reap: Callable[[Lease], Any] | None = None, budget: MemoryBudget | None = None, protocol: str = "nnInteractive",
    ) -> None:  # fmt: skip
        if max_leases < 1 or not idle_s > 0 or not liveness_s > 0:
            raise ValueError(f"lease limits must be positive, got {max_leases}, {idle_s}, {liveness_s}")
        self.max_leases = max_leases
        self.idle_s = idle_s
        self.liveness_s = liveness_s
        self.on_reap = on_reap
        self.budget = budget
        self.protocol = protocol
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}

    def claim(self, model: str) -> Lease:
        """A new lease on ``model``.

        Raises:
            Busy: ``max_leases`` leases are held.
        """
        self.sweep()
        now = time.time()
        with self._lock:
            if len(self._leases) >= self.max_leases:
                raise Busy(f"server is at capacity ({self.max_leases} {self.protocol} sessions); retry later", 10)
            lease = Lease(secrets.token_urlsafe(24), model, now, now, now)
            self._leases[lease.token] = lease
        return lease

    def get(self, token: str | None, active: bool = True) -> Lease:
        """The live lease of ``token``, marked seen (and active: a user action).

        Raises:
            LeaseGone: no token, or not a live lease.
        """
        self.sweep()
        with self._lock:
            lease = self._leases.get(token or "")
            if lease is None:
                raise LeaseGone("lease token missing" if not token else "lease expired or unknown; claim a new one")
            lease.last_seen = time.time()
            if active:
                lease.last_active = lease.last_seen
            return lease

    def peek(self, token: str | None) -> Lease:
        """The lease without touching its clocks (``/lease_status``).

        Raises:
            LeaseGone: as :meth:`get`.
        """
        self.sweep()
        with self._lock:
            lease = self._leases.get(token or "")
        if lease is None:
            raise LeaseGone("lease expired or unknown")
        return lease

    def release(self, token: str | None) -> bool:
        """Free a lease; False when it was not live."""
        with self._lock:
            lease = self._leases.pop(token or "", None)
        if lease is not None:
            self._gone(lease)
        return lease is not None

    def charge(self, lease: Lease, what: str, extra: int = 0) -> None:
        """Charge what ``lease`` holds now plus ``extra`` bytes it is about to allocate, dropping
        its oldest undo steps while that does not fit. Call it holding ``lease.lock``.

        Raises:
            TooLargeError: more than the whole budget.
            OverBudget: no room now, even without the lease's undo history.
        """
        if self.budget is None:
            return
        owner = ("lease", lease.token)
        while lease.history and not self.budget.fits(owner, lease.nbytes + extra):
            lease.history.pop(0)
        self.budget.set(owner, lease.nbytes + extra, f"{self.protocol} {what}")

    def _gone(self, lease: Lease) -> None:
        if self.budget is not None:
            self.budget.release(("lease", lease.token))
        if self.on_reap is not None:
            self.on_reap(lease)

    def remaining_s(self, lease: Lease) -> float:
        """Seconds until the idle timeout."""
        return max(0.0, lease.last_active + self.idle_s - time.time())

    def sweep(self) -> int:
        """Reap leases past either timeout; returns how many."""
        now = time.time()
        with self._lock:
            gone = [
                t for t, s in self._leases.items() if now - s.last_active > self.idle_s or now - s.last_seen > self.liveness_s
            ]
            reaped = [self._leases.pop(t) for t in gone]
        for lease in reaped:
            self._gone(lease)
        return len(reaped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._leases)
