"""DICOM series (SimpleITK/GDCM) as (i, j, k) arrays with RAS+ affines, and what a folder holds.

Gantry-tilted (sheared) series are resampled onto an orthogonal grid, as dcm2niix does, since
ITK would place their slices along the normal and misplace every slice but the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxelprompt.errors import InputError
from voxelprompt.imageio import preflight
from voxelprompt.imageio.itk import LPS_TO_RAS, itk_warnings_off, sitk_message, sitk_to_array_affine, sitk_voxel_type

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["DicomSeriesInfo", "list_dicom_series", "read_dicom_series", "series_tilt_degrees"]

logger = logging.getLogger(__name__)

# Relative variation of slice steps along the normal above which the series is rejected (a
# missing or duplicated slice): ITK assumes even spacing.
_SLICE_STEP_TOLERANCE = 0.01

# In-plane drift of the last slice against the first (mm) above which a series counts as tilted:
# below it the shear is rounding of ImagePositionPatient (often written to 0.1 mm), and leaving
# it misplaces no slice by more than a fraction of a voxel.
_TILT_DRIFT_TOLERANCE_MM = 0.2

# A tilted series' slice origins must lie on a line within this fraction of an in-plane voxel.
_TILT_LINE_TOLERANCE = 0.1

# Shifts within this many voxels of a whole number are whole: float noise in the positions must
# not push a border row just outside the data (where the fill value would replace it).
_WHOLE_SHIFT_TOLERANCE = 1e-6

# Transfer syntaxes whose files hold the pixel data uncompressed (their size can be checked).
_UNCOMPRESSED_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")

_POSITION_KEY = "0020|0032"  # Image Position (Patient), LPS mm


@dataclass(frozen=True)
class DicomSeriesInfo:
    """One DICOM series in a folder.

    Args:
        uid: SeriesInstanceUID (0020,000E) as GDCM groups files; ``""`` for files without one.
            Pass it as ``series_uid`` to :func:`~voxelprompt.imageio.read_volume`.
        description: SeriesDescription (0008,103E), ``""`` when absent.
        n_files: number of files in the series.
        n_slices: number of slices (files times frames per file).
        modality: Modality (0008,0060), e.g. ``"CT"``; ``""`` when absent.
    """

    uid: str
    description: str
    n_files: int
    n_slices: int
    modality: str


def list_dicom_series(folder: str | os.PathLike) -> list[DicomSeriesInfo]:
    """The DICOM series in a folder (not its subfolders), in GDCM's order.

    Reads only the header of each series' first file.

    Args:
        folder: a folder holding DICOM files.

    Returns:
        One record per series; empty when the folder holds no DICOM files.

    Raises:
        InputError: ``folder`` does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {'not a folder' if folder.exists() else 'folder not found'}")
    import SimpleITK as sitk

    with itk_warnings_off():
        reader = sitk.ImageSeriesReader()
        uids = reader.GetGDCMSeriesIDs(str(folder))
        return [_series_info(uid, reader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in uids]


def read_dicom_series(
    folder: str | os.PathLike, series_uid: str | None, source: str, nearest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Read one series of a DICOM folder (the reader behind :func:`~voxelprompt.imageio.read_volume`).

    Intensities have the rescale slope and intercept applied. A gantry-tilted series (its slice
    origins step off the slice normal, see :func:`series_tilt_degrees`) is resampled onto an
    orthogonal grid as dcm2niix does: in-plane axes and spacing kept, slice axis along the normal
    with the step projected on it, the grid extended to cover every acquired voxel centre, voxels
    outside the acquired data set to the series minimum; a warning is logged.

    Args:
        folder: the DICOM folder.
        series_uid: the series to read; ``None`` when the folder holds exactly one.
        source: name used in messages.
        nearest: resample a tilted series with nearest-neighbour (label maps) instead of linear
            interpolation.

    Returns:
        (I, J, K) array in ITK index order (column, row, slice) and its voxel -> RAS+ mm affine.

    Raises:
        InputError: no or several series, unknown ``series_uid``, headers that claim more data
            than the files hold or memory allows, unreadable files, unevenly spaced slices.
    """
    with itk_warnings_off():  # ITK warns on stderr about what becomes an InputError here
        return _read_quietly(Path(folder), series_uid, source, nearest)


def series_tilt_degrees(positions: np.ndarray, orientation: Sequence[float]) -> float:
    """Angle between a series' mean slice step and its slice normal (0 for an orthogonal series).

    Args:
        positions: (N, 3) ImagePositionPatient of the slices in stacking order, LPS+ mm.
        orientation: ImageOrientationPatient, 6 values: the row direction (along which the column
            index grows) then the column direction, LPS+.

    Returns:
        The angle in degrees, in [0, 90]; 0.0 for fewer than two slices.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if len(positions) < 2:
        return 0.0
    step = (positions[-1] - positions[0]) / (len(positions) - 1)
    normal = _normal(orientation)
    along = abs(float(step @ normal))
    across = float(np.linalg.norm(step - (step @ normal) * normal))
    return math.degrees(math.atan2(across, along))


def _read_quietly(folder: Path, series_uid: str | None, source: str, nearest: bool) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    uids = reader.GetGDCMSeriesIDs(str(folder))
    if not uids:
        raise InputError(f"{source}: no DICOM series found in folder")
    if series_uid is None and len(uids) > 1:
        raise InputError(
            f"{source}: folder holds {len(uids)} DICOM series: {_describe(list_dicom_series(folder))}; "
            "choose one with --series-uid UID"
        )
    if series_uid is not None and series_uid not in uids:
        raise InputError(
            f"{source}: no DICOM series {series_uid!r} in folder; it holds "
            f"{_describe(list_dicom_series(folder))}; choose one with --series-uid UID"
        )
    files = reader.GetGDCMSeriesFileNames(str(folder), uids[0] if series_uid is None else series_uid)
    _check_header_claims(files, source)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(f"{source}: cannot read DICOM series ({sitk_message(err)})") from err
    array, affine = sitk_to_array_affine(image, source)
    positions = _slice_positions(reader, len(files))
    if positions is None or image.GetDimension() != 3 or len(positions) != array.shape[2]:
        return array, affine
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    orientation = np.concatenate([direction[:, 0], direction[:, 1]])
    _check_slice_steps(positions, orientation, source)
    drift = _drift_mm(positions, orientation)
    if drift <= _TILT_DRIFT_TOLERANCE_MM:
        return array, affine
    _check_straight_line(positions, image.GetSpacing()[:2], source)
    tilt = series_tilt_degrees(positions, orientation)
    array, affine_lps = _resample_tilted(array, positions, orientation, image.GetSpacing()[:2], nearest)
    logger.warning(
        "%s: DICOM series is gantry-tilted by %.1f degrees; resampled onto an orthogonal grid (as dcm2niix does)",
        source, tilt,
    )  # fmt: skip
    return array, LPS_TO_RAS @ affine_lps


def _series_info(uid: str, files: Sequence[str]) -> DicomSeriesInfo:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(files[0])
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        # Listing only describes; reading the series reports the unreadable file.
        return DicomSeriesInfo(uid=uid, description="", n_files=len(files), n_slices=len(files), modality="")
    size = reader.GetSize()
    frames = size[2] if len(size) > 2 else 1

    def tag(key: str) -> str:
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""

    return DicomSeriesInfo(
        uid=uid,
        description=tag("0008|103e"),
        n_files=len(files),
        n_slices=len(files) * frames,
        modality=tag("0008|0060"),
    )


def _describe(series: Sequence[DicomSeriesInfo]) -> str:
    return ", ".join(f"{info.uid!r} ({info.description!r}, {info.n_slices} slices)" for info in series)


def _check_header_claims(files: Sequence[str], source: str) -> None:
    """Check the first file's header (shape, per-file pixel bytes, memory) before ITK allocates."""
    import SimpleITK as sitk

    info = sitk.ImageFileReader()
    info.SetFileName(files[0])
    try:
        info.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(f"{source}: cannot read DICOM file {Path(files[0]).name} ({sitk_message(err)})") from err
    size = info.GetSize()
    frames = size[2] if len(size) > 2 else 1
    shape = (size[0], size[1], frames * len(files))
    preflight.check_header_shape(shape, source)
    dtype, n_components = sitk_voxel_type(info)
    _check_file_sizes(files, size[0] * size[1] * frames, info, source)
    preflight.check_memory(shape, dtype.itemsize * n_components, source)


def _check_file_sizes(files: Sequence[str], pixels_per_file: int, info: sitk.ImageFileReader, source: str) -> None:
    """Reject an uncompressed series in which a file is smaller than the pixel data its header states."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_file_meta_info

    try:
        syntax = str(read_file_meta_info(files[0]).get("TransferSyntaxUID", ""))
        bits = int(info.GetMetaData("0028|0100")) if info.HasMetaDataKey("0028|0100") else 0
        samples = int(info.GetMetaData("0028|0002")) if info.HasMetaDataKey("0028|0002") else 1
    except (InvalidDicomError, OSError, ValueError):
        return  # no file meta or odd tags: GDCM's own checks apply
    if syntax not in _UNCOMPRESSED_SYNTAXES or bits <= 0:
        return
    needed = pixels_per_file * samples * bits // 8
    for name in files:
        held = os.path.getsize(name)
        if held < needed:
            raise InputError(
                f"{source}: {Path(name).name} holds {preflight.format_bytes(held)} but its header describes "
                f"{preflight.format_bytes(needed)} of pixel data: truncated file or corrupt header"
            )


def _slice_positions(reader: sitk.ImageSeriesReader, n_files: int) -> np.ndarray | None:
    if n_files < 2 or not all(reader.HasMetaDataKey(i, _POSITION_KEY) for i in range(n_files)):
        return None
    try:
        return np.array([[float(v) for v in reader.GetMetaData(i, _POSITION_KEY).split("\\")] for i in range(n_files)])
    except ValueError:
        return None  # malformed positions: keep ITK's geometry


def _check_slice_steps(positions: np.ndarray, orientation: np.ndarray, source: str) -> None:
    """Reject a series whose slice positions are not evenly spaced along the normal."""
    if len(positions) < 3:
        return
    steps = np.diff(positions @ _normal(orientation))
    mean_step = abs(float(steps.mean()))
    if mean_step == 0 or np.abs(steps - steps.mean()).max() > _SLICE_STEP_TOLERANCE * mean_step:
        raise InputError(
            f"{source}: DICOM slices are not evenly spaced (steps {abs(steps).min():.3f} to "
            f"{abs(steps).max():.3f} mm); a slice may be missing or duplicated"
        )


def _drift_mm(positions: np.ndarray, orientation: np.ndarray) -> float:
    """In-plane distance between the last slice's origin and the first one's, off the normal."""
    normal = _normal(orientation)
    offset = positions[-1] - positions[0]
    return float(np.linalg.norm(offset - (offset @ normal) * normal))


def _check_straight_line(positions: np.ndarray, spacing: Sequence[float], source: str) -> None:
    """Reject a tilted series whose slice origins do not step by one constant vector."""
    k = np.arange(len(positions))[:, None]
    step = (positions[-1] - positions[0]) / (len(positions) - 1)
    deviation = float(np.linalg.norm(positions - (positions[0] + k * step), axis=1).max())
    if deviation > _TILT_LINE_TOLERANCE * min(spacing):
        raise InputError(
            f"{source}: slice positions of the tilted DICOM series are off a straight line by up to "
            f"{deviation:.2f} mm (a varying tilt or a missing slice)"
        )


def _resample_tilted(
    array: np.ndarray, positions: np.ndarray, orientation: np.ndarray, spacing: Sequence[float], nearest: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shift each slice in-plane onto an orthogonal grid; returns the array and its LPS+ affine.

    Target slices lie in the acquired slice planes, so slice k of the result is slice k of the
    series moved by k times the in-plane part of the step: a 2D resampling per slice.
    """
    from scipy import ndimage

    row, col = np.asarray(orientation[:3], dtype=np.float64), np.asarray(orientation[3:], dtype=np.float64)
    normal = _normal(orientation)
    dx, dy = float(spacing[0]), float(spacing[1])
    n_i, n_j, n_k = array.shape
    step = (positions[-1] - positions[0]) / (n_k - 1)
    along = float(step @ normal)
    if along < 0:  # slices stacked against the normal: keep k increasing along the slice axis
        normal, along = -normal, -along
    # In-plane shift of slice k is k * (shift_i, shift_j) voxels.
    shift = np.array([step @ row / dx, step @ col / dy])
    last = shift * (n_k - 1)
    lower = np.floor(np.minimum(0.0, last) + _WHOLE_SHIFT_TOLERANCE).astype(int)
    upper = np.ceil(np.array([n_i - 1, n_j - 1]) + np.maximum(0.0, last) - _WHOLE_SHIFT_TOLERANCE).astype(int)
    out_shape = (int(upper[0] - lower[0] + 1), int(upper[1] - lower[1] + 1))
    fill = array.min()
    dtype = array.dtype if nearest else np.float32
    out = np.empty((*out_shape, n_k), dtype=dtype)
    for k in range(n_k):
        # Output voxel t of slice k samples input (t + offset); whole offsets stay whole.
        offset = lower - k * shift
        snapped = np.round(offset)
        offset = np.where(np.abs(offset - snapped) < _WHOLE_SHIFT_TOLERANCE, snapped, offset)
        ndimage.affine_transform(
            array[:, :, k].astype(dtype, copy=False), np.eye(2), offset=offset, output_shape=out_shape,
            output=out[:, :, k], order=0 if nearest else 1, mode="constant", cval=fill,
        )  # fmt: skip
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = dx * row, dy * col, along * normal
    affine[:3, 3] = positions[0] + lower[0] * dx * row + lower[1] * dy * col
    return out, affine


def _normal(orientation: Sequence[float]) -> np.ndarray:
    orientation = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    return normal / np.linalg.norm(normal)
