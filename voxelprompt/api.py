"""One-call Python entry point: a path or an in-memory volume in, a label map out.

The CLI, server and batch runner are thin adapters over :func:`segment` and
:class:`~voxelprompt.inference.segmenter.Vista3DSegmenter` (load once, segment many).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import VoxelPromptError
from voxelprompt.imageio import read_volume, write_volume
from voxelprompt.inference.default_model import default_checkpoint, default_profile
from voxelprompt.inference.profiles import InferenceProfile
from voxelprompt.inference.segmenter import Vista3DSegmenter
from voxelprompt.types import Points, PointSpace, Prompts, Segmentation, Volume

__all__ = ["segment", "build_prompts", "load_segmenter"]

Coordinate = tuple[float, float, float]


def build_prompts(
    classes: Sequence[str | int] = (),
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    zero_shot_class: int | None = None,
) -> Prompts:
    """Prompts from user-facing values: class names or ids, positive and negative clicks.

    Args:
        classes: VISTA3D class names (case, ``_``/space and word order tolerated) or indices.
        points: positive clicks, (I, J, K) voxels or (x, y, z) RAS+ mm (see :mod:`voxelprompt.types`).
        negative_points: negative clicks, same frame.
        point_space: ``"voxel"`` or ``"world"``.
        zero_shot_class: class id for a point-only object (> 132 selects the zero-shot embedding).
    """
    ids = vista3d_catalog().resolve(list(classes))
    clicks = None
    if points or negative_points:
        clicks = Points.from_lists(list(points), list(negative_points), space=PointSpace(point_space))
    return Prompts(classes=ids, points=clicks, zero_shot_class=zero_shot_class)


def load_segmenter(
    checkpoint: str | os.PathLike | None = None,
    profile: str = "bundle",
    device: str = "cpu",
    roi_size: tuple[int, int, int] | None = None,
    progress: bool = False,
    engine: str = "exact",
    amp: bool = False,
) -> Vista3DSegmenter:
    """Load a VISTA3D checkpoint (bundle or research layout) into a reusable segmenter.

    Without ``checkpoint`` the demo model shipped in the package is used, with ``profile``'s
    pipeline at the demo model's spacing, window and class set (see
    :mod:`voxelprompt.inference.default_model`). ``engine`` and ``amp``: see
    :class:`~voxelprompt.inference.segmenter.Vista3DSegmenter`.
    """
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise VoxelPromptError(f"device {device!r} requested but no CUDA GPU is available")
    chosen: str | InferenceProfile = profile
    if checkpoint is None:
        checkpoint, chosen = default_checkpoint(), default_profile(profile)
    return Vista3DSegmenter.from_checkpoint(
        checkpoint, profile=chosen, device=device, roi_size=roi_size, progress=progress, engine=engine, amp=amp
    )


def segment(
    image: str | os.PathLike | Volume,
    output: str | os.PathLike | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    segmenter: Vista3DSegmenter | None = None,
    model: str = "vista3d",
    classes: Sequence[str | int] = (),
    everything: bool = False,
    text: str | None = None,
    box: Sequence[float] | None = None,
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    zero_shot_class: int | None = None,
    profile: str = "bundle",
    device: str = "cpu",
    engine: str = "exact",
    amp: bool = False,
    progress: bool = False,
) -> Segmentation:
    """Segment a CT (a file, a DICOM folder, or a :class:`Volume`) and optionally write the labels.

    The label map has the input's exact shape and affine; values are VISTA3D class indices.
    Give ``checkpoint``, an already loaded ``segmenter`` (to reuse one model), or neither for the
    shipped demo model.

    Args:
        model: ``"vista3d"`` or ``"segvol"`` (then see :func:`voxelprompt.api_segvol.segment_segvol`).
        text: a class name; SegVol encodes it with CLIP, VISTA3D looks it up in the class table.
        box: SegVol box ``(i0, j0, k0, i1, j1, k1)`` in input voxels, corners inclusive.
        engine: VISTA3D class-prompt engine: ``exact`` (official result, faster), ``reference``
            (MONAI's inferer) or ``fast`` (approximate); see :mod:`voxelprompt.inference.engine`.
        amp: float16 autocast on CUDA.
    """
    if model == "segvol":
        from voxelprompt.api_segvol import segment_segvol

        if everything:
            raise VoxelPromptError("everything mode is VISTA3D's; SegVol segments one prompted object")
        return segment_segvol(
            image, output, checkpoint=checkpoint, text=text, box=box, points=points,
            negative_points=negative_points, point_space=point_space, classes=classes,
            device=device, progress=progress,
        )
    if model != "vista3d":
        raise VoxelPromptError(f"unknown model family {model!r}; choose vista3d or segvol")
    if box is not None:
        raise VoxelPromptError("box prompts need SegVol (--model segvol); VISTA3D takes classes and clicks")
    if text:
        classes = [*classes, text]  # VISTA3D resolves free text through its class table
    # Cheap checks first: a bad prompt or file fails before the model is loaded.
    prompts = build_prompts(classes, points, negative_points, point_space, zero_shot_class)
    volume = image if isinstance(image, Volume) else read_volume(image)
    if segmenter is None:
        segmenter = load_segmenter(checkpoint, profile=profile, device=device, progress=progress, engine=engine, amp=amp)
    result = segmenter.segment(volume, prompts, everything=everything)
    if output is not None:
        write_volume(result.labels, Path(output))
    return result
