"""One-call Python entry points for SegVol: segment with text/box/point prompts, identify a mask.

Same shape as :mod:`voxelprompt.api` (a path or an in-memory :class:`Volume` in, a label map on
the input's exact grid out); the CLI's ``segment-segvol`` and ``identify`` are thin adapters.
Coordinates follow :mod:`voxelprompt.types`: points and box corners are (I, J, K) input voxel
indices (``point_space="voxel"``) or (x, y, z) RAS+ mm (``"world"``); box corners are inclusive.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxelprompt.devices import resolve_device
from voxelprompt.errors import InputError, PromptError, VoxelPromptError
from voxelprompt.imageio import read_volume, write_volume
from voxelprompt.types import Box, Points, PointSpace, Prompts, Segmentation, Volume

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from voxelprompt.inference.segvol import Identification, SegVolSegmenter

__all__ = ["build_segvol_prompts", "identify", "load_segvol_segmenter", "segment_segvol"]

Coordinate = tuple[float, float, float]


def build_segvol_prompts(
    text: str | None = None,
    box: Sequence[float] | None = None,
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    classes: Sequence[str | int] = (),
) -> Prompts:
    """Prompts for one SegVol object from user-facing values.

    Args:
        text: any class name (CLIP-encoded), e.g. ``"left kidney"``.
        box: ``(i0, j0, k0, i1, j1, k1)`` inclusive corners in ``point_space``.
        points: positive clicks; ``negative_points``: negative clicks, same frame.
        point_space: ``"voxel"`` or ``"world"`` (points and box).
        classes: at most one VISTA3D class name or index, used as its catalog name.
    """
    from voxelprompt.catalog import vista3d_catalog

    try:
        space = PointSpace(point_space)
    except ValueError:
        raise PromptError(f"point space must be voxel or world, got {point_space!r}") from None
    spatial_box = None
    if box is not None:
        values = [float(v) for v in box]
        if len(values) != 6:
            raise PromptError(f"a box needs six numbers I0,J0,K0,I1,J1,K1, got {len(values)}")
        spatial_box = Box(lower=tuple(values[:3]), upper=tuple(values[3:]), space=space)  # type: ignore[arg-type]
    clicks = None
    if points or negative_points:
        clicks = Points.from_lists(list(points), list(negative_points), space=space)
    ids = vista3d_catalog().resolve(list(classes)) if classes else ()
    return Prompts(classes=ids, points=clicks, box=spatial_box, text=text)


def load_segvol_segmenter(
    checkpoint: str | os.PathLike,
    device: str = "auto",
    mode: str = "zoom",
    overlap: float = 0.5,
    progress: bool = False,
) -> SegVolSegmenter:
    """Load a SegVol v1 checkpoint into a reusable segmenter (``mode``: zoom, sliding, zoom-out;
    ``device``: auto, cpu, cuda or cuda:N)."""
    from voxelprompt.inference.segvol import SegVolSegmenter

    return SegVolSegmenter.from_checkpoint(
        checkpoint, device=resolve_device(device), mode=mode, overlap=overlap, progress=progress
    )


def _segmenter(checkpoint, segmenter, device, mode, progress) -> SegVolSegmenter:
    if segmenter is not None:
        return segmenter
    if checkpoint is None:
        raise VoxelPromptError("no model: pass --checkpoint (SegVol_v1.pth) or a loaded SegVol segmenter")
    return load_segvol_segmenter(checkpoint, device=resolve_device(device), mode=mode, progress=progress)


def segment_segvol(
    image: str | os.PathLike | Volume,
    output: str | os.PathLike | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    segmenter: SegVolSegmenter | None = None,
    text: str | None = None,
    box: Sequence[float] | None = None,
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    classes: Sequence[str | int] = (),
    label_value: int | None = None,
    mode: str = "zoom",
    series_uid: str | None = None,
    device: str = "auto",
    progress: bool = False,
) -> Segmentation:
    """Segment one object with SegVol and optionally write the label map.

    The label map has the input's exact shape and affine; the object carries ``label_value``
    (default: its VISTA3D class index when the text is a catalog name, else 1). ``series_uid``
    picks the DICOM series of a folder holding several; ``device``: auto, cpu, cuda or cuda:N.
    """
    prompts = build_segvol_prompts(text, box, points, negative_points, point_space, classes)
    volume = image if isinstance(image, Volume) else read_volume(image, series_uid=series_uid)
    segmenter = _segmenter(checkpoint, segmenter, device, mode, progress)
    result = segmenter.segment(volume, prompts, label_value=label_value)
    if output is not None:
        write_volume(result.labels, Path(output))
    return result


def identify(
    image: str | os.PathLike | Volume,
    mask: str | os.PathLike | Volume | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    segmenter: SegVolSegmenter | None = None,
    box: Sequence[float] | None = None,
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    categories: Sequence[str] | None = None,
    series_uid: str | None = None,
    device: str = "auto",
) -> Identification:
    """Rank class names for a mask (paper Fig. 5).

    Give the mask (a label file or :class:`Volume` on the image's grid; every non-zero voxel
    counts), or spatial prompts (box and/or points) that SegVol segments first.

    Args:
        categories: names to score; default: the VISTA3D catalog names.
        series_uid: the DICOM series of ``image`` when it is a folder holding several.
    """
    from voxelprompt.inference.segvol import identify_mask

    volume = image if isinstance(image, Volume) else read_volume(image, series_uid=series_uid)
    if mask is None:
        prompts = build_segvol_prompts(None, box, points, negative_points, point_space)
        if prompts.box is None and prompts.points is None:
            raise PromptError("give a mask, a box or points to identify")
        segmenter = _segmenter(checkpoint, segmenter, device, "zoom", False)
        labels = segmenter.segment(volume, prompts).labels
    else:
        if box is not None or points or negative_points:
            raise PromptError("give either a mask or spatial prompts, not both")
        labels = mask if isinstance(mask, Volume) else read_volume(mask, dtype=None)
        if labels.shape != volume.shape or not np.allclose(labels.affine, volume.affine, atol=1e-3):
            raise InputError(
                f"mask {labels.source} (shape {labels.shape}) is not on the grid of {volume.source} "
                f"(shape {volume.shape})"
            )
        segmenter = _segmenter(checkpoint, segmenter, device, "zoom", False)
    selected = np.asarray(labels.array) != 0
    if not selected.any():
        raise PromptError("the mask is empty: nothing to identify")
    where = np.argwhere(selected)
    anchors = [np.stack([where.min(0), where.max(0)]).astype(np.float64)]  # keep the mask inside the crop
    prepared = segmenter.prepare(volume, anchors=anchors)
    return identify_mask(segmenter.model, prepared, prepared.from_input(selected), categories)
