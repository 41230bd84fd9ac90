"""RT Structure Set (RT-STRUCT, pydicom) of a label map on a DICOM series' grid, for planning systems.

One ROI per label value present, CLOSED_PLANAR contours per CT slice placed with that slice's own
geometry (holes as nested contours), names, colours and interpreted types from the catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxelprompt.catalog.segments import segment_style
from voxelprompt.errors import InputError
from voxelprompt.imageio.contours import mask_contours
from voxelprompt.imageio.dicom_source import (
    DerivedUid,
    MissingUids,
    SourceSeries,
    derive_uid,
    match_source_grid,
    read_source_series,
)
from voxelprompt.imageio.validate import label_values
from voxelprompt.imageio.writers import atomic_output
from voxelprompt.types import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["RTSTRUCT_SUFFIX", "RtRoi", "RtStructWritten", "check_rtstruct_source", "require_series_folder", "write_rtstruct"]

#: Ending of an RT-STRUCT output file (``segment -o NAME.rtstruct.dcm``).
RTSTRUCT_SUFFIX = ".rtstruct.dcm"

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# What PS3.3 C.8.8.5 asks RT Referenced Study items to name as their SOP class.
_STUDY_COMPONENT_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"

_KIND = "RT-STRUCT"

# Series number of the structure set when the caller gives none (beside the DICOM-SEG's 300).
_DEFAULT_SERIES_NUMBER = 301

# Contour coordinates are rounded to 0.1 micrometre: far below any pixel, and it keeps DS strings
# short and free of binary-fraction noise (PS3.5 limits a DS value to 16 characters).
_DECIMALS = 4

# Patient and study attributes copied from the CT (type 1 and 2 of the Patient and General Study
# modules, and a few type 3 a planning system shows).
_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription",
)  # fmt: skip
_TYPE_2 = {"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber"}  # fmt: skip


@dataclass(frozen=True)
class RtRoi:
    """One ROI of a written structure set.

    Args:
        number: its ROINumber (the label value).
        name: its ROIName.
        contours: how many contours it has (outer boundaries and holes, over all slices).
        interpreted_type: its RTROIInterpretedType ("" when unknown).
    """

    number: int
    name: str
    contours: int
    interpreted_type: str


@dataclass(frozen=True)
class RtStructWritten:
    """What :func:`write_rtstruct` wrote.

    Args:
        path: the file.
        series_uid: SeriesInstanceUID of the structure set.
        instance_uid: its SOPInstanceUID.
        rois: the ROIs in ROINumber order.
        derived_source_uids: UIDs filled in for a source series that lacked them (empty when none);
            the file references these, so record them beside it.
    """

    path: Path
    series_uid: str
    instance_uid: str
    rois: tuple[RtRoi, ...]
    derived_source_uids: tuple[DerivedUid, ...] = ()


def check_rtstruct_source(
    grid: Volume, source_series: str | os.PathLike, *, source_series_uid: str | None = None
) -> SourceSeries:
    """Check, before any model work, that labels on ``grid`` can be written as an RT-STRUCT of ``source_series``.

    Args:
        grid: the image as :func:`~voxelprompt.imageio.read_volume` read it from ``source_series``
            (only its shape and affine are used).
        source_series: the DICOM series folder the image was read from.
        source_series_uid: the series read when the folder holds several.

    Returns:
        The source images in slice order (UIDs the images lack derived).

    Raises:
        InputError: as :func:`write_rtstruct` for its source: not a DICOM series folder, a
            gantry-tilted series, a grid that is not the series'.
    """
    name = str(source_series)
    images = _source_images(source_series, source_series_uid)
    return match_source_grid(grid, images, missing_uids="derive", source=name, output=_KIND)


def write_rtstruct(
    labels: Volume,
    source_series: str | os.PathLike | Sequence[Dataset],
    path: str | os.PathLike,
    label_names: Mapping[int, str],
    *,
    series_uid: str | None = None,
    instance_uid: str | None = None,
    content_datetime: datetime | None = None,
    source_series_uid: str | None = None,
    missing_uids: MissingUids = "refuse",
    series_number: int = _DEFAULT_SERIES_NUMBER,
    algorithm_name: str = "voxelprompt",
    algorithm_version: str | None = None,
    demo_mark: str | None = None,
) -> RtStructWritten:
    """Write ``labels`` as an RT Structure Set of ``source_series``, atomically and reproducibly.

    Each non-zero label value present becomes one ROI: ROINumber = the value, ROIName its name,
    ROIDisplayColor and RTROIInterpretedType from
    :func:`~voxelprompt.catalog.segments.segment_style` ("ORGAN" for a coded anatomical class,
    else empty, i.e. unknown), ROIGenerationAlgorithm AUTOMATIC. On every slice where the value is
    present, each boundary (:func:`~voxelprompt.imageio.contours.mask_contours`: vertices on pixel
    edges; holes and islands in holes are further nested contours, to be filled even-odd) is one
    CLOSED_PLANAR contour that references the image it lies on. Its points are DICOM patient
    coordinates (LPS+, mm) computed from that image's own ImagePositionPatient,
    ImageOrientationPatient and PixelSpacing (row spacing first, so non-square pixels are placed
    right), each written within the 16 characters of a DS value. Study, series and frame of
    reference are referenced from the images; patient and study attributes are copied from them.

    Reproducible: SeriesInstanceUID and SOPInstanceUID default to UIDs derived from the source
    series UID and the content (label map, names, algorithm), and without ``content_datetime``
    the dates are left empty (StructureSetDate/Time are type 2), so a rerun gives the same bytes.

    Args:
        labels: (I, J, K) integer (or boolean) label map on the series grid as
            :func:`~voxelprompt.imageio.read_labels` / ``read_volume`` return it: I = column,
            J = row, K = slice, voxel -> RAS+ mm affine.
        source_series: the series' folder (headers only are read) or its pydicom datasets.
        path: the output file (``.dcm``); an existing file is replaced, a missing folder created.
        label_names: label value -> ROI name, for every non-zero value in ``labels``.
        series_uid, instance_uid: UIDs of the structure set; derived from the content when None.
        content_datetime: StructureSet, Series and InstanceCreation date/time; empty when None.
        source_series_uid: the source series when the folder or datasets hold several.
        missing_uids: ``"refuse"`` or ``"derive"`` UIDs the source images lack (see
            :func:`~voxelprompt.imageio.dicom_source.match_source_grid`).
        series_number: SeriesNumber of the structure set.
        algorithm_name: the model that made the labels: ManufacturerModelName and each ROI's
            ROIGenerationDescription.
        algorithm_version: SoftwareVersions; voxelprompt's version when None.
        demo_mark: the demo model's warning, when it made the labels: it goes into
            SeriesDescription and StructureSetDescription, every ROIGenerationDescription says
            "DEMO model", and the StructureSetLabel becomes ``voxelprompt DEMO``.

    Returns:
        The path, UIDs and ROIs written.

    Raises:
        InputError: a source that is not a DICOM series folder, a gantry-tilted series, a label map
            not on the series grid, an empty label map, a value without a name, several series and
            no ``source_series_uid``, or missing UIDs with ``missing_uids="refuse"``.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    array = np.asarray(labels.array)
    array = array.view(np.uint8) if array.dtype.kind == "b" else array
    values = label_values(labels, label_names)
    if not values:
        raise InputError(f"{labels.source}: the label map is empty; an RT-STRUCT needs at least one structure")
    is_path = isinstance(source_series, (str, os.PathLike))
    name = str(source_series) if is_path else "source series"
    images = _source_images(source_series, source_series_uid) if is_path else read_source_series(source_series, source_series_uid)
    series = match_source_grid(labels, images, missing_uids=missing_uids, source=name, output=_KIND)
    ordered = series.datasets
    first = ordered[0]
    if algorithm_version is None:
        from voxelprompt._version import __version__ as algorithm_version
    digest = _content_digest(array, {v: str(label_names[v]) for v in values}, algorithm_name, algorithm_version, demo_mark)
    series_uid = series_uid or derive_uid("voxelprompt RTSTRUCT series", str(first.SeriesInstanceUID), digest)
    instance_uid = instance_uid or derive_uid("voxelprompt RTSTRUCT instance", str(first.SeriesInstanceUID), digest)

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    if content_datetime is not None:
        date, time = content_datetime.strftime("%Y%m%d"), content_datetime.strftime("%H%M%S.%f")
        ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = instance_uid
    for keyword in _COPIED:
        if keyword in first or keyword in _TYPE_2:
            setattr(ds, keyword, first.get(keyword, "") or "")
    ds.Modality = "RTSTRUCT"
    ds.Manufacturer = "voxelprompt"
    ds.ManufacturerModelName = algorithm_name[:64]
    ds.SoftwareVersions = str(algorithm_version)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = (f"voxelprompt {demo_mark}" if demo_mark else f"voxelprompt {algorithm_name} structures")[:64]
    if content_datetime is not None:
        ds.SeriesDate, ds.SeriesTime = date, time
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = str(first.FrameOfReferenceUID)  # Frame of Reference module (PS3.3 A.19.3)
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "") or ""
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "voxelprompt DEMO" if demo_mark else "voxelprompt"
    ds.StructureSetName = algorithm_name[:64]
    ds.StructureSetDescription = demo_mark or f"Structures segmented by {algorithm_name} (voxelprompt)"
    ds.StructureSetDate = date if content_datetime is not None else ""
    ds.StructureSetTime = time if content_datetime is not None else ""
    ds.ReferencedFrameOfReferenceSequence = [_referenced_frame(ordered)]

    frame_uid = str(first.FrameOfReferenceUID)
    rois, structures, contours, observations = [], [], [], []
    boxes = _bounding_boxes(array, values)
    for value in values:
        style = segment_style(value, str(label_names[value]))
        generation = f"{algorithm_name} label value {value}" + ("; DEMO model" if demo_mark else "")
        structures.append(_item(ROINumber=value, ReferencedFrameOfReferenceUID=frame_uid, ROIName=style.name[:64],
                                ROIGenerationAlgorithm="AUTOMATIC", ROIGenerationDescription=generation[:64]))  # fmt: skip
        items = _roi_contours(array, value, boxes[value], ordered)
        roi = _item(ROIDisplayColor=list(style.rgb), ReferencedROINumber=value)
        if items:
            roi.ContourSequence = items
        contours.append(roi)
        observations.append(_item(ObservationNumber=value, ReferencedROINumber=value,
                                  RTROIInterpretedType=style.rt_roi_type, ROIInterpreter=""))  # fmt: skip
        rois.append(RtRoi(value, style.name[:64], len(items), style.rt_roi_type))
    ds.StructureSetROISequence = structures
    ds.ROIContourSequence = contours
    ds.RTROIObservationsSequence = observations

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    with atomic_output(path, suffix=".dcm") as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return RtStructWritten(Path(path), series_uid, instance_uid, tuple(rois), series.derived_uids)


