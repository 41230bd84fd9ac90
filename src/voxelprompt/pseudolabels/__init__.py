"""Pseudo labels for training: VISTA3D supervoxels (Algorithm 2) and SegVol's Felzenszwalb pseudo masks.

All maps are integer ids on the input's (I, J, K) grid (see :mod:`voxelprompt.types`), 0 = none.
"""

from __future__ import annotations

from voxelprompt.pseudolabels.cleaning import (
    clean_pseudo_masks,
    merge_ground_truth,
    relabel_consecutive,
)
from voxelprompt.pseudolabels.features import (
    FilterBankExtractor,
    SamFeatureExtractor,
    SliceFeatureExtractor,
    load_sam_extractor,
    three_view_features,
)
from voxelprompt.pseudolabels.felzenszwalb import felzenszwalb_3d
from voxelprompt.pseudolabels.pseudomasks import pseudo_masks
from voxelprompt.pseudolabels.supervoxels import (
    SUPERVOXEL_PRESETS,
    SupervoxelPreset,
    get_preset,
    supervoxels,
)

__all__ = [
    "SUPERVOXEL_PRESETS",
    "FilterBankExtractor",
    "SamFeatureExtractor",
    "SliceFeatureExtractor",
    "SupervoxelPreset",
    "clean_pseudo_masks",
    "felzenszwalb_3d",
    "get_preset",
    "load_sam_extractor",
    "merge_ground_truth",
    "pseudo_masks",
    "relabel_consecutive",
    "supervoxels",
    "three_view_features",
]
