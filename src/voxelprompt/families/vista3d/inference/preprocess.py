"""Official VISTA3D pre-processing as a MONAI ``Compose``, applied to in-memory volumes.

The transforms are MONAI's; this module fixes their order and parameters per profile and turns a
:class:`~voxelprompt.types.Volume` into the ``MetaTensor`` that ``LoadImaged`` would have produced,
so that ``Invertd`` can map predictions back onto the input grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    CastToTyped,
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    Orientationd,
    ScaleIntensityRanged,
    Spacingd,
)

from voxelprompt.families.vista3d.inference.profiles import HU_MAX, HU_MIN, InferenceProfile
from voxelprompt.types import Volume

__all__ = [
    "IMAGE_KEY",
    "PreparedVolume",
    "build_preprocessing",
    "volume_to_metatensor",
    "to_model_voxels",
    "mask_to_model",
]

IMAGE_KEY = "image"


@dataclass(frozen=True)
class PreparedVolume:
    """A volume after the profile's pre-processing.

    Args:
        volume: the input (its grid is where results are written).
        image: [1, H, W, D] pre-processed ``MetaTensor`` (model space, carries the inverse info).
        batch: [1, 1, H, W, D] the same on the segmenter's device.
    """

    volume: Volume
    image: torch.Tensor
    batch: torch.Tensor


def build_preprocessing(profile: InferenceProfile) -> Compose:
    """The profile's transform chain on key ``"image"`` (input: channel-less ``MetaTensor``)."""
    key = IMAGE_KEY
    spacing = Spacingd(keys=key, pixdim=profile.spacing, mode="bilinear", align_corners=profile.align_corners)
    scale = ScaleIntensityRanged(keys=key, a_min=HU_MIN, a_max=HU_MAX, b_min=0.0, b_max=1.0, clip=True)
    # labels given explicitly: MONAI 1.6's current default, which it warns will change.
    orient = Orientationd(keys=key, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    steps: list = [EnsureChannelFirstd(keys=key)]
    if profile.spacing_before_scale:
        steps.append(spacing)
        if profile.crop_foreground:
            # On the raw HU image: the body (voxels > 0 HU... MONAI's default select_fn is x > 0).
            steps.append(CropForegroundd(keys=key, source_key=key, margin=profile.crop_margin, allow_smaller=True))
        steps += [scale, orient]
    else:
        steps += [scale, orient, spacing]
    steps.append(CastToTyped(keys=key, dtype=torch.float32))
    return Compose(steps)


def volume_to_metatensor(volume: Volume) -> MetaTensor:
    """A ``MetaTensor`` equal to what ``LoadImage(image_only=True)`` returns for the same file."""
    affine = torch.as_tensor(np.asarray(volume.affine, dtype=np.float64))
    meta = {
        "original_affine": np.asarray(volume.affine, dtype=np.float64),
        "spatial_shape": np.asarray(volume.shape),
        "original_channel_dim": float("nan"),
        "filename_or_obj": volume.source,
        "space": "RAS",
    }
    array = torch.from_numpy(np.ascontiguousarray(volume.array, dtype=np.float32))
    return MetaTensor(array, affine=affine, meta=meta)


def to_model_voxels(points_ijk: np.ndarray, model_image: MetaTensor) -> np.ndarray:
    """Map (N, 3) input voxel indices to voxel indices of the pre-processed image.

    Uses ``inv(affine_after) @ original_affine`` exactly like the official inferers.
    """
    original = np.asarray(model_image.meta["original_affine"], dtype=np.float64)
    after = np.asarray(model_image.affine, dtype=np.float64)
    mapping = np.linalg.inv(after) @ original
    pts = np.concatenate([np.asarray(points_ijk, dtype=np.float64).reshape(-1, 3), np.ones((len(points_ijk), 1))], 1)
    return (pts @ mapping.T)[:, :3]


def mask_to_model(mask: np.ndarray, model_image: MetaTensor) -> torch.Tensor:
    """Resample an (I, J, K) mask on the input grid onto the pre-processed image's grid.

    Nearest neighbour through the same voxel mapping as :func:`to_model_voxels` (orientation,
    spacing and crop are all affine): each model voxel takes the input voxel its centre falls in;
    model voxels outside the input are False. Computed one model slab at a time (bounded memory).

    Returns:
        (H, W, D) bool tensor, the spatial shape of ``model_image`` ([1, H, W, D]).
    """
    mask = np.asarray(mask, dtype=bool)
    original = np.asarray(model_image.meta["original_affine"], dtype=np.float64)
    after = np.asarray(model_image.affine, dtype=np.float64)
    to_input = np.linalg.inv(original) @ after  # model voxel -> input voxel
    shape = tuple(int(s) for s in model_image.shape[-3:])
    out = np.zeros(shape, dtype=bool)
    jj, kk = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    for i in range(shape[0]):
        model = np.stack([np.full(jj.shape, i), jj, kk], axis=-1).reshape(-1, 3).astype(np.float64)
        ijk = np.rint(model @ to_input[:3, :3].T + to_input[:3, 3]).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < np.asarray(mask.shape)), axis=1)
        values = np.zeros(len(ijk), dtype=bool)
        values[inside] = mask[tuple(ijk[inside].T)]
        out[i] = values.reshape(jj.shape)
    return torch.from_numpy(out)
