"""Image IO: NIfTI, NRRD and DICOM series in; NIfTI, NRRD, DICOM-SEG, RT-STRUCT and Slicer ``.seg.nrrd`` out.

Arrays are (I, J, K) in on-disk order with a voxel -> RAS+ mm affine (see :mod:`voxelprompt.types`).
"""

from __future__ import annotations

from voxelprompt.imageio.dicom import DicomSeriesInfo, list_dicom_series, series_tilt_degrees
from voxelprompt.imageio.dicom_seg import DicomSegment, DicomSegWritten, write_dicom_seg
from voxelprompt.imageio.dicom_source import DerivedUid, derive_uid
from voxelprompt.imageio.grid import align_to_grid, grid_gap_mm
from voxelprompt.imageio.intensity import hounsfield_warning
from voxelprompt.imageio.label_names import label_names_path, read_label_names, write_label_names
from voxelprompt.imageio.readers import read_labels, read_volume
from voxelprompt.imageio.rtstruct import RtRoi, RtStructWritten, write_rtstruct
from voxelprompt.imageio.validate import check_mask_grid, label_values, validate_volume
from voxelprompt.imageio.slicer_seg import write_slicer_seg
from voxelprompt.imageio.writers import atomic_output, check_output_folder, check_output_path, write_text, write_volume

__all__ = [
    "read_volume",
    "read_labels",
    "write_volume",
    "write_text",
    "atomic_output",
    "write_dicom_seg",
    "DicomSegment",
    "DicomSegWritten",
    "write_rtstruct",
    "RtRoi",
    "RtStructWritten",
    "DerivedUid",
    "derive_uid",
    "write_slicer_seg",
    "write_label_names",
    "read_label_names",
    "label_names_path",
    "check_output_path",
    "check_output_folder",
    "validate_volume",
    "check_mask_grid",
    "align_to_grid",
    "grid_gap_mm",
    "label_values",
    "list_dicom_series",
    "DicomSeriesInfo",
    "series_tilt_degrees",
    "hounsfield_warning",
]
