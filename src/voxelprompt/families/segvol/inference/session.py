"""Interactive SegVol sessions: pre-process a volume once, then answer many prompts with cached work.

A session keeps the normalized volume, the image encoder's output per window and the CLIP text
embedding per text, under a memory budget with least-recently-used eviction; a further prompt then
runs the prompt encoder and mask decoder (plus the encoder for a window it has not seen). Windows
are keyed by their exact content, so a cached result is bit-identical to recomputing it and labels
equal :meth:`SegVolSegmenter.segment` on the same prompts, whatever crop or zoom-in region a prompt
leads to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from voxelprompt.inference.cache import CacheStats, LRUCache
from voxelprompt.families.segvol.network import SegVol
from voxelprompt.types import Prompts, Segmentation, Volume

if TYPE_CHECKING:  # the segmenter opens sessions: it imports this module, not the other way round
    from voxelprompt.families.segvol.inference.segmenter import SegVolSegmenter

__all__ = ["CacheStats", "CachingSegVol", "SegVolSession", "tensor_key"]


def tensor_key(tensor: torch.Tensor) -> tuple:
    """A cache key naming ``tensor``'s exact content: shape, dtype and a BLAKE2b digest of its bytes."""
    array = np.ascontiguousarray(tensor.detach().cpu().numpy())
    digest = hashlib.blake2b(array.view(np.uint8), digest_size=32).hexdigest()
    return tuple(tensor.shape), str(tensor.dtype), digest


class CachingSegVol:
    """A SegVol network whose image and text encoders answer from a cache (a session's view).

    It offers what inference calls on a network (``image_size``, ``device``, ``encode_image``,
    ``encode_text``, ``decode``) and shares the wrapped model's weights; the model itself stays
    untouched, so other users of it see no cache. Call it under ``torch.no_grad()``: cached
    tensors carry no autograd graph.

    Args:
        model: the segmenter's network.
        cache: where encoder outputs and text embeddings are kept (keys ``("image", ...)`` and
            ``("text", names)``).
    """

    def __init__(self, model: SegVol, cache: LRUCache) -> None:
        self.model = model
        self.cache = cache

    @property
    def image_size(self) -> tuple[int, int, int]:
        """(D, H, W) window size the network takes."""
        return self.model.image_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """:meth:`SegVol.encode_image` of (B, 1, D, H, W) windows, from the cache when seen before."""
        key = ("image", *tensor_key(image))
        embedding = self.cache.get(key)
        if embedding is None:
            embedding = self.model.encode_image(image)
            self.cache.put(key, embedding)
        return embedding

    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        """:meth:`SegVol.encode_text` of B names, from the cache when the same names came before."""
        key = ("text", *names)
        embedding = self.cache.get(key)
        if embedding is None:
            embedding = self.model.encode_text(list(names))
            self.cache.put(key, embedding)
        return embedding

    def decode(self, image_embedding: torch.Tensor, **prompts: torch.Tensor | None) -> torch.Tensor:
        """:meth:`SegVol.decode` (prompt encoder and mask decoder: never cached)."""
        return self.model.decode(image_embedding, **prompts)


class SegVolSession:
    """One volume, many prompts: normalize once, encode each window and text once.

    Implements :class:`voxelprompt.inference.protocol.Session`; every call takes the segmenter's
    lock.

    Args:
        segmenter: the loaded model and its mode.
        volume: the CT being annotated (Hounsfield units; conventions in :mod:`voxelprompt.types`).
        memory_budget_mb: upper bound for the cached encoder outputs and text embeddings (the
            released SegVol keeps 6 MiB per 32x256x256 window; the least recently used entry is
            evicted first; an entry larger than the budget is not kept).

    Attributes:
        stats: cache counters (hits, misses, evictions, bytes), text lookups included.
        prepared: the normalized volume (:meth:`SegVolSegmenter.prepare`).
    """

    def __init__(self, segmenter: SegVolSegmenter, volume: Volume, memory_budget_mb: float = 4096) -> None:
        if not memory_budget_mb >= 0:
            raise ValueError(f"memory_budget_mb must be at least 0, got {memory_budget_mb}")
        self.segmenter = segmenter
        self.stats = CacheStats()
        self._cache = LRUCache(int(memory_budget_mb * 2**20), self.stats)
        self._model = CachingSegVol(segmenter.model, self._cache)
        self.prepared = segmenter.prepare(volume)

    @property
    def volume(self) -> Volume:
        return self.prepared.volume

    @torch.no_grad()
    def segment(self, prompts: Prompts) -> Segmentation:
        """:meth:`SegVolSegmenter.segment` of the session's volume (identical labels), reusing the caches.

        Args:
            prompts: one object's text, class, box and clicks on the session's volume.
        """
        with self.segmenter.lock:
            return self.segmenter.segment_prepared(self.prepared, prompts, model=self._model)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Drop cached encoder outputs and text embeddings (the normalized volume stays)."""
        with self.segmenter.lock:
            self._cache.clear()
