"""How sure a VISTA3D model is of its automatic result: the family's active-learning score."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxelprompt.types import Prompts, Volume

if TYPE_CHECKING:
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

__all__ = ["everything_confidence"]


def everything_confidence(segmenter: Vista3DSegmenter, volume: Volume) -> float:
    """Mean foreground confidence of the model's everything set on ``volume`` (a CT in HU), in
    [0.5, 1], 0.0 when nothing is foreground
    (:meth:`~voxelprompt.families.vista3d.inference.segmenter.Vista3DSegmenter.foreground_confidence`)."""
    classes = segmenter.resolve_classes(Prompts(everything=True))
    return segmenter.foreground_confidence(volume, classes)
