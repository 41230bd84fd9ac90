"""Sliding windows for SegVol: prompt-aware stitching of window logits over a (D, H, W) region.

The window maths are the shared ones of :mod:`voxelprompt.inference.sliding` (re-exported here as
``window_starts`` and ``window_grid``): MONAI's ``dense_patch_slices`` grid (interval
``int(window * (1 - overlap))``, last window flush with the end), zero padding of an axis shorter
than a window split ``diff // 2`` before and the rest after, as the reference's inferer pads, and
constant-weight averaging of overlapping windows (the reference's ``BlendMode.CONSTANT``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from voxelprompt.families.segvol.inference.geometry import shift_map
from voxelprompt.families.segvol.inference.prompts import FramePrompts, remap, window_prompts
from voxelprompt.inference.sliding import OverlapAverage, pad_to_window, pad_widths, unpad
from voxelprompt.inference.sliding import axis_starts as window_starts
from voxelprompt.inference.sliding import grid_starts as window_grid
from voxelprompt.families.segvol.network import SegVol

__all__ = ["WindowRun", "decode_window", "sliding_window_logits", "window_grid", "window_starts"]


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
    padded, before = pad_to_window(image.float(), window)
    padded_mask = None if coarse_mask is None else np.pad(coarse_mask, pad_widths(shape, window))
    padded_prompts = remap(prompts, shift_map([-b for b in before]), padded.shape)
    average = OverlapAverage(padded.shape)
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
        average.add(region, decode_window(model, padded[region], local, text_embedding).float().cpu())
        run.starts.append(tuple(int(s - b) for s, b in zip(start, before)))  # type: ignore[arg-type]
    return unpad(average.result(), before, shape), run
