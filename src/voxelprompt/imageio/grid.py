"""Putting a label map read from a file onto its image's voxel grid: the same grid stored in
another axis order (dcm2niix writes a DICOM series' labels LAS, we read the series LPS) is
reoriented without resampling; a truly different grid is refused.
"""

from __future__ import annotations

import logging

import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

from voxelprompt.errors import InputError
from voxelprompt.types import Volume

__all__ = ["align_to_grid", "grid_gap_mm", "GRID_TOLERANCE_MM"]

logger = logging.getLogger(__name__)

#: Largest distance between corresponding voxel centres of two grids taken as the same grid
#: (NIfTI stores affines in float32: ~1e-5 mm at typical offsets; dcm2niix rounds to ~1e-4 mm).
GRID_TOLERANCE_MM = 1e-2


def grid_gap_mm(a: Volume, b: Volume) -> float:
    """Largest distance in mm between the world positions of the eight corner voxels of ``a`` and
    ``b`` (same shape), taken at the same (i, j, k) indices: 0 for one grid."""
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in a.shape], indexing="ij")).reshape(3, -1).T
    return float(np.linalg.norm(a.voxel_to_world(corners) - b.voxel_to_world(corners), axis=1).max())


def align_to_grid(labels: Volume, image: Volume, tolerance_mm: float = GRID_TOLERANCE_MM) -> Volume:
    """``labels`` on ``image``'s voxel grid: as it is when it already lies there, else with its
    axes permuted and flipped (no resampling) when it is the same grid stored in another axis
    order, which is logged in one line.

    Args:
        labels: a label map (I, J, K) in its file's on-disk order, voxel -> RAS+ mm affine.
        image: the image (I, J, K) whose grid the labels must lie on.
        tolerance_mm: largest distance of corresponding voxel centres still taken as one grid.

    Returns:
        A :class:`Volume` with ``image``'s shape and affine holding the label values.

    Raises:
        InputError: another grid (shape, spacing or position), naming both grids.
    """
    if labels.shape == image.shape and grid_gap_mm(labels, image) <= tolerance_mm:
        return image.with_array(labels.array, source=labels.source)
    transform = ornt_transform(io_orientation(labels.affine), io_orientation(image.affine))
    array = apply_orientation(np.asarray(labels.array), transform)
    affine = labels.affine @ inv_ornt_aff(transform, labels.shape)
    moved = Volume(array=np.ascontiguousarray(array), affine=affine, source=labels.source)
    if moved.shape == image.shape and grid_gap_mm(moved, image) <= tolerance_mm:
        logger.info(
            "%s: the same grid as %s stored in %s axis order; reoriented to %s (no resampling)",
            labels.source, image.source, labels.orientation, image.orientation,
        )  # fmt: skip
        return image.with_array(moved.array, source=labels.source)
    gap = f", {grid_gap_mm(moved, image):.4g} mm away" if moved.shape == image.shape else ""
    raise InputError(
        f"{labels.source}: label map is not on the grid of {image.source} (shape {labels.shape} vs {image.shape}, "
        f"{labels.orientation} vs {image.orientation}, spacing {_spacing(labels)} vs {_spacing(image)} mm{gap}); "
        "resample it onto the image grid first"
    )


def _spacing(volume: Volume) -> str:
    return "x".join(f"{s:.4g}" for s in volume.spacing)
