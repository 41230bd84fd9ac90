"""Stitch sliding-window class logits into a label map without full-volume logit maps.

MONAI's sliding-window inferer keeps one float map per prompted class over the whole volume (117
maps in everything mode: 94 GB for a 512x512x768 grid). Here the volume is cut into the cells that
the window borders define; each cell is covered by a fixed set of windows, so its running sum lives
only from its first covering window to its last one, and is then turned into class indices (the
same average-then-argmax rule as MONAI's stitching and ``VistaPostTransformd``). Windows are taken
slab by slab along one axis, so the open cells are at most a window-deep slab of the volume.

:class:`RunningArgmax` is the cheaper approximate rule of the fast mode: per voxel, the class of the
highest logit seen in any window (no averaging), kept as a float plus the label.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voxelprompt.inference.sliding import grid_starts

__all__ = ["Window", "window_grid", "CellStitcher", "RunningArgmax", "labels_from_scores", "slab_order"]


@dataclass(frozen=True)
class Window:
    """One sliding window: ``start`` (H, W, D) voxel of its corner and ``size``, in the padded grid."""

    start: tuple[int, int, int]
    size: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(s, s + n) for s, n in zip(self.start, self.size))  # type: ignore[return-value]


def window_grid(shape: Sequence[int], roi: Sequence[int], overlap: float) -> list[Window]:
    """The windows MONAI's ``sliding_window_inference`` evaluates, in its order (first axis outermost).

    The grid is :func:`voxelprompt.inference.sliding.grid_starts` (MONAI's ``dense_patch_slices``).

    Args:
        shape: (H, W, D) of the image after padding to at least ``roi``.
        roi: window size.
        overlap: fraction of a window shared with its neighbour, in [0, 1).

    Raises:
        ValueError: ``overlap`` outside [0, 1), or an image smaller than ``roi`` (pad it first).
    """
    if any(int(s) < int(r) for s, r in zip(shape, roi)):
        raise ValueError(f"image {tuple(shape)} is smaller than the window {tuple(roi)}; pad it first")
    size = tuple(int(r) for r in roi)
    return [Window(start=start, size=size) for start in grid_starts(shape, size, overlap)]  # type: ignore[arg-type]


def slab_order(windows: Sequence[Window], shape: Sequence[int]) -> list[Window]:
    """Windows ordered along the image's longest axis first, which keeps the fewest cells open."""
    axis = int(np.argmax(shape))
    return sorted(windows, key=lambda w: (w.start[axis], w.start))


def labels_from_scores(scores: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Class indices from averaged logits, VISTA3D's rule: the best class if its logit is > 0.

    Args:
        scores: [..., K] averaged logits (classes last).
        classes: [K] class index of each column.

    Returns:
        [...] class indices, 0 for background (every logit <= 0), in ``classes``' dtype.
    """
    best, index = scores.max(dim=-1)  # first maximum on ties, like argmax
    labels = classes[index]
    labels[~(best > 0)] = 0
    return labels


class CellStitcher:
    """Average overlapping windows cell by cell and write class indices as soon as a cell is final.

    Args:
        shape: (H, W, D) padded image grid.
        windows: every window that will be added, in the order they will be added.
        classes: the K prompted class indices (column order of the logits).
        weight: optional (h, w, d) importance map (gaussian blending); None for constant blending.
        out: optional label volume to write into (default: a new int16 volume of ``shape``).
    """

    def __init__(
        self,
        shape: Sequence[int],
        windows: Sequence[Window],
        classes: Sequence[int],
        weight: torch.Tensor | None = None,
        out: torch.Tensor | None = None,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.windows = list(windows)
        self.classes = torch.as_tensor(list(classes), dtype=torch.int16)
        self.weight = weight
        self.labels = out if out is not None else torch.zeros(self.shape, dtype=torch.int16)
        # Cell edges per axis: every window start and stop.
        self.edges = [
            sorted({0, n} | {w.start[a] for w in self.windows} | {w.start[a] + w.size[a] for w in self.windows})
            for a, n in enumerate(self.shape)
        ]
        self._cells_of = [self._cell_ranges(w) for w in self.windows]
        self._last: dict[tuple[int, int, int], int] = {}
        for i, cells in enumerate(self._cells_of):
            for cell in itertools.product(*cells):
                self._last[cell] = i
        self._open: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._next = 0
        self.peak_open_bytes = 0

    def _cell_ranges(self, w: Window) -> list[range]:
        ranges = []
        for a in range(3):
            lo = self.edges[a].index(w.start[a])
            hi = self.edges[a].index(w.start[a] + w.size[a])
            ranges.append(range(lo, hi))
        return ranges

    def _cell_slices(self, cell: tuple[int, int, int]) -> tuple[slice, ...]:
        return tuple(slice(self.edges[a][c], self.edges[a][c + 1]) for a, c in enumerate(cell))

    @property
    def open_bytes(self) -> int:
        return sum(s.numel() * s.element_size() + c.numel() * c.element_size() for s, c in self._open.values())

    def add(self, window: Window, logits: torch.Tensor) -> None:
        """Add one window's logits, [h, w, d, K] (classes last), in the announced order."""
        if self._next >= len(self.windows) or window != self.windows[self._next]:
            raise ValueError(f"window {window} added out of the announced order")
        index = self._next
        self._next += 1
        weight = None if self.weight is None else self.weight.to(logits.dtype)
        for cell in itertools.product(*self._cells_of[index]):
            region = self._cell_slices(cell)
            local = tuple(slice(r.start - s, r.stop - s) for r, s in zip(region, window.start))
            part = logits[local]
            w = None if weight is None else weight[local][..., None]
            if cell in self._open:
                total, count = self._open[cell]
                total += part if w is None else part * w
                count += 1.0 if w is None else w
            else:
                total = part.clone() if w is None else part * w
                count = torch.ones((1, 1, 1, 1), dtype=logits.dtype) if w is None else w.clone()
                self._open[cell] = (total, count)
            if self._last[cell] == index:
                total, count = self._open.pop(cell)
                self.labels[region] = labels_from_scores(total / count, self.classes)
        self.peak_open_bytes = max(self.peak_open_bytes, self.open_bytes)

    def result(self) -> torch.Tensor:
        """The label volume (H, W, D); every window must have been added."""
        if self._next != len(self.windows):
            raise RuntimeError(f"{len(self.windows) - self._next} windows were not added")
        return self.labels


class RunningArgmax:
    """Fast-mode stitching: per voxel, the class of the highest logit over all windows seen.

    Args:
        shape: (H, W, D) grid.
        classes: the K prompted class indices.
    """

    def __init__(self, shape: Sequence[int], classes: Sequence[int]) -> None:
        self.classes = torch.as_tensor(list(classes), dtype=torch.int16)
        self.best = torch.full(tuple(int(s) for s in shape), float("-inf"), dtype=torch.float32)
        self.labels = torch.zeros(tuple(int(s) for s in shape), dtype=torch.int16)

    def add(self, window: Window, logits: torch.Tensor) -> None:
        """Take one window's logits, [h, w, d, K] (classes last)."""
        value, index = logits.max(dim=-1)
        best = self.best[window.slices]
        better = value > best
        best[better] = value[better].to(best.dtype)
        labels = self.labels[window.slices]
        labels[better] = torch.where(value[better] > 0, self.classes[index[better]], 0).to(labels.dtype)

    def result(self) -> torch.Tensor:
        return self.labels
