"""A request in voxelprompt's own terms: :class:`~voxelprompt.types.Prompts` in order, and how their
labels become one label map (:func:`combine`, the shared merger of :mod:`voxelprompt.inference.merge`).

Protocol adapters build an :class:`InferPlan` from their wire format; the service runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxelprompt.inference.merge import merge_labels
from voxelprompt.types import OBJECT_ID, Prompts, Segmentation

__all__ = ["InferPlan", "combine"]


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


def combine(
    plan: InferPlan, results: Sequence[Segmentation], shape: tuple[int, ...], name: Callable[[int], str]
) -> tuple[np.ndarray, dict[str, int]]:
    """The (I, J, K) uint16 label map and its names (name -> value) of a plan's results.

    Args:
        plan: the plan that ran; results: one per step, in order.
        shape: the image's shape.
        name: class id -> structure name (the served model's catalog and taught classes).
    """
    maps: list[np.ndarray] = []
    tables: list[dict[int, str]] = []
    for (prompts, value), result in zip(plan.steps, results, strict=True):
        labels = np.asarray(result.labels.array)
        table: dict[int, str] = {}
        if plan.dense:
            lut = np.zeros(int(max(labels.max(initial=0), max(result.classes, default=0))) + 1, dtype=np.uint16)
            for dense, c in enumerate(result.classes, start=1):
                lut[c] = dense
                table[dense] = name(c)
            mapped = lut[labels]
        elif value is not None:
            mapped = np.where(labels != 0, value, 0).astype(np.uint16)
        else:
            mapped = labels.astype(np.uint16)
            if prompts.classes or prompts.everything or prompts.text:
                table = {int(c): name(c) for c in result.classes}
            else:  # an object from clicks alone
                table = {int(prompts.label_value or OBJECT_ID): "object"}
        maps.append(mapped)
        tables.append(table)
    if maps:
        out, by_value = merge_labels(maps, tables, [f"step {i + 1}" for i in range(len(maps))], present_only=False)
    else:
        out, by_value = np.zeros(shape, dtype=np.uint16), {}
    names = dict(plan.names) if plan.names else {n: v for v, n in by_value.items()}
    if plan.crop is not None:
        kept = np.zeros_like(out)
        kept[plan.crop] = out[plan.crop]
        out = kept
    return out, names
