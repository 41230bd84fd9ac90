"""The SegVol segmenter: load a model once, segment many volumes with text, box and point prompts."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import numpy as np
import torch

from voxelprompt.errors import VoxelPromptError
from voxelprompt.inference.segvol.preprocess import PreparedVolume, prepare_volume
from voxelprompt.inference.segvol.prompts import UserPrompts, check_prompts
from voxelprompt.inference.segvol.zoom import InferenceMode, ZoomResult, full_sliding_window, zoom_out_zoom_in
from voxelprompt.models.segvol import SegVol, build_segvol
from voxelprompt.types import Prompts, Segmentation, Volume

__all__ = ["SegVolSegmenter"]

logger = logging.getLogger(__name__)


class SegVolSegmenter:
    """Segments one object per call with a SegVol network; results lie on the input's grid.

    Args:
        model: a SegVol network (any window size; the released one takes 32x256x256).
        device: torch device for the network.
        mode: ``"zoom"`` (zoom-out-zoom-in, default), ``"sliding"`` (full sliding window) or
            ``"zoom-out"`` (coarse pass only).
        overlap: sliding-window overlap (the reference uses 0.5).
        crop_foreground: crop to the body before inference, as the reference does.
        progress: show a progress bar over windows.
    """

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

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs) -> SegVolSegmenter:
        """Load a SegVol v1 checkpoint (``SegVol_v1.pth`` or the HF ``pytorch_model.bin``) strictly."""
        return cls(build_segvol(path, device=device), device=device, **kwargs)

    def prepare(self, volume: Volume, anchors: Sequence[np.ndarray] = ()) -> PreparedVolume:
        """Normalize ``volume`` into SegVol's frame; the foreground crop keeps ``anchors``.

        Args:
            anchors: (N, 3) arrays of input voxel coordinates (prompts, a mask's corners).
        """
        return prepare_volume(volume, crop_foreground=self.crop_foreground, keep=anchors)

    def logits(self, volume: Volume, prompts: Prompts) -> tuple[PreparedVolume, UserPrompts, ZoomResult]:
        """Object logits on the prepared (D, H, W) grid, with the frame and checked prompts."""
        user = check_prompts(prompts, volume)
        prepared = self.prepare(volume, user.anchors())
        image = torch.from_numpy(prepared.image)
        with torch.no_grad():
            if self.mode is InferenceMode.SLIDING:
                result = full_sliding_window(self.model, image, user, prepared.voxel_map, self.overlap, self.progress)
            else:
                result = zoom_out_zoom_in(
                    self.model,
                    image,
                    user,
                    prepared.voxel_map,
                    self.overlap,
                    zoom_in=self.mode is InferenceMode.ZOOM,
                    progress=self.progress,
                )
        return prepared, user, result

    def segment(self, volume: Volume, prompts: Prompts, label_value: int | None = None) -> Segmentation:
        """Segment one object; the label map has the input's exact shape and affine.

        Args:
            volume: CT in Hounsfield units, (I, J, K) on disk order (see :mod:`voxelprompt.types`).
            prompts: ``text`` (any class name, CLIP-encoded; a single VISTA3D class index in
                ``classes`` stands for its catalog name), ``box`` and/or ``points`` in input voxel
                indices or RAS+ mm, in any combination.
            label_value: value written for the object; by default the VISTA3D class index when
                the text is a catalog name, else 1.
        """
        start = time.perf_counter()
        prepared, user, result = self.logits(volume, prompts)
        value = user.label_value if label_value is None else int(label_value)
        dtype = np.uint8 if 0 <= value < 256 else np.int16
        mask = (result.logits > 0).numpy().astype(dtype) * dtype(value)
        labels = volume.with_array(prepared.to_input(mask), source=f"SegVol segmentation of {volume.source}")
        seconds = time.perf_counter() - start
        logger.info(
            "segmented %s with SegVol (%s): %d windows in %.1f s",
            volume.source,
            self.mode.value,
            result.windows,
            seconds,
        )
        extras: dict[str, float] = {"zoom_in_windows": float(len(result.window_starts))}
        if result.roi is not None:
            extras["roi_voxels"] = float(np.prod([b - a + 1 for a, b in zip(*result.roi)]))
        return Segmentation(labels=labels, classes=(value,), windows=result.windows, seconds=seconds, extras=extras)
