"""Models as the evaluation runner sees them: the protocol (:class:`EvalModel`, :class:`ClickState`,
:data:`PatchSlices`) and the classical region-growing baseline.

The runner computes every click from the ground truth in input voxel indices (see
:mod:`voxelprompt.types`); an adapter maps them to its own frame. Per-patch protocols (VISTA3D
Table 1 "point" and "auto+point") need the sliding-window grid, so an adapter also reports its
windows as (i, j, k) boxes of the input volume and accepts one click per window.

A model family's adapter lives in its package and is named by its registry entry's
``eval_adapter`` (VISTA3D: :mod:`voxelprompt.families.vista3d.evaluation`, SegVol:
:mod:`voxelprompt.families.segvol.evaluation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from voxelprompt.evaluation.baselines import region_grow
from voxelprompt.evaluation.clicks import Click
from voxelprompt.inference.sliding import grid_starts
from voxelprompt.types import Box, Points, Volume

__all__ = ["ClickState", "EvalModel", "PatchSlices", "RegionGrowModel"]

PatchSlices = tuple[slice, slice, slice]


@dataclass(frozen=True)
class ClickState:
    """What an interactive step leaves for the next one.

    Args:
        class_id: the object's class.
        clicks: number of clicks the state accounts for.
        logits: model-specific result of those clicks (VISTA3D: [1, 1, H, W, D] model-space logits).
    """

    class_id: int
    clicks: int
    logits: torch.Tensor | None = None


class EvalModel(Protocol):
    """What the runner needs from a model; masks are (I, J, K) bool arrays on the input grid.

    A model declares the evaluation ``protocols`` it runs (for a model family, its registry
    entry's :attr:`~voxelprompt.families.Capabilities.protocols`) and implements the methods they
    need, and only those:

    * ``auto``: :meth:`auto_classes`, :meth:`auto`;
    * ``point``: :meth:`patch_boxes`, :meth:`patch_clicks`; ``auto+point``: all four above;
    * ``iterative``: :meth:`clicks`;
    * ``box+text``, ``points7``, ``correction5``: :meth:`prompted`.

    ``class_id`` is a VISTA3D class id or a novel object's id (a label value with no class,
    :func:`~voxelprompt.evaluation.novel.is_novel`), which the runner only passes to click protocols:
    a model prompts such an object by its clicks alone (VISTA3D: zero-shot embedding; SegVol: no text).
    ``zero_shot_protocol`` is the protocol novel objects run when the user names none.
    """

    name: str
    protocols: frozenset[str]
    default_protocol: str
    zero_shot_protocol: str

    def prepare(self, image: Volume) -> None:
        """Take the case's CT (pre-process or encode once; later calls answer prompts on it)."""

    def auto_classes(self, classes: Sequence[int]) -> list[int]:
        """The subset of ``classes`` that the model segments automatically."""

    def auto(self, classes: Sequence[int]) -> np.ndarray:
        """Automatic label map (class ids, 0 background) for ``classes``."""

    def patch_boxes(self) -> list[PatchSlices]:
        """The sliding windows of the prepared image as (i, j, k) boxes of the input volume."""

    def patch_clicks(self, class_id: int, clicks: Sequence[Click | None], with_auto: bool) -> np.ndarray:
        """One click per window (``None``: no click there); ``with_auto`` edits the automatic result."""

    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        """Whole-volume interactive segmentation of one object from all its clicks so far.

        ``previous`` is the state returned for the same object with fewer clicks: a model may then
        only evaluate what the new clicks change (VISTA3D's iterative ``prev_mask``).
        """

    def prompted(self, class_id: int, text: str | None, box: Box | None = None, points: Points | None = None) -> np.ndarray:
        """One object from a text, a voxel box and/or voxel points (SegVol's protocols)."""


class RegionGrowModel:
    """The classical baseline (:func:`~voxelprompt.evaluation.baselines.region_grow`) on the same protocols.

    Its windows tile the input volume like a sliding-window network of ``window_mm`` edge
    (VISTA3D's 128 voxels at 1.5 mm by default), so the per-patch protocols give it the same
    number of clicks; every click grows only inside its own window. It has no automatic mode.

    Args:
        window_mm: window edge in millimetres.
        overlap: window overlap in [0, 1).
        name: model name written to the results.
    """

    protocols = frozenset({"point", "iterative"})
    default_protocol = "point"
    zero_shot_protocol = "iterative"

    def __init__(self, window_mm: float = 192.0, overlap: float = 0.25, name: str = "region-grow") -> None:
        self.window_mm = float(window_mm)
        self.overlap = float(overlap)
        self.name = name
        self._image: Volume | None = None

    def prepare(self, image: Volume) -> None:
        self._image = image
        shape = image.shape
        self._window = tuple(max(1, min(int(round(self.window_mm / s)), n)) for s, n in zip(image.spacing, shape))
        self._boxes = [
            tuple(slice(a, a + w) for a, w in zip(start, self._window)) for start in grid_starts(shape, self._window, self.overlap)
        ]

    def patch_boxes(self) -> list[PatchSlices]:
        return list(self._boxes)  # type: ignore[arg-type]

    def patch_clicks(self, class_id: int, clicks: Sequence[Click | None], with_auto: bool = False) -> np.ndarray:
        if with_auto:
            raise ValueError("region growing has no automatic result to edit (it runs point and iterative)")
        image = self._image.array
        mask = np.zeros(image.shape, dtype=bool)
        for box, click in zip(self._boxes, clicks):
            if click is None or click.label != 1:
                continue
            local = tuple(c - s.start for c, s in zip(click.coord, box))
            mask[box] |= region_grow(image[box], [local], window=tuple(s.stop - s.start for s in box))
        return mask

    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        state = ClickState(int(class_id), len(points))
        coords = points.to_voxel(self._image)
        positive = [tuple(c) for c in coords[points.labels == 1]]
        negative = [tuple(c) for c in coords[points.labels == 0]]
        if not positive:
            return np.zeros(self._image.shape, dtype=bool), state
        return region_grow(self._image.array, positive, negative, window=self._window), state
