"""Stitch sliding-window class scores into a label map without full-volume maps.

MONAI's sliding-window inferer keeps one float map per prompted class over the whole volume (117
maps in everything mode: 94 GB for a 512x512x768 grid). Here the volume is cut into the cells that
the window borders define; each cell is covered by a fixed set of windows, so its running sum lives
only from its first covering window to its last one, and is then turned into class indices (the
same average-then-argmax rule as MONAI's stitching and ``VistaPostTransformd``). Windows are taken
slab by slab along one axis (:func:`slab_order`), so the open cells are about one overlap-deep
slice of the volume.

What is summed can be the K class logits or, with a ``head``, the C features the logits are made
from: VISTA3D's class head is linear (``logits = E @ f`` per voxel, no bias after the product;
MONAI ``ClassMappingClassify.forward``), so the weighted average of ``f`` times ``E`` equals the
weighted average of the logits up to float summation order, at C = 48 numbers per voxel instead of
K = 117.

:class:`RunningArgmax` is the cheaper approximate rule of the fast mode: per voxel, the class of the
highest logit seen in any window (no averaging), kept as a float plus the label.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voxelprompt.inference.allocator import mapped_empty
from voxelprompt.inference.sliding import grid_starts

__all__ = [
    "Window",
    "window_grid",
    "CellStitcher",
    "RunningArgmax",
    "labels_from_scores",
    "label_dtype",
    "slab_order",
]

#: Rows of averaged features turned into class scores at a time when a cell is finished (bounds the
#: [rows, K] float transient to 30 MB for K = 117).
FINISH_ROWS = 2**16


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


def _cut_edges(shape: Sequence[int], windows: Sequence[Window]) -> list[list[int]]:
    """Cell edges per axis: 0, the axis length, and every window start and stop."""
    return [
        sorted({0, int(n)} | {w.start[a] for w in windows} | {w.start[a] + w.size[a] for w in windows})
        for a, n in enumerate(shape)
    ]


def _cells_of(window: Window, edges: list[list[int]]) -> list[tuple[int, int, int]]:
    """Indices of the cells that ``window`` covers."""
    ranges = [range(edges[a].index(window.start[a]), edges[a].index(window.start[a] + window.size[a])) for a in range(3)]
    return list(itertools.product(*ranges))  # type: ignore[arg-type]


def open_voxels(windows: Sequence[Window], shape: Sequence[int]) -> list[int]:
    """Voxels in open cells of a :class:`CellStitcher` fed ``windows`` in this order, per window.

    Entry ``i`` counts what is open while window ``i`` is added (its own cells included), the most
    the stitcher holds at that step; times (C + 1) x 4 bytes it is the float memory for C summed
    channels. Pure bookkeeping: no tensor is made.
    """
    edges = _cut_edges(shape, windows)
    covering = [_cells_of(w, edges) for w in windows]
    last = {cell: i for i, cells in enumerate(covering) for cell in cells}

    def size(cell: tuple[int, int, int]) -> int:
        return int(np.prod([edges[a][c + 1] - edges[a][c] for a, c in enumerate(cell)]))

    held, opened, counts = 0, set(), []
    for i, cells in enumerate(covering):
        for cell in cells:
            if cell not in opened:
                opened.add(cell)
                held += size(cell)
        counts.append(held)
        held -= sum(size(cell) for cell in cells if last[cell] == i)
    return counts


def slab_order(windows: Sequence[Window], shape: Sequence[int]) -> list[Window]:
    """Windows in an order that keeps few cells open: slab by slab along the longest axis.

    Inside a slab the windows go in MONAI's order (first axis outermost), so while slab ``s`` runs
    the open cells are about one overlap-deep slice across the other two axes (the smallest cut of
    the volume) plus one overlap-wide strip of the slab. The last window start along an axis is
    clamped to the image's end, so the last two slabs can share more than the usual overlap (64
    of 128 voxels on a 768-voxel axis instead of 32). Taking those two slabs together, column by
    column, avoids opening that thick slice across the whole plane but opens a deeper strip; of the
    two orders the one with fewer open voxels at its peak (:func:`open_voxels`) is returned.

    Args:
        windows: windows of one grid (from :func:`window_grid`), any order.
        shape: (H, W, D) of the grid.

    Returns:
        The same windows, reordered.
    """
    axis = int(np.argmax(shape))
    starts = sorted({w.start[axis] for w in windows})
    others = [a for a in range(3) if a != axis]

    def ordered(group: dict[int, int]) -> list[Window]:
        return sorted(windows, key=lambda w: (group[w.start[axis]], *(w.start[a] for a in others), w.start[axis]))

    plain = ordered({s: i for i, s in enumerate(starts)})
    if len(starts) < 3 or starts[-1] - starts[-2] >= starts[1] - starts[0]:
        return plain
    merged = ordered({s: min(i, len(starts) - 2) for i, s in enumerate(starts)})
    return min((plain, merged), key=lambda order: max(open_voxels(order, shape)))


def label_dtype(classes: Sequence[int]) -> torch.dtype:
    """The smallest integer dtype that holds every class index: uint8 up to 255, else int16."""
    return torch.uint8 if max((int(c) for c in classes), default=0) <= 255 else torch.int16


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
        classes: the K prompted class indices (column order of the scores).
        weight: optional (h, w, d) importance map (gaussian blending); None for constant blending.
        out: optional label volume to write into (default: a new volume of ``shape`` in
            :func:`label_dtype`, uint8 for VISTA3D's 132 classes).
        head: optional [K, C] matrix (VISTA3D's class embeddings after the class MLP). Without it,
            :meth:`add` takes [h, w, d, K] logits; with it, [h, w, d, C] class-head features, and a
            finished cell's average ``f`` becomes scores ``head @ f`` (exact by linearity; the
            open cells then hold C instead of K floats per voxel).

    Raises:
        ValueError: ``head`` is not [K, C] for the K classes.
    """

    def __init__(
        self,
        shape: Sequence[int],
        windows: Sequence[Window],
        classes: Sequence[int],
        weight: torch.Tensor | None = None,
        out: torch.Tensor | None = None,
        head: torch.Tensor | None = None,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.windows = list(windows)
        self.classes = torch.as_tensor(list(classes), dtype=torch.int16)
        if head is not None and (head.dim() != 2 or head.shape[0] != len(self.classes)):
            raise ValueError(f"head must be [K={len(self.classes)}, C], got shape {tuple(head.shape)}")
        self.head = None if head is None else head.detach().float().cpu().T.contiguous()  # [C, K]
        self.weight = weight
        self.labels = out if out is not None else torch.zeros(self.shape, dtype=label_dtype(classes))
        self.edges = _cut_edges(self.shape, self.windows)
        self._cells_of = [_cells_of(w, self.edges) for w in self.windows]
        self._last = {cell: i for i, cells in enumerate(self._cells_of) for cell in cells}
        self._open: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._next = 0
        self.peak_open_bytes = 0

    def _cell_slices(self, cell: tuple[int, int, int]) -> tuple[slice, ...]:
        return tuple(slice(self.edges[a][c], self.edges[a][c + 1]) for a, c in enumerate(cell))

    def planned_open_bytes(self) -> int:
        """The most bytes the open cells will hold (float32 sums and counts; from the window plan)."""
        voxels = max(open_voxels(self.windows, self.shape), default=0)
        channels = len(self.classes) if self.head is None else self.head.shape[0]
        return voxels * (channels + (0 if self.weight is None else 1)) * 4

    @property
    def open_bytes(self) -> int:
        return sum(s.numel() * s.element_size() + c.numel() * c.element_size() for s, c in self._open.values())

    def add(self, window: Window, values: torch.Tensor) -> None:
        """Add one window's [h, w, d, K] logits (or [h, w, d, C] features with a ``head``), in order."""
        if self._next >= len(self.windows) or window != self.windows[self._next]:
            raise ValueError(f"window {window} added out of the announced order")
        index = self._next
        self._next += 1
        weight = None if self.weight is None else self.weight.to(torch.float32)
        for cell in self._cells_of[index]:
            region = self._cell_slices(cell)
            local = tuple(slice(r.start - s, r.stop - s) for r, s in zip(region, window.start))
            part = values[local].float()  # a view when already float32
            w = None if weight is None else weight[local][..., None]
            closes = self._last[cell] == index
            if cell in self._open:
                total, count = self._open[cell]
                total += part if w is None else part * w
                count += 1.0 if w is None else w
            elif closes:  # covered by this window alone: nothing to keep
                self._finish(region, part, None)
                continue
            else:
                # Open cells outlive many windows: keep them out of the heap the windows reuse.
                total = mapped_empty(part.shape)
                if w is None:
                    total.copy_(part)
                    count = torch.ones((1, 1, 1, 1))
                else:
                    torch.mul(part, w, out=total)
                    count = mapped_empty(w.shape)
                    count.copy_(w)
                self._open[cell] = (total, count)
            self.peak_open_bytes = max(self.peak_open_bytes, self.open_bytes)
            if closes:
                total, count = self._open.pop(cell)
                self._finish(region, total, count)

    def _finish(self, region: tuple[slice, ...], total: torch.Tensor, count: torch.Tensor | None) -> None:
        """Write the labels of one finished cell from its summed values and weights."""
        average = total if count is None else total.div_(count)  # the cell's own buffer when popped
        if self.head is None:
            self.labels[region] = labels_from_scores(average, self.classes).to(self.labels.dtype)
            return
        flat = average.reshape(-1, average.shape[-1])
        labels = torch.empty(flat.shape[0], dtype=self.labels.dtype)
        for start in range(0, flat.shape[0], FINISH_ROWS):
            rows = slice(start, start + FINISH_ROWS)
            labels[rows] = labels_from_scores(flat[rows] @ self.head, self.classes).to(labels.dtype)
        self.labels[region] = labels.view(average.shape[:-1])

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
