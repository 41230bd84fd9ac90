"""Image IO: NIfTI, NRRD and DICOM series in, NIfTI and NRRD out, as :class:`~voxelprompt.types.Volume`.

Arrays are (I, J, K) in on-disk order with a voxel -> RAS+ mm affine (see :mod:`voxelprompt.types`).
"""

from __future__ import annotations

from voxelprompt.imageio.dicom import DicomSeriesInfo, list_dicom_series, series_tilt_degrees
from voxelprompt.imageio.intensity import hounsfield_warning
from voxelprompt.imageio.readers import read_labels, read_volume
from voxelprompt.imageio.validate import check_mask_grid, validate_volume
from voxelprompt.imageio.writers import check_output_folder, check_output_path, write_text, write_volume

__all__ = [
    "read_volume",
    "read_labels",
    "write_volume",
    "write_text",
    "check_output_path",
    "check_output_folder",
    "validate_volume",
    "check_mask_grid",
    "list_dicom_series",
    "DicomSeriesInfo",
    "series_tilt_degrees",
    "hounsfield_warning",
]
