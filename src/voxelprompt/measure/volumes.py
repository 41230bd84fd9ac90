"""What a label map holds: its values' voxel counts, and the structures present with their volumes in ml.

The one place a label map is checked and counted for measuring: :func:`label_counts` is what
:func:`structure_volumes` (the lines the commands print) and
:func:`~voxelprompt.measure.statistics.structure_statistics` (the statistics files) build on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxelprompt.errors import InputError
from voxelprompt.types import Volume

__all__ = ["StructureVolume", "label_counts", "structure_volumes", "voxel_volume_ml"]


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


def label_counts(labels: Volume) -> np.ndarray:
    """Voxel count of every value of an integer label map.

    Args:
        labels: (I, J, K) integer (or bool) label map with values >= 0.

    Returns:
        [max value + 1] int64 counts, ``counts[v]`` the voxels holding ``v`` ([1] zeros for an
        empty map).

    Raises:
        InputError: a label map with non-integer or negative values.
    """
    array = np.asarray(labels.array)
    if array.dtype.kind not in "iub":
        raise InputError(f"{labels.source}: a label map needs integer values, got {array.dtype}")
    if array.size and int(array.min()) < 0:  # bincount needs values >= 0
        raise InputError(f"{labels.source}: label values must be >= 0, got {int(array.min())}")
    if not array.size:
        return np.zeros(1, np.int64)
    return np.bincount(array.ravel().astype(np.int64, copy=False))


def structure_volumes(labels: Volume) -> list[StructureVolume]:
    """The non-zero labels of ``labels`` in increasing order, with voxel counts and volumes.

    Args:
        labels: an integer label map ((I, J, K), voxel -> RAS+ mm affine; see :mod:`voxelprompt.types`).

    Raises:
        InputError: a label map with negative or non-integer values (an InputError is a ValueError).
    """
    counts = label_counts(labels)
    per_voxel = voxel_volume_ml(labels)
    return [StructureVolume(int(v), int(counts[v]), int(counts[v]) * per_voxel) for v in np.flatnonzero(counts) if v]
