"""The request layer: prompts checked once, against a family and an image grid, then trusted.

:class:`~voxelprompt.types.Prompts` is the currency of every front door (CLI, MONAI Label,
nnInteractive, ITK-SNAP, batch, evaluation, viewer): each builds one (class names resolved through
the family's own catalog, :func:`voxelprompt.prompts.build_prompts`) and hands it here.
:func:`check_request` runs every check that needs no model — the family's capabilities
(:func:`~voxelprompt.families.check_capabilities`), the family's own prompt rules and the grid
(clicks and boxes inside the image, a previous mask's shape), and the classes the weights learnt —
and returns the prompts marked as checked for that family and grid. A segmenter given marked
prompts on the same grid trusts them (:func:`ensure_checked`), so one call checks once; the
classes its own weights learnt it checks always (the mark names a family, not weights).

:func:`prepare_segment` is the whole request short of a model: family, prompts, options, the image
(:func:`read_ct`) and the check, each once, cheapest first; :func:`run_segment` loads the model
once and answers it (:mod:`voxelprompt.api` re-exports both).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from voxelprompt.devices import check_device
from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.families import ModelFamily, get_family
from voxelprompt.imageio.policy import TRUSTED, ReadPolicy
from voxelprompt.models.loading import default_checkpoint, load_model, resolve_family
from voxelprompt.prompts import Coordinate, build_prompts, value_names
from voxelprompt.types import PointSpace, Prompts, Segmentation, Volume

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from voxelprompt.inference.protocol import Segmenter

__all__ = [
    "check_request",
    "ensure_checked",
    "is_checked",
    "grid_key",
    "SegmentRequest",
    "prepare_segment",
    "run_segment",
    "read_ct",
]

logger = logging.getLogger("voxelprompt.api")


def grid_key(family: str, volume: Volume) -> str:
    """What a check depends on besides the prompts: the family and the image grid (shape, affine)."""
    affine = hashlib.blake2b(np.ascontiguousarray(volume.affine, dtype=np.float64).tobytes(), digest_size=8).hexdigest()
    return f"{family}|{'x'.join(map(str, volume.shape))}|{affine}"


def check_request(
    family: ModelFamily | str, prompts: Prompts, volume: Volume, learnt: Any = None, taught: Collection[int] = ()
) -> Prompts:
    """Check ``prompts`` once for ``family`` on ``volume``'s grid; the checked copy is returned.

    Args:
        family: the registry entry (or its name).
        prompts: as built by a front door; class ids in the family's catalog.
        volume: the image (only its shape and affine are read).
        learnt: the weights' :class:`~voxelprompt.catalog.LearntClasses`; None: not checked here.
            The mark names the family and the grid, not the weights: a segmenter checks the
            classes against its own weights' record whether or not the prompts are marked.
        taught: class ids finetuning taught the model (beyond the family's table): the family's
            rules skip them, the segmenter's own table answers for them.

    Returns:
        ``prompts`` with :attr:`~voxelprompt.types.Prompts.checked` set for this family and grid.

    Raises:
        PromptError: prompts the family cannot answer, that do not fit the grid, or class
            prompts the weights never learnt (unless ``prompts.allow_unlearnt``).
    """
    family = get_family(family) if isinstance(family, str) else family
    kept = tuple(c for c in prompts.classes if c not in taught)
    family.check_prompts(replace(prompts, classes=kept) if kept != prompts.classes else prompts, volume)
    if learnt is not None:
        learnt.check(kept, allow=prompts.allow_unlearnt)
    checked = replace(prompts)
    object.__setattr__(checked, "checked", grid_key(family.name, volume))
    return checked


def is_checked(prompts: Prompts, family: str, volume: Volume) -> bool:
    """Whether :func:`check_request` checked ``prompts`` for ``family`` on ``volume``'s grid."""
    return prompts.checked is not None and prompts.checked == grid_key(family, volume)


def ensure_checked(
    prompts: Prompts, family: str, volume: Volume, learnt: Any = None, taught: Collection[int] = ()
) -> Prompts:
    """``prompts`` when already checked for this family and grid, else :func:`check_request`'s
    copy: what a segmenter calls on entry, so direct library use is checked too."""
    if is_checked(prompts, family, volume):
        return prompts
    return check_request(family, prompts, volume, learnt, taught)


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


def request_family(segmenter: Segmenter | None, checkpoint, family: str | ModelFamily | None) -> ModelFamily:
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


def request_model(segmenter, checkpoint, chosen: ModelFamily, device: str, options, progress: bool) -> Segmenter:
    """``segmenter`` when given, else the model of ``checkpoint`` (family ``chosen``) loaded once."""
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
    chosen = request_family(segmenter, checkpoint, family)
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
    model = request_model(request.segmenter, request.checkpoint, request.family, device, request.options, progress)
    return model.segment(request.volume, request.prompts)
