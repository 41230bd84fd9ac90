"""Read NIfTI, NRRD and DICOM series into :class:`~voxelprompt.types.Volume` records.

Arrays come back in on-disk (i, j, k) order with a voxel -> RAS+ mm affine (see
:mod:`voxelprompt.types`); every problem with a file is raised as :class:`InputError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.openers import ImageOpener
from nibabel.spatialimages import HeaderDataError

from voxelprompt.errors import InputError
from voxelprompt.types import Volume

if TYPE_CHECKING:  # SimpleITK is imported where used: NIfTI users never load it
    import SimpleITK as sitk

__all__ = ["read_volume", "read_labels", "NIFTI_SUFFIXES", "NRRD_SUFFIXES"]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")

# ITK (and DICOM, NRRD) world coordinates are LPS+; flipping x and y gives nibabel's RAS+.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# What nibabel raises for unreadable files: bad magic, bad gzip, truncated data, bad header fields.
_NIBABEL_ERRORS = (ImageFileError, HeaderDataError, OSError, EOFError, zlib.error, ValueError)

# Label maps stored as floats are cast to the first of these that holds their range.
_LABEL_DTYPES = (np.uint8, np.int16, np.int32)

# Relative variation of DICOM slice steps above which the series is rejected (a missing slice).
_SLICE_STEP_TOLERANCE = 0.01


def read_volume(
    path: str | os.PathLike,
    dtype: np.dtype | type | None = np.float32,
    series_uid: str | None = None,
) -> Volume:
    """Read an image file or DICOM folder.

    Intensities are the scaled values (NIfTI ``scl_slope``/``scl_inter``, DICOM rescale slope and
    intercept applied); for NIfTI the array and affine equal those of MONAI's
    ``LoadImage(image_only=True)`` with its nibabel reader.

    Args:
        path: ``.nii``/``.nii.gz`` (nibabel), ``.nrrd``/``.nhdr`` (SimpleITK) or a folder holding
            one DICOM series (SimpleITK/GDCM).
        dtype: dtype of the returned array; ``None`` keeps the stored (scaled) dtype.
        series_uid: which series to read when a DICOM folder holds several.

    Returns:
        Volume with an (I, J, K) array in on-disk order and a voxel -> RAS+ mm affine. A trailing
        singleton 4th dimension (I, J, K, 1) is squeezed; other 2D or 4D data raise InputError.

    Raises:
        InputError: missing, unreadable or corrupt input, not 3D, NaN values or a bad grid.
    """
    array, affine, source = _read(path, series_uid)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return Volume(array=array, affine=affine, source=source)


def read_labels(path: str | os.PathLike, series_uid: str | None = None) -> Volume:
    """Read a label map, keeping (or restoring) an integer dtype.

    Integer files keep their stored dtype. Labels stored as floats must hold whole numbers and
    are cast to the smallest of uint8, int16, int32 that holds their range.

    Args:
        path: as for :func:`read_volume`.
        series_uid: as for :func:`read_volume`.

    Returns:
        Volume with an integer (I, J, K) array in on-disk order and a voxel -> RAS+ mm affine.

    Raises:
        InputError: as for :func:`read_volume`, or non-integer label values.
    """
    array, affine, source = _read(path, series_uid)
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        array = _float_labels_to_int(array, source)
    elif array.dtype.kind not in "iu":
        raise InputError(f"{source}: label map has unsupported voxel type {array.dtype}")
    return Volume(array=array, affine=affine, source=source)


def _read(path: str | os.PathLike, series_uid: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError(f"{source}: file not found")
    if path.is_dir():
        array, affine = _read_dicom_series(path, series_uid, source)
    else:
        name = path.name.lower()
        if name.endswith(NIFTI_SUFFIXES):
            array, affine = _read_nifti(path, source)
        elif name.endswith(NRRD_SUFFIXES):
            array, affine = _read_sitk_file(path, source)
        else:
            suffixes = ", ".join(NIFTI_SUFFIXES + NRRD_SUFFIXES)
            raise InputError(
                f"{source}: unknown image extension {_suffix(path)!r}; expected {suffixes} or a DICOM folder"
            )
    return _squeeze_to_3d(array, source), affine, source


def _read_nifti(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        # No memory map: the Volume owns its data and no file stays open (values are the same).
        image = nib.load(path, mmap=False)
        # Same call as MONAI's NibabelReader: applies scl_slope/scl_inter, keeps (i, j, k) order.
        array = np.asanyarray(image.dataobj)
    except _NIBABEL_ERRORS as err:
        raise InputError(f"{source}: cannot read NIfTI file ({_one_line(err)})") from err
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{source}: not a NIfTI image ({type(image).__name__})")
    if int(image.header["sform_code"]) == 0:
        _check_pixdim(path, type(image.header), source)
    return array, np.array(image.affine, dtype=np.float64)


def _check_pixdim(path: Path, header_class: type, source: str) -> None:
    """Reject zero or negative voxel sizes in a NIfTI header whose geometry comes from pixdim.

    On loading, nibabel replaces such pixdims by 1 or their absolute value (with only a log
    message); a made-up voxel size would silently distort every result, so read them unrepaired.
    """
    try:
        with ImageOpener(path) as fileobj:
            header = header_class.from_fileobj(fileobj, check=False)
    except _NIBABEL_ERRORS as err:
        raise InputError(f"{source}: cannot read NIfTI header ({_one_line(err)})") from err
    pixdim = np.asarray(header["pixdim"][1:4], dtype=np.float64)
    if not (pixdim > 0).all():
        raise InputError(f"{source}: voxel spacing must be positive, got pixdim {tuple(pixdim.tolist())}")


def _read_sitk_file(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"{source}: cannot read image file ({_sitk_message(err)})") from err
    return _sitk_to_array_affine(image, source)


def _read_dicom_series(folder: Path, series_uid: str | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    # ITK prints warnings for empty folders and uneven slices to stderr; both become InputErrors.
    with _itk_warnings_off():
        return _read_dicom_series_quietly(folder, series_uid, source)


def _read_dicom_series_quietly(folder: Path, series_uid: str | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError(f"{source}: no DICOM series found in folder")
    if series_uid is None:
        if len(series) > 1:
            raise InputError(
                f"{source}: folder holds {len(series)} DICOM series ({', '.join(map(repr, series))}); choose one with series_uid"
            )
        series_uid = series[0]
    elif series_uid not in series:
        raise InputError(f"{source}: no DICOM series {series_uid!r} in folder (found {', '.join(map(repr, series))})")
    files = reader.GetGDCMSeriesFileNames(str(folder), series_uid)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(f"{source}: cannot read DICOM series ({_sitk_message(err)})") from err
    _check_slice_steps(reader, image, len(files), source)
    return _sitk_to_array_affine(image, source)


def _check_slice_steps(reader: sitk.ImageSeriesReader, image: sitk.Image, n_files: int, source: str) -> None:
    """Reject a series whose slice positions are not evenly spaced (ITK would assume they are)."""
    if n_files < 3 or image.GetDimension() != 3:
        return
    key = "0020|0032"  # Image Position (Patient)
    if not all(reader.HasMetaDataKey(i, key) for i in range(n_files)):
        return
    positions = np.array([[float(v) for v in reader.GetMetaData(i, key).split("\\")] for i in range(n_files)])
    normal = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)[:, 2]
    steps = np.diff(positions @ normal)
    mean_step = abs(float(steps.mean()))
    if mean_step == 0 or np.abs(steps - steps.mean()).max() > _SLICE_STEP_TOLERANCE * mean_step:
        raise InputError(
            f"{source}: DICOM slices are not evenly spaced (steps {abs(steps).min():.3f} to "
            f"{abs(steps).max():.3f} mm); a slice may be missing or duplicated"
        )


def _sitk_to_array_affine(image: sitk.Image, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(i, j, k) array and RAS+ affine of a SimpleITK image (whose array is (k, j, i), world LPS+)."""
    import SimpleITK as sitk

    n_components = image.GetNumberOfComponentsPerPixel()
    if n_components != 1:
        raise InputError(f"{source}: expected one value per voxel, got {n_components} components")
    ndim = image.GetDimension()
    array = sitk.GetArrayFromImage(image).transpose(tuple(range(ndim - 1, -1, -1)))
    n = min(ndim, 3)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)[:n, :n]
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)[:n]
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)[:n]
    if ndim < 3:
        # Let _squeeze_to_3d report the dimension; any invertible affine will do until then.
        return array, np.eye(4)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction * spacing  # column c = spacing[c] * direction of axis c
    affine_lps[:3, 3] = origin
    return array, LPS_TO_RAS @ affine_lps


