"""One-call Python entry point: a path or an in-memory volume in, a label map out.

The CLI, server and batch runner are thin adapters over :func:`segment` and
:class:`~voxelprompt.inference.vista3d.segmenter.Vista3DSegmenter` (load once, segment many). Importing
this module is cheap (no torch): every check that needs only the prompts, the output path or the
image's header runs before a model is loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from voxelprompt.devices import check_device, resolve_device
from voxelprompt.errors import CheckpointError, VoxelPromptError
from voxelprompt.prompts import Coordinate, build_prompts, check_class_prompts, check_points_inside
from voxelprompt.types import PointSpace, Segmentation, Volume

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from voxelprompt.inference.vista3d.segmenter import Vista3DSegmenter

__all__ = [
    "segment",
    "build_prompts",
    "load_segmenter",
    "read_ct",
    "check_checkpoint_path",
    "DEMO_MODEL_WARNING",
    "SEGVOL_NEEDS_CHECKPOINT",
    "MODEL_FAMILIES",
]

logger = logging.getLogger(__name__)

#: Model families :func:`segment` takes.
MODEL_FAMILIES = ("vista3d", "segvol")

#: The one answer to SegVol without weights, wherever it is asked for.
SEGVOL_NEEDS_CHECKPOINT = (
    "SegVol needs --checkpoint SegVol_v1.pth: its weights are not shipped "
    "(the SegVol authors publish them as BAAI/SegVol on Hugging Face)"
)

#: Printed whenever the shipped demo model segments something other than a phantom.
DEMO_MODEL_WARNING = (
    "WARNING: no --checkpoint given, so the shipped DEMO model segments this image: it was trained "
    "on synthetic CT phantoms only and its labels on a real CT are not meaningful; pass "
    "--checkpoint model.pt with the official VISTA3D weights (MONAI model zoo, models/model.pt)"
)


def load_segmenter(
    checkpoint: str | os.PathLike | None = None,
    profile: str = "bundle",
    device: str = "auto",
    roi_size: tuple[int, int, int] | None = None,
    progress: bool = False,
    engine: str = "exact",
    amp: bool = False,
) -> Vista3DSegmenter:
    """Load a VISTA3D checkpoint (bundle or research layout) into a reusable segmenter.

    Without ``checkpoint`` the demo model shipped in the package is used, with ``profile``'s
    pipeline at the demo model's spacing, window and class set (see
    :mod:`voxelprompt.inference.vista3d.default_model`). ``device``: auto, cpu, cuda or cuda:N (see
    :mod:`voxelprompt.devices`). ``engine`` and ``amp``: see
    :class:`~voxelprompt.inference.vista3d.segmenter.Vista3DSegmenter`.

    Raises:
        CheckpointError: unreadable checkpoint or another architecture.
        VoxelPromptError: an unknown profile, engine or device.
    """
    if checkpoint is not None:
        check_checkpoint_path(checkpoint)
    device = resolve_device(device)
    logger.info("loading %s on %s", checkpoint or "the shipped demo VISTA3D", device)
    from voxelprompt.inference.vista3d.default_model import default_checkpoint, default_profile
    from voxelprompt.inference.vista3d.profiles import InferenceProfile
    from voxelprompt.inference.vista3d.segmenter import Vista3DSegmenter

    chosen: str | InferenceProfile = profile
    if checkpoint is None:
        checkpoint, chosen = default_checkpoint(), default_profile(profile)
    return Vista3DSegmenter.from_checkpoint(
        checkpoint, profile=chosen, device=device, roi_size=roi_size, progress=progress,
        engine=engine, amp=amp,
    )  # fmt: skip


def check_checkpoint_path(checkpoint: str | os.PathLike) -> Path:
    """The checkpoint file, checked to exist before any model code is imported.

    Raises:
        CheckpointError: no such file, or a folder.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"{path}: {'is a folder, not a checkpoint file' if path.is_dir() else 'checkpoint file not found'}")
    return path


