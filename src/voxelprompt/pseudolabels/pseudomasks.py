"""SegVol pseudo masks for one CT: HU clip, optional downsampling, 3D Felzenszwalb, cleaning, cache.

Large volumes are segmented on a coarser grid (at most ``max_voxels``) and the ids are copied back
to the input grid by nearest neighbour; ``k`` and ``min_size`` are stated in input voxels.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time

import numpy as np
from scipy import ndimage as ndi

from voxelprompt.errors import VoxelPromptError
from voxelprompt.imageio import read_volume
from voxelprompt.pseudolabels.cache import cache_path, load_cached, save_cached
from voxelprompt.pseudolabels.cleaning import (
    clean_pseudo_masks,
    merge_ground_truth,
    relabel_consecutive,
)
from voxelprompt.pseudolabels.felzenszwalb import felzenszwalb_3d
from voxelprompt.types import Volume

__all__ = ["pseudo_masks", "working_shape"]

logger = logging.getLogger(__name__)

#: The official pipeline runs FH on volumes resized to 256 x 256 x 32 = 2.1 M voxels; the same
#: budget (128^3) keeps the pure-Python merge loop under ~10 s.
DEFAULT_MAX_VOXELS = 128**3


def working_shape(shape: tuple[int, int, int], max_voxels: int) -> tuple[int, int, int]:
    """``shape`` shrunk by one isotropic factor so that it holds at most ``max_voxels`` voxels."""
    size = int(np.prod(shape))
    if size <= max_voxels:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    factor = (size / max_voxels) ** (1.0 / 3.0)
    return tuple(max(1, int(s / factor)) for s in shape)  # type: ignore[return-value]


def _resample_nearest(labels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Nearest-neighbour resize by voxel centres (exact output shape, no interpolation of ids)."""
    index = [np.minimum(((np.arange(n) + 0.5) * w / n).astype(np.int64), w - 1) for n, w in zip(shape, labels.shape)]
    return labels[np.ix_(*index)]


def pseudo_masks(
    image: Volume | str | os.PathLike,
    k: float = 500.0,
    min_size: int = 200,
    sigma: float = 0.8,
    connectivity: int = 6,
    hu_window: tuple[float, float] = (-1000.0, 1000.0),
    max_voxels: int = DEFAULT_MAX_VOXELS,
    clean: bool = True,
    min_fraction: float = 1e-3,
    ground_truth: Volume | np.ndarray | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Volume:
    """SegVol-style pseudo masks of a CT volume, on its own grid.

    Args:
        image: a HU volume or a path :func:`voxelprompt.imageio.read_volume` reads.
        k: Felzenszwalb scale in HU x input voxels (threshold ``Int(C) + k / |C|``); larger k,
            fewer and larger masks.
        min_size: smallest Felzenszwalb segment in input voxels.
        sigma: Gaussian pre-smoothing in working-grid voxels.
        connectivity: 6, 18 or 26 (26 is ~4x slower).
        hu_window: intensities are clipped to this range first, so air and metal do not dominate.
        max_voxels: volumes larger than this are segmented on an isotropically shrunk grid.
        clean: apply SegVol's cleaning (:func:`clean_pseudo_masks`).
        min_fraction: the cleaning's size threshold as a fraction of the volume (1 per mille).
        ground_truth: class map on the same grid; its classes replace pseudo masks before cleaning,
            as SegVol's ``combine_gt_fh`` does (ids above the pseudo ids).
        cache_dir: if given, read/write ``cache_dir/<case>.pseudomasks.<hash>.npz`` keyed by the
            image content and every setting above.

    Returns:
        int32 mask-id volume with the input's shape and affine: ids 1..N, 0 where no mask is left.
    """
    volume = image if isinstance(image, Volume) else read_volume(image)
    if max_voxels < 1:
        raise VoxelPromptError(f"max_voxels must be positive, got {max_voxels}")
    if not hu_window[0] < hu_window[1]:
        raise VoxelPromptError(f"hu_window must be (low, high) with low < high, got {hu_window}")
    gt = None
    if ground_truth is not None:
        gt = np.asarray(ground_truth.array if isinstance(ground_truth, Volume) else ground_truth)
        if gt.shape != volume.shape:
            raise VoxelPromptError(f"ground truth shape {gt.shape} differs from the image's {volume.shape}")
    params = {
        "k": float(k), "min_size": int(min_size), "sigma": float(sigma), "connectivity": int(connectivity),
        "hu_window": [float(v) for v in hu_window], "max_voxels": int(max_voxels), "clean": bool(clean),
        "min_fraction": float(min_fraction),
        "ground_truth": None if gt is None else _digest(gt),
    }
    path = None
    if cache_dir is not None:
        path = cache_path(cache_dir, volume, "pseudomasks", params)
        cached = load_cached(path)
        if cached is not None and cached.shape == volume.shape:
            return volume.with_array(cached.astype(np.int32), source=f"pseudo masks of {volume.source}")

    start = time.perf_counter()
    array = np.clip(np.asarray(volume.array, dtype=np.float32), hu_window[0], hu_window[1])
    work = working_shape(volume.shape, max_voxels)
    ratio = float(np.prod(volume.shape)) / float(np.prod(work))  # input voxels per working voxel
    if work != volume.shape:
        factors = [w / s for w, s in zip(work, volume.shape)]
        # Anti-alias before shrinking: a Gaussian of about half the step between working voxels.
        array = ndi.gaussian_filter(array, [max(0.0, (1.0 / f - 1.0) / 2.0) for f in factors], mode="nearest")
        array = ndi.zoom(array, factors, order=1, mode="nearest", grid_mode=True)
        logger.info("pseudo masks: segmenting on a %s grid (input %s)", array.shape, volume.shape)
    labels = felzenszwalb_3d(
        array, k=k / ratio, min_size=int(np.ceil(min_size / ratio)), sigma=sigma, connectivity=connectivity
    )
    if labels.shape != volume.shape:
        labels = _resample_nearest(labels, volume.shape)
    if gt is not None:
        labels = merge_ground_truth(labels, gt)
    labels = clean_pseudo_masks(labels, min_fraction=min_fraction) if clean else relabel_consecutive(labels)
    logger.info("pseudo masks: %d masks in %.1f s", int(labels.max()), time.perf_counter() - start)
    if path is not None:
        save_cached(path, labels)
    return volume.with_array(labels, source=f"pseudo masks of {volume.source}")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes() + str(array.shape).encode()).hexdigest()
