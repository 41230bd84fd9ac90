"""Class prompts of a VISTA3D model: which class ids a request asks for, checked against the
network's class table, the classes its weights learnt and the profile's everything set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from voxelprompt.catalog import UNNAMED_IDS, LearntClasses, everything_classes, expand_groups, vista3d_catalog
from voxelprompt.errors import PromptError
from voxelprompt.families import check_capabilities
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile
from voxelprompt.families.vista3d.network import Vista3DSpec
from voxelprompt.families.vista3d.prompts import check_label_value_use
from voxelprompt.types import Prompts

__all__ = ["resolve_classes"]


def resolve_classes(
    prompts: Prompts,
    family: str,
    spec: Vista3DSpec,
    profile: InferenceProfile,
    learnt: LearntClasses,
    taught_classes: Mapping[int, str],
    checked: bool = False,
) -> tuple[int, ...]:
    """Expand groups and validate class ids (a text prompt names a class of the catalog);
    ``prompts.everything`` gives the profile's official set.

    Args:
        prompts: the request.
        family: the registry name whose capabilities the prompts must fit.
        spec: the network's architecture (its class table and ``last_supported``).
        profile: the inference profile (its everything set).
        learnt: the classes the weights learnt.
        taught_classes: class id -> name of classes finetuning added (segmented automatically).
        checked: the request layer checked ``prompts`` for this family (capabilities, the label
            value rule: :mod:`voxelprompt.request`); only this model's own rules (its class
            table, the classes its weights learnt, taught classes, everything set) apply then.

    Returns:
        The global class ids, groups expanded, in the order given (empty for a point-only object).

    Raises:
        PromptError: everything with other prompts, an id outside the model's table, a class
            these weights never learnt (unless ``prompts.allow_unlearnt``), a class without
            automatic segmentation and without clicks, clicks with several classes, a box, or
            a label value with classes.
    """
    if not checked:
        check_capabilities(prompts, family)
        check_label_value_use(prompts)
    if prompts.text:
        prompts = replace(prompts, classes=(*prompts.classes, vista3d_catalog().index(prompts.text)), text=None)
    if prompts.everything:
        if prompts.classes or prompts.points is not None:
            raise PromptError("everything cannot be combined with classes or points")
        if profile.everything is not None:
            return tuple(profile.everything)
        return everything_classes(profile.everything_last_id)
    if prompts.new_structure and (prompts.points is None or prompts.classes):
        raise PromptError("new_structure needs clicks and no classes (it names what the clicks segment)")
    classes = expand_groups(tuple(dict.fromkeys(int(c) for c in prompts.classes)))
    for c in classes:
        if not 0 < c < spec.n_classes:
            raise PromptError(f"class index {c} is outside the model's table (1..{spec.n_classes - 1})")
    learnt.check(classes, allow=prompts.allow_unlearnt)  # always: the mark names a family, not these weights
    if prompts.points is None:
        if not classes:
            raise PromptError("nothing to segment: give classes, everything, or points")
        unknown = [
            c for c in classes if (c > spec.last_supported or c in UNNAMED_IDS) and c not in taught_classes
        ]
        if unknown:
            raise PromptError(
                f"class {unknown[0]} has no automatic segmentation in this model; "
                "add --point clicks to segment it zero-shot"
            )
    elif len(classes) > 1:
        raise PromptError(f"clicks edit one class at a time, got {len(classes)} classes {classes}")
    return classes
