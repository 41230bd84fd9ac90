"""SegVol's pre-processing of a CT into its normalized (D, H, W) frame, and the way back.

Follows the official ``data_process/demo_data_process.py`` (BAAI-DCAI/SegVol): reorient to RAS,
foreground normalization, reverse the axes to (D, H, W), min-max to [0, 1], crop to the
foreground. Unlike the reference, the crop and the reorientation are recorded so that masks and
prompts map back onto the input's exact grid (:class:`PreparedVolume`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxelprompt.inference.segvol.geometry import Reorientation, VoxelMap, shift_map
from voxelprompt.types import Volume

__all__ = ["PreparedVolume", "foreground_box", "foreground_normalize", "min_max", "prepare_volume"]

#: Percentiles of the foreground voxels that bound the intensity clip (the reference's values).
LOWER_PERCENTILE, UPPER_PERCENTILE = 0.05, 99.95


def foreground_normalize(array: np.ndarray) -> np.ndarray:
    """SegVol's foreground normalization (the reference's ``ForegroundNormalization``).

    Voxels above the volume's mean are the foreground; the image is clipped to the 0.05 and
    99.95 percentiles of the foreground and z-scored with the foreground's mean and standard
    deviation. A constant image (no voxel above the mean) uses all voxels.

    Args:
        array: any-shaped intensities (Hounsfield units for CT).

    Returns:
        float32 array of the same shape.
    """
    values = np.asarray(array, dtype=np.float32)  # float32 images; statistics in float64
    flat = values.ravel()
    foreground = flat[flat > flat.mean(dtype=np.float64)]
    if foreground.size == 0:
        foreground = flat
    lower, upper = np.percentile(foreground, [LOWER_PERCENTILE, UPPER_PERCENTILE])
    mean, std = foreground.mean(dtype=np.float64), foreground.std(dtype=np.float64)
    out = np.clip(values, np.float32(lower), np.float32(upper))
    out -= np.float32(mean)
    out /= np.float32(max(float(std), 1e-8))
    return out


def min_max(array: np.ndarray) -> np.ndarray:
    """Shift to minimum 0 and scale to maximum 1 (a constant image becomes all zeros)."""
    shifted = array - array.min()
    return (shifted / max(float(shifted.max()), 1e-8)).astype(np.float32)


def foreground_box(image: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """Inclusive (lower, upper) corners of the voxels above 0 (MONAI ``CropForeground``'s rule).

    After min-max normalization these are the voxels above the lower clip bound, i.e. the body
    without the surrounding air. ``None`` when no voxel is above 0.
    """
    idx = [np.nonzero(image.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in range(3)]
    if any(i.size == 0 for i in idx):
        return None
    return tuple(int(i[0]) for i in idx), tuple(int(i[-1]) for i in idx)  # type: ignore[return-value]


@dataclass(frozen=True)
class PreparedVolume:
    """A volume in SegVol's frame plus what is needed to map results back to the input grid.

    Args:
        image: (D, H, W) float32 in [0, 1], cropped to ``crop``.
        reorientation: input (I, J, K) <-> full (D, H, W) array map.
        crop: (lower, upper) inclusive corners of ``image`` in the full (D, H, W) frame.
    """

    image: np.ndarray
    reorientation: Reorientation
    crop: tuple[tuple[int, int, int], tuple[int, int, int]]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.image.shape)  # type: ignore[return-value]

    @property
    def region(self) -> tuple[slice, slice, slice]:
        """Slices of the full (D, H, W) array that :attr:`image` was cut from."""
        return tuple(slice(a, b + 1) for a, b in zip(*self.crop))  # type: ignore[return-value]

    @property
    def voxel_map(self) -> VoxelMap:
        """Input voxel (i, j, k) -> voxel (d, h, w) of :attr:`image`."""
        return self.reorientation.voxel_map.then(shift_map(self.crop[0]))

    def to_input(self, mask: np.ndarray, fill: int = 0) -> np.ndarray:
        """Place a (D, H, W) array of :attr:`image`'s shape onto the input's (I, J, K) grid."""
        full = np.full(self.reorientation.out_shape, fill, dtype=mask.dtype)
        full[self.region] = mask
        return self.reorientation.from_dhw(full)

    def from_input(self, array: np.ndarray) -> np.ndarray:
        """An (I, J, K) array of the input's shape cut to :attr:`image`'s (D, H, W) frame."""
        return np.ascontiguousarray(self.reorientation.to_dhw(array)[self.region])


def prepare_volume(
    volume: Volume,
    crop_foreground: bool = True,
    keep: Sequence[np.ndarray] = (),
) -> PreparedVolume:
    """Normalize a CT and bring it into SegVol's (D, H, W) frame.

    Args:
        volume: CT in Hounsfield units (see :mod:`voxelprompt.types`).
        crop_foreground: crop to the body like the reference (``CropForegroundd`` after min-max).
        keep: (N, 3) arrays of input-voxel coordinates (user points, box corners) that the crop
            must contain, so that prompts on air voxels stay inside the model's frame.

    Returns:
        The prepared volume; its :attr:`PreparedVolume.voxel_map` maps input voxels to it.
    """
    reorientation = Reorientation(volume.affine, volume.shape)
    image = min_max(reorientation.to_dhw(foreground_normalize(volume.array)))
    full_lo, full_hi = (0, 0, 0), tuple(s - 1 for s in image.shape)
    box = foreground_box(image) if crop_foreground else None
    if box is None:
        box = (full_lo, full_hi)
    lo, hi = np.asarray(box[0]), np.asarray(box[1])
    for coords in keep:
        dhw = reorientation.voxel_map(coords)
        if len(dhw):
            lo = np.minimum(lo, np.floor(dhw.min(0) + 0.5).astype(int))
            hi = np.maximum(hi, np.floor(dhw.max(0) + 0.5).astype(int))
    lo = np.clip(lo, 0, np.asarray(full_hi))
    hi = np.clip(hi, lo, np.asarray(full_hi))
    crop = (tuple(int(v) for v in lo), tuple(int(v) for v in hi))
    cropped = np.ascontiguousarray(image[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1])
    return PreparedVolume(image=cropped, reorientation=reorientation, crop=crop)  # type: ignore[arg-type]
