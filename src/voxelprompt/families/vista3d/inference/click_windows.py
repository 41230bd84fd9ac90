"""Where clicks are answered, as objects: a window centred on each click (MONAI's rule) or the
sliding grid's window that holds it (reusable encodings); :func:`build_click_windows` picks one."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch

from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile
from voxelprompt.families.vista3d.inference.windows import (
    ClickPrompt,
    grid_point_logits,
    grid_windows,
    pad_to_window,
    point_logits,
    unpad,
)

__all__ = ["ClickWindows", "CentredClickWindows", "GridClickWindows", "CLICK_WINDOWS", "build_click_windows"]


@dataclass(frozen=True)
class ClickWindows:
    """How the point head's windows are placed for a click prompt."""

    #: the name users choose it by (``open_session(click_windows=...)``).
    name: ClassVar[str] = ""
    #: whether the windows are known before any click (so a session can encode them ahead).
    known_ahead: ClassVar[bool] = False

    def logits(self, image: torch.Tensor, net: torch.nn.Module, click: ClickPrompt, profile: InferenceProfile) -> torch.Tensor:
        """Point-branch logits of one object's clicks.

        Args:
            image: [1, 1, H, W, D] pre-processed image (model space), at least one window large
                (window-padded) for the grid.
            net: the click network (or a wrapper with its call signature).
            click: the object's clicks in ``image``'s voxels.
            profile: windowing settings.

        Returns:
            [1, 1, H, W, D] logits on the CPU, NaN outside the windows evaluated.
        """
        raise NotImplementedError

    def object_logits(
        self, batch: torch.Tensor, net: torch.nn.Module, click: ClickPrompt, profile: InferenceProfile
    ) -> torch.Tensor:
        """:meth:`logits` on an image of any size (a point-only object: no automatic result to edit)."""
        return self.logits(batch, net, click, profile)

    def windows(self, shape: tuple[int, int, int], points: np.ndarray, profile: InferenceProfile) -> list:
        """The windows known ahead that clicks at ``points`` are answered in (empty if not known ahead).

        Args:
            shape: (H, W, D) of the window-padded model-space image.
            points: (N, 3) clicks in its voxels, (H, W, D) order.
        """
        return []


@dataclass(frozen=True)
class CentredClickWindows(ClickWindows):
    """MONAI's window centred on every click: labels equal a one-shot call's, but a click at a new
    place encodes a new window."""

    name: ClassVar[str] = "centred"

    def logits(self, image, net, click, profile):
        return point_logits(image, net, click, profile).cpu()


@dataclass(frozen=True)
class GridClickWindows(ClickWindows):
    """The fixed sliding-grid window that holds each click
    (:func:`~voxelprompt.families.vista3d.inference.windows.grid_point_logits`): a click near
    earlier ones reuses an encoded window."""

    name: ClassVar[str] = "grid"
    known_ahead: ClassVar[bool] = True

    def logits(self, image, net, click, profile):
        return grid_point_logits(image, net, click, profile)

    def object_logits(self, batch, net, click, profile):
        padded, before = pad_to_window(batch, profile.roi_size)
        shift = torch.tensor(before, dtype=click.coords.dtype, device=click.coords.device)
        moved = replace(click, coords=click.coords + shift)
        return unpad(self.logits(padded, net, moved, profile), before, tuple(batch.shape[-3:]))

    def windows(self, shape, points, profile):
        return grid_windows(shape, points, profile)


#: Click-window name -> its class.
CLICK_WINDOWS: dict[str, type[ClickWindows]] = {w.name: w for w in (CentredClickWindows, GridClickWindows)}


def build_click_windows(click_windows: str | ClickWindows = "centred") -> ClickWindows:
    """The click windows called ``click_windows`` (an object is returned as it is).

    Raises:
        VoxelPromptError: an unknown name.
    """
    if isinstance(click_windows, ClickWindows):
        return click_windows
    if click_windows not in CLICK_WINDOWS:
        raise VoxelPromptError(f"click_windows must be grid or centred, got {click_windows!r}")
    return CLICK_WINDOWS[click_windows]()
