"""SegVol inference: pre-processing, prompt mapping, zoom-out-zoom-in and the segmenter.

Layers, each usable alone: ``preprocess`` (CT -> normalized (D, H, W) frame and back),
``geometry`` (voxel maps), ``prompts`` (user prompts -> frame and window prompts), ``windows``
(stitching; the window grid is :mod:`voxelprompt.inference.sliding`'s), ``zoom`` (zoom-out-zoom-in,
full sliding window), ``segmenter`` (volume + prompts -> label map on the input grid), ``session``
(one volume, many prompts, cached encoders; imported on use), ``identify`` (rank class names for a mask).
"""

from __future__ import annotations

from voxelprompt.families.segvol.inference.identify import CategoryScore, Identification, default_categories, identify_mask
from voxelprompt.families.segvol.inference.preprocess import (
    NormalizedVolume,
    PreparedVolume,
    foreground_normalize,
    normalize_volume,
    prepare_volume,
)
from voxelprompt.families.segvol.inference.prompts import FramePrompts, UserPrompts, check_prompts
from voxelprompt.families.segvol.inference.segmenter import SegVolSegmenter
from voxelprompt.families.segvol.inference.zoom import InferenceMode, ZoomResult, full_sliding_window, zoom_out_zoom_in

__all__ = [
    "CategoryScore",
    "FramePrompts",
    "Identification",
    "InferenceMode",
    "NormalizedVolume",
    "PreparedVolume",
    "SegVolSegmenter",
    "UserPrompts",
    "ZoomResult",
    "check_prompts",
    "default_categories",
    "foreground_normalize",
    "full_sliding_window",
    "identify_mask",
    "normalize_volume",
    "prepare_volume",
    "zoom_out_zoom_in",
]
