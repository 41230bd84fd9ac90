"""Network evaluation over windows: sliding windows for class prompts, clicked windows for points.

Both wrap MONAI (``SlidingWindowInfererAdapt`` / ``sliding_window_inference`` and
``point_based_window_inferer``) with the official settings of each profile. Logits are returned as
``[1, B, H, W, D]`` tensors in model space (B prompted objects), before sigmoid; NaN marks voxels
that no window covered.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from monai.apps.vista3d.inferer import point_based_window_inferer
from monai.inferers import SlidingWindowInfererAdapt
from monai.networks.nets.vista3d import VISTA3D

from voxelprompt.inference.sliding import OverlapAverage, pad_to_window, unpad
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile

__all__ = ["WindowCounter", "class_logits", "point_logits", "grid_point_logits", "grid_windows", "pad_to_window", "unpad"]


class WindowCounter(torch.nn.Module):
    """Wraps the network to count window evaluations (reported to users and benchmarks)."""

    def __init__(self, net: VISTA3D) -> None:
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, *args, **kwargs):  # noqa: D401 - same signature as the wrapped network
        self.calls += 1
        return self.net(*args, **kwargs)


@torch.no_grad()
def class_logits(
    image: torch.Tensor,
    net: torch.nn.Module,
    classes: tuple[int, ...],
    profile: InferenceProfile,
    last_supported: int,
    progress: bool = False,
) -> torch.Tensor:
    """Automatic-branch logits for ``classes`` over the whole image.

    Args:
        image: [1, 1, H, W, D] pre-processed image (model space).
        net: VISTA3D network (or a wrapper with the same call signature).
        classes: global class indices; with ``profile.drop_zero_shot_classes`` any id above
            ``last_supported`` drops the class vector like the bundle's inferer.
        profile: windowing settings.
        last_supported: highest trained class index of the model.

    Returns:
        [1, B, H, W, D] logits.
    """
    class_vector = torch.tensor(classes, device=image.device).unsqueeze(-1)
    prompt_class = class_vector.clone()
    if profile.drop_zero_shot_classes and bool((class_vector > last_supported).any()):
        class_vector = None
    inferer = SlidingWindowInfererAdapt(
        roi_size=profile.roi_size,
        sw_batch_size=1,
        overlap=profile.class_overlap,
        mode=profile.class_blend,
        with_coord=True,
        progress=progress,
    )
    return inferer(image, net, transpose=True, class_vector=class_vector, prompt_class=prompt_class)


@dataclass(frozen=True)
class ClickPrompt:
    """Clicks for one object in model voxel coordinates (see :func:`point_logits`)."""

    coords: torch.Tensor  # [1, N, 3] model voxels
    labels: torch.Tensor  # [1, N] 0/1, or 2/3 for ambiguous ("special") classes
    prompt_class: torch.Tensor | None  # [1, 1] or None


@torch.no_grad()
def point_logits(
    image: torch.Tensor,
    net: torch.nn.Module,
    click: ClickPrompt,
    profile: InferenceProfile,
    prev_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Interactive-branch logits in the window(s) centred on each click.

    MONAI's ``point_based_window_inferer`` pads images smaller than the window itself and passes
    ``patch_coords``, so clicks stay aligned. Without ``prev_mask`` voxels outside the clicked
    windows are NaN; with it they take ``prev_mask`` and, inside the windows, the network merges
    the click result into ``prev_mask`` with VISTA3D's connected-component rule.

    Args:
        image: [1, 1, H, W, D] pre-processed image.
        click: clicks of one object.
        prev_mask: [1, 1, H, W, D] logits of a previous result, or None.

    Returns:
        [1, 1, H, W, D] logits.
    """
    with warnings.catch_warnings():
        # MONAI rebuilds its output MetaTensor from the input's meta and warns that the affine it
        # passes alongside replaces the one in that meta: expected here, not the user's concern.
        warnings.filterwarnings("ignore", message="Setting affine, but the applied meta contains an affine")
        return _point_windows(image, net, click, profile, prev_mask)


def _point_windows(image, net, click: ClickPrompt, profile: InferenceProfile, prev_mask) -> torch.Tensor:
    return point_based_window_inferer(
        inputs=image,
        roi_size=profile.roi_size,
        predictor=net,
        point_coords=click.coords,
        point_labels=click.labels,
        class_vector=None,
        prompt_class=click.prompt_class,
        prev_mask=prev_mask,
        transpose=True,
        with_coord=True,
    )


def grid_windows(shape: tuple[int, int, int], points: np.ndarray, profile: InferenceProfile) -> list:
    """The sliding-grid windows :func:`grid_point_logits` answers clicks in (rule there).

    Args:
        shape: (H, W, D) of the image, at least one window large (window-padded model space).
        points: (N, 3) clicks in that image's voxels, (H, W, D) order.

    Returns:
        The chosen :class:`~voxelprompt.families.vista3d.inference.engine.accumulate.Window` objects, first click's first.
    """
    # Imported here: the engine package imports this module for its padding helpers.
    from voxelprompt.families.vista3d.inference.engine.accumulate import window_grid

    windows = window_grid(shape, profile.roi_size, profile.class_overlap)
    inside = min(profile.roi_size) / 8

    def depth(window, xyz) -> float:
        return min(min(p - s.start, s.stop - p) for p, s in zip(xyz, window.slices))

    anchor = max(windows, key=lambda w: depth(w, points[0]))
    chosen = []
    for xyz in points:
        best = anchor if depth(anchor, xyz) >= inside else max(windows, key=lambda w: depth(w, xyz))
        if best not in chosen:
            chosen.append(best)
    return chosen


@torch.no_grad()
def grid_point_logits(image: torch.Tensor, net: torch.nn.Module, click: ClickPrompt, profile: InferenceProfile) -> torch.Tensor:
    """Interactive-branch logits on fixed windows of the class-prompt sliding grid.

    The first click picks the grid window that holds it farthest from the borders (its anchor
    window); a later click is answered in the anchor window too when it lies at least 1/8 of a
    window inside it, else in its own farthest-inside window. Unlike :func:`point_logits` (a
    window centred on every click, MONAI's rule), the clicks refining one object then usually
    share one already-encoded window, which is what lets an interactive session answer them with
    the point head alone; the choice depends only on the clicks, not on what is cached. Clicks
    outside a window are ignored there (label -1), as in MONAI; where chosen windows overlap their
    logits are averaged.

    Args:
        image: [1, 1, H, W, D] pre-processed image, at least one window large.
        click: clicks of one object (model voxels).

    Returns:
        [1, 1, H, W, D] logits, NaN outside the chosen windows.
    """
    shape = tuple(image.shape[-3:])
    chosen = grid_windows(shape, click.coords[0].cpu().numpy(), profile)
    average = OverlapAverage((1, 1, *shape))
    for w in chosen:
        region = (slice(None), slice(None), *w.slices)
        logits = net(
            image[region], [region], point_coords=click.coords, point_labels=click.labels,
            prompt_class=click.prompt_class, transpose=True,
        )  # fmt: skip
        average.add(region, logits.float().cpu())
    return average.result()
