"""Pseudo labels for training: VISTA3D supervoxels (Algorithm 2) and SegVol's Felzenszwalb pseudo masks.

All maps are integer ids on the input's (I, J, K) grid (see :mod:`voxelprompt.types`), 0 = none.
"""

from __future__ import annotations

from voxelprompt.pseudolabels.features import (
    FilterBankExtractor,
    SamFeatureExtractor,
    SliceFeatureExtractor,
    load_sam_extractor,
    three_view_features,
)
from voxelprompt.pseudolabels.supervoxels import SUPERVOXEL_PRESETS, SupervoxelPreset, get_preset, supervoxels

__all__ = [
    "FilterBankExtractor",
    "SamFeatureExtractor",
    "SliceFeatureExtractor",
    "load_sam_extractor",
    "three_view_features",
    "SUPERVOXEL_PRESETS",
    "SupervoxelPreset",
    "get_preset",
    "supervoxels",
]
