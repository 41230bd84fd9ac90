"""Zoom-out-zoom-in (SegVol paper, Sec. 2.4) and plain full sliding window, on a prepared image.

Zoom-out: the whole (cropped) image resized to one window (``nearest-exact``, as the reference),
one network pass, logits resized back (trilinear). Zoom-in: the bounding box of the coarse mask,
grown to at least one window, is tiled with sliding windows that carry the user's prompts mapped
into each window; their logits replace the coarse ones inside the ROI (back-fill). An empty coarse
mask ends the procedure with the coarse result.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from voxelprompt.families.segvol.inference.geometry import VoxelMap, resize_map, shift_map
from voxelprompt.families.segvol.inference.prompts import FramePrompts, UserPrompts, remap, to_frame
from voxelprompt.families.segvol.inference.windows import decode_window, sliding_window_logits
from voxelprompt.families.segvol.network import SegVol

__all__ = ["InferenceMode", "ZoomResult", "full_sliding_window", "roi_around", "zoom_out", "zoom_out_zoom_in"]

#: Logit given to voxels that no window evaluated in full sliding-window mode.
BACKGROUND_LOGIT = -20.0


class InferenceMode(str, enum.Enum):
    """How a volume larger than one window is covered."""

    ZOOM = "zoom"  # zoom-out-zoom-in (the paper's default)
    SLIDING = "sliding"  # sliding windows over the whole image
    ZOOM_OUT = "zoom-out"  # the coarse pass only (the paper's "resize" baseline)


@dataclass(frozen=True)
class ZoomResult:
    """Logits of one object on the prepared image's (D, H, W) grid.

    Args:
        logits: (D, H, W) float32 CPU tensor.
        windows: network passes, the coarse one included.
        roi: (lower, upper) inclusive corners of the zoom-in region, or None.
        window_starts: corners of the zoom-in (or sliding) windows that were run.
    """

    logits: torch.Tensor
    windows: int
    roi: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
    window_starts: tuple[tuple[int, int, int], ...] = ()


def roi_around(mask: np.ndarray, window: Sequence[int]) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """Inclusive bounding box of ``mask`` grown symmetrically to at least ``window`` per axis.

    The grown box is shifted to stay inside the array (not clipped, unlike the reference's
    ``logits2roi_coor``, so that it keeps a full window wherever the image is large enough);
    on axes shorter than a window it spans the whole axis. ``None`` for an empty mask.
    """
    idx = [np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in range(3)]
    if any(i.size == 0 for i in idx):
        return None
    lower, upper = [], []
    for i, w, size in zip(idx, window, mask.shape):
        lo, hi = int(i[0]), int(i[-1])
        grow = max(int(w) - (hi - lo + 1), 0)
        lo, hi = lo - grow // 2, hi + grow - grow // 2
        if lo < 0:
            lo, hi = 0, hi - lo
        if hi > size - 1:
            lo, hi = max(lo - (hi - size + 1), 0), size - 1
        lower.append(lo)
        upper.append(hi)
    return tuple(lower), tuple(upper)  # type: ignore[return-value]


def _text_embedding(model: SegVol, text: str | None) -> torch.Tensor | None:
    if text is None:
        return None
    with torch.no_grad():
        return model.encode_text([text])


def zoom_out(
    model: SegVol, image: torch.Tensor, prompts: FramePrompts, text_embedding: torch.Tensor | None
) -> torch.Tensor:
    """Coarse logits: ``image`` resized to one window, one pass, logits resized back.

    Args:
        image: (D, H, W) prepared image.
        prompts: prompts in ``image``'s voxels (mapped to the resized frame here).

    Returns:
        (D, H, W) float32 CPU logits on ``image``'s grid.
    """
    window = tuple(int(s) for s in model.image_size)
    shape = tuple(int(s) for s in image.shape)
    small = F.interpolate(image.float()[None, None], size=window, mode="nearest-exact")[0, 0]
    resized = remap(prompts, resize_map(shape, window), window, clip=True)
    logits = decode_window(model, small, resized, text_embedding).float().cpu()
    return F.interpolate(logits[None, None], size=shape, mode="trilinear", align_corners=False)[0, 0]


def zoom_out_zoom_in(
    model: SegVol,
    image: torch.Tensor,
    user: UserPrompts,
    voxel_map: VoxelMap,
    overlap: float = 0.5,
    zoom_in: bool = True,
    progress: bool = False,
) -> ZoomResult:
    """SegVol's zoom-out-zoom-in on a prepared image.

    Args:
        model: SegVol network.
        image: (D, H, W) prepared image (:func:`~voxelprompt.families.segvol.inference.preprocess.prepare_volume`).
        user: the object's checked prompts in input voxels.
        voxel_map: input voxel -> ``image`` voxel.
        overlap: sliding-window overlap inside the ROI (the reference uses 0.5).
        zoom_in: False stops after the coarse pass.
    """
    shape = tuple(int(s) for s in image.shape)
    prompts = to_frame(user, voxel_map, shape)
    text_embedding = _text_embedding(model, user.text)
    coarse = zoom_out(model, image, prompts, text_embedding)
    roi = roi_around((coarse > 0).numpy(), model.image_size) if zoom_in else None
    if roi is None:
        return ZoomResult(logits=coarse, windows=1)
    lo, hi = roi
    region = tuple(slice(a, b + 1) for a, b in zip(lo, hi))
    local = remap(prompts, shift_map(lo), tuple(b - a + 1 for a, b in zip(lo, hi)))
    fine, run = sliding_window_logits(
        model, image[region], local, text_embedding, overlap, (coarse[region] > 0).numpy(), progress
    )
    logits = coarse.clone()
    logits[region] = torch.where(torch.isnan(fine), coarse[region], fine)  # back-fill
    starts = tuple(tuple(int(s + o) for s, o in zip(start, lo)) for start in run.starts)
    return ZoomResult(logits=logits, windows=1 + run.count, roi=roi, window_starts=starts)  # type: ignore[arg-type]


def full_sliding_window(
    model: SegVol,
    image: torch.Tensor,
    user: UserPrompts,
    voxel_map: VoxelMap,
    overlap: float = 0.5,
    progress: bool = False,
) -> ZoomResult:
    """Sliding windows over the whole prepared image (the paper's comparison baseline).

    Windows where no prompt locates the object (no text, no part of the box, no positive point)
    are not run; voxels no window reached get background logits.
    """
    shape = tuple(int(s) for s in image.shape)
    prompts = to_frame(user, voxel_map, shape)
    fine, run = sliding_window_logits(model, image, prompts, _text_embedding(model, user.text), overlap, None, progress)
    logits = torch.nan_to_num(fine, nan=BACKGROUND_LOGIT)
    return ZoomResult(logits=logits, windows=run.count, window_starts=tuple(run.starts))
