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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxelprompt.devices import check_device, resolve_device
from voxelprompt.errors import (
    CheckpointError,
    PromptError,
    VoxelPromptError,
)
from voxelprompt.families import (
    DEFAULT_FAMILY,
    ModelFamily,
    families_with,
    family_of_keys,
    get_family,
)
from voxelprompt.prompts import Coordinate, build_prompts, value_names
from voxelprompt.imageio.policy import TRUSTED, ReadPolicy
from voxelprompt.types import PointSpace, Segmentation, Volume

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from voxelprompt.inference.protocol import Segmenter, Session
    from voxelprompt.families.segvol.inference.identify import Identification

__all__ = [
    "load_model",
    "load_named_models",
    "NamedModel",
    "segment",
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

#: Printed whenever the shipped demo model segments something other than a phantom.
DEMO_MODEL_WARNING = (
    "WARNING: the shipped DEMO model segments this image: it was trained on synthetic CT phantoms only and its "
    "labels on a real CT are not meaningful; get the official VISTA3D weights with 'voxelprompt weights fetch "
    "vista3d-bundle' (or --download), or pass --checkpoint model.pt"
)

_demo_warned = False


def default_checkpoint(checkpoint: str | os.PathLike | None, family: str | None = None) -> str | os.PathLike | None:
    """``checkpoint`` as given, or for None (and a family whose weights ship) the default model's
    file (:func:`voxelprompt.weights.default.default_model`, with no download and nobody asked):
    the cached official VISTA3D weights, else the demo model, with a ``UserWarning`` once per process."""
    global _demo_warned
    if checkpoint is not None or (family is not None and get_family(family).name != DEFAULT_FAMILY):
        return checkpoint
    from voxelprompt.weights.default import default_model

    choice = default_model()
    if choice.demo and not _demo_warned:
        _demo_warned = True
        warnings.warn(choice.message, UserWarning, stacklevel=3)
    return choice.checkpoint


def check_checkpoint_path(checkpoint: str | os.PathLike) -> Path:
    """The checkpoint file, checked to exist before any model code is imported.

    Raises:
        CheckpointError: no such file, or a folder.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"{path}: {'is a folder, not a checkpoint file' if path.is_dir() else 'checkpoint file not found'}")
    return path


def resolve_family(checkpoint: str | os.PathLike | None = None, family: str | None = None) -> ModelFamily:
    """The family of a model: ``family`` when given (checked against the checkpoint's tensors),
    else recognised from the checkpoint's tensor names, else the family of the shipped default.

    Raises:
        CheckpointError: a missing or unreadable checkpoint, one of another family than
            ``family``, or one of no known family.
        MissingExtraError: the family's pip extra is not installed (SegVol: "segvol").
        VoxelPromptError: an unknown family name.
    """
    wanted = None if family is None else get_family(family)
    if checkpoint is None:
        chosen = wanted or get_family(DEFAULT_FAMILY)
        if chosen.default_checkpoint is None:
            raise CheckpointError(chosen.missing_checkpoint)
        chosen.require_extra()
        return chosen
    path = check_checkpoint_path(checkpoint)
    from voxelprompt.models.checkpoint_io import checkpoint_keys

    found = family_of_keys(checkpoint_keys(path), str(path))
    if wanted is not None and found is not wanted:
        raise CheckpointError(
            f"{path}: is a {found.name} checkpoint, not {wanted.name} (model family {found.name!r}: --model {found.name})"
        )
    found.require_extra()  # before any image is read or model loaded
    return found


def load_model(
    checkpoint: str | os.PathLike | None = None,
    family: str | None = None,
    device: str = "auto",
    options: Any = None,
    *,
    progress: bool = False,
    tune_allocator: bool = False,
) -> Segmenter:
    """Load a model of any registered family (:mod:`voxelprompt.families`) once, for many calls.

    Args:
        checkpoint: weights file (VISTA3D bundle or research layout; SegVol v1); None: the
            default model, the official VISTA3D weights when ``voxelprompt weights fetch
            vista3d-bundle`` put them in the cache, else the shipped demo VISTA3D (trained on
            phantoms only; a ``UserWarning`` says so once).
        family: ``"vista3d"`` or ``"segvol"``; None: recognised from the checkpoint's tensors.
        device: ``auto`` (a CUDA GPU when present), ``cpu``, ``cuda`` or ``cuda:N``.
        options: the family's options (:class:`~voxelprompt.families.Vista3DOptions`,
            :class:`~voxelprompt.families.SegVolOptions`), a mapping of them, or None.
        progress: show progress bars over windows.
        tune_allocator: on the CPU, stop glibc from unmapping every large freed block, a
            process-wide setting that saves 15-35 % per VISTA3D window (see
            :mod:`voxelprompt.inference.allocator`). Off by default: only a caller that owns the
            process (the CLI, a server) should change it.

    Returns:
        A :class:`~voxelprompt.inference.protocol.Segmenter`.

    Raises:
        CheckpointError: a missing, unreadable or foreign checkpoint.
        VoxelPromptError: an unknown family, device or option.
    """
    checkpoint = default_checkpoint(checkpoint, family)
    chosen = resolve_family(checkpoint, family)
    opts = chosen.make_options(options)
    device = resolve_device(device)
    if tune_allocator and device == "cpu":
        from voxelprompt.inference.allocator import keep_freed_memory

        keep_freed_memory()
    logger.info("loading %s (%s) on %s", checkpoint or chosen.default_checkpoint, chosen.name, device)
    return chosen.load(None if checkpoint is None else Path(checkpoint), device, opts, progress)


@dataclass(frozen=True)
class NamedModel:
    """A loaded model with the name listings and results use.

    Args:
        name: ``<family>-demo`` for the shipped default, ``<family>-<file stem>`` for a
            checkpoint (``-2``, ``-3``, ... appended when stems repeat).
        family: its registry entry; ``checkpoint``: its file (None: the shipped default).
        segmenter: the loaded :class:`~voxelprompt.inference.protocol.Segmenter`.
    """

    name: str
    family: ModelFamily
    checkpoint: Path | None
    segmenter: Segmenter


def load_named_models(
    checkpoints: Sequence[str | os.PathLike] = (),
    default_model: bool = False,
    device: str = "auto",
    options: Mapping[str, Any] | None = None,
    *,
    tune_allocator: bool = False,
) -> list[NamedModel]:
    """Load several models of any families, each once, named after what they are.

    Args:
        checkpoints: weights files (each family recognised from its tensors).
        default_model: also load the shipped demo model (first in the list).
        device: auto, cpu, cuda or cuda:N.
        options: option values by name (e.g. ``{"profile": "research", "mode": "zoom"}``); each
            model takes those its family has; None values are left at the defaults.
        tune_allocator: as :func:`load_model`.

    Raises:
        CheckpointError: an unreadable checkpoint or one of no known family.
        VoxelPromptError: an unknown device or a bad option value.
    """
    from voxelprompt.families.vista3d.inference.default_model import default_checkpoint as demo_checkpoint
    from voxelprompt.families.vista3d.inference.default_model import is_demo_checkpoint

    options = options or {}
    chosen = [(demo_checkpoint(), resolve_family(None))] if default_model else []
    chosen += [(Path(c), resolve_family(c)) for c in checkpoints]  # all checked before any loads
    models: list[NamedModel] = []
    seen: dict[str, int] = {}
    for checkpoint, family in chosen:
        fields = {f.name for f in dataclasses.fields(family.options)}
        own = {k: v for k, v in options.items() if k in fields and v is not None}
        base = f"{family.name}-{'demo' if is_demo_checkpoint(checkpoint) else checkpoint.stem}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        segmenter = load_model(checkpoint, family.name, device=device, options=own, tune_allocator=tune_allocator)
        models.append(NamedModel(name, family, checkpoint, segmenter))
    return models


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


def _family_of(segmenter: Segmenter | None, checkpoint, family: str | None) -> ModelFamily:
    """The family of a loaded segmenter or of a checkpoint (already resolved, see :func:`default_checkpoint`)."""
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
    return load_model(checkpoint, chosen.name, device=device, options=options, progress=progress)


def segment(
    image: str | os.PathLike | Volume,
    output: str | os.PathLike | None = None,
    *,
    segmenter: Segmenter | None = None,
    checkpoint: str | os.PathLike | None = None,
    family: str | None = None,
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
    device: str = "auto",
    options: Any = None,
    progress: bool = False,
    output_format: str | None = None,
) -> Segmentation:
    """Segment a CT (a file, a DICOM folder, or a :class:`Volume`) and optionally write the labels.

    With ``output`` the result is written in ``output_format`` (a name of
    :data:`voxelprompt.outputs.OUTPUT_FORMATS`; None: chosen by the ending of ``output``): a
    label map (``.nii.gz``, ``.nii``, ``.nrrd``) gets its class names, value -> name, in
    ``<stem>.label_names.json`` beside it, which ``voxelprompt overlay`` reads for its legend; an
    ``.rtstruct.dcm`` is an RT-STRUCT of a DICOM series input. What the format needs (a DICOM
    series, its pip extra) is checked before any model work.

    The label map has the input's exact shape and affine and holds only 0 and the prompted ids
    (VISTA3D class indices; an object's value: ``label_value``, the class its text names, or
    :data:`~voxelprompt.types.OBJECT_ID`). Give an already loaded ``segmenter`` (to reuse one
    model), a ``checkpoint`` (its family is recognised), or neither for the shipped demo model.
    Checks run cheapest first: prompts and the output path, the family's capabilities, then the
    image (clicks and boxes against its grid), and only then is a model loaded.

    Args:
        family: ``"vista3d"`` or ``"segvol"``; None: the segmenter's, or the checkpoint's.
        classes: class names or VISTA3D ids; ``everything``: the model's everything set.
        text: a class name (SegVol: CLIP-encoded; VISTA3D: looked up in the class table).
        box: ``(i0, j0, k0, i1, j1, k1)`` in ``point_space``, corners inclusive (SegVol).
        points, negative_points: clicks, (I, J, K) input voxels or (x, y, z) RAS+ mm.
        new_structure: clicks without a class mark a structure outside VISTA3D's classes.
        label_value: the value of a single object (SegVol's, or VISTA3D's object from clicks).
        allow_unlearnt: run class prompts the model never learnt (``segmenter.learnt``) instead of
            refusing them; the result's notes then say so.
        series_uid: which DICOM series to read when ``image`` is a folder holding several.
        device: auto, cpu, cuda or cuda:N; ``options``: the family's options (see :func:`load_model`).
        output_format: the format of ``output``; None: by its ending.

    Raises:
        VoxelPromptError: bad input, prompt, option, output path or format, or checkpoint (one-line message).
    """
    from voxelprompt.outputs import check_output

    check_device(device)
    prompts = build_prompts(
        classes, points, negative_points, point_space, new_structure, text=text, box=box, everything=everything,
        label_value=label_value, allow_unlearnt=allow_unlearnt,
    )  # fmt: skip
    if not (prompts.classes or prompts.everything or prompts.points or prompts.box or prompts.text):
        raise PromptError("nothing to segment: give classes, everything, clicks, a box or a text")
    source = image.source if isinstance(image, Volume) else str(image)
    fmt = None
    if output is not None:
        fmt = check_output(output, output_format, source=source, inputs=() if isinstance(image, Volume) else (image,))
    checkpoint = default_checkpoint(checkpoint, family) if segmenter is None else checkpoint
    chosen = _family_of(segmenter, checkpoint, family)
    learnt = segmenter.learnt if segmenter is not None else chosen.learnt(checkpoint)
    learnt.check(prompts.classes, allow=prompts.allow_unlearnt)  # before the model loads; it checks again
    volume = read_ct(image, series_uid)
    chosen.check_prompts(prompts, volume)
    if fmt is not None:
        fmt.check_image(volume, source, series_uid)  # e.g. an RT-STRUCT's grid, before any model work
    model = _model(segmenter, checkpoint, chosen, device, options, progress)
    result = model.segment(volume, prompts)
    if output is not None:
        _write_result(result, output, fmt, prompts, learnt, volume, source, series_uid, chosen.name, model)
    return result


def _write_result(result, output, fmt, prompts, learnt, volume, source, series_uid, family, model) -> None:
    """Write ``result`` at ``output`` in ``fmt`` (:func:`voxelprompt.outputs.write_output`): its
    names as printed (classes the model never learnt marked), the model's name and demo mark."""
    from voxelprompt.families.vista3d.inference.default_model import DEMO_MARK
    from voxelprompt.outputs import OutputContext, write_output

    names = value_names(result.classes, prompts)
    if prompts.classes or prompts.everything:
        names = learnt.marked(names)
    context = OutputContext(
        labels=result.labels, label_names=names, image=volume, source=source, series_uid=series_uid, model=family,
        demo_mark=DEMO_MARK if getattr(model, "demo", False) else None, title=f"{Path(source).name}: {family}",
    )  # fmt: skip
    write_output(context, output, fmt)


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
        prompts = build_prompts((), points, negative_points, point_space, box=box)
        chosen.check_prompts(prompts, volume)
        model = _model(segmenter, checkpoint, chosen, device, options, progress=False)
        labels = model.segment(volume, prompts).labels
    return model.identify(volume, np.asarray(labels.array) != 0, categories)
