"""Interactive sessions: pre-process a volume once, then answer many prompts with cached work.

A session keeps (1) the pre-processed volume, (2) the automatic results clicks edit: the last
class-prompt result it returned and the mask of every class that clicks have edited, and (3) the
point head's click-independent features of every clicked window
(:class:`~voxelprompt.families.vista3d.inference.engine.point_head.PointWindowFeatures`), under a memory budget with
least-recently-used eviction. A further click then costs the point head's click-dependent half on
its windows (plus the encoder for a window not seen before) instead of the whole pipeline. Results
are identical to :meth:`Vista3DSegmenter.segment` on the same prompts with click-centred windows;
``click_windows="grid"`` and ``edit_shown=True`` trade that for less work (see the class).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from voxelprompt.errors import VoxelPromptError
from voxelprompt.inference.cache import CacheStats, LRUCache
from voxelprompt.inference.preencode import LockTurns, Preencoder, Turns
from voxelprompt.inference.sliding import pad_widths
from voxelprompt.families.vista3d.inference.automatic import AutomaticMasks
from voxelprompt.families.vista3d.inference.click_windows import ClickWindows, build_click_windows
from voxelprompt.families.vista3d.inference.engine.accumulate import window_grid
from voxelprompt.families.vista3d.inference.engine.point_head import FastPointHead
from voxelprompt.families.vista3d.inference.preprocess import to_model_voxels
from voxelprompt.families.vista3d.inference.profiles import HU_MAX, HU_MIN
from voxelprompt.families.vista3d.inference.windows import pad_to_window
from voxelprompt.types import Prompts, Segmentation, Volume

if TYPE_CHECKING:  # the segmenter opens sessions: it imports this module, not the other way round
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

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

    With grid click windows (known before the clicks) the session can also encode its windows
    before any click, in a background thread (:meth:`start_preencoding`), so that the first click
    in a window costs the point head alone.

    Args:
        segmenter: the loaded model and profile.
        volume: the CT being annotated.
        memory_budget_mb: upper bound for cached window features (the full-size model keeps
            96 MiB per 128^3 window; the least recently used window is evicted first).
        click_windows: ``"centred"`` (default): MONAI's window centred on every click (labels
            identical to ``segmenter.segment``, but a click at a new place encodes a new window);
            ``"grid"``: clicks are answered in the fixed sliding-grid window that holds them, so
            a click near earlier ones reuses an encoded window; or a
            :class:`~voxelprompt.families.vista3d.inference.click_windows.ClickWindows` (resolved
            once, by :func:`~voxelprompt.families.vista3d.inference.click_windows.build_click_windows`).
        edit_shown: an edit of a class starts from its voxels in the last class-prompt result
            this session returned (what the annotator sees), so it runs only its clicked windows;
            default: from its own automatic result, as a one-shot call does.
        preencode: start :meth:`start_preencoding` at once (grid click windows only).

    Raises:
        VoxelPromptError: an unknown ``click_windows``, a budget that is not positive, or
            ``preencode`` with centred click windows.
    """

    def __init__(
        self,
        segmenter: Vista3DSegmenter,
        volume: Volume,
        memory_budget_mb: float = 4096,
        click_windows: str | ClickWindows = "centred",
        edit_shown: bool = False,
        preencode: bool = False,
    ) -> None:
        self.click_windows = build_click_windows(click_windows)
        if not memory_budget_mb > 0:
            raise VoxelPromptError(f"memory_budget_mb must be a positive number, got {memory_budget_mb!r}")
        self.segmenter = segmenter
        self.stats = CacheStats()
        self.prepared = segmenter.prepare(volume)
        self._net = _SessionNet(segmenter.click_net(), int(memory_budget_mb * 2**20), self.stats)
        self._auto = AutomaticMasks(keep_shown=edit_shown)
        self._turns = LockTurns(segmenter.lock)
        self._wanted: frozenset = frozenset()
        self.preencoder: Preencoder | None = None
        if preencode:
            self.start_preencoding()

    # ---- background pre-encoding ---------------------------------------------------------

    @property
    def can_preencode(self) -> bool:
        """Whether :meth:`start_preencoding` applies (click windows known ahead: the grid's)."""
        return self.click_windows.known_ahead

    def start_preencoding(self, turns: Sequence[Turns] = ()) -> Preencoder:
        """Encode the grid windows in a background thread, nearest the body's centre first.

        The thread gives way to every request of this session (and of ``turns``, e.g. a server's
        compute gate): it encodes only while none waits or runs, abandons a window when one
        arrives unless that request needs this window, and stops when all windows are cached,
        when one more would not fit the memory budget (it never evicts), or at :meth:`close`.
        Calling it again while the thread runs returns the running one.

        Args:
            turns: further :class:`~voxelprompt.inference.preencode.Turns` every background
                window must be granted (the session's own requests always count).

        Returns:
            The :class:`~voxelprompt.inference.preencode.Preencoder` (``encoded``: windows done
            in order; ``stopped_by``: why it ended).

        Raises:
            VoxelPromptError: the session uses centred click windows (they depend on the clicks,
                so there is nothing to encode ahead).
        """
        if not self.can_preencode:
            raise VoxelPromptError("pre-encoding needs click_windows='grid' (centred windows follow the clicks)")
        if self.preencoder is not None and self.preencoder.alive:
            return self.preencoder
        padded, _ = pad_to_window(self.prepared.batch, self.segmenter.profile.roi_size)
        windows = {_window_key(w.slices): w for w in self.preencode_order(padded)}
        net = self._net

        def encode(key) -> None:
            region = (slice(None), slice(None), *windows[key].slices)
            with torch.no_grad():
                out, _ = net.encoder.encoder(padded[region], with_point=True, with_label=False)
                net.cache.put(key, net.point_head.head.encode(out))

        window_bytes = self._window_bytes()
        self.preencoder = Preencoder(
            keys=list(windows), encode=encode, cached=lambda key: key in net.cache.entries,
            fits=lambda: net.cache.stats.bytes + window_bytes <= net.cache.budget,
            modules=[net.encoder.encoder, net.point_head.head], turns=[self._turns, *turns],
            wanted=lambda: self._wanted,
        ).start()  # fmt: skip
        return self.preencoder

    def preencode_order(self, padded: torch.Tensor | None = None) -> list:
        """The sliding-grid windows (window-padded model space), nearest the body's centre first.

        The body is every voxel above -500 HU (the image's centre when there is none); distances
        are between window centres and the body's centroid, in model voxels.
        """
        roi = self.segmenter.profile.roi_size
        if padded is None:
            padded, _ = pad_to_window(self.prepared.batch, roi)
        image = padded[0, 0].detach().cpu()
        body = torch.nonzero(image > (-500.0 - HU_MIN) / (HU_MAX - HU_MIN)).double()
        shape = np.asarray(image.shape, dtype=np.float64)
        centre = body.mean(0).numpy() if len(body) else (shape - 1) / 2
        windows = window_grid(tuple(image.shape), roi, self.segmenter.profile.class_overlap)

        def distance(w) -> float:
            return float(np.linalg.norm(np.asarray([(s.start + s.stop - 1) / 2 for s in w.slices]) - centre))

        return sorted(windows, key=distance)  # stable: grid order between equal distances

    def _window_bytes(self) -> int:
        """Bytes of one window's cached point features (low-resolution features + positions)."""
        head = self._net.point_head.head.head
        size = math.prod(-(-r // 2) for r in self.segmenter.profile.roi_size)
        return 2 * head.transformer.embedding_dim * size * 4

    def stop_preencoding(self) -> None:
        """Stop the background thread (if any) and wait for it; cached windows stay."""
        if self.preencoder is not None:
            self.preencoder.stop()

    def close(self) -> None:
        """Stop pre-encoding and drop the caches (the session should not be used afterwards)."""
        self.stop_preencoding()
        self.reset()

    @contextlib.contextmanager
    def foreground(self, prompts: Prompts | None = None) -> Iterator[None]:
        """Announce a request for the ``with`` block: background pre-encoding gives way to it,
        finishing only a window this request needs (a server announces a request before it
        waits for its compute turn; :meth:`segment` announces itself)."""
        wanted = self._grid_keys(prompts) if prompts is not None else frozenset()
        previous = self._wanted
        self._wanted = previous | wanted
        try:
            with self._turns.request():
                yield
        finally:
            self._wanted = previous

    def _grid_keys(self, prompts: Prompts) -> frozenset:
        """Keys of the windows known ahead that ``prompts``' clicks are answered in (empty if none)."""
        if not self.click_windows.known_ahead or prompts.points is None:
            return frozenset()
        try:
            shape = tuple(int(s) for s in self.prepared.batch.shape[-3:])
            widths = pad_widths(shape, self.segmenter.profile.roi_size)
            padded_shape = tuple(n + b + a for n, (b, a) in zip(shape, widths))
            xyz = to_model_voxels(prompts.points.to_voxel(self.prepared.volume), self.prepared.image)
            xyz = xyz + np.asarray([b for b, _ in widths], dtype=np.float64)
            windows = self.click_windows.windows(padded_shape, xyz, self.segmenter.profile)
            return frozenset(_window_key(w.slices) for w in windows)
        except Exception:  # bad prompts: the request itself reports them
            return frozenset()

    # ---- prompts -------------------------------------------------------------------------

    @torch.no_grad()
    def segment(self, prompts: Prompts) -> Segmentation:
        """Same result as ``segmenter.segment_prepared`` with the session's click windows, reusing its caches.

        With ``edit_shown``, a click edit of a class starts from the class-prompt result this session
        last returned (see :class:`~voxelprompt.families.vista3d.inference.automatic.AutomaticMasks`): after
        an everything call, an edit of the liver costs only its clicked windows.
        """
        with self.foreground(prompts), self.segmenter.lock:
            return self.segmenter.segment_prepared(
                self.prepared, prompts, net=self._net, auto_cache=self._auto, click_windows=self.click_windows
            )

    def reset(self) -> None:
        """Drop cached logits and features (the pre-processed volume stays)."""
        with self.segmenter.lock:
            self._auto.clear()
            self._net.cache.clear()
