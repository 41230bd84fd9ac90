"""The registry's loader of the VISTA3D family: a checkpoint of either official layout, or the
shipped demo model with its own spacing, window and class set."""

from __future__ import annotations

import os

from voxelprompt.families.vista3d.inference.profiles import InferenceProfile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

__all__ = ["load"]


def load(checkpoint: str | os.PathLike | None, device: str, options, progress: bool = False) -> Vista3DSegmenter:
    """The registry's loader (:data:`voxelprompt.families.FAMILIES`): a checkpoint of either official
    layout, or ``None`` (or the demo weights' path) for the shipped demo model with its own
    spacing, window and class set.

    Args:
        checkpoint: VISTA3D checkpoint file, or None.
        device: a torch device string (already resolved: ``cpu``, ``cuda``, ``cuda:N``).
        options: :class:`voxelprompt.families.Vista3DOptions`.
        progress: show progress bars over windows.

    Raises:
        CheckpointError: unreadable checkpoint, another architecture, or no demo model installed.
    """
    from voxelprompt.families.vista3d.inference.default_model import (
        default_checkpoint,
        default_profile,
        is_demo_checkpoint,
        learnt_classes,
    )

    profile: str | InferenceProfile = options.profile
    demo = checkpoint is None or is_demo_checkpoint(checkpoint)
    if demo:
        checkpoint, profile = default_checkpoint(), default_profile(options.profile)
    return Vista3DSegmenter.from_checkpoint(
        checkpoint, profile=profile, device=device, roi_size=options.roi_size, progress=progress,
        engine=options.engine, amp=options.amp, learnt=learnt_classes(checkpoint), demo=demo,
    )  # fmt: skip

