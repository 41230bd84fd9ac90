"""The SegVol segmenter: load a model once, segment many volumes with text, box and point prompts.

It implements :class:`voxelprompt.inference.protocol.Segmenter` (prepare once, many prompts,
interactive sessions, one re-entrant lock per segmenter) and the registry's :func:`load`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from voxelprompt.catalog.learnt import segvol_learnt
from voxelprompt.errors import CheckpointError, InputError, PromptError, VoxelPromptError
from voxelprompt.imageio.validate import check_mask_grid
from voxelprompt.families.segvol.inference.identify import Identification, identify_mask
from voxelprompt.families.segvol.inference.preprocess import NormalizedVolume, PreparedVolume, normalize_volume
from voxelprompt.families.segvol.inference.prompts import UserPrompts, check_prompts
from voxelprompt.request import ensure_checked
from voxelprompt.families.segvol.inference.zoom import InferenceMode, ZoomResult, full_sliding_window, zoom_out_zoom_in
from voxelprompt.families.segvol.network import SegVol, build_segvol
from voxelprompt.types import Prompts, Segmentation, Volume

if TYPE_CHECKING:
    from voxelprompt.families.segvol.options import SegVolOptions
    from voxelprompt.families.segvol.inference.session import SegVolSession

__all__ = ["SegVolSegmenter", "load"]

logger = logging.getLogger(__name__)


class SegVolSegmenter:
    """Segments one object per call with a SegVol network; results lie on the input's grid.

    Implements :class:`voxelprompt.inference.protocol.Segmenter`: every call takes :attr:`lock`
    (re-entrant), so threads sharing a segmenter take turns.

    Args:
        model: a SegVol network (any window size; the released one takes 32x256x256).
        device: torch device for the network.
        mode: ``"zoom"`` (zoom-out-zoom-in, default), ``"sliding"`` (full sliding window) or
            ``"zoom-out"`` (coarse pass only).
        overlap: sliding-window overlap (the reference uses 0.5).
        crop_foreground: crop to the body before inference, as the reference does.
        progress: show a progress bar over windows.

    Raises:
        VoxelPromptError: an unknown mode or an overlap outside [0, 1).
    """

    family = "segvol"
    #: SegVol reads class names as free text (CLIP): no closed set of learnt classes to check.
    learnt = segvol_learnt()
    #: No SegVol weights ship with the package, so none is a demo model.
    demo = False

    def __init__(
        self,
        model: SegVol,
        device: str | torch.device = "cpu",
        mode: str | InferenceMode = InferenceMode.ZOOM,
        overlap: float = 0.5,
        crop_foreground: bool = True,
        progress: bool = False,
    ) -> None:
        if not 0.0 <= overlap < 1.0:
            raise VoxelPromptError(f"overlap must be in [0, 1), got {overlap}")
        try:
            self.mode = InferenceMode(mode)
        except ValueError:
            choices = ", ".join(m.value for m in InferenceMode)
            raise VoxelPromptError(f"unknown SegVol mode {mode!r}; choose one of {choices}") from None
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.overlap = overlap
        self.crop_foreground = crop_foreground
        self.progress = progress
        self.lock = threading.RLock()

    @property
    def network(self) -> SegVol:
        """The loaded SegVol network."""
        return self.model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs) -> SegVolSegmenter:
        """Load a SegVol v1 checkpoint (``SegVol_v1.pth`` or the HF ``pytorch_model.bin``) strictly."""
        return cls(build_segvol(path, device=device), device=device, **kwargs)

    def prepare(self, volume: Volume) -> NormalizedVolume:
        """Pre-process ``volume`` once (normalization, (D, H, W) frame, body box) for several
        :meth:`segment_prepared` calls; only the cheap crop that keeps each call's prompts is left.

        Args:
            volume: CT in Hounsfield units, (I, J, K) on disk order (see :mod:`voxelprompt.types`).
        """
        with self.lock:
            return normalize_volume(volume, crop_foreground=self.crop_foreground)

    def logits(self, volume: Volume, prompts: Prompts) -> tuple[PreparedVolume, UserPrompts, ZoomResult]:
        """Object logits before thresholding, for callers that need more than labels.

        Args:
            volume: CT in Hounsfield units, (I, J, K) on disk order.
            prompts: as for :meth:`segment`.

        Returns:
            The cropped (D, H, W) frame (its ``to_input`` maps arrays back to the input grid), the
            checked prompts in input voxels, and the (D, H, W) float32 logits on that frame.
        """
        with self.lock:
            return self._logits(self.prepare(volume), prompts, self.model)

    def _logits(
        self, prepared: NormalizedVolume, prompts: Prompts, model: SegVol
    ) -> tuple[PreparedVolume, UserPrompts, ZoomResult]:
        user = check_prompts(prompts, prepared.volume)
        cropped = prepared.crop(user.anchors())
        image = torch.from_numpy(cropped.image)
        with torch.no_grad():
            if self.mode is InferenceMode.SLIDING:
                result = full_sliding_window(model, image, user, cropped.voxel_map, self.overlap, self.progress)
            else:
                result = zoom_out_zoom_in(
                    model,
                    image,
                    user,
                    cropped.voxel_map,
                    self.overlap,
                    zoom_in=self.mode is InferenceMode.ZOOM,
                    progress=self.progress,
                )
        return cropped, user, result

    def segment(self, volume: Volume, prompts: Prompts) -> Segmentation:
        """Segment one object; the label map has the input's exact shape and affine.

        Args:
            volume: CT in Hounsfield units, (I, J, K) on disk order (see :mod:`voxelprompt.types`).
            prompts: ``text`` (any class name, CLIP-encoded; a single VISTA3D class index in
                ``classes`` stands for its catalog name), ``box`` and/or ``points`` in input voxel
                indices or RAS+ mm, in any combination. ``label_value`` is the value written for
                the object; None: the VISTA3D class index when the text is a catalog name, else 1.

        Returns:
            Labels holding 0 and the object's value (uint8, or int16 above 255).

        Raises:
            PromptError: prompts SegVol cannot answer (``everything``, ``new_structure``), bad
                or missing prompts (see :func:`~voxelprompt.families.segvol.inference.prompts.check_prompts`).
        """
        with self.lock:
            start = time.perf_counter()  # after the lock: seconds count this call's own work
            prompts = ensure_checked(prompts, self.family, volume)  # fail fast, before pre-processing (trusted once checked)
            return self._segment(self.prepare(volume), prompts, self.model, start)

    def segment_prepared(
        self, prepared: NormalizedVolume, prompts: Prompts, *, model: SegVol | None = None
    ) -> Segmentation:
        """:meth:`segment` on the result of :meth:`prepare`; the labels are identical.

        Args:
            prepared: from :meth:`prepare` (it is not changed, so it serves any number of calls).
            prompts: as for :meth:`segment`, on ``prepared.volume``.
            model: the network to run, default :attr:`model`; an interactive session passes its
                caching view of it (:class:`~voxelprompt.families.segvol.inference.session.SegVolSession`).
        """
        with self.lock:
            return self._segment(prepared, prompts, self.model if model is None else model, time.perf_counter())

    def _segment(self, prepared: NormalizedVolume, prompts: Prompts, model: SegVol, start: float) -> Segmentation:
        cropped, user, result = self._logits(prepared, prompts, model)
        value = user.label_value
        dtype = np.uint8 if value < 256 else np.int16
        mask = (result.logits > 0).numpy().astype(dtype) * dtype(value)
        volume = prepared.volume
        labels = volume.with_array(cropped.to_input(mask), source=f"SegVol segmentation of {volume.source}")
        seconds = time.perf_counter() - start
        mode = self.mode.value
        logger.info("segmented %s with SegVol (%s): %d windows in %.1f s", volume.source, mode, result.windows, seconds)
        extras: dict[str, float] = {"zoom_in_windows": float(len(result.window_starts))}
        if result.roi is not None:
            extras["roi_voxels"] = float(np.prod([b - a + 1 for a, b in zip(*result.roi)]))
        return Segmentation(labels=labels, classes=(value,), windows=result.windows, seconds=seconds, extras=extras)

    def open_session(self, volume: Volume, memory_budget_mb: float = 4096) -> SegVolSession:
        """An interactive session on ``volume``: pre-processed once, encoder outputs and text
        embeddings cached under ``memory_budget_mb`` (see
        :class:`~voxelprompt.families.segvol.inference.session.SegVolSession`)."""
        from voxelprompt.families.segvol.inference.session import SegVolSession

        return SegVolSession(self, volume, memory_budget_mb=memory_budget_mb)

    def identify(
        self, volume: Volume, mask: np.ndarray | Volume, categories: Sequence[str] | None = None
    ) -> Identification:
        """Rank class names for a mask (SegVol paper, Fig. 5).

        Args:
            volume: CT in Hounsfield units, (I, J, K) on disk order.
            mask: (I, J, K) bool or integer array on ``volume``'s grid, or a :class:`Volume` on
                it; every non-zero voxel counts.
            categories: names to score; default: the VISTA3D catalog names.

        Returns:
            The categories ranked by probability (see :func:`~voxelprompt.families.segvol.inference.identify.identify_mask`).

        Raises:
            InputError: a mask of another shape, or a mask volume with another affine.
            PromptError: an empty mask, or fewer than two categories.
        """
        with self.lock:
            if isinstance(mask, Volume):
                check_mask_grid(mask, volume)
                mask = mask.array
            selected = np.asarray(mask) != 0
            if selected.shape != volume.shape:
                raise InputError(
                    f"mask of shape {selected.shape} is not on the grid of {volume.source} (shape {volume.shape})"
                )
            if not selected.any():
                raise PromptError("the mask is empty: nothing to identify")
            where = np.argwhere(selected)
            corners = np.stack([where.min(0), where.max(0)]).astype(np.float64)  # keep the mask inside the crop
            prepared = self.prepare(volume).crop([corners])
            return identify_mask(self.model, prepared, prepared.from_input(selected), categories)


def load(
    checkpoint: str | os.PathLike | None,
    device: str | torch.device = "cpu",
    options: SegVolOptions | None = None,
    progress: bool = False,
) -> SegVolSegmenter:
    """The registry's loader (:data:`voxelprompt.families.FAMILIES`).

    Args:
        checkpoint: ``SegVol_v1.pth`` or the Hugging Face ``pytorch_model.bin``; None fails, as no
            SegVol weights are shipped.
        device: a torch device (already resolved: ``cpu``, ``cuda``, ``cuda:N``).
        options: :class:`voxelprompt.families.SegVolOptions` (mode, overlap); None: the defaults.
        progress: show progress bars over windows.

    Raises:
        CheckpointError: no checkpoint, or one that is unreadable or of another architecture.
    """
    from voxelprompt.families import get_family
    from voxelprompt.families.segvol.options import SegVolOptions

    if checkpoint is None:
        raise CheckpointError(get_family("segvol").missing_checkpoint)
    options = SegVolOptions() if options is None else options
    return SegVolSegmenter.from_checkpoint(
        checkpoint, device=device, mode=options.mode, overlap=options.overlap, progress=progress
    )
