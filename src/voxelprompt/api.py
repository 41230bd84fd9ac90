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
from voxelprompt.families import ModelFamily, families_with, get_family
from voxelprompt.imageio.policy import TRUSTED, ReadPolicy
from voxelprompt.models.loading import (
    DEMO_MODEL_WARNING,
    NamedModel,
    check_checkpoint_path,
    default_checkpoint,
    load_model,
    load_named_models,
    resolve_family,
)
from voxelprompt.prompts import Coordinate, build_prompts, value_names
from voxelprompt.request import check_request
from voxelprompt.types import PointSpace, Prompts, Segmentation, Volume

if TYPE_CHECKING:  # torch is imported only when a model is loaded
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


def read_ct(image: str | os.PathLike | Volume, series_uid: str | None = None, policy: ReadPolicy = TRUSTED) -> Volume:
    """The CT to segment, read (see :func:`voxelprompt.imageio.read_volume`, under ``policy``)
    unless already a :class:`Volume`; logs a one-line warning when its values do not look like
    Hounsfield units.

    Raises:
        InputError: as :func:`~voxelprompt.imageio.read_volume`.
    """
    from voxelprompt.imageio import hounsfield_warning, read_volume

    volume = image if isinstance(image, Volume) else read_volume(image, series_uid=series_uid, policy=policy)
    warning = hounsfield_warning(volume)
    if warning is not None:
        logger.warning("WARNING: %s", warning)
    return volume


def _family_of(segmenter: Segmenter | None, checkpoint, family: str | ModelFamily | None) -> ModelFamily:
    """The family of a loaded segmenter or of a checkpoint (already resolved, see :func:`default_checkpoint`);
    a :class:`ModelFamily` given is the one :func:`resolve_family` found for ``checkpoint``, trusted."""
    if isinstance(family, ModelFamily) and segmenter is None:
        return family
    if segmenter is not None and checkpoint is not None:
        raise VoxelPromptError("give a loaded segmenter or a checkpoint, not both")
    if segmenter is not None:
        own = get_family(segmenter.family)
        if family is not None and get_family(family) is not own:
            raise VoxelPromptError(f"the given segmenter is a {own.name} model, not {family}")
        return own
    return resolve_family(checkpoint, family)


def _model(segmenter, checkpoint, chosen: ModelFamily, device: str, options, progress: bool) -> Segmenter:
    if segmenter is not None:
        return segmenter
    return load_model(checkpoint, chosen, device=device, options=options, progress=progress)


@dataclass(frozen=True)
class SegmentRequest:
    """One segmentation asked of one model, checked once and ready to run (:func:`prepare_segment`).

    Args:
        family: the model's registry entry.
        checkpoint: its weights file (None: the family's shipped default); ignored with ``segmenter``.
        volume: the CT in HU, axis order and frame as :mod:`voxelprompt.types` states.
        prompts: checked for ``family`` on ``volume``'s grid (:func:`voxelprompt.request.check_request`).
        options: the family's options record.
        segmenter: an already loaded model of ``family``; None: :func:`run_segment` loads one.
    """

    family: ModelFamily
    checkpoint: str | os.PathLike | None
    volume: Volume
    prompts: Prompts
    options: Any
    segmenter: Segmenter | None = None

    def names(self, values: Sequence[int]) -> dict[int, str]:
        """Label value -> structure name (the family's catalog, the text, or "object")."""
        return value_names(values, self.prompts, self.family.class_catalog())


