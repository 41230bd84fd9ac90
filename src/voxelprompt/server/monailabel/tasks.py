"""voxelprompt's models as MONAI Label "models": what ``/info/`` lists and how an ``/infer`` request's
``params`` become :class:`~voxelprompt.types.Prompts`.

The MONAI Label clients know models by ``type``, and each type has its own request fields and reply
values (read off ``plugins/slicer/MONAILabel/MONAILabel.py`` and the OHIF v3 plugin's
``PointPrompts.tsx`` / ``AutoSegmentation.tsx`` in Project-MONAI/MONAILabel). A loaded model is
listed once per type its family's capabilities serve:

========================  ==============  ==========================================================
entry                     type            request -> reply
========================  ==============  ==========================================================
``<name>``                ``vista3d``     (classes) OHIF's fields: ``label_prompt`` class ids, ``points`` + ``point_labels`` (1/0, IJK). Reply values: class ids (VISTA3D's own), clicks alone: 1.
``<name>-segmentation``   segmentation    (classes) ``label_prompt`` ids or ``labels`` names, default the model's everything set; (text, no classes) ``labels`` names, one text prompt each. Reply values **dense** 1..N in the order of ``label_names`` (3D Slicer maps value k to the k-th name).
``<name>-interactive``    deepgrow        (points) 3D Slicer's fields: ``foreground`` / ``background`` IJK clicks, ``label`` (segment name), ``roi`` ``[i0, i1, j0, j1, k0, k1]``. Reply: binary, value 1.
========================  ==============  ==========================================================

Deepgrow details: a ``label`` that names a catalog class makes it that class's prompt (VISTA3D:
the class with its clicks, paper Algorithm 1, as the official pipeline does with ``label_prompt``
plus points; SegVol: the name as its text prompt); another name (3D Slicer's ``Segment_1``) is an
object from clicks alone, or with ``new_structure: true`` VISTA3D's zero-shot embedding. ``roi`` is
SegVol's box prompt; a family without boxes keeps only the voxels inside the roi (stated in the
reply's ``roi_used``: ``"box"`` or ``"crop"``). 3D Slicer sends all of a segment's clicks with every
request, and a result depends on those clicks only, so ``reset_state`` needs no state to reset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from voxelprompt.api import NamedModel
from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import PromptError
from voxelprompt.prompts import build_prompts
from voxelprompt.types import Prompts, Volume

__all__ = ["LabelTask", "InferPlan", "tasks_for", "class_name", "DEEPGROW", "SEGMENTATION", "VISTA3D"]

VISTA3D, SEGMENTATION, DEEPGROW = "vista3d", "segmentation", "deepgrow"
#: Capabilities listed in ``/info/`` (voxelprompt's extension; clients ignore unknown keys).
_CAPABILITY_NAMES = ("classes", "everything", "points", "negative_points", "box", "text", "zero_shot")


@dataclass(frozen=True)
class InferPlan:
    """How one request runs: prompts in order and how their labels become reply values.

    Args:
        steps: ``(prompts, value)`` pairs; ``value`` None keeps the labels' own values, an int
            paints every labelled voxel with it. An earlier step keeps its voxels.
        dense: remap the labels' class ids to 1..N in the order the result lists its classes
            (3D Slicer's segmentation models).
        crop: (I, J, K) slices outside which the reply is 0 (a roi for a family without boxes).
        binary: every labelled voxel becomes 1 (deepgrow).
        names: reply value -> name when the steps define them (one text prompt per name).
        notes: facts for the reply's ``params`` (e.g. ``roi_used``).
    """

    steps: tuple[tuple[Prompts, int | None], ...]
    dense: bool = False
    binary: bool = False
    crop: tuple[slice, slice, slice] | None = None
    names: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelTask:
    """One ``/info/`` model entry over a loaded model.

    Args:
        name: the entry's name (``/infer/{name}``).
        kind: :data:`VISTA3D`, :data:`SEGMENTATION` or :data:`DEEPGROW`.
        model: the loaded model.
        labels: name -> reply value, as ``/info/`` lists them.
        config: options 3D Slicer shows in its table and sends back as ``params``.
    """

    name: str
    kind: str
    model: NamedModel
    labels: dict[str, int]
    description: str
    config: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """The entry of ``/info/``'s ``models``."""
        return {
            "type": self.kind,
            "description": self.description,
            "labels": self.labels,
            "dimension": 3,
            "config": self.config,
            "family": self.model.family.name,
            "capabilities": [c for c in _CAPABILITY_NAMES if getattr(self.model.family.capabilities, c)],
            "learnt_classes": _learnt(self.model.segmenter.learnt),
            "demo": bool(self.model.segmenter.demo),
        }

    def plan(self, params: Mapping[str, Any], volume: Volume) -> InferPlan:
        """The prompts of a request, checked against ``volume`` and the family's capabilities.

        Raises:
            PromptError: fields of the wrong type, an unknown class, clicks outside the image,
                or prompts the family cannot answer.
        """
        if self.kind == VISTA3D:
            plan = self._vista3d(params)
        elif self.kind == SEGMENTATION:
            plan = self._segmentation(params)
        else:
            plan = self._deepgrow(params, volume)
        taught = _taught(self.model)  # the released table's rules do not know what finetuning added
        for prompts, _ in plan.steps:
            kept = tuple(c for c in prompts.classes if c not in taught)
            self.model.family.check_prompts(replace(prompts, classes=kept) if kept != prompts.classes else prompts, volume)
        return plan

    # ---- the three request kinds ---------------------------------------------------------------

    def _vista3d(self, params: Mapping[str, Any]) -> InferPlan:
        classes = _int_list(params.get("label_prompt"), "label_prompt")
        points = _points(params.get("points"), "points")
        labels = _int_list(params.get("point_labels"), "point_labels") if points else []
        if len(labels) != len(points):
            raise PromptError(f"point_labels must give one 0/1 label per point: {len(points)} points, {len(labels)} labels")
        if any(v not in (0, 1) for v in labels):
            raise PromptError(f"point_labels must be 0 (negative) or 1 (positive), got {labels}")
        positive = [p for p, v in zip(points, labels, strict=True) if v == 1]
        negative = [p for p, v in zip(points, labels, strict=True) if v == 0]
        everything = not classes and not points
        prompts = build_prompts(classes, positive, negative, everything=everything)
        return InferPlan(steps=((prompts, None),))

    def _segmentation(self, params: Mapping[str, Any]) -> InferPlan:
        caps = self.model.family.capabilities
        names = _names(params.get("labels"))
        ids = _int_list(params.get("label_prompt"), "label_prompt")
        if caps.classes:
            wanted = ids + [_class_index(self.model, n) for n in names]
            prompts = build_prompts(wanted) if wanted else build_prompts((), everything=True)
            return InferPlan(steps=((prompts, None),), dense=True)
        texts = list(dict.fromkeys(names + [vista3d_catalog().name(i) for i in ids] or list(self.labels)))
        steps = tuple((build_prompts((), text=t), value) for value, t in enumerate(texts, start=1))
        return InferPlan(steps=steps, names={t: v for v, t in enumerate(texts, start=1)})

    def _deepgrow(self, params: Mapping[str, Any], volume: Volume) -> InferPlan:
        caps = self.model.family.capabilities
        positive = _points(params.get("foreground"), "foreground")
        negative = _points(params.get("background"), "background")
        box, crop, roi_used = None, None, None
        roi = params.get("roi")
        if roi:
            box = _roi_box(roi, volume)
            if caps.box:
                roi_used = "box"
            else:
                crop, box, roi_used = tuple(slice(box[a], box[a + 3] + 1) for a in range(3)), None, "crop"
        label = params.get("label")
        class_id = _catalog_index(label, self.model)
        new_structure = bool(params.get("new_structure", False))
        if class_id is not None and not new_structure:
            if caps.classes:
                prompts = build_prompts([class_id], positive, negative, box=box)
            else:
                prompts = build_prompts((), positive, negative, box=box, text=vista3d_catalog().name(class_id))
        else:
            prompts = build_prompts((), positive, negative, box=box, new_structure=new_structure and caps.zero_shot)
        if not (prompts.points or prompts.box or prompts.text or prompts.classes):
            raise PromptError("deepgrow needs foreground clicks" + (" or a roi box" if caps.box else ""))
        notes = {"roi_used": roi_used} if roi_used else {}
        name = label.strip() if isinstance(label, str) and label.strip() else "object"
        return InferPlan(steps=((prompts, 1),), binary=True, crop=crop, names={name: 1}, notes=notes)


def _learnt(learnt: Any) -> dict[str, int] | None:
    """Name -> id of the classes a model learnt (None: an open vocabulary), for ``/info/``."""
    if learnt.classes is None:
        return None
    return {vista3d_catalog().name(c): c for c in sorted(learnt.classes)}


def tasks_for(model: NamedModel) -> list[LabelTask]:
    """The MONAI Label entries of a loaded model, from its family's capabilities."""
    caps = model.family.capabilities
    catalog = vista3d_catalog()
    tasks: list[LabelTask] = []
    if caps.classes:
        segmenter: Any = model.segmenter
        everything = segmenter.resolve_classes(Prompts(everything=True)) if caps.everything else ()
        ids = {class_name(model, c): c for c in everything}
        tasks.append(LabelTask(
            model.name, VISTA3D, model, ids,
            f"{model.name}: class prompts (label_prompt), 3D clicks (points, point_labels) and Algorithm 1 edits; "
            "values are VISTA3D class ids (OHIF v3 MONAI Label plugin)",
        ))  # fmt: skip
        tasks.append(LabelTask(
            f"{model.name}-segmentation", SEGMENTATION, model, {n: i for i, n in enumerate(ids, start=1)},
            f"{model.name}: automatic segmentation, everything or the classes named in label_prompt / labels; dense values",
        ))  # fmt: skip
    elif caps.text:
        default = ("liver", "spleen", "left kidney", "right kidney")
        tasks.append(LabelTask(
            f"{model.name}-segmentation", SEGMENTATION, model, {n: i for i, n in enumerate(default, start=1)},
            f"{model.name}: one text prompt per name in labels (default: {', '.join(default)}); dense values",
        ))  # fmt: skip
    if caps.points:
        what = "clicks" + (", a roi box" if caps.box else "") + (" and the segment name as text" if caps.text and not caps.classes else "")
        tasks.append(LabelTask(
            f"{model.name}-interactive", DEEPGROW, model, {},
            f"{model.name}: interactive segmentation from {what}; binary mask (3D Slicer deepgrow)",
        ))  # fmt: skip
    return tasks


# ---- request fields --------------------------------------------------------------------------


def _int_list(value: Any, name: str) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return [int(value)]
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value
    ):
        raise PromptError(f"{name} must be a list of integers, got {value!r}"[:200])
    return [int(v) for v in value]


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    raise PromptError(f"labels must be a list of class names, got {value!r}"[:200])


