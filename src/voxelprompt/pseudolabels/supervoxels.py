"""VISTA3D supervoxels (paper Algorithm 2): SLIC on the sum of axial, coronal and sagittal slice features.

The result feeds stage-1 training masks (label ∪ supervoxel, or a supervoxel alone as a zero-shot
target). Presets follow the paper and the official ``vista3d/scripts/slic_process_sam.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import slic

from voxelprompt.errors import VoxelPromptError
from voxelprompt.imageio import read_volume
from voxelprompt.pseudolabels.cache import cache_path, load_cached, save_cached
from voxelprompt.pseudolabels.features import (
    FilterBankExtractor,
    SliceFeatureExtractor,
    load_sam_extractor,
    three_view_features,
)
from voxelprompt.types import Volume

__all__ = ["SUPERVOXEL_PRESETS", "SupervoxelPreset", "get_preset", "outside_air_mask", "scale_hu", "supervoxel_map", "supervoxels"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SupervoxelPreset:
    """SLIC and pre/post-processing settings.

    Args:
        name: preset name.
        n_segments: SLIC's approximate number of supervoxels.
        sigma: Gaussian smoothing (voxels) SLIC applies to each feature channel.
        compactness: SLIC's balance of feature distance vs. space (features are in [0, 255]
            intensity units summed over three views; small values follow features, large give cubes).
        hu_window: HU range clipped and scaled linearly to [0, 255] before feature extraction.
        zero_air: set the outside air to 0 in the output.
        air_threshold_hu: voxels below this HU are air candidates.
        air_closing: side of the cubic dilation-then-erosion applied to the air mask (0: none).
        chunk: slices per feature-extractor call.
    """

    name: str
    n_segments: int
    sigma: float
    compactness: float
    hu_window: tuple[float, float] = (-1000.0, 1000.0)
    zero_air: bool = False
    air_threshold_hu: float = -800.0
    air_closing: int = 3
    chunk: int = 8

    def __post_init__(self) -> None:
        if self.n_segments < 1:
            raise VoxelPromptError(f"n_segments must be at least 1, got {self.n_segments}")
        if self.sigma < 0 or self.compactness <= 0:
            raise VoxelPromptError(f"sigma must be >= 0 and compactness > 0, got {self.sigma}, {self.compactness}")
        if not self.hu_window[0] < self.hu_window[1]:
            raise VoxelPromptError(f"hu_window must be (low, high) with low < high, got {self.hu_window}")
        if self.air_closing < 0 or self.chunk < 1:
            raise VoxelPromptError(f"air_closing must be >= 0 and chunk >= 1, got {self.air_closing}, {self.chunk}")


#: ``paper``: Algorithm 2 as printed (n_segments=100, sigma=3, skimage's default compactness).
#: ``official``: ``slic_process_sam.py`` (compactness=0.01, n_segments=400, sigma=3, HU [-1000, 1000]
#: -> [0, 255], 8-slice chunks, outside air = largest 26-connected component below -800 HU, closed
#: by a 3^3 dilation then erosion, set to 0).
SUPERVOXEL_PRESETS: dict[str, SupervoxelPreset] = {
    "paper": SupervoxelPreset(name="paper", n_segments=100, sigma=3.0, compactness=10.0),
    "official": SupervoxelPreset(name="official", n_segments=400, sigma=3.0, compactness=0.01, zero_air=True),
}


def get_preset(preset: str | SupervoxelPreset = "official", **overrides) -> SupervoxelPreset:
    """A preset by name (see :data:`SUPERVOXEL_PRESETS`), with fields replaced by ``overrides``."""
    if isinstance(preset, str):
        if preset not in SUPERVOXEL_PRESETS:
            raise VoxelPromptError(f"unknown supervoxel preset {preset!r}; choose from {sorted(SUPERVOXEL_PRESETS)}")
        preset = SUPERVOXEL_PRESETS[preset]
    overrides = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(SupervoxelPreset)}
    if unknown:
        raise VoxelPromptError(f"unknown supervoxel setting(s) {sorted(unknown)}")
    return dataclasses.replace(preset, **overrides) if overrides else preset


def scale_hu(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Clip to ``window`` and map linearly to [0, 255] (MONAI ``ScaleIntensityRange(clip=True)``), float32."""
    low, high = float(window[0]), float(window[1])
    out = (np.asarray(array, dtype=np.float32) - low) * np.float32(255.0 / (high - low))
    return np.clip(out, 0.0, 255.0, out=out)


