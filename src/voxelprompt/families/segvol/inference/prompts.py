"""User prompts (input voxel or world coordinates) checked and mapped into SegVol's frames.

A :class:`FramePrompts` holds one object's prompts in one (d, h, w) voxel frame: the prepared
volume, its zoom-out resize, or one sliding window. Points are continuous voxel coordinates
(integers are voxel centres); a box is an inclusive integer voxel range, as the reference builds
it from a mask.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import PromptError
from voxelprompt.families.segvol.inference.geometry import VoxelMap, box_voxels
from voxelprompt.types import Box, PointSpace, Prompts, Volume

__all__ = ["FramePrompts", "UserPrompts", "check_prompts", "remap", "to_frame", "window_prompts"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserPrompts:
    """Validated prompts of one object in input voxel coordinates (i, j, k).

    Args:
        text: class name for CLIP, or None.
        points: (N, 3) input voxel coordinates (continuous).
        labels: (N,) 1 positive, 0 negative.
        box: ((i0, j0, k0), (i1, j1, k1)) inclusive continuous corners, or None.
        label_value: value written for the object in the output label map.
    """

    text: str | None
    points: np.ndarray
    labels: np.ndarray
    box: tuple[np.ndarray, np.ndarray] | None
    label_value: int

    def anchors(self) -> list[np.ndarray]:
        """Input coordinates the model frame must contain (points and box corners)."""
        out = [self.points] if len(self.points) else []
        if self.box is not None:
            out.append(np.stack(self.box))
        return out


@dataclass(frozen=True)
class FramePrompts:
    """One object's prompts in a (D, H, W) frame of shape ``shape``.

    Args:
        shape: (D, H, W) of the frame.
        points: (N, 3) continuous (d, h, w) voxel coordinates.
        labels: (N,) 1 positive, 0 negative.
        box: (6,) inclusive ``[d0, h0, w0, d1, h1, w1]`` integer voxels, or None.
        text: class name, or None.
    """

    shape: tuple[int, int, int]
    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None
    text: str | None

    @property
    def has_positive(self) -> bool:
        """Whether anything says where the object is (text, a box or a positive point)."""
        return self.text is not None or self.box is not None or bool((self.labels == 1).any())


def _box_in_voxels(box: Box, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = np.asarray(box.lower, dtype=np.float64), np.asarray(box.upper, dtype=np.float64)
    if lower.shape != (3,) or upper.shape != (3,) or not (np.isfinite(lower).all() and np.isfinite(upper).all()):
        raise PromptError(f"box corners must be three finite numbers each, got {box.lower} and {box.upper}")
    if (lower > upper).any():
        axis = int(np.argmax(lower > upper))
        raise PromptError(
            f"box lower corner {tuple(lower.tolist())} exceeds the upper corner {tuple(upper.tolist())} "
            f"on axis {axis}; give I0,J0,K0,I1,J1,K1 with I0<=I1, J0<=J1, K0<=K1"
        )
    if box.space is PointSpace.WORLD:
        corners = np.array([[(lower, upper)[b][a] for a, b in enumerate(bits)] for bits in np.ndindex(2, 2, 2)])
        ijk = volume.world_to_voxel(corners)
        lower, upper = ijk.min(0), ijk.max(0)
    shape = np.asarray(volume.shape)
    outside = (lower < -0.5) | (upper > shape - 0.5)
    if outside.any():
        raise PromptError(
            f"box {tuple(box.lower)}..{tuple(box.upper)} ({box.space.value}) reaches outside the volume of "
            f"shape {volume.shape} (voxel indices run 0..{tuple((shape - 1).tolist())})"
        )
    return lower, upper


#: Largest value a label map can carry (SegVol writes int16 beyond uint8).
MAX_LABEL_VALUE = 32767


def _label_value(value: object) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise PromptError(f"label_value must be a whole number, got {value!r}") from None
    if not 1 <= number <= MAX_LABEL_VALUE:
        raise PromptError(f"label_value must be in 1..{MAX_LABEL_VALUE} (0 is background), got {number}")
    return number


def check_prompts(prompts: Prompts, volume: Volume) -> UserPrompts:
    """Validate one object's SegVol prompts and express them in input voxels.

    A single VISTA3D class index in ``prompts.classes`` stands for its catalog name as text. The
    object's value is ``prompts.label_value``; None gives the catalog index of the text when it
    names a VISTA3D class, else 1.

    Args:
        prompts: text, class, box and points of one object (coordinates in ``volume``'s input
            voxels (i, j, k) or RAS+ mm, see :mod:`voxelprompt.types`).
        volume: the volume the prompts are given on.

    Raises:
        PromptError: VISTA3D-only prompts (everything, new_structure), empty text, text plus a
            class, several classes, a label value outside 1..32767, a box with lower > upper or
            outside the volume, points outside the volume, or nothing that locates the object.
    """
    from voxelprompt.families import check_capabilities

    check_capabilities(prompts, "segvol")  # everything, new_structure: the registry names who has them
    value = None if prompts.label_value is None else _label_value(prompts.label_value)
    text = prompts.text
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"text prompt must be a non-empty class name, got {text!r}")
        text = " ".join(text.split())
    catalog = vista3d_catalog()
    if prompts.classes:
        if len(prompts.classes) > 1:
            raise PromptError(f"SegVol segments one object per call, got classes {tuple(prompts.classes)}")
        if text is not None:
            raise PromptError("give either a text prompt or a class, not both")
        text = catalog.name(int(prompts.classes[0]))
    if text is not None and value is None:
        try:
            value = catalog.index(text)
        except PromptError:
            logger.info(
                "text %r is not a VISTA3D class name; SegVol encodes any text with CLIP, so it is used as "
                "given (quality depends on whether SegVol saw similar names in training)",
                text,
            )
    points = np.zeros((0, 3))
    labels = np.zeros((0,), dtype=np.int64)
    if prompts.points is not None:
        if len(prompts.points) == 0:
            raise PromptError("points were given but the list is empty")
        points = prompts.points.to_voxel(volume)
        labels = np.asarray(prompts.points.labels, dtype=np.int64).reshape(-1)
        if not set(labels.tolist()) <= {0, 1}:
            raise PromptError(f"point labels must be 1 (positive) or 0 (negative), got {sorted(set(labels.tolist()))}")
        shape = np.asarray(volume.shape)
        outside = ~((points >= -0.5) & (points <= shape - 0.5)).all(axis=1)
        if outside.any():
            bad = prompts.points.coords[int(np.argmax(outside))]
            raise PromptError(
                f"point {tuple(float(v) for v in bad)} ({prompts.points.space.value}) lies outside the volume "
                f"of shape {volume.shape}"
            )
    box = None if prompts.box is None else _box_in_voxels(prompts.box, volume)
    user = UserPrompts(text=text, points=points, labels=labels, box=box, label_value=1 if value is None else int(value))
    if text is None and box is None and not (labels == 1).any():
        raise PromptError("nothing to segment: give a text prompt, a box or at least one positive point")
    return user


def to_frame(user: UserPrompts, voxel_map: VoxelMap, shape: Sequence[int]) -> FramePrompts:
    """Map input-voxel prompts into a (D, H, W) frame reached by ``voxel_map``.

    Points are clamped to the frame's voxel-centre range; the box becomes the inclusive range of
    frame voxels whose centres lie in the mapped box (at least one voxel per axis).
    """
    top = np.asarray(shape, dtype=np.float64) - 1
    points = np.clip(voxel_map(user.points), 0.0, top) if len(user.points) else np.zeros((0, 3))
    box = None
    if user.box is not None:
        lo, hi = box_voxels(*voxel_map.map_box(*user.box))
        box = np.concatenate([np.clip(lo, 0, top), np.clip(hi, 0, top)]).astype(np.float64)
    return FramePrompts(tuple(int(s) for s in shape), points, user.labels.copy(), box, user.text)  # type: ignore[arg-type]


def remap(frame: FramePrompts, voxel_map: VoxelMap, shape: Sequence[int], clip: bool = False) -> FramePrompts:
    """Carry frame prompts into another frame (a resize, an ROI crop, a padded region).

    Args:
        frame: prompts in the source frame.
        voxel_map: source voxel -> target voxel.
        shape: (D, H, W) of the target frame.
        clip: clamp points and box to the target (for a resize of the whole frame). Crops must
            not clip: prompts outside a crop are dropped per window by :func:`window_prompts`.
    """
    points = voxel_map(frame.points) if len(frame.points) else np.zeros((0, 3))
    box = None
    if frame.box is not None:
        lo, hi = box_voxels(*voxel_map.map_box(frame.box[:3], frame.box[3:]))
        box = np.concatenate([lo, hi]).astype(np.float64)
    if clip:
        top = np.asarray(shape, dtype=np.float64) - 1
        points = np.clip(points, 0.0, top)
        box = None if box is None else np.clip(box, 0.0, np.tile(top, 2))
    return replace(frame, shape=tuple(int(s) for s in shape), points=points, box=box)


def window_prompts(
    frame: FramePrompts,
    start: Sequence[int],
    size: Sequence[int],
    coarse_mask: np.ndarray | None = None,
) -> FramePrompts | None:
    """Prompts of one sliding window; ``None`` when nothing in the window locates the object.

    Rules: text goes to every window; points inside the window are kept with their labels
    (negative ones too); the box is clipped to the window and dropped where it does not
    intersect it. For point prompts without a user box, ``coarse_mask`` (the zoom-out result in
    this window, bool (d, h, w)) supplies a box where it is non-empty, as the reference does;
    text alone stays text alone, as in the reference.

    Args:
        frame: prompts in the frame the windows tile.
        start: (3,) first voxel of the window in that frame.
        size: (3,) window size (D, H, W).
        coarse_mask: zoom-out mask cut to this window, or None.
    """
    start_arr, size_arr = np.asarray(start, dtype=np.float64), np.asarray(size, dtype=np.float64)
    local = frame.points - start_arr
    inside = ((local >= -0.5) & (local < size_arr - 0.5)).all(axis=1) if len(local) else np.zeros(0, dtype=bool)
    box = None
    if frame.box is not None:
        lo, hi = frame.box[:3] - start_arr, frame.box[3:] - start_arr
        lo, hi = np.maximum(lo, 0), np.minimum(hi, size_arr - 1)
        if (lo <= hi).all():
            box = np.concatenate([lo, hi])
    elif coarse_mask is not None and len(frame.points) and coarse_mask.any():
        idx = [np.nonzero(coarse_mask.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in range(3)]
        box = np.array([i[0] for i in idx] + [i[-1] for i in idx], dtype=np.float64)
    window = replace(
        frame, shape=tuple(int(s) for s in size), points=local[inside], labels=frame.labels[inside], box=box
    )
    return window if window.has_positive else None
