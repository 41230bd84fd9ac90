"""Label-map writers: NIfTI and NRRD (:func:`voxelprompt.imageio.write_volume`) and 3D Slicer's
``.seg.nrrd`` (:func:`voxelprompt.imageio.slicer_seg.write_slicer_seg`, via slicerio)."""

from __future__ import annotations

from pathlib import Path

from voxelprompt.outputs.context import OutputContext

__all__ = ["write_label_map", "write_seg_nrrd"]


def write_label_map(context: OutputContext, path: Path) -> list[Path]:
    """The label map with its exact shape and affine, as NIfTI or NRRD by ``path``'s ending.

    Raises:
        InputError: an ending other than ``.nii.gz``, ``.nii``, ``.nrrd``, or an unwritable file.
    """
    from voxelprompt.imageio import write_volume

    return [write_volume(context.labels, path)]


def write_seg_nrrd(context: OutputContext, path: Path) -> list[Path]:
    """A 3D Slicer segmentation with segment names, colours and terminology.

    Raises:
        InputError: a value without a name, or values beyond 65535.
    """
    from voxelprompt.imageio.slicer_seg import write_slicer_seg

    return [write_slicer_seg(context.labels, path, context.label_names)]
