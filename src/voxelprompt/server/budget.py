"""One memory budget for everything the server keeps between requests.

Cached volumes (the image store), interactive sessions (their pre-processed image and caches) and
nnInteractive leases (image, target buffer, undo history) each hold a charge, in bytes, under
their owner's key. A charge that does not fit first asks the reclaimers (the store drops cached
volumes, the session pool closes its least recently used sessions, a lease drops its oldest undo
steps) and is then refused: with :class:`~voxelprompt.errors.TooLargeError` (HTTP 413) when it
exceeds the whole budget on its own, else with :class:`OverBudget` (HTTP 503 with
``Retry-After``: sessions and leases expire).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from voxelprompt.errors import TooLargeError
from voxelprompt.imageio.preflight import format_bytes
from voxelprompt.server.compute import Busy

__all__ = ["MemoryBudget", "OverBudget"]

#: A reclaimer frees what it can of ``needed`` bytes for ``keep`` (never ``keep``'s own charge).
Reclaimer = Callable[[int, Hashable], None]


class OverBudget(Busy):
    """The server's memory budget is taken by others now (HTTP 503 with ``Retry-After``)."""


class MemoryBudget:
    """Bytes charged by owner, under one limit; thread-safe.

    Args:
        limit_bytes: the whole budget (``voxelprompt serve --memory-mb``).
        max_image_bytes: largest decoded image (float32 bytes) an upload or a client array may
            have (``--max-image-mb``); at most ``limit_bytes``.

    Raises:
        ValueError: a non-positive limit.
    """

    def __init__(self, limit_bytes: int, max_image_bytes: int | None = None) -> None:
        if limit_bytes <= 0 or (max_image_bytes is not None and max_image_bytes <= 0):
            raise ValueError(f"memory limits must be positive, got {limit_bytes}, {max_image_bytes}")
        self.limit = int(limit_bytes)
        self.max_image_bytes = int(min(max_image_bytes or limit_bytes, limit_bytes))
        self._lock = threading.Lock()
        self._charges: dict[Hashable, int] = {}
        self._reclaimers: list[Reclaimer] = []

    def add_reclaimer(self, reclaim: Reclaimer) -> None:
        """Register what frees memory when a charge does not fit (called without the budget's lock)."""
        self._reclaimers.append(reclaim)

    @property
    def used(self) -> int:
        with self._lock:
            return sum(self._charges.values())

    def charged(self, owner: Hashable) -> int:
        with self._lock:
            return self._charges.get(owner, 0)

    def set(self, owner: Hashable, nbytes: int, what: str) -> None:
        """Make ``owner``'s charge ``nbytes`` (replacing its previous one).

        Raises:
            TooLargeError: ``nbytes`` alone exceeds the budget.
            OverBudget: it does not fit next to the other charges, even after reclaiming.
        """
        nbytes = int(nbytes)
        if nbytes > self.limit:
            raise TooLargeError(f"{what} needs {format_bytes(nbytes)}, over the server's memory budget of {format_bytes(self.limit)}")
        for attempt in range(2):
            with self._lock:
                others = sum(v for k, v in self._charges.items() if k != owner)
                if others + nbytes <= self.limit or attempt == 1:
                    if others + nbytes <= self.limit:
                        self._charges[owner] = nbytes
                        return
                    break
            for reclaim in list(self._reclaimers):
                reclaim(others + nbytes - self.limit, owner)
        raise OverBudget(
            f"server memory budget full: {what} needs {format_bytes(nbytes)}, "
            f"{format_bytes(self.limit - others)} of {format_bytes(self.limit)} free; retry later",
            30,
        )

    def fits(self, owner: Hashable, nbytes: int) -> bool:
        """Whether ``owner``'s charge could become ``nbytes`` without reclaiming."""
        with self._lock:
            return sum(v for k, v in self._charges.items() if k != owner) + int(nbytes) <= self.limit

    def release(self, owner: Hashable) -> None:
        """Drop ``owner``'s charge (no error when it has none)."""
        with self._lock:
            self._charges.pop(owner, None)