def outside_air_mask(array: np.ndarray, threshold_hu: float = -800.0, closing: int = 3) -> np.ndarray:
    """The largest 26-connected component of ``array < threshold_hu``, dilated then eroded.

    This is the official script's ``get_largest_connected_component_mask`` + ``dilate3d`` /
    ``erode3d``: the air around the patient (the lungs are usually a separate component).

    Returns:
        (I, J, K) bool mask, all False when no voxel is below the threshold.
    """
    below = np.asarray(array) < threshold_hu
    if not below.any():
        return below
    components = cc3d.connected_components(below, connectivity=26)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    mask = components == int(np.argmax(sizes))
    if closing > 1:
        # Filters with edge replication: a mask touching the border is not eroded from outside.
        mask = ndi.maximum_filter(mask, size=closing, mode="nearest")
        mask = ndi.minimum_filter(mask, size=closing, mode="nearest")
    return mask


def supervoxel_map(image_hu: np.ndarray, preset: SupervoxelPreset, extractor: SliceFeatureExtractor) -> np.ndarray:
    """Supervoxel ids for an (I, J, K) HU array.

    Returns:
        (I, J, K) int32 ids numbered 1..N without gaps (in the order of SLIC's ids); 0 only where
        ``preset.zero_air`` removed the outside air.
    """
    image_hu = np.asarray(image_hu)
    start = time.perf_counter()
    features = three_view_features(scale_hu(image_hu, preset.hu_window), extractor, chunk=preset.chunk)
    feature_s = time.perf_counter() - start
    labels = slic(
        features,
        n_segments=preset.n_segments,
        compactness=preset.compactness,
        sigma=preset.sigma,
        channel_axis=-1,
        convert2lab=False,
        start_label=1,
    ).astype(np.int32)
    del features
    if preset.zero_air:
        labels[outside_air_mask(image_hu, preset.air_threshold_hu, preset.air_closing)] = 0
    ids, inverse = np.unique(labels, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1  # keep 0 for air, number the rest 1..N
    labels = (inverse.reshape(labels.shape) + offset).astype(np.int32)
    logger.info(
        "supervoxels: %d ids (%s preset), features %.1f s, SLIC %.1f s",
        int(labels.max()), preset.name, feature_s, time.perf_counter() - start - feature_s,
    )
    return labels


def supervoxels(
    image: Volume | str | os.PathLike,
    preset: str | SupervoxelPreset = "official",
    extractor: SliceFeatureExtractor | None = None,
    sam_checkpoint: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    **overrides,
) -> Volume:
    """Supervoxels of a CT volume on its own grid (VISTA3D Algorithm 2).

    Args:
        image: a HU volume or a path :func:`voxelprompt.imageio.read_volume` reads.
        preset: ``"official"`` (default), ``"paper"``, or a :class:`SupervoxelPreset`.
        extractor: the 2D backbone; default SAM from ``sam_checkpoint`` if given, otherwise the
            offline :class:`FilterBankExtractor`.
        sam_checkpoint: a SAM ViT-H checkpoint (needs the optional ``segment-anything`` package).
        cache_dir: if given, the map is read from / written to ``cache_dir/<case>.supervoxels.<hash>.npz``
            keyed by the image content, the preset and the extractor.
        **overrides: preset fields to replace, e.g. ``n_segments=200``.

    Returns:
        int32 label volume, same shape and affine as ``image``: ids 1..N, 0 for removed air.
    """
    volume = image if isinstance(image, Volume) else read_volume(image)
    settings = get_preset(preset, **overrides)
    if extractor is not None and sam_checkpoint is not None:
        raise VoxelPromptError("pass either a feature extractor or a SAM checkpoint, not both")
    if extractor is None:
        extractor = load_sam_extractor(sam_checkpoint) if sam_checkpoint is not None else FilterBankExtractor()
    path = None
    if cache_dir is not None:
        params = {"preset": dataclasses.asdict(settings), "extractor": extractor.cache_key}
        path = cache_path(cache_dir, volume, "supervoxels", params)
        cached = load_cached(path)
        if cached is not None and cached.shape == volume.shape:
            return volume.with_array(cached.astype(np.int32), source=f"supervoxels of {volume.source}")
    labels = supervoxel_map(volume.array, settings, extractor)
    if path is not None:
        save_cached(path, labels)
    return volume.with_array(labels, source=f"supervoxels of {volume.source}")
