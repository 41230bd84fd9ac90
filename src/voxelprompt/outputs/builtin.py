"""voxelprompt's own output formats, registered through the ``voxelprompt.outputs`` entry-point
group like any plugin's (:data:`~voxelprompt.outputs.registry.BUILTIN_OUTPUTS` keeps them present
when the package runs without its metadata). Torch-free: writers are imported when used."""

from __future__ import annotations

from voxelprompt.outputs.registry import OutputFormat

__all__ = ["NIFTI", "NRRD", "SEG_NRRD", "DICOM_SEG", "RTSTRUCT", "STATS", "PREVIEW"]

_WRITERS = "voxelprompt.outputs"

NIFTI = OutputFormat(
    name="nifti",
    description="label map as NIfTI (.nii.gz, .nii), with its names in <stem>.label_names.json",
    writer=f"{_WRITERS}.labelmaps:write_label_map",
    file_name="labels.nii.gz",
    suffixes=(".nii.gz", ".nii"),
    inferred_from=(".nii.gz", ".nii"),
    label_names_beside=True,
    media_type="application/gzip",
)

NRRD = OutputFormat(
    name="nrrd",
    description="label map as NRRD (.nrrd), with its names in <stem>.label_names.json",
    writer=f"{_WRITERS}.labelmaps:write_label_map",
    file_name="labels.nrrd",
    suffixes=(".nrrd",),
    inferred_from=(".nrrd",),
    label_names_beside=True,
)

SEG_NRRD = OutputFormat(
    name="seg-nrrd",
    description="3D Slicer segmentation (.seg.nrrd) with segment names, colours and terminology",
    writer=f"{_WRITERS}.labelmaps:write_seg_nrrd",
    file_name="labels.seg.nrrd",
    suffixes=(".seg.nrrd",),
    needs=frozenset({"label-names"}),
)

DICOM_SEG = OutputFormat(
    name="dicom-seg",
    description="DICOM-SEG (highdicom) referencing the input DICOM series",
    writer=f"{_WRITERS}.dicom:write_dicom_seg_output",
    file_name="segmentation.dcm",
    suffixes=(".dcm",),
    needs=frozenset({"dicom-series", "label-names", "model"}),
    extra="pacs",
    imports=("highdicom",),
    media_type="application/dicom",
)

RTSTRUCT = OutputFormat(
    name="rtstruct",
    description="RT-STRUCT (contours) of the input DICOM series, for planning systems",
    writer=f"{_WRITERS}.dicom:write_rtstruct_output",
    file_name="rtstruct.dcm",
    suffixes=(".rtstruct.dcm", ".dcm"),
    inferred_from=(".rtstruct.dcm",),
    needs=frozenset({"dicom-series", "label-names", "model"}),
    media_type="application/dicom",
    check=f"{_WRITERS}.dicom:check_rtstruct_grid",
)

STATS = OutputFormat(
    name="stats",
    description="per-structure statistics (ml, voxels, HU, bounding boxes, components) as CSV and JSON",
    writer=f"{_WRITERS}.reports:write_statistics",
    file_name="statistics.csv",
    suffixes=(".csv",),
    needs=frozenset({"image", "label-names", "model"}),
    media_type="text/csv",
)

PREVIEW = OutputFormat(
    name="preview",
    description="PNG of axial, coronal and sagittal overlays with a legend",
    writer=f"{_WRITERS}.reports:write_preview",
    file_name="preview.png",
    suffixes=(".png",),
    needs=frozenset({"image", "label-names", "model"}),
    media_type="image/png",
)
