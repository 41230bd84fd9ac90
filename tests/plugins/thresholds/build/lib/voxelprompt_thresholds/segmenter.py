"""Hounsfield-unit thresholds behind voxelprompt's Segmenter protocol.

Classes: every voxel whose HU lies in the class's range. Clicks: the connected component (26-connected)
of the clicked class's mask that holds the positive clicks, less components holding negative clicks.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from voxelprompt.catalog.learnt import LearntClasses
from voxelprompt.errors import CheckpointError, PromptError
from voxelprompt.prompts import check_points_inside
from voxelprompt.types import OBJECT_ID, Prompts, Segmentation, Volume

from voxelprompt_thresholds import CLASSES, ThresholdOptions, catalog

__all__ = ["ThresholdNetwork", "ThresholdSegmenter", "load", "check_prompts", "tiny_model", "learnt_classes"]


class ThresholdNetwork(torch.nn.Module):
    """The (classes, 2) HU ranges as the one tensor of a checkpoint (``thresholds.ranges``)."""

    def __init__(self, ranges: torch.Tensor | None = None) -> None:
        super().__init__()
        default = torch.tensor([[lo, hi] for _, lo, hi in CLASSES.values()], dtype=torch.float32)
        self.thresholds = torch.nn.Module()
        self.thresholds.register_buffer("ranges", default if ranges is None else ranges.float())


def tiny_model(seed: int = 0) -> ThresholdNetwork:
    return ThresholdNetwork()


def learnt_classes(checkpoint: Any = None) -> LearntClasses:
    return LearntClasses("the HU thresholds", frozenset(CLASSES), "voxelprompt_thresholds.CLASSES", catalog=catalog())


def check_prompts(prompts: Prompts, volume: Volume) -> None:
    """Class ids of this family's table; clicks inside the volume."""
    for c in prompts.classes:
        if c not in CLASSES:
            raise PromptError(f"class {c} is not a threshold class ({', '.join(f'{i} {n}' for i, (n, _, _) in CLASSES.items())})")
    if prompts.points is not None:
        check_points_inside(prompts.points, volume)


class ThresholdSegmenter:
    family = "thresholds"
    demo = False

    def __init__(self, network: ThresholdNetwork, options: ThresholdOptions) -> None:
        self._network = network
        self.options = options
        self.lock = threading.RLock()
        self.learnt = learnt_classes()

    @property
    def network(self) -> ThresholdNetwork:
        return self._network

    def _mask(self, hu: np.ndarray, class_id: int) -> np.ndarray:
        lo, hi = (float(v) for v in self._network.thresholds.ranges[class_id - 1])
        mask = (hu >= lo) & (hu <= hi)
        if self.options.min_voxels > 0:
            comp, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
            sizes = np.bincount(comp.ravel(), minlength=n + 1)
            mask &= sizes[comp] >= self.options.min_voxels
        return mask

    def prepare(self, volume: Volume) -> Volume:
        return volume

    def segment(self, volume: Volume, prompts: Prompts) -> Segmentation:
        return self.segment_prepared(volume, prompts)

    def segment_prepared(self, volume: Volume, prompts: Prompts) -> Segmentation:
        with self.lock:
            start = time.perf_counter()
            hu = np.asarray(volume.array, dtype=np.float32)
            labels = np.zeros(volume.shape, dtype=np.uint8)
            if prompts.points is None:
                for c in prompts.classes:
                    labels[self._mask(hu, c) & (labels == 0)] = c
                values = tuple(prompts.classes)
            else:
                ijk = np.clip(np.rint(prompts.points.to_voxel(volume)).astype(int), 0, np.asarray(volume.shape) - 1)
                positive = ijk[prompts.points.labels == 1]
                negative = ijk[prompts.points.labels == 0]
                class_id = prompts.classes[0] if prompts.classes else self._class_at(hu, positive[0])
                comp, _ = ndimage.label(self._mask(hu, class_id), structure=np.ones((3, 3, 3)))
                keep = {int(comp[tuple(p)]) for p in positive} - {0} - {int(comp[tuple(p)]) for p in negative}
                value = prompts.classes[0] if prompts.classes else (prompts.label_value or OBJECT_ID)
                labels[np.isin(comp, list(keep))] = value
                values = (value,)
            return Segmentation(labels=volume.with_array(labels), classes=values, seconds=time.perf_counter() - start)

    def _class_at(self, hu: np.ndarray, ijk: np.ndarray) -> int:
        for c in CLASSES:
            if self._mask(hu, c)[tuple(ijk)]:
                return c
        return 3

    def open_session(self, volume: Volume, memory_budget_mb: float = 4096) -> ThresholdSession:
        return ThresholdSession(self, volume)


class ThresholdSession:
    def __init__(self, segmenter: ThresholdSegmenter, volume: Volume) -> None:
        self.segmenter, self.volume = segmenter, volume

    def segment(self, prompts: Prompts) -> Segmentation:
        return self.segmenter.segment(self.volume, prompts)

    def reset(self) -> None:
        pass


def load(checkpoint: Any, device: str, options: ThresholdOptions, progress: bool = False) -> ThresholdSegmenter:
    """The built-in ranges (no checkpoint), or a ``torch.save``'d state dict holding ``thresholds.ranges``."""
    if checkpoint is None:
        return ThresholdSegmenter(ThresholdNetwork(), options)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    ranges = state.get("thresholds.ranges") if isinstance(state, dict) else None
    if ranges is None or tuple(ranges.shape) != (len(CLASSES), 2):
        raise CheckpointError(f"{checkpoint}: not a thresholds checkpoint (no ({len(CLASSES)}, 2) thresholds.ranges)")
    return ThresholdSegmenter(ThresholdNetwork(ranges), options)
