"""Sliding windows for SegVol: the window grid (pure functions) and prompt-aware stitching.

The grid follows MONAI's ``dense_patch_slices`` (interval ``int(window * (1 - overlap))``, last
window flush with the end); a region smaller than a window on some axis is zero-padded, split
``diff // 2`` before and the rest after, as the reference's inferer pads. Overlapping windows are
averaged with constant weights (the reference's ``BlendMode.CONSTANT``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voxelprompt.inference.segvol.geometry import shift_map
from voxelprompt.inference.segvol.prompts import FramePrompts, remap, window_prompts
from voxelprompt.models.segvol import SegVol

__all__ = ["WindowRun", "decode_window", "sliding_window_logits", "window_grid", "window_starts"]


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start indices of windows of length ``window`` covering ``size`` voxels (``size >= window``)."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if size <= window:
        return [0]
    interval = max(int(window * (1.0 - overlap)), 1)
    count = int(np.ceil((size - window) / interval)) + 1
    return sorted({min(i * interval, size - window) for i in range(count)})


def window_grid(shape: Sequence[int], window: Sequence[int], overlap: float) -> list[tuple[int, int, int]]:
    """Start corners (d, h, w) of all windows tiling ``shape`` (each axis padded up to ``window``)."""
    axes = [window_starts(max(int(s), int(w)), int(w), overlap) for s, w in zip(shape, window)]
    return [tuple(c) for c in itertools.product(*axes)]  # type: ignore[misc]


@dataclass
class WindowRun:
    """Bookkeeping of one sliding-window pass.

    Args:
        starts: window corners that were evaluated, in the frame the windows tile (unpadded;
            negative where a small axis was padded).
        skipped: windows left out because nothing in them locates the object.
    """

    starts: list[tuple[int, int, int]]
    skipped: int = 0

    @property
    def count(self) -> int:
        return len(self.starts)


@torch.no_grad()
def decode_window(
    model: SegVol, window: torch.Tensor, prompts: FramePrompts, text_embedding: torch.Tensor | None
) -> torch.Tensor:
    """Logits of one object in one window.

    Args:
        model: SegVol network.
        window: (D, H, W) normalized image of exactly the model's window size.
        prompts: the object's prompts in this window's (d, h, w) voxels.
        text_embedding: (1, C) embedding of ``prompts.text``, or None.

    Returns:
        (D, H, W) float32 logits on the model's device.
    """
    device = model.device
    points = labels = boxes = None
    if len(prompts.points):
        points = torch.as_tensor(prompts.points, dtype=torch.float32, device=device)[None]
        labels = torch.as_tensor(prompts.labels, dtype=torch.float32, device=device)[None]
    if prompts.box is not None:
        boxes = torch.as_tensor(prompts.box, dtype=torch.float32, device=device)[None]
    embedding = model.encode_image(window.to(device=device, dtype=torch.float32)[None, None])
    logits = model.decode(embedding, points=points, point_labels=labels, boxes=boxes, text_embedding=text_embedding)
    return logits[0, 0]


def sliding_window_logits(
    model: SegVol,
    image: torch.Tensor,
    prompts: FramePrompts,
    text_embedding: torch.Tensor | None,
    overlap: float = 0.5,
    coarse_mask: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, WindowRun]:
    """Stitch window logits over ``image``; windows with no locating prompt are not run.

    Args:
        model: SegVol network (its window size is ``model.image_size``).
        image: (D, H, W) normalized region to tile (on any device).
        prompts: the object's prompts in ``image``'s voxels.
        text_embedding: (1, C) or None.
        overlap: fraction of a window shared with its neighbour.
        coarse_mask: bool (D, H, W) zoom-out mask of the region (see :func:`window_prompts`).
        progress: show a progress bar.

    Returns:
        (D, H, W) float32 logits on the CPU, NaN where no evaluated window reached, and the run.
    """
    window = tuple(int(s) for s in model.image_size)
    shape = tuple(int(s) for s in image.shape)
    diffs = [max(w - s, 0) for w, s in zip(window, shape)]
    before = [d // 2 for d in diffs]
    padded = torch.nn.functional.pad(image.float(), [p for d, b in zip(diffs[::-1], before[::-1]) for p in (b, d - b)])
    padded_mask = None
    if coarse_mask is not None:
        padded_mask = np.pad(coarse_mask, [(b, d - b) for d, b in zip(diffs, before)])
    padded_prompts = remap(prompts, shift_map([-b for b in before]), padded.shape)
    total = torch.zeros(padded.shape, dtype=torch.float32)
    count = torch.zeros(padded.shape, dtype=torch.float32)
    run = WindowRun(starts=[])
    starts = window_grid(padded.shape, window, overlap)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="SegVol windows", leave=False)
    for start in starts:
        region = tuple(slice(s, s + w) for s, w in zip(start, window))
        local_mask = None if padded_mask is None else padded_mask[region]
        local = window_prompts(padded_prompts, start, window, local_mask)
        if local is None:
            run.skipped += 1
            continue
        logits = decode_window(model, padded[region], local, text_embedding).float().cpu()
        total[region] += logits
        count[region] += 1.0
        run.starts.append(tuple(int(s - b) for s, b in zip(start, before)))  # type: ignore[arg-type]
    stitched = torch.where(count > 0, total / count.clamp(min=1.0), torch.full_like(total, float("nan")))
    return stitched[tuple(slice(b, b + s) for b, s in zip(before, shape))], run
