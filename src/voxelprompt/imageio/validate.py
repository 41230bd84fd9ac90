"""Checks that an array + affine pair is a usable 3D volume, with errors that name the problem."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from voxelprompt.errors import InputError

__all__ = ["validate_volume", "check_mask_grid", "label_values"]


def validate_volume(array: np.ndarray, affine: np.ndarray, source: str = "<array>") -> None:
    """Raise :class:`InputError` unless ``array`` is 3D, finite and ``affine`` a valid grid.

    Args:
        array: (I, J, K) voxel values.
        affine: (4, 4) voxel -> RAS+ mm matrix.
        source: name used in messages.
    """
    if not isinstance(array, np.ndarray):
        raise InputError(f"{source}: expected a numpy array, got {type(array).__name__}")
    if array.ndim != 3:
        raise InputError(f"{source}: expected a 3D volume, got {array.ndim}D data of shape {array.shape}")
    if min(array.shape) < 1:
        raise InputError(f"{source}: volume has an empty axis, shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        n_bad = int((~np.isfinite(array)).sum())
        raise InputError(f"{source}: volume contains {n_bad} NaN or infinite voxel values")
    affine = np.asarray(affine)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise InputError(f"{source}: affine must be a finite 4x4 matrix, got shape {affine.shape}")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if (spacing <= 0).any() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{source}: voxel spacing must be positive, got {tuple(np.round(spacing, 6).tolist())}")


def check_mask_grid(mask, volume) -> None:
    """Raise :class:`InputError` unless the :class:`~voxelprompt.types.Volume` ``mask`` lies on
    ``volume``'s grid: the same shape and affine entries within 1e-3 (mm for the translation)."""
    if mask.shape != volume.shape or not np.allclose(mask.affine, volume.affine, atol=1e-3):
        raise InputError(
            f"mask {mask.source} (shape {mask.shape}) is not on the grid of {volume.source} (shape {volume.shape})"
        )


def label_values(labels, label_names: Mapping[int, str] | None = None, *, maximum: int | None = None) -> list[int]:
    """The non-zero values of the label map ``labels`` (a :class:`~voxelprompt.types.Volume`), ascending.

    Args:
        labels: (I, J, K) label map.
        label_names: when given, every value found must have a name in it.
        maximum: the largest value allowed, if any.

    Raises:
        InputError: non-integer values, values below 0 or above ``maximum``, or values without a
            name; the message names them.
    """
    array = np.asarray(labels.array)
    if array.dtype.kind not in "iub":
        raise InputError(f"{labels.source}: a label map needs integer values, got {array.dtype}")
    values = [int(v) for v in np.unique(array) if v != 0]
    if values and (values[0] < 0 or (maximum is not None and values[-1] > maximum)):
        allowed = f"0..{maximum}" if maximum is not None else ">= 0"
        raise InputError(f"{labels.source}: label values must be {allowed}, got {values[0]}..{values[-1]}")
    unnamed = [v for v in values if label_names is not None and v not in label_names]
    if unnamed:
        raise InputError(f"{labels.source}: label values {unnamed} have no name in label_names")
    return values
