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
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
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


#: The exact engine's promise: labels equal to the reference except where the reference's decision
#: is a near-tie, i.e. its top logit is within this of the runner-up or of the background threshold
#: 0. Channels-last kernels sum in another order than MONAI's contiguous ones, and which kernels run
#: depends on the CPU's instruction set (AVX-512 vs AVX2), so such voxels may flip. Measured on the
#: tiny model: one window's logits (up to 12 in size) differ from MONAI's by at most 2.1e-5, with
#: AVX-512 and with dispatch capped to AVX2; the one flipped voxel seen had a margin of 1.1e-6.
NEAR_TIE = 1e-4
#: At most this fraction of the voxels may be near-tie flips (measured: 1 of 369,660 on AVX2, 0 on AVX-512).
MAX_FLIP_FRACTION = 1e-4


def decision_margin(logits: torch.Tensor) -> torch.Tensor:
    """[1, B, H, W, D] logits -> [1, H, W, D]: how far ``VistaPostTransformd``'s decision is from
    changing: top logit minus runner-up (several classes) and the top logit's distance to 0 (the
    background threshold), whichever is smaller."""
    top = logits.max(dim=1).values
    margin = top.abs()
    if logits.shape[1] > 1:
        two = logits.topk(2, dim=1).values
        runner_up_gap = two[:, 0] - two[:, 1].clamp_min(0.0)
        margin = torch.where(top > 0, torch.minimum(margin, runner_up_gap), margin)
    return margin


def assert_equal_up_to_near_ties(ours: np.ndarray, ref: np.ndarray, margin: np.ndarray) -> int:
    """Labels equal voxel for voxel except near-ties of the reference; returns how many differ."""
    differ = ours.astype(np.int64) != ref
    n = int(differ.sum())
    if n:
        worst = float(margin[differ].max())
        print(f"{n} of {ref.size} voxels differ from the reference, all within a logit margin of {worst:.2e}")
        assert worst <= NEAR_TIE, f"a differing voxel is not a near-tie: reference margin {worst:.3g} > {NEAR_TIE}"
        assert n <= MAX_FLIP_FRACTION * ref.size, f"{n} near-tie flips of {ref.size} voxels is not tiny"
    return n


def reference_labels(path, net, classes, transforms, overlap, mode) -> tuple[np.ndarray, np.ndarray]:
    """MONAI's labels on the input grid and the decision margin of every voxel (see above)."""
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
    data["margin"] = logits[0, :1].clone()  # a MetaTensor like the prediction, so Invertd inverts it too
    data["margin"][0] = decision_margin(logits)[0]
    data["pred"], data["label_prompt"] = logits[0], torch.tensor(classes)
    data = VistaPostTransformd("pred")(data)
    data = Invertd(["pred", "margin"], transform=transforms, orig_keys="image", nearest_interp=True, to_tensor=True)(data)
    labels = torch.nan_to_num(data["pred"], nan=255)[0].numpy().round().astype(np.int64)
    return labels, data["margin"][0].numpy()


@pytest.mark.slow
@EXACT_ENGINES
def test_bundle_profile_matches_monai_reference_on_real_ct(real_ct_path, tiny_net, tiny_spec, engine):
    classes = (1, 3, 14, 5)  # liver, spleen and "kidney" expanded the bundle way (14, 5)
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi(ROI), engine=engine)
    volume = read_volume(real_ct_path)
    ours = seg.segment(volume, Prompts(classes=(1, 3, 2)))
    ref, margin = reference_labels(real_ct_path, tiny_net, classes, bundle_reference_transforms(), 0.25, "constant")
    assert ours.classes == classes
    assert ours.labels.shape == volume.shape
    np.testing.assert_array_equal(ours.labels.affine, volume.affine)
    assert len(np.unique(ref)) >= 3, "reference should contain several classes for the test to mean anything"
    assert_equal_up_to_near_ties(ours.labels.array, ref, margin)


@EXACT_ENGINES
def test_research_profile_matches_monai_reference_on_real_ct(ct_crop_path, tiny_net, tiny_spec, engine):
    classes = (1, 3, 6)
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("research").with_roi(ROI), engine=engine)
    volume = read_volume(ct_crop_path)
    ours = seg.segment(volume, Prompts(classes=classes))
    ref, margin = reference_labels(ct_crop_path, tiny_net, classes, research_reference_transforms(), 0.625, "gaussian")
    assert len(np.unique(ref)) >= 2
    assert_equal_up_to_near_ties(ours.labels.array, ref, margin)
    np.testing.assert_array_equal(ours.labels.affine, volume.affine)


@EXACT_ENGINES
def test_bundle_profile_on_a_crop_smaller_than_one_window(ct_crop_path, tiny_net, tiny_spec, engine):
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi(ROI), engine=engine)
    volume = read_volume(ct_crop_path)
    ours = seg.segment(volume, Prompts(classes=(1, 3)))
    ref, margin = reference_labels(ct_crop_path, tiny_net, (1, 3), bundle_reference_transforms(), 0.25, "constant")
    # an empty reference would let empty labels pass: both prompted classes must be in it
    assert set(np.unique(ref).tolist()) == {0, 1, 3}, np.unique(ref)
    assert ours.labels.shape == volume.shape
    np.testing.assert_array_equal(ours.labels.affine, volume.affine)
    assert_equal_up_to_near_ties(ours.labels.array, ref, margin)


@pytest.mark.slow
@EXACT_ENGINES
def test_research_everything_includes_133_like_the_research_code(ct_crop_path, tiny_net, tiny_spec, engine):
    from voxelprompt.catalog import everything_classes

    classes = everything_classes(133)
    seg = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("research").with_roi(ROI), engine=engine)
    ours = seg.segment(read_volume(ct_crop_path), Prompts(everything=True))
    ref, margin = reference_labels(ct_crop_path, tiny_net, classes, research_reference_transforms(), 0.625, "gaussian")
    assert ours.classes == classes and len(classes) == 118
    assert len(np.unique(ref)) >= 3
    assert_equal_up_to_near_ties(ours.labels.array, ref, margin)
