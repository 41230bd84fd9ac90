"""Validation Dice per class during training, on whole preprocessed validation volumes.

Automatic stages prompt every annotated class present (sliding windows, inference's windowing);
interactive stages give each class one centre click (the paper's "point" protocol) and score the
window around it. Both reuse :mod:`voxelprompt.families.vista3d.inference.windows` and :mod:`voxelprompt.evaluation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from voxelprompt.catalog import click_label_shift
from voxelprompt.families.vista3d.training.prompts import object_mask
from voxelprompt.families.vista3d.training.recipe import Recipe
from voxelprompt.families.vista3d.training.transforms import as_batch

__all__ = ["validation_dice"]


@torch.no_grad()
def validation_dice(
    net: torch.nn.Module,
    dataset: Sequence[dict],
    recipe: Recipe,
    label_set: Callable[[str], Sequence[int]],
) -> dict[int, float]:
    """Mean Dice per global class over ``dataset`` (the network should be in eval mode).

    Args:
        net: the (unwrapped) VISTA3D network.
        dataset: items of ``val_transforms``: ``image`` [1, X, Y, Z], ``label`` [1, X, Y, Z] global ids.
        recipe: gives the branch (``prompts.branch``) and window size (``patch.roi``).
        label_set: dataset name -> global ids it annotates.

    Returns:
        class id -> mean Dice over the cases that contain the class.
    """
    from voxelprompt.evaluation.clicks import center_click
    from voxelprompt.evaluation.metrics import dice
    from voxelprompt.families.vista3d.inference.profiles import get_profile
    from voxelprompt.families.vista3d.inference.windows import ClickPrompt, class_logits, point_logits

    device = next(net.parameters()).device
    profile = get_profile("bundle").with_roi(recipe.patch.roi)
    last = int(net.point_head.last_supported)
    scores: dict[int, list[float]] = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        image = as_batch(sample["image"], device)
        labels = as_batch(sample["label"], device)[0, 0]
        targets = {c: object_mask(labels, c) for c in label_set(sample["dataset_name"])}
        present = [c for c, m in targets.items() if bool(m.any())]
        if not present:
            continue
        if recipe.prompts.branch == "auto":
            logits = list(class_logits(image, net, tuple(present), profile, last)[0])
        else:
            logits = []
            for c in present:
                ijk = center_click(targets[c].cpu().numpy())
                click = ClickPrompt(
                    coords=torch.tensor([[ijk]], dtype=torch.float, device=device),
                    labels=torch.tensor([[1 + click_label_shift(c)]], device=device),
                    prompt_class=torch.tensor([[c]], device=device),
                )
                logits.append(point_logits(image, net, click, profile)[0, 0])
        for c, lg in zip(present, logits):
            pred = torch.nan_to_num(lg.float(), nan=-1.0) > 0  # NaN: outside every window
            scores.setdefault(c, []).append(dice(pred.cpu().numpy(), targets[c].cpu().numpy()))
    return {c: float(np.mean(v)) for c, v in sorted(scores.items())}
