"""Write :class:`~voxelprompt.types.Volume` records to NIfTI or NRRD, atomically.

The file gets exactly the volume's shape and affine; it appears under its final name only once
fully written (temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import nibabel as nib
import numpy as np

from voxelprompt.errors import InputError
from voxelprompt.imageio.readers import LPS_TO_RAS, NIFTI_SUFFIXES, _suffix
from voxelprompt.types import Volume

__all__ = ["write_volume", "write_text", "NIFTI_XFORM_CODE"]

logger = logging.getLogger(__name__)

# sform and qform code written to NIfTI files: 1 = scanner-based anatomical coordinates. Our
# affines are the scanner frame of the input (DICOM patient coordinates, or the input file's own
# frame); readers (nibabel, ITK, MONAI) treat codes 1 and 2 alike.
NIFTI_XFORM_CODE = 1

_WRITE_SUFFIXES = (*NIFTI_SUFFIXES, ".nrrd")

# int64 arrays (torch's default) are narrowed to the first of these that holds their range:
# nibabel refuses int64 by default and many viewers cannot show it.
_NARROW_INT_DTYPES = (np.uint8, np.int16, np.int32)


def write_volume(volume: Volume, path: str | os.PathLike, dtype: np.dtype | type | None = None) -> Path:
    """Write ``volume`` to ``path`` with its exact shape and affine.

    NIfTI files get the affine as both sform and qform (code :data:`NIFTI_XFORM_CODE`) and no
    intensity scaling; NRRD files (gzip-compressed) get the affine as LPS+ space directions and
    origin. The affine is stored in float32 by NIfTI and as text by NRRD.

    Args:
        volume: (I, J, K) array in on-disk order with a voxel -> RAS+ mm affine.
        path: ``.nii``, ``.nii.gz`` or ``.nrrd``; an existing file is replaced.
        dtype: on-disk voxel type; ``None`` keeps the array's dtype, except that bool becomes
            uint8 and 64-bit integers the smallest of uint8, int16, int32 that holds the values.
            Floats cast to an integer type are rounded; values must fit the target type.

    Returns:
        The path written.

    Raises:
        InputError: unknown extension, missing output folder, values that do not fit ``dtype``,
            or the file cannot be written.
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith(_WRITE_SUFFIXES):
        raise InputError(
            f"{path}: unknown output extension {_suffix(path)!r}; expected {', '.join(_WRITE_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise InputError(f"{path}: output folder {path.parent} does not exist")
    array = _cast(volume.array, dtype, path)
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix
    # Hidden name with the real extension, so nibabel/ITK pick the same format and compression.
    tmp = path.parent / f".{path.name[: -len(suffix)]}.{secrets.token_hex(4)}.tmp{suffix}"
    try:
        if name.endswith(NIFTI_SUFFIXES):
            _write_nifti(array, volume.affine, tmp)
        else:
            _write_nrrd(array, volume.affine, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError | RuntimeError):
            raise InputError(f"{path}: cannot write file ({' '.join(str(err).split())})") from err
        raise
    logger.debug("wrote %s %s %s", path, array.shape, array.dtype)
    return path


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    affine = np.asarray(affine, dtype=np.float64)
    image = nib.Nifti1Image(array, affine, dtype=array.dtype)
    header = image.header
    header.set_sform(affine, code=NIFTI_XFORM_CODE)
    header.set_qform(affine, code=NIFTI_XFORM_CODE)
    header.set_xyzt_units(xyz="mm", t="sec")
    # The array already has the on-disk dtype: store values as they are, without scaling.
    header.set_slope_inter(1.0, 0.0)
    nib.save(image, path)


def _write_nrrd(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    affine_lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)  # the flip is its own inverse
    spacing = np.linalg.norm(affine_lps[:3, :3], axis=0)
    # SimpleITK arrays are (k, j, i).
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(spacing.tolist())
    image.SetDirection((affine_lps[:3, :3] / spacing).ravel().tolist())
    image.SetOrigin(affine_lps[:3, 3].tolist())
    sitk.WriteImage(image, str(path), useCompression=True)


def _cast(array: np.ndarray, dtype: np.dtype | type | None, path: Path) -> np.ndarray:
    if dtype is None:
        if array.dtype.kind == "b":
            return array.astype(np.uint8)
        if array.dtype == np.float16:  # not a NIfTI type
            return array.astype(np.float32)
        if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
            return _narrow_int(array, path)
        return array
    target = np.dtype(dtype)
    if target == array.dtype:
        return array
    if target.kind in "iu" and array.size:
        values = np.rint(array) if array.dtype.kind == "f" else array
        info = np.iinfo(target)
        low, high = values.min(), values.max()
        if low < info.min or high > info.max:
            raise InputError(f"{path}: values {low}..{high} do not fit in {target}")
        return values.astype(target)
    return array.astype(target)


def _narrow_int(array: np.ndarray, path: Path) -> np.ndarray:
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for candidate in _NARROW_INT_DTYPES:
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return array.astype(candidate)
    raise InputError(f"{path}: integer values {low}..{high} do not fit in int32; pass dtype explicitly")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (JSON, Markdown, CSV) atomically: hidden temporary file, then rename."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