def read_ct(image: str | os.PathLike | Volume, series_uid: str | None = None) -> Volume:
    """The CT to segment, read (see :func:`voxelprompt.imageio.read_volume`) unless already a
    :class:`Volume`; logs a one-line warning when its values do not look like Hounsfield units.

    Raises:
        InputError: as :func:`~voxelprompt.imageio.read_volume`.
    """
    from voxelprompt.imageio import hounsfield_warning, read_volume

    volume = image if isinstance(image, Volume) else read_volume(image, series_uid=series_uid)
    warning = hounsfield_warning(volume)
    if warning is not None:
        logger.warning("WARNING: %s", warning)
    return volume


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
    new_structure: bool = False,
    series_uid: str | None = None,
    profile: str = "bundle",
    device: str = "auto",
    engine: str = "exact",
    amp: bool = False,
    progress: bool = False,
) -> Segmentation:
    """Segment a CT (a file, a DICOM folder, or a :class:`Volume`) and optionally write the labels.

    The label map has the input's exact shape and affine and holds only 0 and the prompted ids
    (VISTA3D class indices, or :data:`~voxelprompt.types.OBJECT_ID` for an object from clicks
    alone). Give ``checkpoint``, an already loaded ``segmenter`` (to reuse one model), or neither
    for the shipped demo model. Checks run cheapest first: prompts and the output path, then the
    image (clicks against its grid), and only then is a model loaded.

    Args:
        model: ``"vista3d"`` or ``"segvol"`` (then see :func:`voxelprompt.api_segvol.segment_segvol`).
        text: a class name; SegVol encodes it with CLIP, VISTA3D looks it up in the class table.
        box: SegVol box ``(i0, j0, k0, i1, j1, k1)`` in input voxels, corners inclusive.
        new_structure: clicks without a class mark a structure outside VISTA3D's classes
            (zero-shot point embedding); see :class:`~voxelprompt.types.Prompts`.
        series_uid: which DICOM series to read when ``image`` is a folder holding several.
        device: auto, cpu, cuda or cuda:N.
        engine: VISTA3D class-prompt engine: ``exact`` (official result, faster), ``reference``
            (MONAI's inferer) or ``fast`` (approximate); see :mod:`voxelprompt.inference.vista3d.engine`.
        amp: float16 autocast on CUDA.

    Raises:
        VoxelPromptError: bad input, prompt, option, output path or checkpoint (one-line message).
    """
    from voxelprompt.imageio import check_output_path, write_volume

    if model not in MODEL_FAMILIES:
        raise VoxelPromptError(f"unknown model family {model!r}; choose {' or '.join(MODEL_FAMILIES)}")
    check_device(device)
    if output is not None:
        check_output_path(output, inputs=() if isinstance(image, Volume) else (image,))
    if model == "segvol":
        from voxelprompt.api_segvol import build_segvol_prompts, segment_segvol

        if everything:
            raise VoxelPromptError("everything mode is VISTA3D's; SegVol segments one prompted object")
        if new_structure:
            raise VoxelPromptError("new_structure is a VISTA3D option; SegVol segments what its prompts locate")
        if checkpoint is None:
            raise VoxelPromptError(SEGVOL_NEEDS_CHECKPOINT)
        build_segvol_prompts(text, box, points, negative_points, point_space, classes)  # cheap checks first
        check_checkpoint_path(checkpoint)
        return segment_segvol(
            read_ct(image, series_uid), output, checkpoint=checkpoint, text=text, box=box, points=points,
            negative_points=negative_points, point_space=point_space, classes=classes, device=resolve_device(device),
            progress=progress,
        )  # fmt: skip
    if box is not None:
        raise VoxelPromptError("box prompts need SegVol (--model segvol); VISTA3D takes classes and clicks")
    if text:
        classes = [*classes, text]  # VISTA3D resolves free text through its class table
    prompts = build_prompts(classes, points, negative_points, point_space, new_structure)
    check_class_prompts(prompts, everything)
    if not everything and not prompts.classes and prompts.points is None:
        raise VoxelPromptError("nothing to segment: give classes, everything, or points")
    if segmenter is None and checkpoint is not None:
        check_checkpoint_path(checkpoint)
    volume = read_ct(image, series_uid)
    if prompts.points is not None:
        check_points_inside(prompts.points, volume)
    if segmenter is None:
        if checkpoint is None:
            logger.warning(DEMO_MODEL_WARNING)
        segmenter = load_segmenter(checkpoint, profile=profile, device=device, progress=progress, engine=engine, amp=amp)
    result = segmenter.segment(volume, prompts, everything=everything)
    if output is not None:
        write_volume(result.labels, Path(output))
    return result
