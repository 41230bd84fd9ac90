"""Interactive sessions: pre-process a volume once, then answer many prompts with cached work.

A session keeps (1) the pre-processed volume, (2) the automatic logits of every class that clicks
have edited, and (3) the encoder features of every clicked window, under a memory budget with
least-recently-used eviction. A further click then costs the point head on its windows (plus the
encoder for a window not seen before) instead of the whole pipeline. Results are identical to
:meth:`Vista3DSegmenter.segment` on the same prompts: the cache only skips recomputation.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import torch

from voxelprompt.inference.segmenter import Vista3DSegmenter
from voxelprompt.types import Prompts, Segmentation, Volume

__all__ = ["InteractiveSession", "CacheStats"]


@dataclass
class CacheStats:
    """Encoder cache counters of a session."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    bytes: int = 0


class _CachingEncoder(torch.nn.Module):
    """The network's image encoder with an LRU cache keyed by the window being encoded."""

    def __init__(self, encoder: torch.nn.Module, budget_bytes: int, stats: CacheStats) -> None:
        super().__init__()
        self.encoder = encoder
        self.budget = budget_bytes
        self.stats = stats
        self.key: tuple | None = None  # set by _SessionNet before each window
        self.entries: OrderedDict[tuple, tuple] = OrderedDict()

    def forward(self, x: torch.Tensor, with_point: bool = True, with_label: bool = True):
        if self.key is None:
            return self.encoder(x, with_point=with_point, with_label=with_label)
        key = (self.key, with_point, with_label)
        if key in self.entries:
            self.entries.move_to_end(key)
            self.stats.hits += 1
            return self.entries[key]
        self.stats.misses += 1
        out = self.encoder(x, with_point=with_point, with_label=with_label)
        size = _nbytes(out)
        if size <= self.budget:
            self.entries[key] = out
            self.stats.bytes += size
            while self.stats.bytes > self.budget:
                _, old = self.entries.popitem(last=False)
                self.stats.bytes -= _nbytes(old)
                self.stats.evictions += 1
        return out

    def clear(self) -> None:
        self.entries.clear()
        self.stats.bytes = 0


class _SessionNet(torch.nn.Module):
    """The segmenter's network sharing its weights, with the encoder cached for click windows.

    Only windows that carry clicks are cached (their slices identify them within the session's
    volume); sliding-window passes over the whole volume are not, their logits are kept instead.
    """

    def __init__(self, net: torch.nn.Module, budget_bytes: int, stats: CacheStats) -> None:
        super().__init__()
        self.net = copy.copy(net)
        self.net._modules = dict(net._modules)  # share every part but the encoder slot
        self.encoder = _CachingEncoder(net.image_encoder, budget_bytes, stats)
        self.net._modules["image_encoder"] = self.encoder

    def forward(self, input_images, patch_coords=None, *args, **kwargs):
        has_clicks = kwargs.get("point_coords") is not None and patch_coords is not None
        self.encoder.key = _window_key(patch_coords[0]) if has_clicks else None
        try:
            return self.net(input_images, patch_coords, *args, **kwargs)
        finally:
            self.encoder.key = None


def _nbytes(obj) -> int:
    """Bytes held by the tensors in a (nested) encoder output."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    return 0


def _window_key(slices) -> tuple:
    return tuple((s.start, s.stop) for s in slices[-3:])


class InteractiveSession:
    """One volume, many prompts: encode once, answer further clicks with the point head.

    Args:
        segmenter: the loaded model and profile.
        volume: the CT being annotated.
        memory_budget_mb: upper bound for cached encoder features (the full-size model keeps
            about 0.8 GB per 128^3 window; the least recently used window is evicted first).
    """

    def __init__(self, segmenter: Vista3DSegmenter, volume: Volume, memory_budget_mb: float = 4096) -> None:
        self.segmenter = segmenter
        self.stats = CacheStats()
        self.prepared = segmenter.prepare(volume)
        self._net = _SessionNet(segmenter.net, int(memory_budget_mb * 2**20), self.stats)
        self._auto: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def segment(self, prompts: Prompts, everything: bool = False) -> Segmentation:
        """Same result as ``segmenter.segment(volume, prompts)``, reusing the session's caches."""
        return self.segmenter.segment_prepared(
            self.prepared, prompts, everything, net=self._net, auto_cache=self._auto
        )

    def reset(self) -> None:
        """Drop cached logits and features (the pre-processed volume stays)."""
        self._auto.clear()
        self._net.encoder.clear()
