"""SegVol's cleaning of Felzenszwalb pseudo masks, and their merge with ground truth.

Cleaning follows ``UniversalDataset.cleanse_pseudo_label`` of the official code: drop masks below
1 per mille of the volume, open then close each mask, drop its components below the same size.
"""

from __future__ import annotations

import logging

import cc3d
import numpy as np
from scipy import ndimage as ndi

from voxelprompt.errors import VoxelPromptError

__all__ = ["clean_pseudo_masks", "merge_ground_truth", "relabel_consecutive"]

logger = logging.getLogger(__name__)

# Opening and closing with the 6-connected cross move a boundary by at most 2 voxels, so a crop
# this much larger than a mask's box gives the same result as the whole array.
_MARGIN = 3


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..N in increasing order of the old ids; 0 stays 0. int32."""
    ids, inverse = np.unique(labels, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1
    return (inverse.reshape(labels.shape) + offset).astype(np.int32)


def clean_pseudo_masks(
    labels: np.ndarray,
    min_fraction: float = 1e-3,
    opening: bool = True,
    closing: bool = True,
) -> np.ndarray:
    """Clean an integer mask map as SegVol does before training on it.

    1. masks smaller than ``min_fraction`` of all voxels become 0 (no mask);
    2. each remaining mask, in increasing id order, is opened then closed with the 6-connected
       cross (scipy's default structuring element); its 6-connected components smaller than the
       same threshold are dropped, and the result is written back (a closing may claim voxels of
       masks visited earlier, as in the official code).

    Args:
        labels: (I, J, K) integer ids, 0 = no mask.
        min_fraction: size threshold as a fraction of the volume (the paper's 1 per mille).
        opening: apply the binary opening.
        closing: apply the binary closing.

    Returns:
        (I, J, K) int32 ids renumbered 1..N (increasing old id order), 0 where no mask remains.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise VoxelPromptError(f"pseudo masks must be a 3D integer array, got {labels.dtype} of shape {labels.shape}")
    if not 0 <= min_fraction < 1:
        raise VoxelPromptError(f"min_fraction must be in [0, 1), got {min_fraction}")
    threshold = labels.size * min_fraction
    out = labels.astype(np.int32, copy=True)
    ids, counts = np.unique(out, return_counts=True)
    small = ids[(counts < threshold) & (ids != 0)]
    if small.size:
        out[np.isin(out, small)] = 0
    kept = [int(i) for i in ids if i != 0 and i not in set(small.tolist())]
    boxes = ndi.find_objects(out)
    for mask_id in kept:
        box = boxes[mask_id - 1]
        if box is None:
            continue
        crop = tuple(slice(max(0, s.start - _MARGIN), min(n, s.stop + _MARGIN)) for s, n in zip(box, out.shape))
        region = out[crop]  # a view: writes go to ``out``
        mask = region == mask_id
        processed = ndi.binary_opening(mask) if opening else mask.copy()
        if closing:
            processed = ndi.binary_closing(processed)
        if processed.any():
            components = cc3d.connected_components(processed, connectivity=6)
            sizes = np.bincount(components.ravel())
            too_small = np.flatnonzero(sizes < threshold)
            processed &= ~np.isin(components, too_small[too_small > 0])
        region[mask] = 0
        region[processed] = mask_id
    result = relabel_consecutive(out)
    logger.debug("cleaned pseudo masks: %d -> %d masks", len(ids) - int(ids[0] == 0), int(result.max()))
    return result


def merge_ground_truth(pseudo: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """Replace pseudo masks by ground-truth masks where they exist (SegVol's ``combine_gt_fh``).

    Each ground-truth class (non-zero value of ``ground_truth``) overwrites its voxels with a new
    id above the largest pseudo id, in increasing class order.

    Args:
        pseudo: (I, J, K) integer pseudo mask ids.
        ground_truth: (I, J, K) integer class map on the same grid, 0 = background.

    Returns:
        (I, J, K) int32 ids; pseudo ids unchanged, ground-truth classes after them.
    """
    pseudo = np.asarray(pseudo)
    ground_truth = np.asarray(ground_truth)
    if pseudo.shape != ground_truth.shape:
        raise VoxelPromptError(f"ground truth shape {ground_truth.shape} differs from pseudo masks {pseudo.shape}")
    out = pseudo.astype(np.int32, copy=True)
    next_id = int(out.max()) + 1
    for cls in np.unique(ground_truth):
        if cls == 0:
            continue
        out[ground_truth == cls] = next_id
        next_id += 1
    return out
