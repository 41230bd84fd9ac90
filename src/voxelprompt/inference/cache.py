"""The memory-bounded cache interactive sessions of every family keep their encoded windows in:
least recently used entries leave first once the byte budget is exceeded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["CacheStats", "LRUCache"]


@dataclass
class CacheStats:
    """Counters of a session's cache: lookups found (hits) and not found (misses), entries evicted,
    and the bytes held now."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    bytes: int = 0


class LRUCache:
    """Values with an ``nbytes`` size (tensors, feature records) under a byte budget.

    Args:
        budget_bytes: upper bound of the bytes held; a value larger than it is not kept.
        stats: counters to update (shared with the session that reports them).
    """

    def __init__(self, budget_bytes: int, stats: CacheStats) -> None:
        self.budget = int(budget_bytes)
        self.stats = stats
        self.entries: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        """The value of ``key`` (now the most recently used), or None (a miss)."""
        if key in self.entries:
            self.entries.move_to_end(key)
            self.stats.hits += 1
            return self.entries[key]
        self.stats.misses += 1
        return None

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key``, evicting the least recently used beyond the budget."""
        if value.nbytes > self.budget:
            return
        if key in self.entries:
            self.stats.bytes -= self.entries.pop(key).nbytes
        self.entries[key] = value
        self.stats.bytes += value.nbytes
        while self.stats.bytes > self.budget:
            _, old = self.entries.popitem(last=False)
            self.stats.bytes -= old.nbytes
            self.stats.evictions += 1

    def clear(self) -> None:
        self.entries.clear()
        self.stats.bytes = 0