def require_series_folder(source: str | os.PathLike) -> None:
    """Refuse, in one line and without reading it, an input that cannot be a DICOM series (a file).

    Raises:
        InputError: ``source`` is not a folder.
    """
    if not Path(source).is_dir():
        raise InputError(
            f"{source}: not a DICOM series folder; an RT-STRUCT references the CT's DICOM images, "
            "so it needs a DICOM series as input (use the NIfTI or NRRD output for image files)"
        )


def _source_images(folder: str | os.PathLike, series_uid: str | None) -> list[Dataset]:
    """The DICOM images of a series folder; anything else is refused in one line."""
    require_series_folder(folder)
    folder = Path(folder)
    try:
        return read_source_series(folder, series_uid)
    except InputError as err:
        if "no source images" not in str(err):
            raise
        raise InputError(f"{folder}: holds no DICOM image; an RT-STRUCT needs a DICOM series as input") from None


def _referenced_frame(ordered: Sequence[Dataset]) -> Dataset:
    """The Referenced Frame of Reference item: frame, study, series and every image of the series."""
    first = ordered[0]
    images = [_item(ReferencedSOPClassUID=str(ds.SOPClassUID), ReferencedSOPInstanceUID=str(ds.SOPInstanceUID))
              for ds in ordered]  # fmt: skip
    series = _item(SeriesInstanceUID=str(first.SeriesInstanceUID), ContourImageSequence=images)
    study = _item(ReferencedSOPClassUID=_STUDY_COMPONENT_SOP_CLASS, ReferencedSOPInstanceUID=str(first.StudyInstanceUID),
                  RTReferencedSeriesSequence=[series])  # fmt: skip
    return _item(FrameOfReferenceUID=str(first.FrameOfReferenceUID), RTReferencedStudySequence=[study])


