"""Click prompts of a VISTA3D segmenter: a point-only object, or an Algorithm 1 edit of a class's
automatic result (or of a given previous mask), and what to tell the user about either."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from voxelprompt.catalog import click_label_shift
from voxelprompt.families.vista3d.inference.automatic import AutomaticMasks
from voxelprompt.families.vista3d.inference.click_windows import ClickWindows
from voxelprompt.families.vista3d.inference.postprocess import invert_to_input, logits_to_labels
from voxelprompt.families.vista3d.inference.preprocess import PreparedVolume, mask_to_model, to_model_voxels
from voxelprompt.families.vista3d.inference.refine import merge_in_windows
from voxelprompt.families.vista3d.inference.windows import ClickPrompt, WindowCounter, pad_to_window, unpad
from voxelprompt.inference.sliding import pad_widths
from voxelprompt.types import OBJECT_ID, Prompts

if TYPE_CHECKING:
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

__all__ = ["segment_clicks", "changed_on_input", "click_report", "point_embedding"]


def point_embedding(prompts: Prompts, classes: tuple[int, ...], last_supported: int) -> str:
    """Which point-head embedding clicks use: ``class`` (editing a class), ``ambiguity`` (a class
    of :data:`~voxelprompt.catalog.SPECIAL_CLASSES`), ``zero-shot`` (a new structure, or a class
    above ``last_supported``) or ``supported`` (a point-only object, the official default); paper Sec. 3.2."""
    if prompts.new_structure or (classes and classes[0] > last_supported):
        return "zero-shot"
    if classes:
        return "ambiguity" if click_label_shift(classes[0]) else "class"
    return "supported"


def segment_clicks(
    segmenter: Vista3DSegmenter,
    prepared: PreparedVolume,
    counter: WindowCounter,
    classes: tuple[int, ...],
    prompts: Prompts,
    auto_cache: AutomaticMasks,
    windows: ClickWindows,
) -> tuple[torch.Tensor, int | None]:
    """Model-space labels of a checked click prompt.

    Args:
        segmenter: the model, profile and engine (automatic results of an edit come from its engine).
        prepared: the pre-processed volume.
        counter: the click network, counting windows.
        classes: the resolved classes (at most one).
        prompts: clicks in input voxel or world coordinates, optionally a previous mask.
        auto_cache: automatic results in window-padded model space (filled by this edit).
        windows: where the clicks are answered.

    Returns:
        ([1, H, W, D] float labels in model space, voxels an Algorithm 1 edit changed in the
        automatic mask (model voxels), or None for a point-only object).
    """
    points = prompts.points
    assert points is not None
    device, profile, spec = segmenter.device, segmenter.profile, segmenter.spec
    batch, image = prepared.batch, prepared.image
    model_xyz = to_model_voxels(points.to_voxel(prepared.volume), image)
    cls = classes[0] if classes else (spec.last_supported + 1 if prompts.new_structure else None)
    labels = torch.as_tensor(points.labels, dtype=torch.long)
    labels = labels + click_label_shift(cls)  # ambiguity embedding for classes like tumours and vessels
    click = ClickPrompt(
        coords=torch.as_tensor(model_xyz, dtype=torch.float32)[None].to(device),
        labels=labels[None].to(device),
        prompt_class=None if cls is None else torch.tensor([[cls]], device=device),
    )
    if prompts.previous_mask is None and (cls is None or cls > spec.last_supported):
        # Point-only (zero-shot) object: keep components holding a positive click.
        clicked = windows.object_logits(batch, counter, click, profile)
        label_prompt = None if not classes else (cls,)
        return logits_to_labels(clicked, label_prompt, click.coords.cpu(), click.labels.cpu()), None
    # Edit the automatic result (Algorithm 1) in window-padded space, where MONAI's point
    # inferer merges too: components may connect through the padding of thin images.
    shape = tuple(batch.shape[-3:])
    padded, before = pad_to_window(batch, profile.roi_size)
    if prompts.previous_mask is not None:  # the caller's mask in place of the automatic result
        auto = torch.zeros(padded.shape[-3:], dtype=torch.bool)
        unpad(auto, before, shape).copy_(mask_to_model(prompts.previous_mask, image))
    else:
        auto = auto_cache.get(cls)
        if auto is None:
            auto = segmenter.automatic_labels(padded, (cls,), counter)[0] == cls
            auto_cache.put(cls, auto)
    inside = torch.zeros(padded.shape[-3:], dtype=torch.bool)
    unpad(inside, before, shape).fill_(True)
    shifted = replace(click, coords=click.coords + torch.tensor(before, dtype=click.coords.dtype, device=device))
    clicked = windows.logits(padded, counter, shifted, profile)
    xyz = model_xyz + np.asarray(before, dtype=np.float64)
    auto = auto & inside
    merged = merge_in_windows(auto, clicked[0, 0], xyz, points.labels)
    changed = int((merged != auto).sum())
    value = classes[0] if classes else OBJECT_ID
    return unpad(merged, before, shape).to(torch.float32)[None] * float(value), changed


def changed_on_input(
    segmenter: Vista3DSegmenter, changed: int, prepared: PreparedVolume, array: np.ndarray, cls: int, cache: AutomaticMasks
) -> int:
    """Input voxels an Algorithm 1 edit changed.

    Args:
        changed: model voxels it changed (a change there can fall between the input voxels that
            the inversion samples).
        array: the edit's labels on the input grid.
        cls: the edited class; ``cache`` holds its automatic mask (window-padded model space).
    """
    if changed == 0:
        return 0
    auto = cache.get(cls)
    assert auto is not None
    shape = tuple(int(s) for s in prepared.batch.shape[-3:])
    before = tuple(b for b, _ in pad_widths(shape, segmenter.profile.roi_size))  # auto is window-padded
    model = unpad(auto, before, shape).to(torch.float32)[None] * float(cls)
    shown = invert_to_input(model, prepared.image, segmenter.preprocessing, 0)
    return int((shown != array).sum())


def click_report(
    prompts: Prompts, classes: tuple[int, ...], array: np.ndarray, changed: int | None, kind: str
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Measurements and sentences for the user about a click prompt (see :class:`~voxelprompt.types.Segmentation`).

    Args:
        array: the labels on the input grid.
        changed: input voxels an edit changed, None for a point-only object.
        kind: the point embedding used (:func:`point_embedding`).
    """
    assert prompts.points is not None
    n = len(prompts.points)
    extras: dict[str, float] = {} if changed is None else {"click_changed_voxels": float(changed)}
    if changed is not None:
        start = "the given previous mask" if prompts.previous_mask is not None else "the automatic result"
        notes = [f"{n} click(s) edited {start} (Algorithm 1, {kind} point embedding)"]
        if changed == 0:
            notes.append("the clicks changed nothing: the model's click result agrees with the automatic one there")
        else:
            notes.append(f"the clicks changed {changed} voxels of {start}")
        return extras, tuple(notes)
    value = classes[0] if classes else OBJECT_ID
    notes = [
        f"{n} click(s) segmented one object, value {value}, with VISTA3D's {kind} point embedding"
        + ("" if kind == "zero-shot" else " (new_structure=True for a structure outside the model's classes)")
    ]
    if not (array == value).any():
        notes.append(
            "the object is empty: nothing was segmented at the positive clicks; "
            "try another click inside the structure" + ("" if kind == "zero-shot" else " or new_structure=True")
        )
    return extras, tuple(notes)
