"""SegVol under its own evaluation protocols (box+text, points7, correction5) and VISTA3D's
whole-volume ``iterative``: the family's evaluation adapter (registry entry ``eval_adapter``).

It drives the segmenter through its public session API only
(:meth:`~voxelprompt.families.segvol.inference.SegVolSegmenter.open_session`).
"""

from __future__ import annotations

import numpy as np

from voxelprompt.evaluation.adapters import ClickState
from voxelprompt.evaluation.novel import is_novel
from voxelprompt.families.segvol import FAMILY
from voxelprompt.types import Box, Points, Prompts, Volume

__all__ = ["SegVolEvalModel"]


class SegVolEvalModel:
    """SegVol under its own protocols (box+text, 1 + 3 pairs of points + text, 5-step correction).

    Every call runs :meth:`SegVolSegmenter.segment` on the whole case with all the prompts of the
    step (SegVol has no previous-mask input: a correction step re-segments with the initial
    prompts plus every correction click so far). It also answers VISTA3D's whole-volume
    ``iterative`` protocol with the clicks plus the class name as text (a novel object: the clicks
    alone); it has no per-window protocols and no automatic label map.

    Args:
        segmenter: a loaded :class:`~voxelprompt.families.segvol.inference.SegVolSegmenter`.
        name: model name written to the results.
    """

    protocols = FAMILY.capabilities.protocols
    default_protocol = "box+text"
    zero_shot_protocol = "points7"  # SegVol's setting in VISTA3D's zero-shot comparison (Sec. 5)

    def __init__(self, segmenter, name: str = "segvol") -> None:
        self.segmenter = segmenter
        self.name = name
        self._image: Volume | None = None

    def prepare(self, image: Volume) -> None:
        # A session: the case is normalised once and each window and text encoded once across
        # all protocols and steps, with labels identical to one-shot calls.
        self._image = image
        self._session = self.segmenter.open_session(image)

    def prompted(self, class_id: int, text: str | None, box: Box | None = None, points: Points | None = None) -> np.ndarray:
        """(I, J, K) bool mask of one object from a text, a voxel box and/or voxel points."""
        prompts = Prompts(text=text, box=box, points=points if points is not None and len(points) else None, label_value=1)
        result = self._session.segment(prompts)
        return np.asarray(result.labels.array) != 0

    def _name(self, class_id: int) -> str | None:
        from voxelprompt.catalog import vista3d_catalog

        return None if is_novel(class_id) else vista3d_catalog().name(int(class_id))

    def clicks(self, class_id: int, points: Points, previous: ClickState | None = None) -> tuple[np.ndarray, ClickState]:
        mask = self.prompted(class_id, self._name(class_id), points=points)
        return mask, ClickState(int(class_id), len(points))
