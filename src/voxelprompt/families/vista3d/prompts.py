"""VISTA3D's prompt rules that need no model: checked once per request before one is loaded
(:mod:`voxelprompt.request`; the family entry's ``prompt_check``)."""

from __future__ import annotations

from voxelprompt.errors import PromptError
from voxelprompt.prompts import check_points_inside, check_previous_mask
from voxelprompt.types import Prompts, Volume

__all__ = ["check_class_prompts", "check_label_value_use", "check_vista3d_prompts"]


def check_class_prompts(prompts: Prompts, everything: bool = False) -> None:
    """VISTA3D's rules for class prompts that need no model: checked before one is loaded.

    The loaded segmenter applies the same rules to its own class table
    (:meth:`~voxelprompt.families.vista3d.inference.segmenter.Vista3DSegmenter.resolve_classes`); these use the
    released table (:mod:`voxelprompt.catalog`).

    Raises:
        PromptError: everything with classes or clicks, an id outside the class table, or a class
            without automatic segmentation and without clicks.
    """
    from voxelprompt.catalog import CLASS_TABLE_SIZE, LAST_SUPPORTED, UNNAMED_IDS, expand_groups

    if everything and (prompts.classes or prompts.points is not None):
        raise PromptError("everything cannot be combined with classes or points")
    for c in prompts.classes:
        if not 0 < c < CLASS_TABLE_SIZE:
            raise PromptError(
                f"class index {c} is not a VISTA3D class: ids run 1..{CLASS_TABLE_SIZE - 1} "
                "(`voxelprompt classes` lists the named ones)"
            )
    if prompts.points is None and not everything:
        unknown = [c for c in expand_groups(prompts.classes) if c > LAST_SUPPORTED or c in UNNAMED_IDS]
        if unknown:
            raise PromptError(
                f"class {unknown[0]} has no automatic segmentation in VISTA3D; add clicks to segment it zero-shot"
            )


def check_vista3d_prompts(prompts: Prompts, volume: Volume) -> None:
    """VISTA3D's checks before a model is loaded: :func:`check_class_prompts`, a text prompt that
    names a class of the catalog, and clicks inside ``volume``.

    Raises:
        PromptError: see the two checks.
    """
    from voxelprompt.catalog import vista3d_catalog

    if prompts.text:
        vista3d_catalog().index(prompts.text)
    check_label_value_use(prompts)
    check_class_prompts(prompts, prompts.everything)
    if prompts.points is not None:
        check_points_inside(prompts.points, volume)
    check_previous_mask(prompts, volume)


def check_label_value_use(prompts: Prompts) -> None:
    """VISTA3D's rule for ``label_value``: it names a single object from clicks; class prompts
    (ids, a class named by text, everything) keep their class ids.

    Raises:
        PromptError: a label value with class prompts.
    """
    if prompts.label_value is not None and (prompts.classes or prompts.everything or prompts.text):
        raise PromptError("label_value names a single object from clicks; class prompts keep their class ids")
