"""The public Python API, one front door for every model family: load a model, segment, open an
interactive session, identify a mask.

A path or an in-memory :class:`~voxelprompt.types.Volume` goes in, a label map on the input's
exact grid comes out. The CLI, server and batch runner are thin adapters over these functions.
Importing this module is cheap (no torch); every check that needs only the prompts, the output path
or the image runs before a model is loaded, and prompts are checked against the family's
capabilities (:mod:`voxelprompt.families`) in one place.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxelprompt.devices import check_device
from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.families import families_with
from voxelprompt.models.loading import (
    DEMO_MODEL_WARNING,
    NamedModel,
    check_checkpoint_path,
    default_checkpoint,
    load_model,
    load_named_models,
    resolve_family,
)
from voxelprompt.prompts import Coordinate, build_prompts
from voxelprompt.request import (
    SegmentRequest,
    check_request,
    prepare_segment,
    read_ct,
    request_family,
    request_model,
    run_segment,
)
from voxelprompt.types import PointSpace, Segmentation, Volume

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from voxelprompt.outputs import OutputFormat
    from voxelprompt.families.segvol.inference.identify import Identification
    from voxelprompt.inference.protocol import Segmenter, Session

__all__ = [
    "load_model",
    "load_named_models",
    "NamedModel",
    "SegmentRequest",
    "prepare_segment",
    "run_segment",
    "segment",
    "segment_outcome",
    "SegmentOutcome",
    "result_names",
    "write_result",
    "open_session",
    "identify",
    "build_prompts",
    "resolve_family",
    "read_ct",
    "check_checkpoint_path",
    "DEMO_MODEL_WARNING",
    "default_checkpoint",
]

logger = logging.getLogger(__name__)


def segment(
    image: str | os.PathLike | Volume,
    output: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    progress: bool = False,
    output_format: str | None = None,
    **request: Any,
) -> Segmentation:
    """Segment a CT (a file, a DICOM folder, or a :class:`Volume`) and optionally write the labels:
    :func:`prepare_segment` with ``request`` (a ready ``prompts``, or the prompt keywords
    ``classes``, ``points``, ``box``, ``text``, ...; ``segmenter`` or ``checkpoint``, ``family``,
    ``options``, ``series_uid``: see there), then :func:`run_segment`.

    With ``output`` the result is written in ``output_format`` (a name of
    :data:`voxelprompt.outputs.OUTPUT_FORMATS`; None: chosen by the ending of ``output``): a
    label map (``.nii.gz``, ``.nii``, ``.nrrd``) gets its class names, value -> name, in
    ``<stem>.label_names.json`` beside it, which ``voxelprompt overlay`` reads for its legend; an
    ``.rtstruct.dcm`` is an RT-STRUCT of a DICOM series input. What the format needs (a DICOM
    series, its pip extra) is checked before any model work.

    The label map has the input's exact shape and affine and holds only 0 and the prompted ids
    (the family's class ids; an object's value: ``label_value``, the class its text names, or
    :data:`~voxelprompt.types.OBJECT_ID`). Give an already loaded ``segmenter`` (to reuse one
    model), a ``checkpoint`` (its family is recognised), or neither for the default model.
    Checks run cheapest first: the output path, the family, prompts and options, then the image
    (clicks and boxes against its grid), and only then is a model loaded.

    Args:
        device: auto, cpu, cuda or cuda:N.
        progress: show progress bars over windows.
        output_format: the format of ``output``; None: by its ending.
        request: the keywords of :func:`prepare_segment`.

    Raises:
        VoxelPromptError: bad input, prompt, option, output path or format, or checkpoint (one-line message).
        TypeError: a keyword :func:`prepare_segment` does not take.
    """
    return segment_outcome(image, output, device=device, progress=progress, output_format=output_format, **request).result


@dataclass(frozen=True)
class SegmentOutcome:
    """What one :func:`segment_outcome` call did.

    Args:
        result: the segmentation (labels on the input's grid).
        request: the checked request it answered.
        model: the segmenter that ran.
        names: label value -> structure name as written (classes the weights never learnt marked).
    """

    result: Segmentation
    request: SegmentRequest
    model: Segmenter
    names: dict[int, str]


def segment_outcome(
    image: str | os.PathLike | Volume,
    output: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    progress: bool = False,
    output_format: str | OutputFormat | None = None,
    before_load: Callable[[], None] | None = None,
    **request: Any,
) -> SegmentOutcome:
    """:func:`segment` with what a front door reports: the checked request, the model and the names
    written (the CLI's ``segment`` is this and a printout).

    Args:
        output_format: also an :class:`~voxelprompt.outputs.OutputFormat` the caller already chose
            and checked for ``output`` (:func:`voxelprompt.outputs.check_output`).
        before_load: called once every check has passed, just before a model is loaded (the CLI
            tunes its process there).
        Others: as :func:`segment`.
    """
    from voxelprompt.outputs import OutputFormat, check_output

    check_device(device)
    source = image.source if isinstance(image, Volume) else str(image)
    fmt = None
    if isinstance(output_format, OutputFormat):  # chosen and checked by the caller (the CLI does it first)
        fmt = output_format
    elif output is not None:
        fmt = check_output(output, output_format, source=source, inputs=() if isinstance(image, Volume) else (image,))
    prepared = prepare_segment(image, **request)
    if fmt is not None:
        fmt.check_image(prepared.volume, source, request.get("series_uid"))  # e.g. an RT-STRUCT's grid, before any model work
    if before_load is not None:
        before_load()
    model = request_model(request.get("segmenter"), prepared.checkpoint, prepared.family, device, prepared.options, progress)
    result = run_segment(dataclasses.replace(prepared, segmenter=model), device=device, progress=progress)
    outcome = SegmentOutcome(result, prepared, model, result_names(result, prepared, model))
    if output is not None:
        write_result(outcome, output, fmt, source, request.get("series_uid"))
    return outcome




def result_names(result: Segmentation, request: SegmentRequest, model: Segmenter) -> dict[int, str]:
    """Label value -> structure name of ``result``: the family's catalog names (classes the weights
    never learnt marked UNLEARNT), the text, or "object"."""
    names = request.names(result.classes)
    if request.prompts.classes or request.prompts.everything:
        names = model.learnt.marked(names)
    return names


def write_result(
    outcome: SegmentOutcome, output: str | os.PathLike, fmt: Any, source: str, series_uid: str | None = None
) -> list[Path]:
    """Write an outcome at ``output`` in ``fmt`` (:func:`voxelprompt.outputs.write_output`): its
    names as printed, the model's family and demo mark."""
    from voxelprompt.inference.protocol import demo_mark
    from voxelprompt.outputs import OutputContext, write_output

    family = outcome.request.family.name
    context = OutputContext(
        labels=outcome.result.labels, label_names=outcome.names, image=outcome.request.volume, source=source,
        series_uid=series_uid, model=family, demo_mark=demo_mark(outcome.model), title=f"{Path(source).name}: {family}",
    )  # fmt: skip
    return write_output(context, output, fmt)


def open_session(
    image: str | os.PathLike | Volume,
    *,
    segmenter: Segmenter | None = None,
    checkpoint: str | os.PathLike | None = None,
    family: str | None = None,
    series_uid: str | None = None,
    device: str = "auto",
    options: Any = None,
    memory_budget_mb: float = 4096,
) -> Session:
    """An interactive session on one CT: encoded once, then many prompts with ``session.segment``.

    Args:
        memory_budget_mb: upper bound for the session's cached window features.
        Others: as :func:`segment`.

    Raises:
        PromptError: a family without sessions.
        VoxelPromptError: bad input, option or checkpoint.
    """
    check_device(device)
    if not memory_budget_mb > 0:
        raise VoxelPromptError(f"memory_budget_mb must be a positive number, got {memory_budget_mb!r}")
    checkpoint = default_checkpoint(checkpoint, family) if segmenter is None else checkpoint
    chosen = request_family(segmenter, checkpoint, family)
    if not chosen.capabilities.sessions:
        raise PromptError(f"{chosen.name} has no interactive sessions")
    volume = read_ct(image, series_uid)
    model = request_model(segmenter, checkpoint, chosen, device, options, progress=False)
    return model.open_session(volume, memory_budget_mb=memory_budget_mb)


def identify(
    image: str | os.PathLike | Volume,
    mask: str | os.PathLike | Volume | None = None,
    *,
    segmenter: Segmenter | None = None,
    checkpoint: str | os.PathLike | None = None,
    family: str | None = None,
    box: Sequence[float] | None = None,
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    categories: Sequence[str] | None = None,
    series_uid: str | None = None,
    device: str = "auto",
    options: Any = None,
) -> Identification:
    """Rank class names for a mask (SegVol paper, Fig. 5), for families with the identify capability.

    Give the mask (a label file or :class:`Volume` on the image's grid; every non-zero voxel
    counts), or spatial prompts (box and/or clicks) that the model segments first.

    Args:
        categories: names to score; default: the VISTA3D catalog names.
        Others: as :func:`segment`.

    Raises:
        PromptError: a family without identify, both or neither of a mask and prompts, an empty mask.
        InputError: a mask on another grid (the same grid in another axis order is reoriented).
    """
    from voxelprompt.imageio import align_to_grid, read_volume

    check_device(device)
    if family is None and segmenter is None and checkpoint is None:  # the first that can identify
        family = families_with("identify")[0]
    chosen = request_family(segmenter, checkpoint, family)  # a checkpoint's own family, recognised
    if not chosen.capabilities.identify:
        names = ", ".join(families_with("identify"))
        raise PromptError(f"identify needs a model family that has it ({names}); {chosen.name} has not")
    spatial = box is not None or bool(points) or bool(negative_points)
    if (mask is None) == (not spatial):
        raise PromptError("give either a mask or spatial prompts (a box or clicks), not both or neither")
    volume = read_ct(image, series_uid)
    if mask is not None:
        labels = mask if isinstance(mask, Volume) else read_volume(mask, dtype=None)
        labels = align_to_grid(labels, volume)  # before the model loads; the segmenter checks it too
        model = request_model(segmenter, checkpoint, chosen, device, options, progress=False)
    else:
        prompts = check_request(chosen, build_prompts((), points, negative_points, point_space, box=box, catalog=chosen.class_catalog()), volume)
        model = request_model(segmenter, checkpoint, chosen, device, options, progress=False)
        labels = model.segment(volume, prompts).labels
    return model.identify(volume, np.asarray(labels.array) != 0, categories)
