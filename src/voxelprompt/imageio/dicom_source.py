"""The source images of a derived DICOM object: read, ordered slice by slice against a label map.

A DICOM-SEG frame or an RT-STRUCT contour must lie exactly on one source image, so a label map is
accepted only on the series' own grid (as :func:`~voxelprompt.imageio.read_volume` returns it) and never after resampling.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from voxelprompt.errors import InputError
from voxelprompt.imageio.dicom import series_tilt_degrees
from voxelprompt.imageio.itk import LPS_TO_RAS
from voxelprompt.types import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DerivedUid", "SourceSeries", "derive_uid", "read_source_series", "match_source_grid"]

# A label slice matches a source image when their origins are this fraction of the smallest voxel
# size apart (DICOM positions are decimal strings; NIfTI stores the affine in float32).
_POSITION_TOLERANCE = 0.1

# Axis vectors (direction x spacing, mm) of the label grid and the series may differ by this much.
_AXIS_TOLERANCE_MM = 1e-3

# In-plane drift (mm) of the last slice origin against the first above which a series is tilted;
# the DICOM reader uses the same threshold before it resamples.
_TILT_DRIFT_MM = 0.2

# UID attributes a derived object copies or references, in the order they are checked.
_REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")

# Where a missing SOP Class / Instance UID is found first: the file meta header of the same file.
_FILE_META_UIDS = (("SOPClassUID", "MediaStorageSOPClassUID"), ("SOPInstanceUID", "MediaStorageSOPInstanceUID"))

MissingUids = Literal["refuse", "derive"]


@dataclass(frozen=True)
class DerivedUid:
    """A UID the source series lacked and that was filled in for the derived object.

    Args:
        source: the source image it belongs to (file name, or ``"#k"`` for an image without a file:
            the one under label slice k),
            or ``"series"`` for the series-wide Study, Series and Frame of Reference UIDs.
        attribute: the DICOM keyword, e.g. ``"SOPInstanceUID"``.
        uid: the value used.
    """

    source: str
    attribute: str
    uid: str


@dataclass(frozen=True)
class SourceSeries:
    """Source images in label-map slice order.

    Args:
        datasets: ``datasets[k]`` is the image under slice ``k`` of the label map (headers; pixel
            data only when the caller passed it in).
        derived_uids: UIDs filled in because the images lacked them (empty when none were).
    """

    datasets: tuple[Dataset, ...]
    derived_uids: tuple[DerivedUid, ...] = ()


def derive_uid(*parts: str | bytes) -> str:
    """A deterministic DICOM UID (``2.25.<decimal UUID>``, ISO/IEC 9834-8) derived from ``parts``.

    The same parts always give the same UID, different parts different UIDs: a name-based UUID
    (version 5) of the SHA-256 of the parts, each length-prefixed so that the split matters.
    """
    digest = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big") + data)
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, digest.hexdigest()).int}"


def read_source_series(source: str | os.PathLike | Sequence[Dataset], series_uid: str | None = None) -> list[Dataset]:
    """The images of a source series: a folder's DICOM files (headers only), or datasets as given.

    Args:
        source: a folder (not its subfolders; files pydicom cannot parse and images without
            ImagePositionPatient, such as a DICOM-SEG, are skipped), or the series' pydicom datasets.
        series_uid: the SeriesInstanceUID to keep, as passed to
            :func:`~voxelprompt.imageio.read_volume`; None when the images hold one series (images
            without the UID count as one series).

    Returns:
        The datasets in file-name (or given) order; :func:`match_source_grid` orders them by position.

    Raises:
        InputError: the folder does not exist, holds no DICOM image, holds several series and no
            ``series_uid`` was given, or none with ``series_uid``.
    """
    datasets = list(source) if not isinstance(source, (str, os.PathLike)) else _read_folder(Path(source))
    name = str(source) if isinstance(source, (str, os.PathLike)) else "source series"
    if not datasets:
        raise InputError(f"{name}: no source images given")
    uids = sorted({str(ds.get("SeriesInstanceUID", "") or "") for ds in datasets})
    if series_uid is None and len(uids) > 1:
        raise InputError(f"{name}: the images belong to {len(uids)} series {uids}; choose one with series_uid")
    if series_uid is not None:
        datasets = [ds for ds in datasets if str(ds.get("SeriesInstanceUID", "") or "") == series_uid]
        if not datasets:
            raise InputError(f"{name}: no image of series {series_uid!r}; the images belong to {uids}")
    return datasets


def _read_folder(folder: Path) -> list[Dataset]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not folder.is_dir():
        raise InputError(f"{folder}: {'not a folder' if folder.exists() else 'folder not found'}")
    datasets = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError):
            continue
        if "ImagePositionPatient" in ds:
            datasets.append(ds)
    return datasets


def match_source_grid(
    labels: Volume,
    datasets: Sequence[Dataset],
    *,
    missing_uids: MissingUids = "refuse",
    source: str = "source series",
    output: str = "DICOM-SEG",
) -> SourceSeries:
    """Order ``datasets`` so that image ``k`` lies under slice ``k`` of ``labels``, and check UIDs.

    ``labels`` must be on the series' own grid: shape (Columns, Rows, number of images) and an
    affine whose i axis is the row direction times the column spacing, whose j axis is the column
    direction times the row spacing, and whose slice ``k`` origin is one image's
    ImagePositionPatient (within a tenth of the smallest voxel size). File order and instance
    numbers play no part.

    Args:
        labels: (I, J, K) label map, voxel -> RAS+ mm affine (see :mod:`voxelprompt.types`).
        datasets: the series' single-frame images in any order.
        missing_uids: ``"refuse"``: an image without SOP Class/Instance, Series, Study or Frame of
            Reference UID raises :class:`InputError`. ``"derive"``: fill them in on copies (the
            caller's datasets are not changed): SOP Class and Instance UID from the file meta
            header when it has them, else the instance UID from the image's content (SHA-256 of its
            file, or of its encoding when it has no file); Study, Series and Frame of Reference UID
            from all images' content; each filled value is listed in ``derived_uids``.
        source: name used in messages.
        output: the derived object's kind, for messages (``"DICOM-SEG"``, ``"RT-STRUCT"``).

    Raises:
        InputError: a gantry-tilted series (it is resampled on reading, so no slice lies on an
            image), multi-frame or unequal images, a label grid other than the series' grid, or a
            missing UID with ``missing_uids="refuse"``; each names the offending value.
    """
    if missing_uids not in ("refuse", "derive"):
        raise ValueError(f"missing_uids must be 'refuse' or 'derive', got {missing_uids!r}")
    datasets = list(datasets)
    orientation, positions = _common_geometry(datasets, source)
    normal = np.cross(orientation[:3], orientation[3:])
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    _check_not_tilted(positions, orientation, source, output)
    ordered = _match_slices(labels, [datasets[i] for i in order], positions, orientation, source)
    missing = [(n, ds, keyword) for n, ds in enumerate(ordered) for keyword in _REQUIRED_UIDS if _lacks(ds, keyword)]
    if not missing:
        return SourceSeries(datasets=tuple(ordered))
    if missing_uids == "derive":
        return _derive_missing_uids(ordered, source)
    n, ds, keyword = missing[0]
    raise InputError(
        f"{source}: image {_name(ds, n)} has no {keyword}; a {output} must reference it "
        "(derive missing UIDs from the file content with missing_uids='derive')"
    )


def _common_geometry(datasets: list[Dataset], source: str) -> tuple[np.ndarray, np.ndarray]:
    """The series' ImageOrientationPatient (6,) and every image's ImagePositionPatient (N, 3), LPS+."""
    first = datasets[0]
    for n, ds in enumerate(datasets):
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
            if keyword not in ds:
                raise InputError(f"{source}: image {_name(ds, n)} has no {keyword}")
        if int(ds.get("NumberOfFrames", 1) or 1) != 1:
            raise InputError(f"{source}: image {_name(ds, n)} is multi-frame; only single-frame series are supported")
        same = (ds.Rows, ds.Columns) == (first.Rows, first.Columns) and np.allclose(
            [*ds.ImageOrientationPatient, *ds.PixelSpacing],
            [*first.ImageOrientationPatient, *first.PixelSpacing],
            atol=1e-4,
        )
        if not same:
            raise InputError(
                f"{source}: image {_name(ds, n)} differs from {_name(first, 0)} in size, orientation or spacing"
            )
    orientation = np.asarray([float(v) for v in first.ImageOrientationPatient], dtype=np.float64)
    positions = np.asarray([[float(v) for v in ds.ImagePositionPatient] for ds in datasets], dtype=np.float64)
    return orientation, positions


def _check_not_tilted(positions: np.ndarray, orientation: np.ndarray, source: str, output: str) -> None:
    normal = np.cross(orientation[:3], orientation[3:])
    offset = positions[-1] - positions[0]
    if np.linalg.norm(offset - (offset @ normal) * normal) > _TILT_DRIFT_MM:
        raise InputError(
            f"{source}: the series is gantry-tilted by {series_tilt_degrees(positions, orientation):.1f} degrees; "
            f"its label map lies on a resampled grid, not on the source images, so no {output} is written "
            "(use the NIfTI or NRRD output)"
        )


def _match_slices(
    labels: Volume, ordered: list[Dataset], positions: np.ndarray, orientation: np.ndarray, source: str
) -> list[Dataset]:
    first = ordered[0]
    rows, columns = int(first.Rows), int(first.Columns)
    expected = (columns, rows, len(ordered))
    if labels.shape != expected:
        raise InputError(
            f"{labels.source}: label map shape {labels.shape} is not the grid of {source} "
            f"(columns, rows, images) = {expected}"
        )
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    affine = LPS_TO_RAS @ np.asarray(labels.affine, dtype=np.float64)  # RAS -> LPS (its own inverse)
    axes = np.stack([orientation[:3] * column_spacing, orientation[3:] * row_spacing], axis=1)
    if not np.allclose(affine[:3, :2], axes, atol=_AXIS_TOLERANCE_MM):
        raise InputError(
            f"{labels.source}: label map axes ({labels.orientation}, spacing "
            f"{', '.join(f'{s:.4g}' for s in labels.spacing[:2])} mm) are not the in-plane axes of {source} "
            "(give the label map on the series grid, as read_volume returns it)"
        )
    origins = affine[:3, 3] + np.arange(len(ordered))[:, None] * affine[:3, 2]
    distance = np.linalg.norm(origins[:, None, :] - positions[None, :, :], axis=2)
    nearest = distance.argmin(axis=1)
    tolerance = _POSITION_TOLERANCE * min(labels.spacing)
    worst = int(distance[np.arange(len(ordered)), nearest].argmax())
    if distance[worst, nearest[worst]] > tolerance or len(set(nearest.tolist())) != len(ordered):
        raise InputError(
            f"{labels.source}: label slice {worst} lies {distance[worst, nearest[worst]]:.3f} mm from the nearest "
            f"image of {source} (tolerance {tolerance:.3f} mm); the label map is not on the series grid"
        )
    return [ordered[n] for n in nearest]


def _derive_missing_uids(ordered: list[Dataset], source: str) -> SourceSeries:
    digests = [_content_digest(ds) for ds in ordered]
    derived: list[DerivedUid] = []
    copies = []
    for n, (ds, digest) in enumerate(zip(ordered, digests)):
        ds = copy.deepcopy(ds)
        meta = getattr(ds, "file_meta", None)
        for keyword, meta_keyword in _FILE_META_UIDS:
            if not _lacks(ds, keyword):
                continue
            uid = str(meta.get(meta_keyword, "") or "").strip() if meta is not None else ""
            if not uid and keyword == "SOPInstanceUID":
                uid = derive_uid("voxelprompt source SOPInstanceUID", digest)
            if not uid:
                raise InputError(f"{source}: image {_name(ds, n)} has no SOPClassUID, in its header or its file meta")
            setattr(ds, keyword, uid)
            derived.append(DerivedUid(_name(ds, n), keyword, uid))
        copies.append(ds)
    series_digest = hashlib.sha256("".join(digests).encode()).hexdigest()
    for keyword in _REQUIRED_UIDS[2:]:
        if any(_lacks(ds, keyword) for ds in copies):
            uid = derive_uid(f"voxelprompt source {keyword}", series_digest)
            for ds in copies:
                if _lacks(ds, keyword):
                    setattr(ds, keyword, uid)
            derived.append(DerivedUid("series", keyword, uid))
    return SourceSeries(datasets=tuple(copies), derived_uids=tuple(derived))


def _lacks(ds: Dataset, keyword: str) -> bool:
    """True when ``ds`` has no ``keyword`` or an empty one (files often carry empty UID elements)."""
    return not str(ds.get(keyword, "") or "").strip()


def _content_digest(ds: Dataset) -> str:
    """SHA-256 of the image's file when it has one, else of its DICOM encoding."""
    filename = getattr(ds, "filename", None)
    if isinstance(filename, (str, os.PathLike)) and Path(filename).is_file():
        digest = hashlib.sha256()
        with open(filename, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    from pydicom.filewriter import dcmwrite

    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=False)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _name(ds: Dataset, n: int) -> str:
    filename = getattr(ds, "filename", None)
    return Path(filename).name if isinstance(filename, (str, os.PathLike)) else f"#{n}"
