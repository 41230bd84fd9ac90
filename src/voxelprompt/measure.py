"""What a label map holds: the structures present, with their voxel counts and volumes in ml."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxelprompt.types import Volume

__all__ = ["StructureVolume", "structure_volumes", "voxel_volume_ml"]


@dataclass(frozen=True)
class StructureVolume:
    """One label value of a label map.

    Args:
        label: the value in the map (a VISTA3D class id, or an object id).
        voxels: how many voxels hold it.
        ml: their volume in millilitres (voxels x voxel volume).
    """

    label: int
    voxels: int
    ml: float


def voxel_volume_ml(volume: Volume) -> float:
    """Volume of one voxel in ml: |det| of the affine's 3x3 part (mm^3) / 1000."""
    return float(abs(np.linalg.det(np.asarray(volume.affine, dtype=np.float64)[:3, :3]))) / 1000.0


def structure_volumes(labels: Volume) -> list[StructureVolume]:
    """The non-zero labels of ``labels`` in increasing order, with voxel counts and volumes.

    Args:
        labels: an integer label map ((I, J, K), voxel -> RAS+ mm affine; see :mod:`voxelprompt.types`).

    Raises:
        ValueError: a label map with negative or non-integer values.
    """
    array = np.asarray(labels.array)
    if array.dtype.kind not in "iub":
        raise ValueError(f"{labels.source}: a label map needs integer values, got {array.dtype}")
    if array.size and int(array.min()) < 0:
        raise ValueError(f"{labels.source}: label values must be >= 0, got {int(array.min())}")
    counts = np.bincount(array.ravel().astype(np.int64, copy=False)) if array.size else np.zeros(1, np.int64)
    per_voxel = voxel_volume_ml(labels)
    return [StructureVolume(int(v), int(counts[v]), int(counts[v]) * per_voxel) for v in np.flatnonzero(counts) if v]
