"""The prompts of the object a lease is segmenting, and how nnInteractive interactions map to them.

nnInteractive accumulates interactions on one object until ``/reset_interactions``; so does a
lease: every click is kept, and each prediction segments the object from all of them.

=================  =========================================================================
interaction        voxelprompt prompt
=================  =========================================================================
point              a positive (``include_interaction``) or negative click (both families)
bbox (2D or 3D)    SegVol's box prompt (a 2D box is one voxel thick); VISTA3D: unsupported (400)
scribble           up to :data:`SCRIBBLE_POINTS` clicks sampled evenly along the scribble's
                   voxels (C order), positive or negative as the scribble
lasso              SegVol: the lasso's bounding box as the box prompt (positive lassos only);
                   VISTA3D: unsupported (400)
initial seg        VISTA3D: the previous mask that later clicks edit (Algorithm 1,
                   ``Prompts.previous_mask``); SegVol: unsupported (400)
voxelprompt        ``/voxelprompt_prompt``: classes, a text or everything (extension)
=================  =========================================================================

A later box replaces an earlier one (SegVol takes one box). Capabilities the family lacks are
reported False in ``/capabilities`` and refused with 400, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxelprompt.errors import PromptError
from voxelprompt.families import Capabilities
from voxelprompt.types import Box, Points, Prompts

__all__ = ["ObjectPrompts", "SCRIBBLE_POINTS", "box_from_client", "mask_box", "scribble_points"]

#: Clicks a scribble becomes.
SCRIBBLE_POINTS = 5

Point = tuple[float, float, float]


@dataclass(frozen=True)
class ObjectPrompts:
    """Everything given for the current object (voxel indices of the client's array).

    Args:
        positive, negative: clicks.
        box: ``(lower, upper)`` inclusive voxel corners, or None.
        previous: (X, Y, Z) bool initial segmentation the clicks edit, or None.
        classes, text, everything: the voxelprompt extension's prompts.
    """

    positive: tuple[Point, ...] = ()
    negative: tuple[Point, ...] = ()
    box: tuple[Point, Point] | None = None
    previous: np.ndarray | None = None
    classes: tuple[int, ...] = ()
    text: str | None = None
    everything: bool = False

    def with_points(self, points: Sequence[Point], positive: bool) -> ObjectPrompts:
        if positive:
            return dataclasses.replace(self, positive=self.positive + tuple(points))
        return dataclasses.replace(self, negative=self.negative + tuple(points))

    def replace(self, **values) -> ObjectPrompts:
        return dataclasses.replace(self, **values)

    @property
    def empty(self) -> bool:
        return not (self.positive or self.negative or self.box or self.classes or self.text or self.everything)

    def to_prompts(self) -> Prompts:
        """The family-interface prompts of this object."""
        points = Points.from_lists(list(self.positive), list(self.negative)) if self.positive or self.negative else None
        box = Box(self.box[0], self.box[1]) if self.box is not None else None
        previous = self.previous if points is not None else None
        return Prompts(
            classes=self.classes, points=points, box=box, text=self.text, everything=self.everything,
            previous_mask=previous,
        )  # fmt: skip


def require(caps: Capabilities, capability: str, what: str, family: str) -> None:
    """Raise unless the family has ``capability``.

    Raises:
        PromptError: naming the interaction and the family.
    """
    if not getattr(caps, capability):
        raise PromptError(f"{what} is not supported by {family} models (see /capabilities)")


def box_from_client(coords: object, shape: tuple[int, int, int]) -> tuple[Point, Point]:
    """nnInteractive's ``[[x0, x1], [y0, y1], [z0, z1]]`` (half-open; one axis of size one: a
    2D box) as inclusive voxel corners clipped to ``shape``.

    Raises:
        PromptError: not three pairs of numbers, an empty axis, or a box outside the image.
    """
    try:
        pairs = [(float(a), float(b)) for a, b in coords]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise PromptError(f"bbox_coords must be [[x0, x1], [y0, y1], [z0, z1]], got {coords!r}"[:200]) from None
    if len(pairs) != 3:
        raise PromptError(f"bbox_coords must have three axes, got {len(pairs)}")
    if not np.isfinite(pairs).all():
        raise PromptError(f"bbox_coords must be finite numbers, got {pairs}")
    lower, upper = [], []
    for (a, b), size in zip(pairs, shape):
        lo, hi = int(round(min(a, b))), int(round(max(a, b)))
        if hi - lo < 1:
            raise PromptError(f"bbox_coords {pairs} has an empty axis")
        lo, hi = max(lo, 0), min(hi, size)
        if hi <= lo:
            raise PromptError(f"bbox_coords {pairs} lies outside the image {list(shape)}")
        lower.append(float(lo))
        upper.append(float(hi - 1))
    return tuple(lower), tuple(upper)  # type: ignore[return-value]


def mask_box(mask: np.ndarray) -> tuple[Point, Point]:
    """Inclusive voxel corners of a mask's non-zero voxels.

    Raises:
        PromptError: an empty mask.
    """
    where = np.argwhere(mask)
    if not len(where):
        raise PromptError("the mask is empty")
    return tuple(float(v) for v in where.min(0)), tuple(float(v) for v in where.max(0))  # type: ignore[return-value]


def scribble_points(mask: np.ndarray) -> list[Point]:
    """Up to :data:`SCRIBBLE_POINTS` voxels spread evenly over a scribble's voxels (C order).

    Raises:
        PromptError: an empty scribble.
    """
    where = np.argwhere(mask)
    if not len(where):
        raise PromptError("the scribble is empty")
    picks = np.unique(np.linspace(0, len(where) - 1, min(SCRIBBLE_POINTS, len(where))).round().astype(int))
    return [tuple(float(v) for v in where[i]) for i in picks]  # type: ignore[misc]