def prepare_segment(
    image: str | os.PathLike | Volume,
    *,
    prompts: Prompts | None = None,
    segmenter: Segmenter | None = None,
    checkpoint: str | os.PathLike | None = None,
    family: str | ModelFamily | None = None,
    classes: Sequence[str | int] = (),
    everything: bool = False,
    text: str | None = None,
    box: Sequence[float] | None = None,
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    new_structure: bool = False,
    label_value: int | None = None,
    allow_unlearnt: bool = False,
    series_uid: str | None = None,
    options: Any = None,
    choose_checkpoint: Callable[[ModelFamily], str | os.PathLike | None] | None = None,
    policy: ReadPolicy = TRUSTED,
) -> SegmentRequest:
    """Every check a segmentation needs short of a model, cheapest first, each once.

    The family (from ``segmenter``, ``family`` or the checkpoint's tensor names, read once), the
    prompts (``prompts``, or built from the keyword values with the family's class catalog), the
    family's options, then the image is read and the prompts are checked against the family's
    capabilities and rules, the grid and the classes the weights learnt
    (:func:`voxelprompt.request.check_request`). Nothing here loads a model.

    Args:
        image: the CT: a file, a DICOM folder or a :class:`~voxelprompt.types.Volume`.
        prompts: a :class:`~voxelprompt.types.Prompts` a front door built; None: built from the
            keyword values below (as :func:`voxelprompt.prompts.build_prompts`).
        segmenter: an already loaded model (to reuse one); ``checkpoint``: its weights file (the
            family is recognised from its tensors); neither: the family's default model.
        family: a registered family's name (or entry); None: the segmenter's, or the checkpoint's.
        classes: class names of the family's catalog or ids; ``everything``: the model's everything set.
        text: a class name (SegVol: CLIP-encoded; VISTA3D: looked up in the class table).
        box: ``(i0, j0, k0, i1, j1, k1)`` in ``point_space``, corners inclusive (SegVol).
        points, negative_points: clicks, (I, J, K) input voxels or (x, y, z) RAS+ mm.
        new_structure: clicks without a class mark a structure outside VISTA3D's classes.
        label_value: the value of a single object (SegVol's, or VISTA3D's object from clicks).
        allow_unlearnt: run class prompts the model never learnt instead of refusing them; the
            result's notes then say so.
        series_uid: which DICOM series to read when ``image`` is a folder holding several.
        options: the family's options record or a mapping of its fields (see :func:`load_model`).
        choose_checkpoint: ``(family) -> checkpoint`` when no checkpoint is given, called after
            the image is read (the CLI asks there whether to download the official weights);
            None: :func:`default_checkpoint` (cached official weights, else the demo model).
        policy: how the image file is read (:mod:`voxelprompt.imageio.policy`; a server's uploads
            are UNTRUSTED).

    Raises:
        VoxelPromptError: bad input, prompt, option or checkpoint (one-line message).
    """
    if segmenter is not None and (checkpoint is not None or options is not None):
        raise VoxelPromptError("give a loaded segmenter or a checkpoint and options, not both (a loaded model keeps its options)")
    chosen = _family_of(segmenter, checkpoint, family)
    if prompts is None:
        prompts = build_prompts(
            classes, points, negative_points, point_space, new_structure, text=text, box=box, everything=everything,
            label_value=label_value, allow_unlearnt=allow_unlearnt, catalog=chosen.class_catalog(),
        )  # fmt: skip
    if not (prompts.classes or prompts.everything or prompts.points or prompts.box or prompts.text):
        raise PromptError("nothing to segment: give classes, everything, clicks, a box or a text")
    opts = chosen.make_options(options)
    volume = read_ct(image, series_uid, policy)
    checked = check_request(chosen, prompts, volume)  # the family's rules and the grid: before any weights are chosen
    if segmenter is None and checkpoint is None:
        checkpoint = choose_checkpoint(chosen) if choose_checkpoint is not None else default_checkpoint(None, chosen.name)
    learnt = segmenter.learnt if segmenter is not None else chosen.learnt(checkpoint)
    learnt.check(checked.classes, allow=checked.allow_unlearnt)  # what these weights learnt
    return SegmentRequest(chosen, checkpoint, volume, checked, opts, segmenter)


def run_segment(request: SegmentRequest, *, device: str = "auto", progress: bool = False) -> Segmentation:
    """Run a prepared request: load its model once (unless it came with one) and segment.

    Raises:
        VoxelPromptError: a bad device or checkpoint; the segmenter's own model-specific checks.
    """
    check_device(device)
    model = _model(request.segmenter, request.checkpoint, request.family, device, request.options, progress)
    return model.segment(request.volume, request.prompts)


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
    from voxelprompt.outputs import check_output

    check_device(device)
    source = image.source if isinstance(image, Volume) else str(image)
    fmt = None
    if output is not None:
        fmt = check_output(output, output_format, source=source, inputs=() if isinstance(image, Volume) else (image,))
    prepared = prepare_segment(image, **request)
    if fmt is not None:
        fmt.check_image(prepared.volume, source, request.get("series_uid"))  # e.g. an RT-STRUCT's grid, before any model work
    model = _model(request.get("segmenter"), prepared.checkpoint, prepared.family, device, prepared.options, progress)
    result = run_segment(dataclasses.replace(prepared, segmenter=model), device=device, progress=progress)
    if output is not None:
        write_result(result, output, fmt, prepared, model, source, request.get("series_uid"))
    return result


def write_result(
    result: Segmentation, output: str | os.PathLike, fmt: Any, request: SegmentRequest, model: Segmenter,
    source: str, series_uid: str | None = None,
) -> Path:
    """Write ``result`` at ``output`` in ``fmt`` (:func:`voxelprompt.outputs.write_output`): its
    names as printed (classes the model never learnt marked), the model's name and demo mark."""
    from voxelprompt.inference.protocol import demo_mark
    from voxelprompt.outputs import OutputContext, write_output

    names = request.names(result.classes)
    if request.prompts.classes or request.prompts.everything:
        names = model.learnt.marked(names)
    context = OutputContext(
        labels=result.labels, label_names=names, image=request.volume, source=source, series_uid=series_uid,
        model=request.family.name, demo_mark=demo_mark(model),
        title=f"{Path(source).name}: {request.family.name}",
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
    chosen = _family_of(segmenter, checkpoint, family)
    if not chosen.capabilities.sessions:
        raise PromptError(f"{chosen.name} has no interactive sessions")
    volume = read_ct(image, series_uid)
    model = _model(segmenter, checkpoint, chosen, device, options, progress=False)
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
    chosen = _family_of(segmenter, checkpoint, family)  # a checkpoint's own family, recognised
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
        model = _model(segmenter, checkpoint, chosen, device, options, progress=False)
    else:
        prompts = check_request(chosen, build_prompts((), points, negative_points, point_space, box=box, catalog=chosen.class_catalog()), volume)
        model = _model(segmenter, checkpoint, chosen, device, options, progress=False)
        labels = model.segment(volume, prompts).labels
    return model.identify(volume, np.asarray(labels.array) != 0, categories)
