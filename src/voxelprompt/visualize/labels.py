"""Overlays of label files: where to slice a label map, one label map over its CT as a PNG, and
label maps of other id schemes shown in the catalog's colours."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from voxelprompt.catalog import CLASS_TABLE_SIZE, vista3d_catalog
from voxelprompt.errors import InputError, PromptError
from voxelprompt.imageio.grid import align_to_grid
from voxelprompt.types import Volume
from voxelprompt.visualize.figure import overlay_png

__all__ = ["default_point", "overlay_file", "relabel_to_catalog"]

#: A label map with more distinct values than this is taken for an image, not labels.
_MAX_LABEL_VALUES = 1024


def default_point(labels: Volume) -> tuple[int, int, int]:
    """Voxel (i, j, k) to slice a label map through: the labelled voxel nearest its centre of mass.

    Snapping to a labelled voxel keeps the slices on a structure when the centre of mass falls
    between structures (two kidneys). The volume centre when nothing is labelled.
    """
    mask = np.asarray(labels.array) > 0
    total = int(mask.sum())
    if total == 0:
        return tuple(s // 2 for s in labels.shape)  # type: ignore[return-value]
    centre = np.array([
        (np.arange(n) * mask.sum(axis=tuple(a for a in range(3) if a != axis))).sum() / total
        for axis, n in enumerate(mask.shape)
    ])  # fmt: skip
    # A strided look keeps the candidate list short for whole-body label maps.
    stride = max(1, math.ceil((total / 1e6) ** (1 / 3)))
    candidates = np.argwhere(mask[::stride, ::stride, ::stride]) * stride
    if len(candidates) == 0:
        candidates = np.argwhere(mask)
    nearest = candidates[np.argmin((((candidates - centre) * labels.spacing) ** 2).sum(axis=1))]
    return tuple(int(c) for c in nearest)  # type: ignore[return-value]


def overlay_file(
    image: Volume,
    labels: Volume,
    path: str | os.PathLike,
    point: Sequence[float] | None = None,
    title: str = "",
    names: Mapping[int, str] | None = None,
    clicks: Sequence[Sequence[float]] = (),
) -> Path:
    """Overlay one label map on its CT as a PNG (``voxelprompt overlay CT LABELS -o picture.png``).

    Args:
        image: CT in HU, (I, J, K) in on-disk order with its voxel -> RAS+ affine.
        labels: label map on the image's grid (same shape, voxel positions within 1e-3 mm).
        path: PNG to write (atomically).
        point: input voxel (i, j, k) the slices pass through; default :func:`default_point`.
        title: figure title; without one, the panel captions name the label file.
        names: label value -> legend name, for ids that are not VISTA3D classes.
        clicks: input voxels (i, j, k) marked with a cross where they lie in a shown slice.

    Returns:
        ``path``.

    Raises:
        InputError: ``labels`` is not on the image's grid, or holds negative values or more
            distinct values than a label map does (an image passed as labels).
        PromptError: ``point`` is outside the volume.
    """
    labels = align_to_grid(labels, image)
    _check_labels(labels)
    point = default_point(labels) if point is None else point
    caption = "" if title or labels.source.startswith("<") else Path(labels.source).name  # else said twice
    return overlay_png(image, [(caption, labels)], path, point=point, clicks=clicks, title=title, names=names)


def _check_labels(labels: Volume) -> None:
    array = np.asarray(labels.array)
    if array.dtype.kind not in "iub":
        raise InputError(f"{labels.source}: a label map holds whole numbers, got {array.dtype} values")
    if array.size and int(array.min()) < 0:
        raise InputError(f"{labels.source}: holds negative values ({int(array.min())}): an image, not a label map?")
    count = len(np.unique(array))
    if count > _MAX_LABEL_VALUES:
        raise InputError(f"{labels.source}: holds {count} distinct values: an image, not a label map?")


def relabel_to_catalog(labels: Volume, names: Mapping[int, str]) -> tuple[Volume, dict[int, str]]:
    """A label map of another id scheme (e.g. TotalSegmentator's ``classes.json``) for display.

    Values whose name the VISTA3D catalog knows (tolerant lookup: ``kidney_right`` is ``right
    kidney``) become that class's id, so they get its colour; other named values move above the
    class table, keeping their own name, so that they never borrow a class's colour.

    Args:
        labels: integer label map.
        names: label value -> structure name, for the values to show.

    Returns:
        The relabelled map (same grid) and its value -> name mapping.
    """
    catalog = vista3d_catalog()
    array = np.asarray(labels.array)
    out = np.zeros(array.shape, dtype=np.int32)
    shown: dict[int, str] = {}
    for value, name in sorted(names.items()):
        try:
            target = catalog.index(name)
        except PromptError:
            target = CLASS_TABLE_SIZE + int(value)
        out[array == int(value)] = target
        shown[target] = name
    return labels.with_array(out), shown
