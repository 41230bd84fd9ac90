"""Read NIfTI, NRRD and DICOM series into :class:`~voxelprompt.types.Volume` records.

Arrays come back in on-disk (i, j, k) order with a voxel -> RAS+ mm affine (see
:mod:`voxelprompt.types`); every problem with a file is raised as :class:`InputError`.
"""

from __future__ import annotations

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
from voxelprompt.imageio import preflight
from voxelprompt.imageio.dicom import read_dicom_series
from voxelprompt.imageio.itk import sitk_message, sitk_to_array_affine, sitk_voxel_type
from voxelprompt.imageio.policy import TRUSTED, ReadPolicy
from voxelprompt.types import Volume

__all__ = ["read_volume", "read_labels", "NIFTI_SUFFIXES", "NRRD_SUFFIXES"]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")

# What nibabel raises for unreadable files: bad magic, bad gzip, truncated data, bad header fields.
_NIBABEL_ERRORS = (ImageFileError, HeaderDataError, OSError, EOFError, zlib.error, ValueError)

# Label maps stored as floats are cast to the first of these that holds their range.
_LABEL_DTYPES = (np.uint8, np.int16, np.int32)


def read_volume(
    path: str | os.PathLike,
    dtype: np.dtype | type | None = np.float32,
    series_uid: str | None = None,
    policy: ReadPolicy = TRUSTED,
) -> Volume:
    """Read an image file or DICOM folder.

    Intensities are the scaled values (NIfTI ``scl_slope``/``scl_inter``, DICOM rescale slope and
    intercept applied); for NIfTI the array and affine equal those of MONAI's
    ``LoadImage(image_only=True)`` with its nibabel reader.

    Args:
        path: ``.nii``/``.nii.gz`` (nibabel), ``.nrrd``/``.nhdr`` (SimpleITK) or a folder holding
            one DICOM series (SimpleITK/GDCM).
        dtype: dtype of the returned array; ``None`` keeps the stored (scaled) dtype (float32 for
            a gantry-tilted DICOM series, which is interpolated).
        series_uid: which series to read when a DICOM folder holds several (see
            :func:`~voxelprompt.imageio.list_dicom_series`).
        policy: what the file may refer to and how large it may decode
            (:data:`~voxelprompt.imageio.policy.UNTRUSTED` for files others sent).

    Returns:
        Volume with an (I, J, K) array in on-disk order and a voxel -> RAS+ mm affine. A trailing
        singleton 4th dimension (I, J, K, 1) is squeezed; other 2D or 4D data raise InputError.
        A gantry-tilted DICOM series is resampled onto an orthogonal grid (see
        :func:`~voxelprompt.imageio.dicom.read_dicom_series`).

    Raises:
        InputError: missing, unreadable or corrupt input; a header that states an empty axis,
            more data than the file holds or more than the available memory; not 3D, NaN values
            or a bad grid; a file the ``policy`` refuses.
        TooLargeError: a header whose decoded volume exceeds ``policy.max_decoded_bytes``.
    """
    array, affine, source = _read(path, series_uid, labels=False, policy=policy)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return Volume(array=array, affine=affine, source=source)


def read_labels(path: str | os.PathLike, series_uid: str | None = None, policy: ReadPolicy = TRUSTED) -> Volume:
    """Read a label map, keeping (or restoring) an integer dtype.

    Integer files keep their stored dtype. Labels stored as floats must hold whole numbers and
    are cast to the smallest of uint8, int16, int32 that holds their range.

    Args:
        path: as for :func:`read_volume`.
        series_uid: as for :func:`read_volume`.
        policy: as for :func:`read_volume`.

    Returns:
        Volume with an integer (I, J, K) array in on-disk order and a voxel -> RAS+ mm affine.

    Raises:
        InputError: as for :func:`read_volume`, or non-integer label values.
    """
    array, affine, source = _read(path, series_uid, labels=True, policy=policy)
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        array = _float_labels_to_int(array, source)
    elif array.dtype.kind not in "iu":
        raise InputError(f"{source}: label map has unsupported voxel type {array.dtype}")
    return Volume(array=array, affine=affine, source=source)


