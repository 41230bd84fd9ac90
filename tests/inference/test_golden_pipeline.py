"""Golden tests on the real CT: our pipeline against a reference assembled here from MONAI's own
transforms, ``sliding_window_inference``, ``VistaPostTransformd`` and ``Invertd`` with the official
settings of each profile (values restated from the bundle's ``inference.json`` and VISTA's
``infer.yaml``, not read from voxelprompt).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.apps.vista3d.transforms import VistaPostTransformd
from monai.inferers import sliding_window_inference
from monai.transforms import (
    CastToTyped,
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    Invertd,
    LoadImaged,
    Orientationd,
    ScaleIntensityRanged,
    Spacingd,
)

from voxelprompt.imageio import read_volume
from voxelprompt.inference.profiles import get_profile
from voxelprompt.inference.segmenter import Vista3DSegmenter
from voxelprompt.types import Prompts

#: The engines that must reproduce the official labels voxel for voxel.
EXACT_ENGINES = pytest.mark.parametrize("engine", ["reference", "exact"])
ROI = (64, 64, 64)  # the tiny model runs 64^3 windows to keep the suite fast; the logic is size-free
SCALE = {"a_min": -963.8247715525971, "a_max": 1053.678477684517, "b_min": 0.0, "b_max": 1.0, "clip": True}


def bundle_reference_transforms() -> Compose:
    return Compose(
        [
            LoadImaged("image", image_only=True),
            EnsureChannelFirstd("image"),
            Spacingd("image", pixdim=[1.5, 1.5, 1.5], mode="bilinear"),
            CropForegroundd("image", source_key="image", margin=10, allow_smaller=True),
            ScaleIntensityRanged("image", **SCALE),
            Orientationd("image", axcodes="RAS"),
            CastToTyped("image", dtype=torch.float32),
        ]
    )


def research_reference_transforms() -> Compose:
    return Compose(
        [
            LoadImaged("image", image_only=True),
            EnsureChannelFirstd("image"),
            ScaleIntensityRanged("image", **SCALE),
            Orientationd("image", axcodes="RAS"),
            Spacingd("image", pixdim=[1.5, 1.5, 1.5], mode="bilinear", align_corners=True),
            CastToTyped("image", dtype=torch.float32),
        ]
    )


def reference_labels(path, net, classes, transforms, overlap, mode) -> np.ndarray:
    data = transforms({"image": str(path)})
    cv = torch.tensor(classes).unsqueeze(-1)
    with torch.no_grad():
        logits = sliding_window_inference(
            data["image"][None],
            roi_size=ROI,
            sw_batch_size=1,
            predictor=net,
            overlap=overlap,
            mode=mode,
            with_coord=True,
            transpose=True,
            class_vector=cv,
            prompt_class=cv,
        )
    data["pred"], data["label_prompt"] = logits[0], torch.tensor(classes)
    data = VistaPostTransformd("pred")(data)
    data = Invertd("pred", transform=transforms, orig_keys="image", nearest_interp=True, to_tensor=True)(data)
    return torch.nan_to_num(data["pred"], nan=255)[0].numpy().round().astype(np.int64)


@pytest.mark.slow
@EXACT_ENGINES
def test_bundle_profile_matches_monai_reference_on_real_ct(real_ct_path, tiny_net, tiny_spec, engine):
    classes = (1, 3, 14, 5)  # liver, spleen and "kidney" expanded the bundle way (14, 5)
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi(ROI), engine=engine)
    volume = read_volume(real_ct_path)
    ours = seg.segment(volume, Prompts(classes=(1, 3, 2)))
    ref = reference_labels(real_ct_path, tiny_net, classes, bundle_reference_transforms(), 0.25, "constant")
    assert ours.classes == classes
    assert ours.labels.shape == volume.shape
    np.testing.assert_array_equal(ours.labels.affine, volume.affine)
    assert len(np.unique(ref)) >= 3, "reference should contain several classes for the test to mean anything"
    np.testing.assert_array_equal(ours.labels.array.astype(np.int64), ref)


@EXACT_ENGINES
def test_research_profile_matches_monai_reference_on_real_ct(ct_crop_path, tiny_net, tiny_spec, engine):
    classes = (1, 3, 6)
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("research").with_roi(ROI), engine=engine)
    volume = read_volume(ct_crop_path)
    ours = seg.segment(volume, Prompts(classes=classes))
    ref = reference_labels(ct_crop_path, tiny_net, classes, research_reference_transforms(), 0.625, "gaussian")
    assert len(np.unique(ref)) >= 2
    np.testing.assert_array_equal(ours.labels.array.astype(np.int64), ref)
    np.testing.assert_array_equal(ours.labels.affine, volume.affine)


@EXACT_ENGINES
def test_bundle_profile_on_a_crop_smaller_than_one_window(ct_crop_path, tiny_net, tiny_spec, engine):
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi(ROI), engine=engine)
    ours = seg.segment(read_volume(ct_crop_path), Prompts(classes=(1, 3)))
    ref = reference_labels(ct_crop_path, tiny_net, (1, 3), bundle_reference_transforms(), 0.25, "constant")
    np.testing.assert_array_equal(ours.labels.array.astype(np.int64), ref)


@pytest.mark.slow
@EXACT_ENGINES
def test_research_everything_includes_133_like_the_research_code(ct_crop_path, tiny_net, tiny_spec, engine):
    from voxelprompt.catalog import everything_classes

    classes = everything_classes(133)
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("research").with_roi(ROI), engine=engine)
    ours = seg.segment(read_volume(ct_crop_path), Prompts(), everything=True)
    ref = reference_labels(ct_crop_path, tiny_net, classes, research_reference_transforms(), 0.625, "gaussian")
    assert ours.classes == classes and len(classes) == 118
    assert len(np.unique(ref)) >= 3
    np.testing.assert_array_equal(ours.labels.array.astype(np.int64), ref)
