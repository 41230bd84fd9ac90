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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from voxelprompt.api import NamedModel
from voxelprompt.errors import PromptError
from voxelprompt.prompts import build_prompts
from voxelprompt.server.classes import ModelClasses
from voxelprompt.server.datastore import NotFound
from voxelprompt.server.plan import InferPlan
from voxelprompt.types import Volume

if TYPE_CHECKING:
    from voxelprompt.server.service import SegmentationService

__all__ = ["LabelTask", "InferPlan", "TaskTable", "tasks_for", "DEEPGROW", "SEGMENTATION", "VISTA3D"]

VISTA3D, SEGMENTATION, DEEPGROW = "vista3d", "segmentation", "deepgrow"
#: Capabilities listed in ``/info/`` (voxelprompt's extension; clients ignore unknown keys).
_CAPABILITY_NAMES = ("classes", "everything", "points", "negative_points", "box", "text", "zero_shot")


@dataclass(frozen=True)
class LabelTask:
    """One ``/info/`` model entry over a loaded model.

    Args:
        name: the entry's name (``/infer/{name}``).
        kind: :data:`VISTA3D`, :data:`SEGMENTATION` or :data:`DEEPGROW`.
        model: the loaded model; ``classes``: its class names (family catalog, taught names).
        labels: name -> reply value, as ``/info/`` lists them.
        config: options 3D Slicer shows in its table and sends back as ``params``.
    """

    name: str
    kind: str
    model: NamedModel
    classes: ModelClasses
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
            "learnt_classes": self.classes.learnt(),
            "demo": bool(self.model.segmenter.demo),
        }

    def plan(self, params: Mapping[str, Any], volume: Volume) -> InferPlan:
        """The prompts of a request's ``params`` (the service checks them against ``volume`` and
        the family's capabilities).

        Raises:
            PromptError: fields of the wrong type, an unknown class, a roi outside the image.
        """
        if self.kind == VISTA3D:
            return self._vista3d(params)
        if self.kind == SEGMENTATION:
            return self._segmentation(params)
        return self._deepgrow(params, volume)

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
        prompts = build_prompts(classes, positive, negative, everything=everything, catalog=self.classes.catalog)
        return InferPlan(steps=((prompts, None),))

    def _segmentation(self, params: Mapping[str, Any]) -> InferPlan:
        caps = self.model.family.capabilities
        names = _names(params.get("labels"))
        ids = _int_list(params.get("label_prompt"), "label_prompt")
        if caps.classes:
            wanted = ids + [self.classes.index(n) for n in names]
            if wanted:
                prompts = build_prompts(wanted, catalog=self.classes.catalog)
            elif caps.everything:
                prompts = build_prompts((), everything=True, catalog=self.classes.catalog)
            else:  # a family without an everything set: every class it lists
                prompts = build_prompts(self.classes.automatic(), catalog=self.classes.catalog)
            return InferPlan(steps=((prompts, None),), dense=True)
        texts = list(dict.fromkeys(names + [self.classes.catalog.name(i) for i in ids] or list(self.labels)))
        steps = tuple((build_prompts((), text=t, catalog=self.classes.catalog), value) for value, t in enumerate(texts, start=1))
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
        class_id = self.classes.find(label)
        new_structure = bool(params.get("new_structure", False))
        if class_id is not None and not new_structure:
            if caps.classes:
                prompts = build_prompts([class_id], positive, negative, box=box, catalog=self.classes.catalog)
            else:
                prompts = build_prompts((), positive, negative, box=box, text=self.classes.catalog.name(class_id), catalog=self.classes.catalog)
        else:
            prompts = build_prompts((), positive, negative, box=box, new_structure=new_structure and caps.zero_shot, catalog=self.classes.catalog)
        if not (prompts.points or prompts.box or prompts.text or prompts.classes):
            raise PromptError("deepgrow needs foreground clicks" + (" or a roi box" if caps.box else ""))
        notes = {"roi_used": roi_used} if roi_used else {}
        name = label.strip() if isinstance(label, str) and label.strip() else "object"
        return InferPlan(steps=((prompts, 1),), binary=True, crop=crop, names={name: 1}, notes=notes)


def tasks_for(model: NamedModel, classes: ModelClasses | None = None) -> list[LabelTask]:
    """The MONAI Label entries of a loaded model, from its family's capabilities and class names."""
    classes = classes or ModelClasses(model)
    caps = model.family.capabilities
    tasks: list[LabelTask] = []
    if caps.classes:
        ids = {classes.name(c): c for c in classes.automatic()}
        tasks.append(LabelTask(
            model.name, VISTA3D, model, classes, ids,
            f"{model.name}: class prompts (label_prompt), 3D clicks (points, point_labels) and Algorithm 1 edits; "
            "values are the class ids of the family's catalog (OHIF v3 MONAI Label plugin)",
        ))  # fmt: skip
        what = "everything" if caps.everything else "every class"
        tasks.append(LabelTask(
            f"{model.name}-segmentation", SEGMENTATION, model, classes, {n: i for i, n in enumerate(ids, start=1)},
            f"{model.name}: automatic segmentation, {what} or the classes named in label_prompt / labels; dense values",
        ))  # fmt: skip
    elif caps.text:
        default = ("liver", "spleen", "left kidney", "right kidney")
        tasks.append(LabelTask(
            f"{model.name}-segmentation", SEGMENTATION, model, classes, {n: i for i, n in enumerate(default, start=1)},
            f"{model.name}: one text prompt per name in labels (default: {', '.join(default)}); dense values",
        ))  # fmt: skip
    if caps.points:
        what = "clicks" + (", a roi box" if caps.box else "") + (" and the segment name as text" if caps.text and not caps.classes else "")
        tasks.append(LabelTask(
            f"{model.name}-interactive", DEEPGROW, model, classes, {},
            f"{model.name}: interactive segmentation from {what}; binary mask (3D Slicer deepgrow)",
        ))  # fmt: skip
    return tasks


class TaskTable:
    """The entries of every model a service serves, rebuilt when its models change
    (:attr:`~voxelprompt.server.service.SegmentationService.generation`)."""

    def __init__(self, service: SegmentationService) -> None:
        self.service = service
        self._built: tuple[int, dict[str, LabelTask]] | None = None

    def all(self) -> dict[str, LabelTask]:
        """Entry name -> entry, in listing order."""
        built = self._built
        if built is None or built[0] != self.service.generation:
            generation = self.service.generation
            tasks = {t.name: t for m in self.service.models for t in tasks_for(m, self.service.classes(m))}
            self._built = built = (generation, tasks)
        return built[1]

    def get(self, name: str) -> LabelTask:
        """The entry called ``name``.

        Raises:
            NotFound: no such entry.
        """
        tasks = self.all()
        task = tasks.get(name)
        if task is None:
            raise NotFound(f"unknown model {name!r}; this server has {', '.join(tasks)}")
        return task

    def model_name(self, name: str) -> str:
        """The served model an entry (or a model's own name) stands for; an unknown name as given."""
        task = self.all().get(name)
        return task.model.name if task is not None else name


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