def _points(value: Any, name: str) -> list[tuple[float, float, float]]:
    if value is None or value == "":
        return []
    ok = isinstance(value, Sequence) and not isinstance(value, str)
    points = []
    for p in value if ok else ():
        if not (isinstance(p, Sequence) and len(p) == 3 and all(_finite_number(v) for v in p)):
            ok = False
            break
        points.append(tuple(float(v) for v in p))
    if not ok:
        raise PromptError(f"{name} must be a list of [i, j, k] voxel indices, got {value!r}"[:200])
    return points


def _roi_box(roi: Any, volume: Volume) -> tuple[float, ...]:
    """3D Slicer's roi ``[i0, i1, j0, j1, k0, k1]`` (IJK of the image, ends in any order) as a box
    ``(i0, j0, k0, i1, j1, k1)`` clipped to the image."""
    if not (isinstance(roi, Sequence) and len(roi) == 6 and all(_finite_number(v) for v in roi)):
        raise PromptError(f"roi must be [i0, i1, j0, j1, k0, k1] voxel indices, got {roi!r}"[:200])
    lows, highs = [], []
    for axis in range(3):
        a, b = sorted((float(roi[2 * axis]), float(roi[2 * axis + 1])))
        size = volume.shape[axis]
        if b < 0 or a > size - 1:
            raise PromptError(f"roi {list(roi)} lies outside the image ({volume.shape[0]}x{volume.shape[1]}x{volume.shape[2]} voxels)")
        lows.append(int(round(max(a, 0))))
        highs.append(int(round(min(b, size - 1))))
    return (*lows, *highs)


def _finite_number(value: Any) -> bool:
    """An int or a float other than NaN and infinity (JSON's ``NaN``, ``Infinity``), not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def _catalog_index(label: Any, model: NamedModel | None = None) -> int | None:
    if not isinstance(label, str) or not label.strip():
        return None
    try:
        return _class_index(model, label) if model is not None else vista3d_catalog().index(label)
    except PromptError:
        return None


def _taught(model: NamedModel) -> dict[int, str]:
    return getattr(model.segmenter, "taught_classes", None) or {}


def class_name(model: NamedModel, class_id: int) -> str:
    """The name of ``class_id`` for ``model``: a class finetuning taught it, else the catalog's."""
    return _taught(model).get(int(class_id)) or vista3d_catalog().name(class_id)


def _class_index(model: NamedModel, name: str) -> int:
    """The id of a class name for ``model`` (its learnt classes first, then the catalog).

    Raises:
        PromptError: a name neither knows.
    """
    for c, learnt in _taught(model).items():
        if isinstance(name, str) and learnt.lower() == name.strip().lower():
            return c
    return vista3d_catalog().index(name)
