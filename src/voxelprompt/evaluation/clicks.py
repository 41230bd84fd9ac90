"""Simulated user prompts for evaluating interactive segmentation, seeded and deterministic.

Follows the protocols of the VISTA3D paper (Table 1 "point" and "auto+point", Sec. 5 zero-shot
iterative clicks) and the SegVol paper (box, 1 + 3 pairs of points), as done in their official code.

All masks are (I, J, K) arrays indexed in voxel order (see :mod:`voxelprompt.types`); every click
and box corner is an (i, j, k) voxel index into the array it was computed from.

Conventions shared by the VISTA3D-style clicks (as in VISTA's ``generate_prompt_pairs_val``):

* Masks are eroded by a 3x3x3 cube before clicks are chosen, so clicks keep away from boundaries.
  Voxels outside the array count as foreground during erosion, so objects touching the array
  border are not eroded there (VISTA's ``erode3d`` pads with ones).
* Components are 26-connected (MONAI's ``get_largest_connected_component_mask``); ties in size
  go to the component met first in C (raster) order.
* "Nearest the centroid" means smallest Euclidean distance in voxel indices; ties go to the
  first voxel in C order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import cc3d
import numpy as np
from scipy import ndimage

from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.types import Box, Points, PointSpace

__all__ = [
    "Click",
    "Box",
    "center_click",
    "patch_center_clicks",
    "correction_click",
    "patch_correction_clicks",
    "bounding_box",
    "segvol_points",
    "clicks_to_points",
]

Coord = tuple[int, int, int]
PatchSlices = tuple[slice, slice, slice]
Seed = np.random.Generator | int


@dataclass(frozen=True)
class Click:
    """One simulated click.

    Args:
        coord: (i, j, k) voxel index.
        label: 1 positive (inside the object), 0 negative.
    """

    coord: Coord
    label: int

    def __iter__(self) -> Iterator[Coord | int]:
        # Lets callers write ``coord, label = click``.
        return iter((self.coord, self.label))


def _as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise VoxelPromptError(f"{name} must be a 3D (I, J, K) mask, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _bbox(mask: np.ndarray, margin: int = 0) -> PatchSlices | None:
    """Bounding box of the non-zero voxels, widened by ``margin`` and clipped to the array."""
    box = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if present.size == 0:
            return None
        start, stop = int(present[0]) - margin, int(present[-1]) + 1 + margin
        box.append(slice(max(start, 0), min(stop, mask.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


def _erode(mask: np.ndarray) -> np.ndarray:
    # border_value=1: voxels beyond the array are foreground, as VISTA's erode3d pads with ones.
    return ndimage.binary_erosion(mask, structure=np.ones((3, 3, 3), bool), border_value=1)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 26-connected component of ``mask`` (all False when ``mask`` is empty)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    labels = cc3d.connected_components(mask, connectivity=26)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    # cc3d numbers components in raster order, so argmax's first-maximum rule is deterministic.
    return labels == int(np.argmax(sizes))


def _largest_component_in_box(mask: np.ndarray, erode: bool) -> tuple[np.ndarray, PatchSlices]:
    """Largest component of ``mask`` (eroded first if asked), cropped to the mask's bounding box.

    Returns the component and the slices that place it in ``mask``. Cropping (with one voxel of
    background around) gives the same result as the whole array, only faster.
    """
    box = _bbox(mask, margin=1)
    if box is None:
        return np.zeros((1, 1, 1), bool), (slice(0, 1),) * 3  # type: ignore[return-value]
    crop = mask[box]
    return _largest_component(_erode(crop) if erode else crop), box


def _nearest_to_centroid(component: np.ndarray) -> np.ndarray:
    voxels = np.argwhere(component)
    distances = ((voxels - voxels.mean(axis=0)) ** 2).sum(axis=1)
    return voxels[int(np.argmin(distances))]


def _global(local: np.ndarray, box: PatchSlices) -> Coord:
    return tuple(int(v) + (s.start or 0) for v, s in zip(local, box))  # type: ignore[return-value]


def center_click(gt: np.ndarray) -> Coord:
    """The foreground-centre click of VISTA3D's "point" evaluation (Table 1).

    The voxel nearest the centroid of the largest connected component of the eroded mask; when
    erosion removes everything (thin objects), the largest component of the mask itself. The
    click is always a voxel of the mask, also for shapes whose centroid lies outside them.

    Args:
        gt: (I, J, K) object mask, non-zero is the object.

    Returns:
        (i, j, k) voxel index inside ``gt``.

    Raises:
        PromptError: ``gt`` is empty.
    """
    gt = _as_mask(gt, "gt")
    if not gt.any():
        raise PromptError("cannot place a click in an empty mask")
    component, box = _largest_component_in_box(gt, erode=True)
    if not component.any():
        component, box = _largest_component_in_box(gt, erode=False)
    return _global(_nearest_to_centroid(component), box)


def patch_center_clicks(gt: np.ndarray, patches: Sequence[PatchSlices]) -> list[Click | None]:
    """One positive centre click per sliding-window patch that contains the object.

    VISTA3D's Table 1 "point" mode gives the network one click per patch (its
    ``sample_points_patch_val``): :func:`center_click` of the mask cropped to the patch.

    Args:
        gt: (I, J, K) object mask.
        patches: per window, the (i, j, k) slices that cut it out of ``gt`` (slices with step 1).

    Returns:
        Per patch, in order: a positive :class:`Click` in ``gt``'s voxel indices, or ``None``
        when the patch holds no object voxel.
    """
    gt = _as_mask(gt, "gt")
    clicks: list[Click | None] = []
    for patch in patches:
        box = _normalize_patch(patch, gt.shape)
        local = gt[box]
        if not local.any():
            clicks.append(None)
            continue
        clicks.append(Click(coord=_global(np.array(center_click(local)), box), label=1))
    return clicks


def _normalize_patch(patch: PatchSlices, shape: tuple[int, ...]) -> PatchSlices:
    if len(patch) != 3:
        raise VoxelPromptError(f"a patch needs three slices (i, j, k), got {patch}")
    box = []
    for s, size in zip(patch, shape):
        start, stop, step = s.indices(size)
        if step != 1:
            raise VoxelPromptError(f"patch slices must have step 1, got {patch}")
        box.append(slice(start, stop))
    return tuple(box)  # type: ignore[return-value]


def correction_click(
    pred: np.ndarray,
    gt: np.ndarray,
    rng: Seed = 0,
    *,
    strategy: Literal["random", "center"] = "random",
) -> Click | None:
    """The next corrective click, as in VISTA3D's iterative evaluation (``get_next_points_val``).

    The false-negative (``gt & ~pred``) and false-positive (``pred & ~gt``) regions are eroded
    and reduced to their largest connected component. The larger of the two components (the
    false negative one on a tie) receives the click: positive in a false negative, negative in a
    false positive. When erosion removes both regions, the un-eroded regions are used instead,
    so a click is returned whenever the masks differ.

    Args:
        pred: (I, J, K) current prediction mask.
        gt: (I, J, K) reference mask.
        rng: seed or generator for ``strategy="random"``; a seed gives the same click every call.
        strategy: ``"random"`` picks a uniformly random voxel of the component (VISTA3D's
            default, ``use_center=False``); ``"center"`` picks the voxel nearest its centroid.

    Returns:
        The click in (i, j, k) voxel indices, or ``None`` when ``pred`` equals ``gt``.
    """
    pred, gt = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if pred.shape != gt.shape:
        raise VoxelPromptError(f"pred shape {pred.shape} differs from gt shape {gt.shape}")
    if strategy not in ("random", "center"):
        raise VoxelPromptError(f"strategy must be 'random' or 'center', got {strategy!r}")
    false_negative, false_positive = gt & ~pred, pred & ~gt
    if not false_negative.any() and not false_positive.any():
        return None

    fn_component, fn_box = _largest_component_in_box(false_negative, erode=True)
    fp_component, fp_box = _largest_component_in_box(false_positive, erode=True)
    if not fn_component.any() and not fp_component.any():
        # Errors at most two voxels thick vanish on erosion: click in them rather than stop early.
        fn_component, fn_box = _largest_component_in_box(false_negative, erode=False)
        fp_component, fp_box = _largest_component_in_box(false_positive, erode=False)
    fn_size, fp_size = int(fn_component.sum()), int(fp_component.sum())

    if fn_size >= fp_size:
        component, box, label = fn_component, fn_box, 1
    else:
        component, box, label = fp_component, fp_box, 0
    if strategy == "center":
        local = _nearest_to_centroid(component)
    else:
        voxels = np.argwhere(component)
        local = voxels[int(_rng(rng).integers(len(voxels)))]
    return Click(coord=_global(local, box), label=label)


def patch_correction_clicks(
    pred: np.ndarray,
    gt: np.ndarray,
    patches: Sequence[PatchSlices],
    rng: Seed = 0,
    *,
    strategy: Literal["random", "center"] = "random",
) -> list[Click | None]:
    """One :func:`correction_click` per sliding-window patch (VISTA3D Table 1 "auto+point").

    Args:
        pred: (I, J, K) automatic result to correct.
        gt: (I, J, K) reference mask.
        patches: per window, the (i, j, k) slices that cut it out of the volume.
        rng: seed or generator; one generator is drawn from for all patches in order.
        strategy: see :func:`correction_click`.

    Returns:
        Per patch: a click in whole-volume (i, j, k) voxel indices, or ``None`` where the patch
        has no error.
    """
    pred, gt = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if pred.shape != gt.shape:
        raise VoxelPromptError(f"pred shape {pred.shape} differs from gt shape {gt.shape}")
    generator = _rng(rng)
    clicks: list[Click | None] = []
    for patch in patches:
        box = _normalize_patch(patch, gt.shape)
        click = correction_click(pred[box], gt[box], generator, strategy=strategy)
        clicks.append(None if click is None else Click(_global(np.array(click.coord), box), click.label))
    return clicks


def bounding_box(mask: np.ndarray, jitter: int = 0, rng: Seed = 0) -> Box:
    """Bounding box of a mask, optionally with each corner coordinate jittered (SegVol's box prompt).

    SegVol's evaluation uses the exact box (``jitter=0``); its training perturbs every coordinate
    by a uniform integer in [-jitter, jitter]. Jittered corners are clipped to the array and kept
    ordered (lower <= upper).

    Args:
        mask: (I, J, K) object mask.
        jitter: largest shift of a coordinate, in voxels (>= 0).
        rng: seed or generator for the jitter.

    Raises:
        PromptError: ``mask`` is empty.
    """
    mask = _as_mask(mask, "mask")
    if jitter < 0:
        raise VoxelPromptError(f"jitter must be >= 0, got {jitter}")
    box = _bbox(mask)
    if box is None:
        raise PromptError("cannot compute the bounding box of an empty mask")
    lower = np.array([s.start for s in box])
    upper = np.array([s.stop - 1 for s in box])
    if jitter:
        generator = _rng(rng)
        lower = lower + generator.integers(-jitter, jitter + 1, size=3)
        upper = upper + generator.integers(-jitter, jitter + 1, size=3)
        top = np.array(mask.shape) - 1
        lower, upper = np.clip(lower, 0, top), np.clip(upper, 0, top)
        lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)
    return Box(
        lower=tuple(int(v) for v in lower),  # type: ignore[arg-type]
        upper=tuple(int(v) for v in upper),  # type: ignore[arg-type]
    )


def segvol_points(
    mask: np.ndarray,
    rng: Seed = 0,
    *,
    n_pairs: int = 3,
    negative_margin: int | None = None,
) -> list[Click]:
    """SegVol's point prompt: 1 positive click plus ``n_pairs`` positive/negative pairs.

    As in SegVol's ``select_points(label, num_positive_extra=3, num_negative_extra=3)``: positives
    are uniform over the mask, negatives uniform over the background. Positives are distinct
    voxels (SegVol may repeat the first), and so are negatives.

    Args:
        mask: (I, J, K) object mask.
        rng: seed or generator.
        n_pairs: number of extra positive/negative pairs (3 in SegVol's evaluation).
        negative_margin: ``None`` draws negatives from the whole background (SegVol); a number
            draws them from the background inside the mask's bounding box widened by that many
            voxels ("around the object").

    Returns:
        ``1 + n_pairs`` positive clicks followed by ``n_pairs`` negative ones (fewer when the
        mask or the background has fewer voxels).

    Raises:
        PromptError: ``mask`` is empty.
    """
    mask = _as_mask(mask, "mask")
    if n_pairs < 0:
        raise VoxelPromptError(f"n_pairs must be >= 0, got {n_pairs}")
    if negative_margin is not None and negative_margin < 0:
        raise VoxelPromptError(f"negative_margin must be >= 0 or None, got {negative_margin}")
    generator = _rng(rng)
    inside = np.flatnonzero(mask)
    if inside.size == 0:
        raise PromptError("cannot place clicks in an empty mask")
    chosen = generator.choice(inside, size=min(1 + n_pairs, inside.size), replace=False)
    clicks = [Click(coord=_unravel(i, mask.shape), label=1) for i in chosen]

    if negative_margin is None:
        negatives = _sample_background(mask, n_pairs, generator)
    else:
        box = _bbox(mask, margin=negative_margin)
        background = np.flatnonzero(~mask[box])
        picked = generator.choice(background, size=min(n_pairs, background.size), replace=False)
        negatives = [_global(np.array(_unravel(i, mask[box].shape)), box) for i in picked]
    clicks += [Click(coord=coord, label=0) for coord in negatives]
    return clicks


def _unravel(flat_index: int, shape: tuple[int, ...]) -> Coord:
    return tuple(int(v) for v in np.unravel_index(int(flat_index), shape))  # type: ignore[return-value]


def _sample_background(mask: np.ndarray, count: int, generator: np.random.Generator) -> list[Coord]:
    """``count`` distinct background voxels, uniform over the background.

    Rejection sampling avoids listing the background of a whole CT (hundreds of millions of
    indices); it falls back to listing when the background is a small part of the array.
    """
    background_size = mask.size - int(mask.sum())
    count = min(count, background_size)
    picked: list[int] = []
    if background_size * 4 >= mask.size:
        flat = mask.ravel()
        while len(picked) < count:
            index = int(generator.integers(mask.size))
            if not flat[index] and index not in picked:
                picked.append(index)
    else:
        picked = [int(i) for i in generator.choice(np.flatnonzero(~mask), size=count, replace=False)]
    return [_unravel(i, mask.shape) for i in picked]


def clicks_to_points(clicks: Sequence[Click | None]) -> Points:
    """Voxel-space :class:`~voxelprompt.types.Points` of the clicks, skipping ``None`` entries."""
    kept = [c for c in clicks if c is not None]
    coords = np.array([c.coord for c in kept], dtype=np.float64).reshape(-1, 3)
    labels = np.array([c.label for c in kept], dtype=np.int64)
    return Points(coords=coords, labels=labels, space=PointSpace.VOXEL)