@contextlib.contextmanager
def _itk_warnings_off() -> Iterator[None]:
    import SimpleITK as sitk

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _squeeze_to_3d(array: np.ndarray, source: str) -> np.ndarray:
    if array.ndim > 3 and all(s == 1 for s in array.shape[3:]):
        logger.debug("%s: squeezing trailing singleton dimensions of shape %s", source, array.shape)
        array = array.reshape(array.shape[:3])
    if array.ndim != 3:
        raise InputError(f"{source}: expected a 3D volume, got {array.ndim}D data of shape {array.shape}")
    return array


def _float_labels_to_int(array: np.ndarray, source: str) -> np.ndarray:
    if not np.isfinite(array).all():
        raise InputError(f"{source}: label map contains NaN or infinite values")
    if not np.array_equal(array, np.round(array)):
        raise InputError(f"{source}: label map holds non-integer values (is it an image, not labels?)")
    low, high = float(array.min()), float(array.max())
    for candidate in _LABEL_DTYPES:
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return array.astype(candidate)
    raise InputError(f"{source}: label values {low:g}..{high:g} do not fit in int32")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz") and len(path.suffixes) > 1:
        return "".join(path.suffixes[-2:])
    return path.suffix or "(none)"


def _sitk_message(err: RuntimeError) -> str:
    # ITK exceptions span several lines starting with the source location; keep the description.
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith("description:"):
            return line.split(":", 1)[1].strip()
    return lines[-1] if lines else type(err).__name__


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__
