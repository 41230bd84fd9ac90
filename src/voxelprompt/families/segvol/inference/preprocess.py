"""SegVol's pre-processing of a CT into its normalized (D, H, W) frame, and the way back.

Follows the official ``data_process/demo_data_process.py`` (BAAI-DCAI/SegVol): reorient to RAS,
foreground normalization, reverse the axes to (D, H, W), min-max to [0, 1], crop to the
foreground. Unlike the reference, the crop and the reorientation are recorded so that masks and
prompts map back onto the input's exact grid (:class:`PreparedVolume`). The work is split in two:
:func:`normalize_volume` (everything that does not depend on prompts, done once per volume) and
:meth:`NormalizedVolume.crop` (the cheap crop, widened to keep the prompts); :func:`prepare_volume`
is both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxelprompt.families.segvol.inference.geometry import Reorientation, VoxelMap, shift_map
from voxelprompt.types import Volume

__all__ = [
    "NormalizedVolume",
    "PreparedVolume",
    "foreground_box",
    "foreground_normalize",
    "min_max",
    "normalize_volume",
    "prepare_volume",
]

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


@dataclass(frozen=True)
class NormalizedVolume:
    """A CT normalized into SegVol's whole (D, H, W) frame, before the prompt-dependent crop.

    Args:
        volume: the input volume (its grid is where results go back to).
        image: (D, H, W) float32 in [0, 1], the whole reoriented volume (not cropped). Treat as
            read-only: every crop of one normalized volume reads it.
        reorientation: input (I, J, K) <-> (D, H, W) array map.
        foreground: (lower, upper) inclusive corners in the (D, H, W) frame of the region to
            crop to before any prompt widens it: the body, or the whole image.
    """

    volume: Volume
    image: np.ndarray
    reorientation: Reorientation
    foreground: tuple[tuple[int, int, int], tuple[int, int, int]]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(D, H, W) of the whole normalized image."""
        return tuple(int(s) for s in self.image.shape)  # type: ignore[return-value]

    def crop(self, keep: Sequence[np.ndarray] = ()) -> PreparedVolume:
        """Cut :attr:`image` to the foreground box widened to contain ``keep``.

        Args:
            keep: (N, 3) arrays of input-voxel coordinates (i, j, k) (user points, box corners,
                a mask's corners) that the crop must contain, so that prompts on air voxels stay
                inside the model's frame; each is rounded to its nearest (D, H, W) voxel.

        Returns:
            The cropped volume (sharing :attr:`image`'s memory when the crop is the whole image);
            this record is left unchanged.
        """
        top = np.asarray(self.image.shape) - 1
        lo, hi = np.asarray(self.foreground[0]), np.asarray(self.foreground[1])
        for coords in keep:
            dhw = self.reorientation.voxel_map(coords)
            if len(dhw):
                lo = np.minimum(lo, np.floor(dhw.min(0) + 0.5).astype(int))
                hi = np.maximum(hi, np.floor(dhw.max(0) + 0.5).astype(int))
        lo = np.clip(lo, 0, top)
        hi = np.clip(hi, lo, top)
        crop = (tuple(int(v) for v in lo), tuple(int(v) for v in hi))
        cropped = np.ascontiguousarray(self.image[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1])
        return PreparedVolume(image=cropped, reorientation=self.reorientation, crop=crop)  # type: ignore[arg-type]


def normalize_volume(volume: Volume, crop_foreground: bool = True) -> NormalizedVolume:
    """The prompt-independent part of SegVol's pre-processing: normalize, reorient, find the body.

    Args:
        volume: CT in Hounsfield units (see :mod:`voxelprompt.types`).
        crop_foreground: crop to the body like the reference (``CropForegroundd`` after min-max);
            False keeps the whole image.

    Returns:
        The whole normalized (D, H, W) image and its foreground box; :meth:`NormalizedVolume.crop`
        finishes the pre-processing for given prompts.
    """
    reorientation = Reorientation(volume.affine, volume.shape)
    image = min_max(reorientation.to_dhw(foreground_normalize(volume.array)))
    whole = ((0, 0, 0), tuple(s - 1 for s in image.shape))
    box = foreground_box(image) if crop_foreground else None
    return NormalizedVolume(
        volume=volume, image=image, reorientation=reorientation, foreground=box or whole  # type: ignore[arg-type]
    )


def prepare_volume(
    volume: Volume,
    crop_foreground: bool = True,
    keep: Sequence[np.ndarray] = (),
) -> PreparedVolume:
    """Normalize a CT and bring it into SegVol's (D, H, W) frame (:func:`normalize_volume`, then
    :meth:`NormalizedVolume.crop`).

    Args:
        volume: CT in Hounsfield units (see :mod:`voxelprompt.types`).
        crop_foreground: crop to the body like the reference (``CropForegroundd`` after min-max).
        keep: (N, 3) arrays of input-voxel coordinates (user points, box corners) that the crop
            must contain, so that prompts on air voxels stay inside the model's frame.

    Returns:
        The prepared volume; its :attr:`PreparedVolume.voxel_map` maps input voxels to it.
    """
    return normalize_volume(volume, crop_foreground).crop(keep)
