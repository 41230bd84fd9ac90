"""Sliding-window maths shared by every model family: the window grid, padding up to a window, averaging.

Integer functions on shapes, plus torch for padding, unpadding and averaging window outputs; axes are
the caller's ((D, H, W) for SegVol, (H, W, D) for VISTA3D): nothing here depends on their meaning.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

__all__ = ["OverlapAverage", "axis_starts", "grid_starts", "pad_to_window", "pad_widths", "scan_interval", "unpad"]


def _check_overlap(overlap: float) -> None:
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")


def scan_interval(window: int, overlap: float) -> int:
    """Step between neighbouring window starts: ``int(window * (1 - overlap))``, at least 1 (MONAI's rule).

    Raises:
        ValueError: ``overlap`` outside [0, 1) or a window below one voxel.
    """
    _check_overlap(overlap)
    if int(window) < 1:
        raise ValueError(f"window must be at least one voxel, got {window}")
    return max(int(int(window) * (1.0 - overlap)), 1)


def axis_starts(size: int, window: int, overlap: float) -> list[int]:
    """First voxel of every window along one axis, ascending; the last window ends flush with the axis.

    MONAI's ``dense_patch_slices`` along one axis: starts ``0, interval, 2 * interval, ...`` until a
    window reaches the end, that one moved back to end at ``size``. An axis no longer than a window
    (``size <= window``) gets one window at 0, the axis being padded up to it
    (:func:`pad_to_window`).

    Args:
        size: voxels along the axis.
        window: window length along the axis.
        overlap: fraction of a window shared with its neighbour, in [0, 1).

    Raises:
        ValueError: ``overlap`` outside [0, 1) or a window below one voxel.
    """
    interval = scan_interval(window, overlap)
    size, window = int(size), int(window)
    if size <= window:
        return [0]
    steps = -(-(size - window) // interval)  # ceil: the first step whose window reaches the end
    return [min(i * interval, size - window) for i in range(steps + 1)]


def grid_starts(shape: Sequence[int], window: Sequence[int], overlap: float) -> list[tuple[int, ...]]:
    """Start corners of all windows tiling ``shape``, first axis outermost (MONAI's order).

    Args:
        shape: the region's size per axis; axes shorter than the window count as padded up to it.
        window: window size per axis (same axis order).
        overlap: fraction of a window shared with its neighbour, in [0, 1), on every axis.

    Returns:
        One tuple of start indices per window, in the region's (padded) frame.
    """
    if len(shape) != len(window):
        raise ValueError(f"shape {tuple(shape)} and window {tuple(window)} have different numbers of axes")
    axes = [axis_starts(s, w, overlap) for s, w in zip(shape, window)]
    return [tuple(c) for c in itertools.product(*axes)]


def pad_widths(shape: Sequence[int], window: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) zero padding per axis that brings ``shape`` up to ``window``.

    MONAI's inferers split a shortfall ``diff`` as ``diff // 2`` before and the rest after; axes at
    least a window long get ``(0, 0)``. The list is in ``shape``'s axis order, as ``numpy.pad``
    takes it.
    """
    if len(shape) != len(window):
        raise ValueError(f"shape {tuple(shape)} and window {tuple(window)} have different numbers of axes")
    diffs = [max(int(w) - int(s), 0) for s, w in zip(shape, window)]
    return [(d // 2, d - d // 2) for d in diffs]


def pad_to_window(
    tensor: torch.Tensor, window: Sequence[int], value: float = 0.0
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Pad the last ``len(window)`` axes of ``tensor`` up to ``window`` (see :func:`pad_widths`).

    Args:
        tensor: [..., *spatial] (e.g. [B, C, H, W, D] or (D, H, W)).
        window: window size of the spatial axes.
        value: what the padding holds.

    Returns:
        The padded tensor (``tensor`` itself when no axis is short) and the padding added before
        each spatial axis, for :func:`unpad`.
    """
    widths = pad_widths(tuple(tensor.shape[-len(window) :]), window)
    before = tuple(b for b, _ in widths)
    if not any(b or a for b, a in widths):
        return tensor, before
    pads = [p for b, a in reversed(widths) for p in (b, a)]  # torch lists the last axis first
    return torch.nn.functional.pad(tensor, pads, mode="constant", value=value), before


def unpad(tensor: torch.Tensor, before: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Cut the last ``len(shape)`` axes of a padded ``tensor`` back to ``shape`` (a view).

    Args:
        tensor: [..., *padded spatial].
        before: padding before each spatial axis (from :func:`pad_to_window`).
        shape: the spatial size before padding.
    """
    return tensor[(..., *(slice(int(b), int(b) + int(s)) for b, s in zip(before, shape)))]


class OverlapAverage:
    """Constant-weight average of overlapping window outputs (MONAI's ``BlendMode.CONSTANT``).

    Args:
        shape: shape of the whole output (window outputs are added into slices of it).
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.total = torch.zeros(tuple(int(s) for s in shape), dtype=torch.float32)
        self.count = torch.zeros_like(self.total)

    def add(self, region: tuple[slice, ...], values: torch.Tensor) -> None:
        """Add one window's float32 CPU ``values``, shaped like ``total[region]``."""
        self.total[region] += values
        self.count[region] += 1.0

    def result(self) -> torch.Tensor:
        """The average, NaN where no window was added."""
        return torch.where(self.count > 0, self.total / self.count.clamp(min=1.0), torch.nan)
