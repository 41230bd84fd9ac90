"""DICOM-SEG (highdicom) of a label map on a DICOM series' grid, byte-for-byte reproducible.

One segment per label value present, coded with SNOMED CT where the class has a code
(:func:`voxelprompt.catalog.segments.segment_style`); each frame references the source image it lies on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from voxelprompt.catalog.segments import segment_style
from voxelprompt.errors import InputError
from voxelprompt.imageio.dicom_source import DerivedUid, MissingUids, derive_uid, match_source_grid, read_source_series
from voxelprompt.imageio.validate import label_values
from voxelprompt.imageio.writers import atomic_output
from voxelprompt.types import Volume

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom.dataset import Dataset

    from voxelprompt.catalog.colors import Code

__all__ = ["DicomSegment", "DicomSegWritten", "write_dicom_seg"]

# Series number of the segmentation series when the caller gives none (clear of typical CT series).
_DEFAULT_SERIES_NUMBER = 300

# DCM code of the contributing equipment highdicom adds about itself, stamped with the clock.
_PROCESSING_EQUIPMENT = "109102"


@dataclass(frozen=True)
class DicomSegment:
    """One segment of a written DICOM-SEG.

    Args:
        number: the SegmentNumber (1, 2, ... in increasing label value).
        value: the label value it holds.
        name: its SegmentLabel.
        coded: True when its category/type are the VISTA3D class's SNOMED CT codes, False when the
            generic SCT 85756007 "Tissue".
    """

    number: int
    value: int
    name: str
    coded: bool


@dataclass(frozen=True)
class DicomSegWritten:
    """What :func:`write_dicom_seg` wrote.

    Args:
        path: the file.
        series_uid: SeriesInstanceUID of the segmentation.
        instance_uid: its SOPInstanceUID.
        segments: the segments in SegmentNumber order.
        derived_source_uids: UIDs filled in for a source series that lacked them (empty when none);
            the file references these, so record them beside it.
    """

    path: Path
    series_uid: str
    instance_uid: str
    segments: tuple[DicomSegment, ...]
    derived_source_uids: tuple[DerivedUid, ...] = ()


def write_dicom_seg(
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
    series_description: str = "voxelprompt segmentation",
    segmentation_type: Literal["binary", "labelmap"] = "binary",
    algorithm_name: str = "voxelprompt",
    algorithm_version: str | None = None,
) -> DicomSegWritten:
    """Write ``labels`` as a DICOM Segmentation of ``source_series``, atomically.

    Each non-zero label value present becomes one segment (SegmentNumber 1, 2, ... in increasing
    value; SegmentLabel its name; SegmentDescription ``"voxelprompt label value <v>"``; display
    colour and SNOMED CT category/type/laterality from
    :func:`~voxelprompt.catalog.segments.segment_style`, which falls back to SCT 85756007 "Tissue"
    for labels that are not a coded VISTA3D class). Frames reference the source image they lie on
    (found by ImagePositionPatient, not file order); empty frames are omitted for ``"binary"``.

    The file is reproducible: with ``series_uid``, ``instance_uid`` and ``content_datetime`` given,
    the same inputs give the same bytes (every UID highdicom would draw at random and every date it
    would take from the clock is set from these). Left ``None``, the UIDs are random and the date
    is now.

    Args:
        labels: (I, J, K) integer label map on the series grid as
            :func:`~voxelprompt.imageio.read_labels` / ``read_volume`` return it: I = column,
            J = row, K = slice, voxel -> RAS+ mm affine. Values 0 (background) and the keys of
            ``label_names``.
        source_series: the series' folder (headers only are read; see
            :func:`~voxelprompt.imageio.dicom_source.read_source_series`) or its pydicom datasets.
        path: the output file (``.dcm``); an existing file is replaced, a missing folder created.
        label_names: label value -> segment name, for every non-zero value in ``labels`` (values
            absent from the map are ignored).
        series_uid: SeriesInstanceUID of the segmentation; random when None.
        instance_uid: its SOPInstanceUID; random when None.
        source_series_uid: the source series' SeriesInstanceUID when the folder or datasets hold
            several series (the ``series_uid`` that :func:`~voxelprompt.imageio.read_volume` took).
        content_datetime: ContentDate/Time, SeriesDate/Time and InstanceCreationDate/Time; now
            when None.
        missing_uids: what to do with a source series without UIDs (see
            :func:`~voxelprompt.imageio.dicom_source.match_source_grid`): ``"refuse"`` raises
            :class:`InputError` naming the attribute; ``"derive"`` fills them in deterministically
            from the files' content and lists them in the result.
        series_number: SeriesNumber of the segmentation.
        series_description: SeriesDescription.
        segmentation_type: ``"binary"`` (one bit per voxel and segment, uncompressed, frames only
            where a segment is present; read by every DICOM-SEG tool) or ``"labelmap"`` (one frame
            per slice holding segment numbers, RLE Lossless; DICOM 2024, highdicom >= 0.23, fewer
            readers, far smaller files).
        algorithm_name: name in the segments' algorithm identification.
        algorithm_version: its version; voxelprompt's version when None.

    Returns:
        The path, UIDs and segments written.

    Raises:
        ValueError: ``segmentation_type`` or ``missing_uids`` not one of their values.
        InputError: an empty label map, a label value without a name, several source series and
            no ``source_series_uid``, a label map not on the series grid (gantry-tilted series
            included: they are resampled on reading), or a source image without the UIDs a
            DICOM-SEG references (with ``missing_uids="refuse"``).
        MissingExtraError: highdicom is not installed (the "pacs" extra).
    """
    from voxelprompt.extras import needs

    with needs("pacs", "DICOM-SEG output"):
        import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    if segmentation_type not in ("binary", "labelmap"):
        raise ValueError(f"segmentation_type must be 'binary' or 'labelmap', got {segmentation_type!r}")
    array = np.asarray(labels.array)
    array = array.view(np.uint8) if array.dtype.kind == "b" else array  # a bool index would mask, not look up
    values = label_values(labels, label_names)
    if not values:
        raise InputError(f"{labels.source}: the label map is empty; a DICOM-SEG needs at least one segment")
    name = str(source_series) if isinstance(source_series, (str, os.PathLike)) else "source series"
    images = read_source_series(source_series, source_series_uid)
    series = match_source_grid(labels, images, missing_uids=missing_uids, source=name)
    series_uid = series_uid or str(generate_uid())
    instance_uid = instance_uid or str(generate_uid())
    when = content_datetime or datetime.now()
    if algorithm_version is None:
        from voxelprompt._version import __version__ as algorithm_version
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=codes.cid7162.ArtificialIntelligence, version=algorithm_version
    )
    segments = tuple(
        DicomSegment(number, value, str(label_names[value]), segment_style(value, str(label_names[value])).coded)
        for number, value in enumerate(values, start=1)
    )
    lookup = np.zeros(int(values[-1]) + 1, dtype=np.uint8 if len(values) < 256 else np.uint16)
    lookup[values] = np.arange(1, len(values) + 1)
    # (I, J, K) = (column, row, slice) -> (frames, rows, columns); frame k lies on datasets[k].
    frames = np.ascontiguousarray(lookup[array].transpose(2, 1, 0))
    seg = hd.seg.Segmentation(
        source_images=list(series.datasets),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues[segmentation_type.upper()],
        segment_descriptions=[_description(s, algorithm) for s in segments],
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer="voxelprompt",
        manufacturer_model_name=algorithm_name,
        software_versions=algorithm_version,
        device_serial_number="0",
        series_description=series_description,
        # BINARY frames cannot be compressed by highdicom without a JPEG 2000 plugin; a LABELMAP is
        # RLE-compressed (about 50x smaller here), which pydicom decodes without plugins.
        transfer_syntax_uid=RLELossless if segmentation_type == "labelmap" else ExplicitVRLittleEndian,
    )
    _fix_clock_and_random_uids(seg, when, instance_uid)
    with atomic_output(path, suffix=".dcm") as tmp:
        seg.save_as(tmp)
    return DicomSegWritten(Path(path), series_uid, instance_uid, segments, series.derived_uids)


def _description(segment: DicomSegment, algorithm: hd.AlgorithmIdentificationSequence) -> hd.seg.SegmentDescription:
    import highdicom as hd

    style = segment_style(segment.value, segment.name)

    def concept(code: Code) -> hd.sr.CodedConcept:
        return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)

    description = hd.seg.SegmentDescription(
        segment_number=segment.number,
        segment_label=segment.name,
        segmented_property_category=concept(style.category),
        segmented_property_type=concept(style.type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        display_color=hd.color.CIELabColor.from_rgb(*style.rgb),
    )
    description.SegmentDescription = f"voxelprompt label value {segment.value}"
    if style.modifier is not None:
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            concept(style.modifier)
        ]
    return description


def _fix_clock_and_random_uids(seg: Dataset, when: datetime, instance_uid: str) -> None:
    """Replace what highdicom takes from the clock or draws at random by values from the inputs."""
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")
    for prefix in ("Content", "Series", "InstanceCreation"):
        setattr(seg, f"{prefix}Date", date)
        setattr(seg, f"{prefix}Time", time)
    for item in seg.get("ContributingEquipmentSequence", []):
        purpose = item.get("PurposeOfReferenceCodeSequence", [])
        if purpose and purpose[0].CodeValue == _PROCESSING_EQUIPMENT:
            item.ContributionDateTime = when.strftime("%Y%m%d%H%M%S.%f")
    dimension_uid = derive_uid("voxelprompt DimensionOrganizationUID", instance_uid)
    for item in seg.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = dimension_uid
    for item in seg.get("DimensionIndexSequence", []):
        item.DimensionOrganizationUID = dimension_uid

