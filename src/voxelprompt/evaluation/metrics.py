"""Per-class Dice and normalized surface distance (NSD) between a predicted and a reference label map.

Both metrics are MONAI's (``compute_dice``, ``compute_surface_dice``); this module fixes the
conventions for empty classes and physical spacing so every evaluation reports the same numbers.

Conventions:

* Label maps are (I, J, K) integer arrays on the same grid (axis order of :mod:`voxelprompt.types`);
  ``spacing`` is the voxel size in mm along i, j, k (``Volume.spacing``).
* **Empty vs empty** (class absent from both maps): Dice = 1 and NSD = 1, MONAI's
  ``ignore_empty=False`` convention for Dice, applied to NSD too (MONAI's NSD would return NaN).
  The result says so (``reference_empty``): VISTA3D and MONAI's defaults (``ignore_empty=True``)
  leave classes absent from the ground truth out of averages, so averaging code should skip them.
* **Empty vs non-empty** (in either direction): Dice = 0 and NSD = 0.
* NSD counts boundary *voxels* (MONAI's ``use_subvoxels=False``): the boundary of a mask is its
  voxels with a face neighbour outside it, and a boundary voxel is correct when its Euclidean
  distance in mm to the other mask's boundary is <= ``tolerance_mm``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_dice, compute_surface_dice
from scipy import ndimage

from voxelprompt.errors import InputError, VoxelPromptError

__all__ = ["ClassScore", "dice", "surface_dice", "score_class", "score_labels"]

DEFAULT_TOLERANCE_MM = 2.0
_MAX_FAST_LABEL = 65535


@dataclass(frozen=True)
class ClassScore:
    """Agreement of one class between a prediction and the reference.

    Args:
        label: class index in both label maps.
        dice: Dice similarity coefficient in [0, 1].
        nsd: normalized surface distance (surface Dice) in [0, 1] at ``tolerance_mm``.
        tolerance_mm: NSD tolerance in millimetres.
        reference_voxels: voxels of the class in the reference (ground truth).
        predicted_voxels: voxels of the class in the prediction.
    """

    label: int
    dice: float
    nsd: float
    tolerance_mm: float
    reference_voxels: int
    predicted_voxels: int

    @property
    def reference_empty(self) -> bool:
        """True when the class is absent from the reference (usually left out of averages)."""
        return self.reference_voxels == 0


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim != 3 or gt.ndim != 3:
        raise InputError(f"label maps must be 3D (I, J, K), got shapes {pred.shape} and {gt.shape}")
    if pred.shape != gt.shape:
        raise InputError(f"prediction shape {pred.shape} differs from reference shape {gt.shape}")
    return pred, gt


def _check_spacing(spacing: Sequence[float]) -> list[float]:
    values = [float(s) for s in spacing]
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise InputError(f"spacing must be three positive finite millimetre values, got {tuple(spacing)}")
    return values


def _check_tolerance(tolerance_mm: float) -> float:
    tolerance_mm = float(tolerance_mm)
    if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise VoxelPromptError(f"tolerance_mm must be a finite value >= 0, got {tolerance_mm}")
    return tolerance_mm


Box = tuple[slice, slice, slice]


def _grow(box: Box, shape: tuple[int, ...], margin: int = 1) -> Box:
    """``box`` widened by ``margin`` voxels, clipped to ``shape``.

    Both metrics are unchanged on such a crop: everything outside a class's bounding box is
    background, and MONAI pads crops that reach the array border with background itself.
    """
    grown = tuple(slice(max(b.start - margin, 0), min(b.stop + margin, n)) for b, n in zip(box, shape))
    return grown  # type: ignore[return-value]


def _union(first: Box | None, second: Box | None) -> Box | None:
    if first is None or second is None:
        return first or second
    union = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(first, second))
    return union  # type: ignore[return-value]


def _mask_box(mask: np.ndarray) -> Box | None:
    box = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if present.size == 0:
            return None
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


def _class_boxes(label_map: np.ndarray) -> dict[int, Box] | None:
    """Bounding box of every positive class in one pass, or None where that shortcut does not apply."""
    if not np.issubdtype(label_map.dtype, np.integer) or label_map.size == 0:
        return None
    if int(label_map.min()) < 0 or int(label_map.max()) > _MAX_FAST_LABEL:
        return None  # find_objects skips negative labels and allocates one entry per label value
    return {i + 1: box for i, box in enumerate(ndimage.find_objects(label_map)) if box is not None}


def _as_batch(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]


def _score_in_box(
    pred: np.ndarray, gt: np.ndarray, label: int, box: Box | None, spacing: list[float], tolerance_mm: float
) -> ClassScore:
    """Score ``label`` with both maps cropped to ``box`` (which holds all of the class's voxels)."""
    if box is None:
        pred_mask = gt_mask = np.zeros((1, 1, 1), dtype=bool)
    else:
        box = _grow(box, gt.shape)
        pred_mask, gt_mask = pred[box] == label, gt[box] == label
    dice_value, nsd_value = _binary_scores(pred_mask, gt_mask, spacing, tolerance_mm)
    return ClassScore(
        label=int(label),
        dice=dice_value,
        nsd=nsd_value,
        tolerance_mm=tolerance_mm,
        reference_voxels=int(gt_mask.sum()),
        predicted_voxels=int(pred_mask.sum()),
    )


def _binary_scores(
    pred: np.ndarray, gt: np.ndarray, spacing: list[float], tolerance_mm: float
) -> tuple[float, float]:
    pred_any, gt_any = bool(pred.any()), bool(gt.any())
    if not pred_any and not gt_any:
        return 1.0, 1.0
    if pred_any != gt_any:
        return 0.0, 0.0
    y_pred, y = _as_batch(pred), _as_batch(gt)
    dice_value = compute_dice(y_pred, y, include_background=True, ignore_empty=False)
    with warnings.catch_warnings():
        # MONAI 1.6 warns about an argument it passes to itself; nothing a caller can change.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        nsd_value = compute_surface_dice(
            y_pred, y, class_thresholds=[tolerance_mm], include_background=True, spacing=spacing
        )
    return float(dice_value.item()), float(nsd_value.item())


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two binary masks (empty vs empty is 1, empty vs non-empty 0).

    Args:
        pred: (I, J, K) predicted mask, non-zero is foreground.
        gt: (I, J, K) reference mask.
    """
    pred, gt = _check_pair(pred, gt)
    pred, gt = pred != 0, gt != 0
    if not pred.any() and not gt.any():
        return 1.0
    if not pred.any() or not gt.any():
        return 0.0
    value = compute_dice(_as_batch(pred), _as_batch(gt), include_background=True, ignore_empty=False)
    return float(value.item())


def surface_dice(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance_mm: float = DEFAULT_TOLERANCE_MM
) -> float:
    """Normalized surface distance of two binary masks (see the module docstring for conventions).

    Args:
        pred: (I, J, K) predicted mask, non-zero is foreground.
        gt: (I, J, K) reference mask.
        spacing: voxel size in mm along i, j, k.
        tolerance_mm: largest boundary deviation in mm that still counts as correct.
    """
    return score_class((np.asarray(pred) != 0), (np.asarray(gt) != 0), 1, spacing, tolerance_mm).nsd


def score_class(
    pred: np.ndarray,
    gt: np.ndarray,
    label: int,
    spacing: Sequence[float],
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
) -> ClassScore:
    """Dice and NSD of class ``label`` between two label maps.

    Args:
        pred: (I, J, K) predicted label map (class indices; a bool mask is class 1).
        gt: (I, J, K) reference label map on the same grid.
        label: class index to score.
        spacing: voxel size in mm along i, j, k.
        tolerance_mm: NSD tolerance in mm.
    """
    pred, gt = _check_pair(pred, gt)
    spacing_mm, tolerance_mm = _check_spacing(spacing), _check_tolerance(tolerance_mm)
    box = _union(_mask_box(pred == label), _mask_box(gt == label))
    return _score_in_box(pred, gt, int(label), box, spacing_mm, tolerance_mm)


def score_labels(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    labels: Iterable[int] | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
) -> list[ClassScore]:
    """Dice and NSD of every class between two label maps.

    Args:
        pred: (I, J, K) predicted label map (class indices, 0 background).
        gt: (I, J, K) reference label map on the same grid.
        spacing: voxel size in mm along i, j, k (``Volume.spacing``).
        labels: classes to score; by default every non-zero class present in either map.
        tolerance_mm: NSD tolerance in mm.

    Returns:
        One :class:`ClassScore` per class, in ascending class order.
    """
    pred, gt = _check_pair(pred, gt)
    spacing_mm, tolerance_mm = _check_spacing(spacing), _check_tolerance(tolerance_mm)
    pred_boxes, gt_boxes = _class_boxes(pred), _class_boxes(gt)
    if pred_boxes is None or gt_boxes is None:
        # Float, bool or unusual label values: one full pass per class.
        if labels is None:
            labels = [int(v) for v in np.union1d(np.unique(pred), np.unique(gt)) if v != 0]
        return [score_class(pred, gt, int(v), spacing_mm, tolerance_mm) for v in sorted(set(labels))]
    if labels is None:
        labels = set(pred_boxes) | set(gt_boxes)
    return [
        _score_in_box(pred, gt, v, _union(pred_boxes.get(v), gt_boxes.get(v)), spacing_mm, tolerance_mm)
        if v > 0
        else score_class(pred, gt, v, spacing_mm, tolerance_mm)
        for v in sorted({int(v) for v in labels})
    ]