def _read(path: str | os.PathLike, series_uid: str | None, labels: bool, policy: ReadPolicy) -> tuple[np.ndarray, np.ndarray, str]:
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError(f"{source}: file not found")
    if not policy.external_files and (not path.is_file() or path.name.lower().endswith(".nhdr")):
        raise InputError(f"{source}: only a single .nii, .nii.gz or .nrrd file is accepted here")
    if path.is_dir():
        images = sorted(p.name for p in path.iterdir() if p.name.lower().endswith(NIFTI_SUFFIXES + NRRD_SUFFIXES))
        try:
            array, affine = read_dicom_series(path, series_uid, source, nearest=labels)
        except InputError as err:
            if not images:
                raise
            many = f"{images[0]}, ..." if len(images) > 1 else images[0]
            raise InputError(
                f"{err}; it holds {len(images)} image file(s) ({many}): give one, or segment them all with "
                f"`voxelprompt batch {source} -o OUT_DIR`"
            ) from None
    else:
        name = path.name.lower()
        if name.endswith(NIFTI_SUFFIXES):
            array, affine = _read_nifti(path, source, policy)
        elif name.endswith(NRRD_SUFFIXES):
            array, affine = _read_nrrd(path, source, policy)
        else:
            suffixes = ", ".join(NIFTI_SUFFIXES + NRRD_SUFFIXES)
            raise InputError(
                f"{source}: unknown image extension {_suffix(path)!r}; expected {suffixes} or a DICOM folder"
            )
    return _squeeze_to_3d(array, source), affine, source


@contextlib.contextmanager
def _nibabel_quiet() -> Iterator[None]:
    """nibabel logs header repairs ("pixdim[1,2,3] should be non-zero; setting 0 dims to 1") to
    stderr; the checks below report what matters as one InputError instead."""
    log = logging.getLogger("nibabel.global")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _read_nifti(path: Path, source: str, policy: ReadPolicy) -> tuple[np.ndarray, np.ndarray]:
    try:
        # No memory map: the Volume owns its data and no file stays open (values are the same).
        # Loading reads the header only; the data is read below, after the header's checks.
        with _nibabel_quiet():
            image = nib.load(path, mmap=False)
    except _NIBABEL_ERRORS as err:
        raise InputError(f"{source}: cannot read NIfTI file ({_one_line(err)})") from err
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{source}: not a NIfTI image ({type(image).__name__})")
    shape, stored = image.shape, image.get_data_dtype()
    preflight.check_header_shape(shape, source)
    preflight.check_decoded_budget(shape, stored.itemsize, policy.max_decoded_bytes, source)
    offset = getattr(image.dataobj, "offset", None)
    if offset is not None:
        preflight.check_nifti_size(path, shape, stored, int(offset), source)
    preflight.check_memory(shape, stored.itemsize, source)
    if int(image.header["sform_code"]) == 0:
        _check_pixdim(path, type(image.header), source)
    try:
        # Same call as MONAI's NibabelReader: applies scl_slope/scl_inter, keeps (i, j, k) order.
        array = np.asanyarray(image.dataobj)
    except _NIBABEL_ERRORS as err:
        raise InputError(f"{source}: cannot read NIfTI file ({_one_line(err)})") from err
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


def _read_nrrd(path: Path, source: str, policy: ReadPolicy) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    if not policy.external_files:
        # Checked before ITK opens the file: ITK follows a header's data file to any path.
        sizes = preflight.check_self_contained_nrrd(path, source)
        preflight.check_decoded_budget(sizes, 1, policy.max_decoded_bytes, source)  # a lower bound (float32)
        reader.SetImageIO("NrrdImageIO")  # never a reader chosen by sniffing the content
    preflight.check_nrrd_sizes(path, source)
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(f"{source}: cannot read image file ({sitk_message(err)})") from err
    shape = reader.GetSize()
    dtype, n_components = sitk_voxel_type(reader)
    itemsize = dtype.itemsize * n_components
    preflight.check_header_shape(shape, source)
    preflight.check_decoded_budget(shape, itemsize, policy.max_decoded_bytes, source)
    preflight.check_raw_nrrd_size(path, shape, dtype, itemsize, source)
    preflight.check_memory(shape, itemsize, source)
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(f"{source}: cannot read image file ({sitk_message(err)})") from err
    return sitk_to_array_affine(image, source)


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


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__
