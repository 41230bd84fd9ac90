"""Voxel-grid maps between the input volume and SegVol's (D, H, W) frames, for arrays and prompts.

SegVol's frame (what the official ``data_process/demo_data_process.py`` builds): the image is
reoriented to RAS (MONAI ``Orientationd``), then its axes are reversed (``DimTranspose``: swap
axes -1 and -3), so ``(D, H, W) = (K, J, I)`` of the RAS array: D runs inferior -> superior,
H posterior -> anterior, W left -> right. Every map here is an affine map of *continuous* voxel
coordinates whose integer values are voxel centres (the half-pixel convention of
``F.interpolate(..., align_corners=False)`` and ``mode="nearest-exact"``), so array transforms and
point transforms agree exactly and invert exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Reorientation", "VoxelMap", "box_voxels", "resize_map", "shift_map"]


@dataclass(frozen=True)
class VoxelMap:
    """An affine map of continuous voxel coordinates ``y = matrix @ x + offset``.

    Args:
        matrix: (3, 3) linear part.
        offset: (3,) translation.
    """

    matrix: np.ndarray
    offset: np.ndarray

    @classmethod
    def identity(cls) -> VoxelMap:
        return cls(np.eye(3), np.zeros(3))

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        """Map (N, 3) coordinates; returns (N, 3) float64."""
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
        return coords @ self.matrix.T + self.offset

    def then(self, other: VoxelMap) -> VoxelMap:
        """The map that applies ``self`` first, then ``other``."""
        return VoxelMap(other.matrix @ self.matrix, other.matrix @ self.offset + other.offset)

    def inverse(self) -> VoxelMap:
        inv = np.linalg.inv(self.matrix)
        return VoxelMap(inv, -inv @ self.offset)

    def map_box(self, lower: Sequence[float], upper: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Map an inclusive voxel box by its outer edges (``lower - 0.5``, ``upper + 0.5``).

        Returns the mapped region's edges ``(low_edge, high_edge)`` (continuous, low <= high per
        axis); use :func:`box_voxels` to get the voxels whose centres it contains.
        """
        lo = np.asarray(lower, dtype=np.float64) - 0.5
        hi = np.asarray(upper, dtype=np.float64) + 0.5
        corners = np.array([[(lo, hi)[b][a] for a, b in enumerate(bits)] for bits in np.ndindex(2, 2, 2)])
        mapped = self(corners)
        return mapped.min(0), mapped.max(0)


def box_voxels(low_edge: np.ndarray, high_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive integer voxel range whose centres lie in ``[low_edge, high_edge)``.

    This is exactly the box of a mask resized with ``nearest-exact`` (how the reference builds box
    prompts on resized labels). A region thinner than one voxel keeps the voxel nearest its centre.
    """
    lo = np.ceil(np.asarray(low_edge) - 1e-9).astype(np.int64)
    hi = (np.ceil(np.asarray(high_edge) - 1e-9) - 1).astype(np.int64)
    thin = hi < lo
    centre = np.floor((np.asarray(low_edge) + np.asarray(high_edge)) / 2 + 0.5).astype(np.int64)
    return np.where(thin, centre, lo), np.where(thin, centre, hi)


def resize_map(src_shape: Sequence[int], dst_shape: Sequence[int]) -> VoxelMap:
    """Voxel map of resizing an array from ``src_shape`` to ``dst_shape`` (half-pixel convention)."""
    scale = np.asarray(dst_shape, dtype=np.float64) / np.asarray(src_shape, dtype=np.float64)
    return VoxelMap(np.diag(scale), 0.5 * (scale - 1.0))


def shift_map(origin: Sequence[float]) -> VoxelMap:
    """Voxel map into a crop (or window) starting at ``origin``: ``y = x - origin``."""
    return VoxelMap(np.eye(3), -np.asarray(origin, dtype=np.float64))


class Reorientation:
    """Input (I, J, K) array <-> SegVol (D, H, W) array, and the same map for coordinates.

    The axis permutation and flips are nibabel's ``io_orientation`` of the affine (what MONAI's
    ``Orientationd(axcodes="RAS")`` applies), followed by the axis reversal to (D, H, W). No
    resampling happens, so the inverse is exact for any input orientation (RAS, LPS, oblique).

    Args:
        affine: (4, 4) voxel -> RAS+ mm matrix of the input.
        shape: (I, J, K) input shape.
    """

    def __init__(self, affine: np.ndarray, shape: Sequence[int]) -> None:
        import nibabel as nib

        self.in_shape = tuple(int(s) for s in shape)
        ornt = nib.orientations.io_orientation(np.asarray(affine, dtype=np.float64))
        # ras_axis[i]: the RAS axis input axis i becomes; flips[i]: whether it runs backwards.
        self.ras_axis = ornt[:, 0].astype(int)
        self.flips = ornt[:, 1] < 0
        # (D, H, W) = RAS axes (2, 1, 0): dhw_axis[i] is the output axis of input axis i.
        self.dhw_axis = 2 - self.ras_axis
        out = [0, 0, 0]
        for i, axis in enumerate(self.dhw_axis):
            out[axis] = self.in_shape[i]
        self.out_shape = tuple(out)

    @property
    def voxel_map(self) -> VoxelMap:
        """Input voxel (i, j, k) -> (d, h, w) voxel."""
        matrix = np.zeros((3, 3))
        offset = np.zeros(3)
        for i, axis in enumerate(self.dhw_axis):
            if self.flips[i]:
                matrix[axis, i] = -1.0
                offset[axis] = self.in_shape[i] - 1
            else:
                matrix[axis, i] = 1.0
        return VoxelMap(matrix, offset)

    def to_dhw(self, array: np.ndarray) -> np.ndarray:
        """(I, J, K) array -> (D, H, W) array (a view where possible)."""
        flipped = np.flip(array, axis=tuple(int(i) for i in np.nonzero(self.flips)[0])) if self.flips.any() else array
        order = np.argsort(self.dhw_axis)  # output axis a takes input axis order[a]
        return np.transpose(flipped, order)

    def from_dhw(self, array: np.ndarray) -> np.ndarray:
        """(D, H, W) array -> (I, J, K) array on the input grid."""
        back = np.transpose(array, self.dhw_axis)
        if self.flips.any():
            back = np.flip(back, axis=tuple(int(i) for i in np.nonzero(self.flips)[0]))
        return np.ascontiguousarray(back)
