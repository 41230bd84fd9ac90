"""Interactive sessions: pre-process a volume once, then answer many prompts with cached work.

A session keeps (1) the pre-processed volume, (2) the automatic results clicks edit: the last
class-prompt result it returned and the mask of every class that clicks have edited, and (3) the
point head's click-independent features of every clicked window
(:class:`~voxelprompt.inference.vista3d.engine.point_head.PointWindowFeatures`), under a memory budget with
least-recently-used eviction. A further click then costs the point head's click-dependent half on
its windows (plus the encoder for a window not seen before) instead of the whole pipeline. Results
are identical to :meth:`Vista3DSegmenter.segment` on the same prompts with click-centred windows;
``click_windows="grid"`` and ``edit_shown=True`` trade that for less work (see the class).
"""

from __future__ import annotations

import copy

import torch

from voxelprompt.errors import VoxelPromptError
from voxelprompt.inference.cache import CacheStats, LRUCache
from voxelprompt.inference.vista3d.automatic import AutomaticMasks
from voxelprompt.inference.vista3d.engine.point_head import (
    FastPointHead,
)
from voxelprompt.inference.vista3d.segmenter import Vista3DSegmenter
from voxelprompt.types import Prompts, Segmentation, Volume

__all__ = ["InteractiveSession", "CacheStats"]


#: What the encoder hands the point head for a cached window: nothing to encode.
_CACHED = torch.empty(0)


class _CachingEncoder(torch.nn.Module):
    """The image encoder, skipped for a clicked window whose point features are cached."""

    def __init__(self, encoder: torch.nn.Module, cache: LRUCache) -> None:
        super().__init__()
        self.encoder = encoder
        self.cache = cache
        self.key: tuple | None = None  # set by _SessionNet for click-only windows

    def forward(self, x: torch.Tensor, with_point: bool = True, with_label: bool = True):
        if self.key is not None and self.key in self.cache.entries:
            return _CACHED.to(x.dtype), None
        return self.encoder(x, with_point=with_point, with_label=with_label)


class _CachingPointHead(torch.nn.Module):
    """The point head split in two: features come from the cache or are encoded and stored."""

    def __init__(self, head: FastPointHead | torch.nn.Module, cache: LRUCache) -> None:
        super().__init__()
        self.head = head if isinstance(head, FastPointHead) else FastPointHead(head)
        self.last_supported = self.head.last_supported
        self.cache = cache
        self.key: tuple | None = None

    def forward(self, out, point_coords, point_labels, class_vector=None):
        features = self.cache.get(self.key) if self.key is not None else None
        if features is None:
            features = self.head.encode(out)
            if self.key is not None:
                self.cache.put(self.key, features)
        return self.head.predict(features, point_coords, point_labels, class_vector)


class _SessionNet(torch.nn.Module):
    """The segmenter's click network sharing its weights, with point features cached per window.

    Only windows that carry clicks and no class prompt are cached (their slices identify them
    within the session's volume); sliding-window passes over the whole volume are not, their
    masks are kept instead.
    """

    def __init__(self, net: torch.nn.Module, budget_bytes: int, stats: CacheStats) -> None:
        super().__init__()
        self.cache = LRUCache(budget_bytes, stats)
        self.net = copy.copy(net)
        self.net._modules = dict(net._modules)  # share every part but the two wrapped slots
        self.encoder = _CachingEncoder(net.image_encoder, self.cache)
        self.point_head = _CachingPointHead(net.point_head, self.cache)
        self.net._modules["image_encoder"] = self.encoder
        self.net._modules["point_head"] = self.point_head

    def forward(self, input_images, patch_coords=None, *args, **kwargs):
        cacheable = (
            kwargs.get("point_coords") is not None and kwargs.get("class_vector") is None and patch_coords is not None
        )
        key = _window_key(patch_coords[0]) if cacheable else None
        self.encoder.key = self.point_head.key = key
        try:
            return self.net(input_images, patch_coords, *args, **kwargs)
        finally:
            self.encoder.key = self.point_head.key = None


def _window_key(slices) -> tuple:
    return tuple((s.start, s.stop) for s in slices[-3:])


class InteractiveSession:
    """One volume, many prompts: encode once, answer further clicks with the point head.

    Args:
        segmenter: the loaded model and profile.
        volume: the CT being annotated.
        memory_budget_mb: upper bound for cached window features (the full-size model keeps
            96 MiB per 128^3 window; the least recently used window is evicted first).
        click_windows: ``"centred"`` (default): MONAI's window centred on every click (labels
            identical to ``segmenter.segment``, but a click at a new place encodes a new window);
            ``"grid"``: clicks are answered in the fixed sliding-grid window that holds them, so
            a click near earlier ones reuses an encoded window.
        edit_shown: an edit of a class starts from its voxels in the last class-prompt result
            this session returned (what the annotator sees), so it runs only its clicked windows;
            default: from its own automatic result, as a one-shot call does.
    """

    def __init__(
        self,
        segmenter: Vista3DSegmenter,
        volume: Volume,
        memory_budget_mb: float = 4096,
        click_windows: str = "centred",
        edit_shown: bool = False,
    ) -> None:
        if click_windows not in ("grid", "centred"):
            raise VoxelPromptError(f"click_windows must be grid or centred, got {click_windows!r}")
        if not memory_budget_mb > 0:
            raise VoxelPromptError(f"memory_budget_mb must be a positive number, got {memory_budget_mb!r}")
        self.segmenter = segmenter
        self.click_windows = click_windows
        self.stats = CacheStats()
        self.prepared = segmenter.prepare(volume)
        self._net = _SessionNet(segmenter.click_net(), int(memory_budget_mb * 2**20), self.stats)
        self._auto = AutomaticMasks(keep_shown=edit_shown)

    @torch.no_grad()
    def segment(self, prompts: Prompts) -> Segmentation:
        """Same result as ``segmenter.segment_prepared`` with the session's click windows, reusing its caches.

        With ``edit_shown``, a click edit of a class starts from the class-prompt result this session
        last returned (see :class:`~voxelprompt.inference.vista3d.automatic.AutomaticMasks`): after
        an everything call, an edit of the liver costs only its clicked windows.
        """
        with self.segmenter.lock:
            return self.segmenter.segment_prepared(
                self.prepared, prompts, net=self._net, auto_cache=self._auto, click_windows=self.click_windows
            )

    def reset(self) -> None:
        """Drop cached logits and features (the pre-processed volume stays)."""
        with self.segmenter.lock:
            self._auto.clear()
            self._net.cache.clear()
