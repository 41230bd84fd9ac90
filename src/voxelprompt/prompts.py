"""Prompts from user-facing values, and the family-neutral checks that need only the volume's grid
(torch-free); a family's own rules live in its package (e.g. :mod:`voxelprompt.families.vista3d.prompts`).

Everything here is cheap, so the CLI and the API run it before any model is loaded: a misspelt
class or a click outside the image fails in well under a second, not after minutes of work.
Coordinates follow :mod:`voxelprompt.types`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from voxelprompt.errors import PromptError
from voxelprompt.types import Box, Points, PointSpace, Prompts, Volume

if TYPE_CHECKING:
    from voxelprompt.catalog import LabelCatalog

__all__ = [
    "Coordinate",
    "build_prompts",
    "check_points_inside",
    "check_previous_mask",
    "value_names",
]

Coordinate = tuple[float, float, float]


def build_prompts(
    classes: Sequence[str | int] = (),
    points: Sequence[Coordinate] = (),
    negative_points: Sequence[Coordinate] = (),
    point_space: PointSpace | str = PointSpace.VOXEL,
    new_structure: bool = False,
    *,
    text: str | None = None,
    box: Sequence[float] | None = None,
    everything: bool = False,
    label_value: int | None = None,
    allow_unlearnt: bool = False,
    catalog: LabelCatalog,
) -> Prompts:
    """Prompts from user-facing values, for any model family (capabilities are checked later, by
    :func:`voxelprompt.families.check_capabilities`).

    Args:
        classes: class names of ``catalog`` (case, ``_``/space and word order tolerated) or indices.
        points: positive clicks, (I, J, K) voxels or (x, y, z) RAS+ mm (see :mod:`voxelprompt.types`).
        negative_points: negative clicks, same frame.
        point_space: ``"voxel"`` or ``"world"`` (clicks and box).
        new_structure: the clicks mark a structure outside the model's classes (VISTA3D's
            zero-shot embedding; see :class:`~voxelprompt.types.Prompts`).
        text: a free-text class name.
        box: ``(i0, j0, k0, i1, j1, k1)`` inclusive corners in ``point_space``.
        everything: the model's everything class set.
        label_value: the value of a single object (see :class:`~voxelprompt.types.Prompts`).
        allow_unlearnt: class prompts the model never learnt are run (and noted), not refused.
        catalog: the family's class table (:meth:`~voxelprompt.families.ModelFamily.class_catalog`),
            required: no door may resolve names through another family's table.

    Raises:
        PromptError: an unknown class name, a bad point space or box, negative clicks with nothing
            that locates the object, or ``new_structure`` without clicks or with classes.
    """
    try:
        space = PointSpace(point_space)
    except ValueError:
        raise PromptError(f"point space must be voxel or world, got {point_space!r}") from None
    ids = catalog.resolve(list(classes))
    clicks = None
    if points or negative_points:
        clicks = Points.from_lists(list(points), list(negative_points), space=space)
    spatial_box = None
    if box is not None:
        values = [float(v) for v in box]
        if len(values) != 6:
            raise PromptError(f"a box needs six numbers I0,J0,K0,I1,J1,K1, got {len(values)}")
        spatial_box = Box(lower=tuple(values[:3]), upper=tuple(values[3:]), space=space)  # type: ignore[arg-type]
    if text is not None and not str(text).strip():
        raise PromptError(f"text prompt must be a non-empty class name, got {text!r}")
    if clicks is not None and not clicks.has_positive and not ids and text is None and spatial_box is None:
        raise PromptError("negative clicks alone mark nothing to segment: give at least one positive click inside the structure")
    if new_structure and clicks is None:
        raise PromptError("new_structure=True marks what clicks segment: give at least one positive click")
    if new_structure and ids:
        raise PromptError("new_structure=True is for a structure outside the model's classes; drop the classes or it")
    if label_value is not None and (isinstance(label_value, bool) or not isinstance(label_value, int | np.integer)
                                    or not 0 < int(label_value) < 2**15):  # fmt: skip
        raise PromptError(f"label value must be a whole number in 1..32767, got {label_value!r}")
    return Prompts(
        classes=ids, points=clicks, new_structure=new_structure, box=spatial_box, text=text,
        everything=everything, label_value=None if label_value is None else int(label_value),
        allow_unlearnt=bool(allow_unlearnt),
    )  # fmt: skip


def value_names(values: Sequence[int], prompts: Prompts, catalog: LabelCatalog) -> dict[int, str]:
    """The structure name of each label value a call with ``prompts`` wrote: catalog names for
    class prompts (``classes``, ``everything``), else the text, else ``"object"`` (a single object
    from clicks or a box carries no class).

    Args:
        values: the label values of the result (``Segmentation.classes``).
        prompts: the prompts that produced them.
        catalog: the family's class table.
    """
    if prompts.classes or prompts.everything:
        name = catalog.name
        return {int(v): name(int(v)) for v in values}
    return {int(v): prompts.text or "object" for v in values}


def check_points_inside(points: Points, volume: Volume) -> None:
    """Raise unless every click lies inside ``volume`` (voxel centres +- half a voxel).

    Args:
        points: clicks in voxel indices of ``volume`` or RAS+ mm (``points.space``).
        volume: the image the clicks refer to (only its shape and affine are used).

    Raises:
        PromptError: an empty click list, or a click outside the volume (named with its frame).
    """
    if len(points) == 0:
        raise PromptError("points were given but the list is empty")
    ijk = points.to_voxel(volume)
    shape = np.asarray(volume.shape)
    outside = ~((ijk >= -0.5) & (ijk <= shape - 0.5)).all(axis=1)
    if outside.any():
        bad = points.coords[int(np.argmax(outside))]
        where = f"of shape {volume.shape}"
        if points.space is PointSpace.WORLD:
            corners = np.array(np.meshgrid(*[[-0.5, s - 0.5] for s in volume.shape], indexing="ij")).reshape(3, -1).T
            world = volume.voxel_to_world(corners)
            extent = ", ".join(f"{a} {lo:.1f}..{hi:.1f}" for a, lo, hi in zip("xyz", world.min(0), world.max(0)))
            where += f", RAS+ extent {extent} mm"
        raise PromptError(f"point {tuple(float(v) for v in bad)} ({points.space.value}) lies outside the volume {where}")


def check_previous_mask(prompts: Prompts, volume: Volume) -> None:
    """A previous mask is edited by clicks and lies on ``volume``'s grid.

    Raises:
        PromptError: a previous mask without clicks, or of another shape than ``volume``.
    """
    mask = prompts.previous_mask
    if mask is None:
        return
    if prompts.points is None:
        raise PromptError("a previous mask is edited by clicks: give at least one click with it")
    if tuple(np.shape(mask)) != volume.shape:
        raise PromptError(f"the previous mask has shape {tuple(np.shape(mask))}, the image {volume.shape}")


