"""The thresholds under voxelprompt's evaluation protocols ``auto`` and ``iterative``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voxelprompt.types import Points, Prompts, Volume

from voxelprompt_thresholds import CLASSES


class ThresholdEvalModel:
    protocols = frozenset({"auto", "iterative"})
    default_protocol = "auto"
    zero_shot_protocol = "iterative"

    def __init__(self, segmenter, name: str = "thresholds") -> None:
        self.segmenter, self.name = segmenter, name
        self.image: Volume | None = None

    def prepare(self, image: Volume) -> None:
        self.image = image

    def auto_classes(self, classes: Sequence[int]) -> list[int]:
        return [c for c in classes if c in CLASSES]

    def auto(self, classes: Sequence[int]) -> np.ndarray:
        return np.asarray(self.segmenter.segment(self.image, Prompts(classes=tuple(classes))).labels.array)

    def clicks(self, class_id: int, points: Points, previous=None):
        classes = (class_id,) if class_id in CLASSES else ()
        labels = self.segmenter.segment(self.image, Prompts(classes=classes, points=points)).labels.array
        return np.asarray(labels) != 0, None