def _roi_contours(array: np.ndarray, value: int, box: tuple[slice, ...] | None, ordered: Sequence[Dataset]) -> list[Dataset]:
    """The contour items of one label value, slice by slice in slice order."""
    from pydicom.valuerep import format_number_as_ds

    if box is None:
        return []
    items = []
    ibox, jbox, kbox = box
    for k in range(kbox.start, kbox.stop):
        # (I, J) = (column, row) -> (rows, columns), cropped to the value's box.
        mask = (array[ibox, jbox, k] == value).T
        if not mask.any():
            continue
        ds = ordered[k]
        origin = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
        # A step along a row (next column) moves along the row direction by the column spacing.
        step_column, step_row = orientation[:3] * column_spacing, orientation[3:] * row_spacing
        image = _item(ReferencedSOPClassUID=str(ds.SOPClassUID), ReferencedSOPInstanceUID=str(ds.SOPInstanceUID))
        for polygon in mask_contours(mask):
            rows, columns = polygon[:, 0] + jbox.start, polygon[:, 1] + ibox.start
            points = origin + columns[:, None] * step_column + rows[:, None] * step_row
            data = [format_number_as_ds(round(float(x), _DECIMALS) + 0.0) for x in points.ravel()]
            items.append(_item(ContourImageSequence=[image], ContourGeometricType="CLOSED_PLANAR",
                               NumberOfContourPoints=len(points), ContourNumber=len(items) + 1, ContourData=data))  # fmt: skip
    return items


def _bounding_boxes(array: np.ndarray, values: Sequence[int]) -> dict[int, tuple[slice, ...] | None]:
    """Each value's bounding box (I, J, K slices), so contours are traced in small crops."""
    from scipy.ndimage import find_objects

    found = find_objects(array if array.dtype.itemsize <= 4 else array.astype(np.int32))
    return {v: found[v - 1] if v - 1 < len(found) else None for v in values}


def _content_digest(array: np.ndarray, names: Mapping[int, str], *parts: object) -> str:
    """SHA-256 of what a structure set is made from, for its derived UIDs."""
    digest = hashlib.sha256()
    digest.update(f"{array.shape}".encode())
    for k in range(array.shape[2]):  # slice by slice: a whole int64 copy could be hundreds of MB
        digest.update(np.ascontiguousarray(array[:, :, k], dtype=np.int64).tobytes())
    digest.update(json.dumps([sorted(names.items()), [str(p) for p in parts]]).encode())
    return digest.hexdigest()


def _item(**elements: object) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds
